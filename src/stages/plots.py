"""Altair charts of the book's tables, labelled with the paper's figure numbers and units.

:func:`use_book_style` sets the book's figure style for every chart (a page calls it through
:func:`stages.book.page.open_page`; importing this module changes nothing): the ``stages`` theme
(one font, sizes, grid and palette on every page) and the ``stages`` renderer, which is Altair's
default interactive output (the book ships one offline Vega bundle,
:func:`stages.book.write_vega_bundle`) followed by a static SVG of the same chart inside
``<noscript>``, for readers without JavaScript.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import altair as alt
import pandas as pd

from stages.engine.plans import FAMILIES
from stages.stats import VERDICTS

FONT = "Helvetica Neue, Helvetica, Arial, sans-serif"
# The theme's colours for categories (Tableau 10), in order; charts that pick their own take these.
CATEGORY_COLORS = ("#4e79a7", "#e15759", "#59a14f", "#f28e2b", "#76b7b2",
                   "#b07aa1", "#edc948", "#ff9da7", "#9c755f", "#bab0ac")  # fmt: skip


def _theme() -> alt.theme.ThemeConfig:
    """The book's one figure style."""
    axis = {"labelFont": FONT, "titleFont": FONT, "labelFontSize": 11, "titleFontSize": 12,
            "gridColor": "#e6e6e6", "domainColor": "#888888", "tickColor": "#888888",
            "titleFontWeight": "normal"}  # fmt: skip
    return {
        "config": {
            "font": FONT,
            "view": {"stroke": None},
            "title": {"font": FONT, "fontSize": 14, "fontWeight": "bold", "anchor": "start",
                      "subtitleFont": FONT, "subtitleFontSize": 12, "offset": 8},  # fmt: skip
            "axis": axis,
            "header": {"labelFont": FONT, "titleFont": FONT, "labelFontSize": 12},
            "legend": {"labelFont": FONT, "titleFont": FONT, "labelFontSize": 11,
                       "titleFontSize": 12, "symbolStrokeWidth": 2},  # fmt: skip
            "line": {"strokeWidth": 2},
            "point": {"size": 30, "filled": True},
            "range": {"category": list(CATEGORY_COLORS)},
        }
    }  # fmt: skip


def _interactive_with_static_fallback(
    interactive: Any, spec: dict[str, Any], **metadata: Any
) -> dict[str, str]:
    """``interactive``'s HTML output plus ``<noscript>`` holding the chart as SVG (vl-convert)."""
    import vl_convert as vlc

    bundle = interactive(spec, **metadata)
    html = (bundle[0] if isinstance(bundle, tuple) else bundle)["text/html"]
    vl_version = ".".join(alt.VEGALITE_VERSION.split(".")[:2])
    svg = vlc.vegalite_to_svg(spec, vl_version=vl_version)
    return {
        "text/html": f'{html}\n<noscript><div class="stages-static-figure">{svg}</div></noscript>'
    }


def use_book_style() -> None:
    """Enable the ``stages`` theme and renderer for every chart from now on (idempotent)."""
    alt.theme.register("stages", enable=True)(_theme)
    if alt.renderers.active != "stages":
        alt.renderers.enable("default")
        interactive = alt.renderers.get()  # Altair's default: vegaEmbed in HTML
        alt.renderers.register("stages", partial(_interactive_with_static_fallback, interactive))
        alt.renderers.enable("stages")

METRIC_TITLES = {
    "kl": "KL(baseline ‖ intervened), nats",
    "rel_acc": "relative accuracy (top-1 kept)",
    "entropy_delta": "entropy change, bits",
    "loss": "loss, nats",
}


def long_metrics(
    table: pd.DataFrame, metrics: tuple[str, ...] = ("kl", "rel_acc", "entropy_delta")
) -> pd.DataFrame:
    """Reshape a :func:`stages.run_sweep` table to one row per (intervention, metric).

    Columns: ``kind``, ``intervention`` (readable kind), ``layer``, ``layers``, ``rel_depth``,
    ``metric`` (readable title), ``value``, ``lo``, ``hi``. The baseline row is left out.
    """
    rows = table[table["kind"] != "none"]
    parts = []
    for name in metrics:
        part = rows[["kind", "layer", "layers", "rel_depth"]].copy()
        part["metric"] = METRIC_TITLES[name]
        part["value"] = rows[name]
        part["lo"] = rows[f"{name}_lo"]
        part["hi"] = rows[f"{name}_hi"]
        parts.append(part)
    out = pd.concat(parts, ignore_index=True)
    out["intervention"] = out["kind"].map(lambda kind: FAMILIES[kind].title)
    return out


DEPTH_TITLE = "relative depth (layer / (n_layers − 1))"


def _depth_lines(
    data: pd.DataFrame,
    colors: dict[str, str],
    width: int,
    height: int,
    *,
    series: str = "intervention",
    label: str = "layers",
    y_title: str | None = None,
    depth: tuple[float, float] = (0.0, 1.0),
    y_scale: alt.Scale | None = None,
) -> alt.LayerChart:
    """Lines with shaded 95% bands against relative depth, one colour per ``series`` value.

    ``data`` has ``rel_depth``, ``value``, ``lo``, ``hi``, the ``series`` column and the
    ``label`` column (shown in the tooltip as the layer).
    """
    x = alt.X("rel_depth:Q", title=DEPTH_TITLE, scale=alt.Scale(domain=list(depth)))
    scale = alt.Scale(domain=list(colors), range=list(colors.values()))
    legend = alt.Legend(orient="top", symbolOpacity=1) if len(colors) > 1 else None
    color = alt.Color(f"{series}:N", title=None, scale=scale, legend=legend)
    y_kw = {"scale": y_scale} if y_scale is not None else {}
    tooltip = [
        alt.Tooltip(f"{series}:N"),
        alt.Tooltip(f"{label}:N", title="layer(s)"),
        alt.Tooltip("value:Q", format=".3f"),
        alt.Tooltip("lo:Q", format=".3f", title="95% CI low"),
        alt.Tooltip("hi:Q", format=".3f", title="95% CI high"),
    ]
    base = alt.Chart(data).encode(x=x)
    band = base.mark_area(opacity=0.2).encode(
        y=alt.Y("lo:Q", title=y_title, **y_kw), y2="hi:Q", color=color
    )
    line = base.mark_line(point=True).encode(
        y=alt.Y("value:Q", title=y_title, **y_kw), color=color, tooltip=tooltip
    )
    return alt.layer(band, line).properties(width=width, height=height)


def _family_colors(*kinds: str) -> dict[str, str]:
    """``{title: colour}`` of intervention families (:data:`stages.FAMILIES`), in order."""
    return {FAMILIES[kind].title: FAMILIES[kind].color for kind in kinds}


def _three_metric_figure(table: pd.DataFrame, kinds: tuple[str, ...], title: str) -> alt.FacetChart:
    """KL, relative accuracy and entropy change against depth; one colour per intervention kind."""
    data = long_metrics(table[table["kind"].isin(kinds)])
    colors = _family_colors(*kinds)
    return (
        _depth_lines(data, colors, 170, 170)
        .facet(column=alt.Column("metric:N", title=None, sort=list(METRIC_TITLES.values())))
        .resolve_scale(y="independent")
        .properties(title=title)
    )


def robustness_figure(table: pd.DataFrame, *, title: str) -> alt.FacetChart:
    """The paper's Figure 3: KL, relative accuracy and entropy change against relative depth.

    Swap and drop side by side (one colour each), one panel per metric, with shaded 95%
    bootstrap intervals over sequences.
    """
    return _three_metric_figure(table, ("swap", "drop"), title)


def component_figure(table: pd.DataFrame, *, title: str) -> alt.FacetChart:
    """The paper's Figures 13-15: attention-only and MLP-only drops, same three metrics."""
    return _three_metric_figure(table, ("drop_attn", "drop_mlp"), title)


def swap_vs_drop_zoom(
    table: pd.DataFrame, middle: tuple[float, float], *, title: str
) -> alt.LayerChart:
    """Figure 3's zoom: KL of swaps and drops over the middle layers only."""
    rows = table[table["kind"].isin(["drop", "swap"]) & table["rel_depth"].between(*middle)]
    data = long_metrics(rows, ("kl",))
    return _depth_lines(data, _family_colors("swap", "drop"), 400, 220, depth=middle).properties(
        title=title
    )


def long_layers(table: pd.DataFrame, columns: dict[str, str]) -> pd.DataFrame:
    """Reshape a per-layer table to one row per (layer, column) for :func:`_depth_lines`.

    ``columns`` maps a column of ``table`` (with ``_lo`` / ``_hi`` bounds) to its series title.
    Columns: ``layer``, ``rel_depth``, ``series``, ``value``, ``lo``, ``hi``.
    """
    parts = []
    for column, title in columns.items():
        part = table[["layer", "rel_depth"]].copy()
        part["series"] = title
        part["value"] = table[column]
        part["lo"] = table.get(f"{column}_lo", table[column])
        part["hi"] = table.get(f"{column}_hi", table[column])
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def _layer_panel(
    table: pd.DataFrame,
    columns: dict[str, str],
    colors: list[str],
    *,
    y_title: str,
    width: int = 300,
    height: int = 220,
    y_scale: alt.Scale | None = None,
    depth: tuple[float, float] = (0.0, 1.0),
) -> alt.LayerChart:
    data = long_layers(table, columns)
    palette = dict(zip(columns.values(), colors, strict=False))
    return _depth_lines(
        data, palette, width, height, series="series", label="layer", y_title=y_title,
        y_scale=y_scale, depth=depth,
    )  # fmt: skip


def _side_by_side(panels: list[alt.TopLevelMixin], title: str) -> alt.HConcatChart:
    """Panels in a row, each with its own colours and legend."""
    return (
        alt.hconcat(*panels)
        .resolve_scale(color="independent")
        .resolve_legend(color="independent")
        .properties(title=title)
    )


def locality_figure(table: pd.DataFrame, *, title: str) -> alt.HConcatChart:
    """Figure 4: attention on the previous five tokens per layer (mean over heads, and heads).

    Left: the paper's quantity (mean weight per sub-diagonal entry, BOS included). Right: the
    summed attention on the previous five tokens with BOS removed as a key. Grey points are
    single heads; lines are the mean over a layer's heads with 95% bands.
    """
    layers = table[table["head"] == -1]
    heads = table[table["head"] >= 0]
    panels = []
    for column, y_title in [
        ("attn_prev5", "attention per previous-5 entry (paper)"),
        ("prev_sum_nobos", "attention on previous 5 tokens, BOS removed"),
    ]:
        mean = _layer_panel(layers, {column: "mean over heads"}, ["#1f78b4"], y_title=y_title)
        points = (
            alt.Chart(heads)
            .mark_circle(size=18, color="#999999", opacity=0.6)
            .encode(
                x="rel_depth:Q",
                y=f"{column}:Q",
                tooltip=[
                    alt.Tooltip("layer:Q"),
                    alt.Tooltip("head:Q"),
                    alt.Tooltip(f"{column}:Q", format=".3f"),
                ],
            )
        )
        panels.append(alt.layer(points, mean))
    return _side_by_side(panels, title)


def norms_figure(table: pd.DataFrame, *, title: str) -> alt.HConcatChart:
    """Figures 5 and 7: attention and MLP output norms per layer, and their ratio."""
    norms = _layer_panel(
        table,
        {"attn_norm": "attention output", "mlp_norm": "MLP output"},
        ["#e6550d", "#31a354"],
        y_title="mean L2 norm added to the residual",
    )
    ratio = _layer_panel(table, {"ratio": "|Attn| / |MLP|"}, ["#756bb1"], y_title="|Attn| / |MLP|")
    one = alt.Chart(pd.DataFrame({"y": [1.0]})).mark_rule(strokeDash=[4, 4]).encode(y="y:Q")
    return _side_by_side([norms, alt.layer(ratio, one)], title)


def lens_figure(
    table: pd.DataFrame, *, title: str, depth: tuple[float, float] = (0.0, 1.0)
) -> alt.HConcatChart:
    """Figures 6 and 8: the logit lens' KL to the final distribution, agreement and entropy."""
    rows = table[table["rel_depth"].between(*depth)]
    kw = {"width": 185, "depth": depth}
    kl = _layer_panel(
        rows, {"kl_to_final": "KL(final ‖ layer)"}, ["#1f78b4"], y_title="KL(final ‖ layer), nats",
        y_scale=alt.Scale(type="symlog"), **kw,
    )  # fmt: skip
    agree = _layer_panel(
        rows, {"top1_agreement": "top-1 agreement"}, ["#33a02c"],
        y_title="top-1 agreement with the final layer", **kw,
    )  # fmt: skip
    entropy = _layer_panel(
        rows, {"entropy": "logit-lens entropy"}, ["#e31a1c"], y_title="entropy, bits", **kw
    )
    final = alt.Chart(rows.head(1)).mark_rule(strokeDash=[4, 4]).encode(y="final_entropy:Q")
    return _side_by_side([kl, agree, alt.layer(entropy, final)], title)


def neuron_counts_figure(counts: pd.DataFrame, *, title: str) -> alt.Chart:
    """Figure 6: prediction and suppression neurons per layer, as a fraction of the layer."""
    n_layers = len(counts)
    data = counts.melt(
        id_vars=["layer", "d_mlp"],
        value_vars=["prediction_frac", "suppression_frac"],
        var_name="class",
        value_name="fraction",
    )
    data["class"] = data["class"].str.removesuffix("_frac")
    data["count"] = (data["fraction"] * data["d_mlp"]).round().astype(int)
    data["rel_depth"] = data["layer"] / max(1, n_layers - 1)
    colors = alt.Scale(domain=["prediction", "suppression"], range=["#1f78b4", "#e31a1c"])
    return (
        alt.Chart(data)
        .mark_line(point=True)
        .encode(
            x=alt.X("rel_depth:Q", title=DEPTH_TITLE, scale=alt.Scale(domain=[0, 1])),
            y=alt.Y(
                "fraction:Q", title="fraction of the layer's neurons", axis=alt.Axis(format="%")
            ),
            color=alt.Color("class:N", title=None, scale=colors, legend=alt.Legend(orient="top")),
            tooltip=["class:N", "layer:Q", "count:Q", alt.Tooltip("fraction:Q", format=".2%")],
        )
        .properties(width=460, height=220, title=title)
    )


def overview_figure(
    signals: pd.DataFrame, titles: dict[str, str], boundaries: pd.DataFrame, *, title: str
) -> alt.LayerChart:
    """Figure 1: the stage signals on one relative-depth axis, with the fitted boundaries.

    Args:
        signals: one row per layer with ``layer``, ``rel_depth`` and the columns of ``titles``;
            each is drawn scaled to 0..1 by its own min and max (the tooltip shows the value).
        titles: column to legend title.
        boundaries: a :func:`stages.signals.boundary_ranges` table: a dashed rule at each
            fitted boundary, a grey band over the range where resampled fits put it.
        title: the chart title.
    """
    parts = []
    for column, name in titles.items():
        raw = signals[column]
        span = raw.max() - raw.min()
        parts.append(
            pd.DataFrame(
                {
                    "layer": signals["layer"],
                    "rel_depth": signals["rel_depth"],
                    "series": name,
                    "raw": raw,
                    "value": (raw - raw.min()) / span if span > 0 else 0.0,
                }
            )
        )
    curves = pd.concat(parts, ignore_index=True)
    x = alt.X("rel_depth:Q", title=DEPTH_TITLE, scale=alt.Scale(domain=[0, 1]))
    lines = (
        alt.Chart(curves)
        .mark_line(point=True)
        .encode(
            x=x,
            y=alt.Y("value:Q", title="signal, scaled to its own range (0 = min, 1 = max)"),
            color=alt.Color(
                "series:N",
                title=None,
                sort=list(titles.values()),
                legend=alt.Legend(orient="top", columns=2),
            ),  # fmt: skip
            tooltip=["series:N", "layer:Q", alt.Tooltip("raw:Q", format=".4g", title="value")],
        )
    )
    band = (
        alt.Chart(boundaries)
        .mark_rect(opacity=0.15, color="#555555")
        .encode(x="rel_depth_lo:Q", x2="rel_depth_hi:Q")
    )
    rules = (
        alt.Chart(boundaries)
        .mark_rule(strokeDash=[6, 3], color="#333333", size=2)
        .encode(
            x="rel_depth:Q",
            tooltip=[
                alt.Tooltip("boundary:Q"),
                alt.Tooltip("layer:Q", title="first layer of the next stage"),
                alt.Tooltip("share:Q", format=".0%", title="resamples putting it here"),
                alt.Tooltip("layer_lo:Q", title="90% of resamples from layer"),
                alt.Tooltip("layer_hi:Q", title="90% of resamples to layer"),
            ],
        )
    )
    return alt.layer(band, rules, lines).properties(width=520, height=260, title=title)


def stability_figure(
    stability: pd.DataFrame, boundaries: pd.DataFrame, *, title: str
) -> alt.LayerChart:
    """Where each stage boundary lands across bootstrap resamples: one bar per (boundary, layer).

    Args:
        stability: a :func:`stages.signals.boundary_stability` table.
        boundaries: a :func:`stages.signals.boundary_ranges` table (its fitted layers are marked).
        title: the chart title.
    """
    data = stability.assign(boundary=stability["boundary"].map(lambda b: f"boundary {b}"))
    marks = boundaries.assign(boundary=boundaries["boundary"].map(lambda b: f"boundary {b}"))
    bars = (
        alt.Chart(data)
        .mark_bar(opacity=0.8)
        .encode(
            x=alt.X("layer:O", title="first layer of the next stage"),
            y=alt.Y("share:Q", title="share of resampled fits", scale=alt.Scale(domain=[0, 1])),
            color=alt.Color("boundary:N", title=None, legend=alt.Legend(orient="top")),
            xOffset="boundary:N",
            tooltip=["boundary:N", "layer:O", alt.Tooltip("share:Q", format=".0%")],
        )
    )
    fitted = (
        alt.Chart(marks)
        .mark_point(shape="triangle-down", size=90, filled=True, color="#333333")
        .encode(x="layer:O", xOffset="boundary:N", y=alt.datum(1.0),
                tooltip=["boundary:N", alt.Tooltip("layer:O", title="fitted on all sequences")])
    )  # fmt: skip
    return alt.layer(bars, fitted).properties(width=520, height=200, title=title)


def subjoiner_figure(profile: pd.DataFrame, *, title: str) -> alt.LayerChart:
    """Figure 9: one head's attention from a window's last token to the positions before it.

    ``profile`` is a :func:`stages.subjoiner.attention_profile` table; error bars are ±2
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
    return alt.layer(bars, line).properties(width=460, height=220, title=title)


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
    return alt.layer(bars, points).properties(width=460, height=220, title=title)


def probe_figure(table: pd.DataFrame, *, title: str) -> alt.LayerChart:
    """Figure 10a: test accuracy of single-neuron probes, top-k probes and the model.

    Args:
        table: :attr:`stages.probes.Probes.table`. Single probes of the ``all`` group are points
            at their rank (by validation accuracy), coloured by class; the top-k probes of each
            group are lines; the model is a dashed rule.
        title: the chart title.
    """
    classes = {n: g for n, g in zip(table["neuron"], table["group"], strict=True)
               if g in ("prediction", "suppression")}  # fmt: skip
    singles = table[(table["probe"] == "single") & (table["group"] == "all")]
    singles = singles.assign(kind=singles["neuron"].map(lambda n: f"one {classes[n]} neuron"))
    curves = table[table["probe"] == "top-k"]
    curves = curves.assign(kind=curves["group"].map(lambda g: f"top-k, {g} neurons"))
    model = table[table["probe"] == "model"]
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
    rule = (
        alt.Chart(model)
        .mark_rule(color="#e31a1c", strokeDash=[6, 3])
        .encode(
            y="accuracy:Q", tooltip=[alt.Tooltip("accuracy:Q", format=".3f", title="model top-1")]
        )
    )
    return alt.layer(points, lines, rule).properties(width=480, height=260, title=title)


def ing_neuron_figure(neurons: pd.DataFrame, *, title: str) -> alt.Chart:
    """Figures 10b and 16: the chosen "-ing" neurons and how differently they treat "-ing" tokens.

    Args:
        neurons: a :func:`stages.probes.ing_neurons` table (``contrast`` on the x axis).
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
        .properties(width=420, height=14 * len(rows), title=title)
    )


SIMILARITY_TITLES = {
    ("self", "moved later"): "self (layer i at i+1)",
    ("self", "moved earlier"): "self (layer i+1 at i)",
    ("index", "moved earlier"): "index (position i, layer i+1 there)",
    ("index", "moved later"): "index (position i+1, layer i there)",
    ("adjacent", "baseline"): "adjacent (unswapped i, i+1)",
}


def swap_similarity_figure(table: pd.DataFrame, *, title: str) -> alt.HConcatChart:
    """Figure 12: cosine similarity of component outputs after each adjacent swap."""
    palette = ["#6a3d9a", "#cab2d6", "#1b9e77", "#99d8c9", "#999999"]
    colors = dict(zip(SIMILARITY_TITLES.values(), palette, strict=True))
    panels = []
    for component, name in (("attn", "attention"), ("mlp", "MLP")):
        rows = table[table["component"] == component]
        data = rows.assign(
            series=[SIMILARITY_TITLES[(m, w)] for m, w in zip(rows["metric"], rows["which"],
                                                               strict=True)],
        )  # fmt: skip
        panels.append(
            _depth_lines(data, colors, 300, 220, series="series", y_title=f"{name} output cosine")
        )
    return alt.hconcat(*panels).properties(title=title)  # one legend: the same series


def speed_figure(table: pd.DataFrame, *, title: str) -> alt.Chart:
    """Seconds per intervention per 1,000 tokens, each method, each model (log scale).

    ``table`` is :func:`stages.performance.speed_table`.
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
            row=alt.Row("model:N", title=None, header=alt.Header(labelAngle=0, labelAlign="left")),
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
        .properties(width=460, height=50, title=title)
    )


def cross_model_figure(
    table: pd.DataFrame, titles: dict[str, str], *, title: str
) -> alt.FacetChart:
    """Every model's signals against relative depth: one panel per signal, one colour per model.

    ``table`` is :func:`stages.cross_model.compare_models`; ``titles`` maps signals to titles.
    """
    data = table.assign(series=table["model"], signal=table["signal"].map(titles),
                        layers=table["layer"].astype(str))  # fmt: skip
    models = list(dict.fromkeys(table["model"]))
    colors = dict(zip(models, CATEGORY_COLORS, strict=False))
    return (
        _depth_lines(data, colors, 230, 160, series="series")
        .facet(facet=alt.Facet("signal:N", title=None, sort=list(titles.values())), columns=3)
        .resolve_scale(y="independent")
        .properties(title=title)
    )


VERDICT_COLORS = dict(zip(VERDICTS, ("#59a14f", "#e15759", "#edc948", "#d3d3d3"), strict=True))
"""One colour per verdict (:data:`stages.stats.VERDICTS`), in that order."""


def verdict_figure(claims: pd.DataFrame, *, title: str) -> alt.Chart:
    """Every claim's verdict for every model: one cell per claim and model, coloured by verdict.

    Args:
        claims: :func:`stages.claims.all_claims` of several models, with a ``model`` column. The
            rows keep the table's order (grouped by page); the tooltip gives the statistic, its
            95% interval, n and the rule.
        title: the chart title.
    """
    data = claims.assign(
        label=claims["group"] + ": " + claims["claim"],
        interval=[f"{lo:.3g} to {hi:.3g}" if lo == lo else "" for lo, hi in
                  zip(claims["lo"], claims["hi"], strict=True)],
        n_units=[f"{n} {u}" for n, u in zip(claims["n"], claims["unit"], strict=True)],
    )  # fmt: skip
    order = list(dict.fromkeys(data["label"]))
    color = alt.Color(
        "verdict:N", title="verdict",
        scale=alt.Scale(domain=list(VERDICT_COLORS), range=list(VERDICT_COLORS.values())),
        legend=alt.Legend(orient="top"),
    )  # fmt: skip
    tooltip = ["model:N", "group:N", "claim:N", "verdict:N", "statistic:N",
               alt.Tooltip("value:Q", format=".3g"),
               alt.Tooltip("interval:N", title="95% interval"),
               alt.Tooltip("n_units:N", title="n"), "rule:N"]  # fmt: skip
    return (
        alt.Chart(data)
        .mark_rect(stroke="white", strokeWidth=1.5)
        .encode(
            x=alt.X("model:N", title=None, axis=alt.Axis(orient="top", labelAngle=0)),
            y=alt.Y("label:N", title=None, sort=order, axis=alt.Axis(labelLimit=520)),
            color=color,
            tooltip=tooltip,
        )
        .properties(width=90 * data["model"].nunique(), height=alt.Step(16), title=title)
    )
