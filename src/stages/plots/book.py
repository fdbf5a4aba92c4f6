"""Figures of the book's own pages: swap similarity (Figure 12), speed, models, verdicts."""

from __future__ import annotations

import altair as alt
import pandas as pd

from stages.plots import CATEGORY_COLORS, COLUMN, depth_lines, panel_width
from stages.stats import VERDICTS

SIMILARITY_TITLES = {
    ("self", "moved later"): "self (layer i at i+1)",
    ("self", "moved earlier"): "self (layer i+1 at i)",
    ("index", "moved earlier"): "index (position i, layer i+1 there)",
    ("index", "moved later"): "index (position i+1, layer i there)",
    ("adjacent", "baseline"): "adjacent (unswapped i, i+1)",
}


SIMILARITY_COLORS = {
    "self": ("#6a3d9a", "#cab2d6"),
    "index": ("#1b9e77", "#99d8c9"),
    "adjacent": ("#999999",),
}
"""Figure 12's colours of each similarity (two shades: the two directions of a swap); Figure 11
(:mod:`stages.plots.schematics`) draws each kind in its first."""


def swap_similarity_figure(table: pd.DataFrame, *, title: str) -> alt.HConcatChart:
    """Figure 12: cosine similarity of component outputs after each adjacent swap."""
    palette = [c for shades in SIMILARITY_COLORS.values() for c in shades]
    colors = dict(zip(SIMILARITY_TITLES.values(), palette, strict=True))
    panels = []
    for component, name in (("attn", "attention"), ("mlp", "MLP")):
        rows = table[table["component"] == component]
        data = rows.assign(
            series=[SIMILARITY_TITLES[(m, w)] for m, w in zip(rows["metric"], rows["which"],
                                                               strict=True)],
        )  # fmt: skip
        panels.append(depth_lines(data, colors, panel_width(2), 220, series="series",
                                  y_title=f"{name} output cosine"))  # fmt: skip
    # one legend (the same series), in two columns: five long labels do not fit one row
    return alt.hconcat(*panels).properties(title=title).configure_legend(columns=2)


def speed_figure(table: pd.DataFrame, *, title: str) -> alt.Chart:
    """Seconds per intervention per 1,000 tokens, each method, each model (log scale).

    ``table`` is :func:`stages.engine.performance.speed_table`.
    """
    methods = list(dict.fromkeys(table["method"]))  # the authors' method first
    colors = dict(zip(methods, [CATEGORY_COLORS[5], CATEGORY_COLORS[0]], strict=False))
    return (
        alt.Chart(table)
        .mark_circle(size=160, opacity=1)  # dots: a bar has no baseline on a log scale
        .encode(
            y=alt.Y("method:N", title=None, axis=None, sort=list(colors)),
            x=alt.X(
                "s_per_intervention_per_1k_tokens:Q",
                title="seconds per intervention per 1,000 tokens (log scale; lower is faster)",
                scale=alt.Scale(type="log"),
            ),
            color=alt.Color(
                "method:N",
                title=None,
                legend=alt.Legend(orient="top"),
                scale=alt.Scale(domain=list(colors), range=list(colors.values())),
            ),
            row=alt.Row("model:N", title=None,  # each model's name above its row: no margin
                        header=alt.Header(labelAngle=0, labelOrient="top", labelAnchor="start")),
            tooltip=[
                "model:N",
                "method:N",
                "tokens:N",
                "n_interventions:Q",
                alt.Tooltip("s_per_intervention:Q", format=".2f", title="s per intervention"),
                alt.Tooltip("speed_ratio:Q", format=".1f", title="speed ratio"),
                alt.Tooltip("mfu:Q", format=".0%", title="MFU (stages)"),
            ],
        )  # fmt: skip
        .properties(width=COLUMN - 20, height=50, title=title)  # no y axis
    )


def cross_model_figure(
    table: pd.DataFrame, titles: dict[str, str], *, title: str
) -> alt.FacetChart:
    """Every model's signals against relative depth: one panel per signal, one colour per model.

    ``table`` is :func:`stages.analyses.cross_model.compare_models`; ``titles`` maps signals to
    titles.
    """
    data = table.assign(series=table["model"], signal=table["signal"].map(titles),
                        layers=table["layer"].astype(str))  # fmt: skip
    models = list(dict.fromkeys(table["model"]))
    colors = dict(zip(models, CATEGORY_COLORS, strict=False))
    return (  # two panels a row: each has its own y axis
        depth_lines(data, colors, panel_width(2), 160, series="series")
        .facet(facet=alt.Facet("signal:N", title=None, sort=list(titles.values())), columns=2)
        .resolve_scale(y="independent")
        .properties(title=title)
    )


VERDICT_COLORS = dict(
    zip(VERDICTS, ("#59a14f", "#e15759", "#edc948", "#a0cbe8", "#d3d3d3"), strict=True)
)
"""One colour per verdict (:data:`stages.stats.VERDICTS`), in that order."""


VERDICT_CELL = 130
"""Width of a model's column in :func:`verdict_figure`, in pixels (fits its name)."""


def verdict_figure(claims: pd.DataFrame, *, title: str) -> alt.Chart:
    """Every claim's verdict for every model: one cell per claim and model, coloured by verdict.

    The chart fits the text column (:data:`stages.plots.COLUMN`): a claim's label is cut short
    (with an ellipsis) where it would not fit; each cell's tooltip gives the claim in full, each
    model's wording, the statistic, its 95% interval, n and the rule.

    Args:
        claims: :func:`stages.results.verdicts.decide_all` of several models, with a ``model``
            column. The rows keep the table's order (grouped by page), one per claim
            (``group``, ``number``), labelled with the first model's wording.
        title: the chart title.
    """
    from stages.plots import COLUMN

    first = claims.groupby(["group", "number"], sort=False)["claim"].transform("first")
    data = claims.assign(
        label=claims["group"] + ": " + first,
        interval=[f"{lo:.3g} to {hi:.3g}" if lo == lo else "" for lo, hi in
                  zip(claims["lo"], claims["hi"], strict=True)],
        n_units=[f"{n} {u}" for n, u in zip(claims["n"], claims["unit"], strict=True)],
    )  # fmt: skip
    order = list(dict.fromkeys(data["label"]))
    width = VERDICT_CELL * data["model"].nunique()
    color = alt.Color(
        "verdict:N", title="verdict",
        scale=alt.Scale(domain=list(VERDICT_COLORS), range=list(VERDICT_COLORS.values())),
        # two columns: a legend in one row would be wider than the cells it sits over
        legend=alt.Legend(orient="top", columns=2, labelLimit=width // 2),
    )  # fmt: skip
    tooltip = ["model:N", "group:N", "claim:N", "verdict:N", "statistic:N",
               alt.Tooltip("value:Q", format=".3g"),
               alt.Tooltip("interval:N", title="95% interval"),
               alt.Tooltip("n_units:N", title="n"), "rule:N"]  # fmt: skip
    return (
        alt.Chart(data)
        .mark_rect(stroke="white", strokeWidth=1.5)
        .encode(
            x=alt.X("model:N", title=None,
                    axis=alt.Axis(orient="top", labelAngle=0, labelLimit=VERDICT_CELL)),
            y=alt.Y("label:N", title=None, sort=order,
                    axis=alt.Axis(labelLimit=COLUMN - width - 24)),
            color=color,
            tooltip=tooltip,
        )
        .properties(width=width, height=alt.Step(16), title=title)
    )  # fmt: skip


def pack_history_figure(history: pd.DataFrame, *, title: str) -> alt.Chart:
    """Rows each results-pack part held after each commit that changed it, one panel per model.

    ``history`` is :func:`stages.results.changelog.pack_history`; a step line per part.
    """
    from stages.plots import COLUMN, Y_AXIS

    data = history.assign(when=pd.to_datetime(history["date"]))
    return (
        alt.Chart(data)
        .mark_line(point=True, interpolate="step-after")
        .encode(
            x=alt.X("when:T", title="commit date (UTC)"),
            y=alt.Y("rows_after:Q", title="rows held (sequences or windows)",
                    scale=alt.Scale(type="symlog")),
            # up to 15 parts: 20 colours, so no two parts share one
            color=alt.Color("part:N", title="part", scale=alt.Scale(scheme="tableau20"),
                            legend=alt.Legend(orient="bottom", columns=5)),
            tooltip=["model:N", "part:N", "change:N", "rows_before:Q", "rows_after:Q",
                     "commit:N", "date:N", "subject:N"],
        )
        .properties(width=COLUMN - Y_AXIS - 40, height=170)  # 40: the facet's header
        .facet(row=alt.Row("model:N", title=None))
        .properties(title=title)
    )  # fmt: skip
