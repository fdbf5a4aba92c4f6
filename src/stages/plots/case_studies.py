"""Figures of the case studies: subjoiner heads (Figure 9) and "-ing" probes (Figure 10)."""

from __future__ import annotations

import altair as alt
import pandas as pd

from stages.plots import DEPTH_TITLE, panel_width


def subjoiner_figure(profile: pd.DataFrame, *, title: str) -> alt.LayerChart:
    """Figure 9: one head's attention from a window's last token to the positions before it.

    ``profile`` is a :func:`stages.analyses.subjoiner.attention_profile` table; error bars are ±2
    standard errors of the mean over windows.
    """
    data = profile.assign(lo=profile["attention"] - 2 * profile["sem"],
                          hi=profile["attention"] + 2 * profile["sem"])  # fmt: skip
    colors = alt.Scale(domain=["multi-token word", "one-token word"], range=["#6a3d9a", "#999999"])
    y_title = "mean attention from the last token"
    x = alt.X("offset:O", title="positions before the last token (0 = the token itself)")
    color = alt.Color("cls:N", title=None, scale=colors, legend=alt.Legend(orient="top"))
    line = (
        alt.Chart(data)
        .mark_line(point=True)
        .encode(
            x=x,
            y=alt.Y("attention:Q", title=y_title),
            color=color,
            tooltip=["cls:N", "offset:O", alt.Tooltip("attention:Q", format=".3f")],
        )
    )
    bars = (
        alt.Chart(data)
        .mark_errorbar()
        .encode(x=x, y=alt.Y("lo:Q", title=y_title), y2="hi:Q", color=color)
    )
    return alt.layer(bars, line).properties(width=panel_width(), height=220, title=title)


def head_effects_figure(ranking: pd.DataFrame, *, title: str, top: int = 10) -> alt.LayerChart:
    """Every head's subjoiner effect against depth, the ``top`` heads highlighted."""
    data = ranking.assign(
        name=[f"L{r.layer}H{r.head}" for r in ranking.itertuples()],
        top=[i < top for i in range(len(ranking))],
    )
    x = alt.X("rel_depth:Q", title=DEPTH_TITLE, scale=alt.Scale(domain=[0, 1]))
    y_title = "attention to the word's first token: word − control"
    bars = alt.Chart(data).mark_rule(opacity=0.5).encode(x=x, y="effect_lo:Q", y2="effect_hi:Q")
    points = (
        alt.Chart(data)
        .mark_circle(size=40)
        .encode(
            x=x,
            y=alt.Y("effect:Q", title=y_title),
            color=alt.Color(
                "top:N",
                title=None,
                scale=alt.Scale(domain=[True, False], range=["#6a3d9a", "#bbbbbb"]),
                legend=None,
            ),  # fmt: skip
            tooltip=[
                "name:N",
                alt.Tooltip("effect:Q", format=".3f"),
                alt.Tooltip("effect_lo:Q", format=".3f"),
                alt.Tooltip("effect_hi:Q", format=".3f"),
            ],
        )  # fmt: skip
    )
    return alt.layer(bars, points).properties(width=panel_width(), height=220, title=title)


def probe_figure(table: pd.DataFrame, *, title: str) -> alt.LayerChart:
    """Figure 10a: test accuracy of single-neuron probes, top-k probes and the model.

    Args:
        table: :attr:`stages.analyses.probes.Probes.table`. Single probes of the ``all`` group are
        points
            at their rank (by validation accuracy), coloured by class; the top-k probes of each
            group are lines; the model's top-1 and the probe on its log P(-ing) are dashed rules.
        title: the chart title.
    """
    classes = {n: g for n, g in zip(table["neuron"], table["group"], strict=True)
               if g in ("prediction", "suppression")}  # fmt: skip
    singles = table[(table["probe"] == "single") & (table["group"] == "all")]
    singles = singles.assign(kind=singles["neuron"].map(lambda n: f"one {classes[n]} neuron"))
    curves = table[table["probe"] == "top-k"]
    curves = curves.assign(kind=curves["group"].map(lambda g: f"top-k, {g} neurons"))
    model = table[table["probe"].isin(["model", "model logp"])]
    kinds = ["one prediction neuron", "one suppression neuron", "top-k, prediction neurons",
             "top-k, suppression neurons", "top-k, all neurons"]  # fmt: skip
    colors = alt.Scale(domain=kinds, range=["#a6cee3", "#fdbf6f", "#1f78b4", "#ff7f00", "#33a02c"])
    x = alt.X("k:Q", title="k: neurons used (single probes: rank by validation accuracy)")
    y = alt.Y("accuracy:Q", title="test accuracy", scale=alt.Scale(zero=False))
    color = alt.Color(
        "kind:N", title=None, scale=colors, legend=alt.Legend(orient="top", columns=3)
    )
    tooltip = (
        ["kind:N", "k:Q", "neuron:N"]
        + [alt.Tooltip(f"{c}:Q", format=".3f") for c in ("accuracy", "accuracy_lo", "accuracy_hi")]
        + [alt.Tooltip("val_accuracy:Q", format=".3f", title="validation accuracy")]
    )
    points = alt.Chart(singles).mark_circle(size=45).encode(x=x, y=y, color=color, tooltip=tooltip)
    lines = alt.Chart(curves).mark_line(point=alt.OverlayMarkDef(size=20)).encode(
        x=x, y=y, color=color, tooltip=tooltip
    )  # fmt: skip
    baselines = {"model": "the model's top-1", "model logp": "a probe on the model's log P(-ing)"}
    model = model.assign(baseline=model["probe"].map(baselines))
    dashes = alt.Scale(domain=list(baselines.values()), range=[[6, 3], [2, 2]])  # both dashed
    rule = (
        alt.Chart(model)
        .mark_rule()
        .encode(
            y="accuracy:Q",
            strokeDash=alt.StrokeDash("baseline:N", title=None, scale=dashes,
                                      legend=alt.Legend(orient="bottom")),  # fmt: skip
            color=alt.value("#e31a1c"),
            tooltip=["baseline:N", alt.Tooltip("accuracy:Q", format=".3f")],
        )
    )
    return alt.layer(points, lines, rule).properties(width=panel_width(), height=260, title=title)


def ing_neuron_figure(neurons: pd.DataFrame, *, title: str) -> alt.Chart:
    """Figures 10b and 16: the chosen "-ing" neurons and how differently they treat "-ing" tokens.

    Args:
        neurons: a :func:`stages.analyses.probes.ing_neurons` table (``contrast`` on the x axis).
        title: the chart title.
    """
    rows = neurons.assign(
        name=[f"L{r.layer} N{r.neuron}" for r in neurons.itertuples()],
    )
    colors = alt.Scale(domain=["prediction", "suppression"], range=["#1f78b4", "#ff7f00"])
    return (
        alt.Chart(rows)
        .mark_bar()
        .encode(
            x=alt.X("contrast:Q", title="mean effect on '-ing' tokens minus on the others"),
            y=alt.Y("name:N", title=None, sort=list(rows["name"])),
            color=alt.Color("cls:N", title=None, scale=colors, legend=alt.Legend(orient="top")),
            tooltip=[
                "name:N",
                "cls:N",
                alt.Tooltip("contrast:Q", format=".4g"),
                alt.Tooltip("kurtosis:Q", format=".1f"),
                alt.Tooltip("skew:Q", format=".2f"),
                alt.Tooltip("variance:Q", format=".2e"),
            ],
        )  # fmt: skip
        .properties(width=panel_width(), height=14 * len(rows), title=title)
    )
