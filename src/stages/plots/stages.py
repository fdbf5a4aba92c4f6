"""Figures of the four stages: attention, norms, the logit lens, neuron classes, boundaries."""

from __future__ import annotations

import altair as alt
import pandas as pd

from stages.plots import DEPTH_TITLE, layer_panel, panel_width, side_by_side


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
        mean = layer_panel(layers, {column: "mean over heads"}, ["#1f78b4"], y_title=y_title,
                           width=panel_width(2))
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
    return side_by_side(panels, title)


def norms_figure(table: pd.DataFrame, *, title: str) -> alt.HConcatChart:
    """Figures 5 and 7: attention and MLP output norms per layer, and their ratio."""
    norms = layer_panel(
        table,
        {"attn_norm": "attention output", "mlp_norm": "MLP output"},
        ["#e6550d", "#31a354"],
        y_title="mean L2 norm added to the residual",
        width=panel_width(2),
    )
    ratio = layer_panel(table, {"ratio": "|Attn| / |MLP|"}, ["#756bb1"], y_title="|Attn| / |MLP|",
                        width=panel_width(2))
    one = alt.Chart(pd.DataFrame({"y": [1.0]})).mark_rule(strokeDash=[4, 4]).encode(y="y:Q")
    return side_by_side([norms, alt.layer(ratio, one)], title)


def lens_figure(
    table: pd.DataFrame, *, title: str, depth: tuple[float, float] = (0.0, 1.0)
) -> alt.ConcatChart:
    """Figures 6 and 8: the logit lens' KL to the final distribution, agreement and entropy.

    Three panels, two a row (each with its own y axis), so the figure fits
    :data:`stages.plots.COLUMN`.
    """
    rows = table[table["rel_depth"].between(*depth)]
    kw = {"width": panel_width(2), "height": 200, "depth": depth}
    kl = layer_panel(
        rows, {"kl_to_final": "KL(final ‖ layer)"}, ["#1f78b4"], y_title="KL(final ‖ layer), nats",
        y_scale=alt.Scale(type="symlog"), **kw,
    )  # fmt: skip
    agree = layer_panel(
        rows, {"top1_agreement": "top-1 agreement"}, ["#33a02c"],
        y_title="top-1 agreement with final", **kw,
    )  # fmt: skip
    entropy = layer_panel(
        rows, {"entropy": "logit-lens entropy"}, ["#e31a1c"], y_title="entropy, bits", **kw
    )
    final = alt.Chart(rows.head(1)).mark_rule(strokeDash=[4, 4]).encode(y="final_entropy:Q")
    return (
        alt.concat(kl, agree, alt.layer(entropy, final), columns=2)
        .resolve_scale(color="independent")
        .resolve_legend(color="independent")
        .properties(title=title)
    )


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
        .properties(width=panel_width(1), height=220, title=title)
    )


def ensembling_figure(
    counts: pd.DataFrame, lens: pd.DataFrame, *, title: str
) -> alt.VConcatChart:
    """The paper's Figure 6: neuron fractions per layer above the logit lens' KL to the final.

    The paper draws both on one plot with two y axes; here they are two panels on one
    relative-depth axis, the neurons above (:func:`neuron_counts_figure`), the KL from the final
    distribution to the logit lens of each layer below (symlog axis, 95% bands).

    Args:
        counts: :func:`stages.analyses.neurons.class_counts`.
        lens: :func:`stages.analyses.lens.lens_table`.
        title: the chart title.
    """
    neurons = neuron_counts_figure(counts, title="").properties(height=180, title="")
    kl = layer_panel(
        lens, {"kl_to_final": "KL(final ‖ layer)"}, ["#1f78b4"], y_title="KL(final ‖ layer), nats",
        y_scale=alt.Scale(type="symlog"), width=panel_width(1), height=180,
    )  # fmt: skip
    return (
        alt.vconcat(neurons, kl, spacing=12)
        .resolve_scale(color="independent")
        .resolve_legend(color="independent")
        .properties(title=title)
    )


def overview_figure(
    signals: pd.DataFrame, titles: dict[str, str], boundaries: pd.DataFrame, *, title: str
) -> alt.LayerChart:
    """Figure 1: the stage signals on one relative-depth axis, with the fitted boundaries.

    Args:
        signals: one row per layer with ``layer``, ``rel_depth`` and the columns of ``titles``;
            each is drawn scaled to 0..1 by its own min and max (the tooltip shows the value).
        titles: column to legend title.
        boundaries: a :func:`stages.analyses.boundaries.stage_boundaries` table: a dashed rule at
            each fitted boundary (joint MAP), a grey band over its central credible interval
            (``rel_depth_lo`` to ``rel_depth_hi``).
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
                alt.Tooltip("probability:Q", format=".0%", title="posterior probability here"),
                alt.Tooltip("layer_lo:Q", title="credible interval from layer"),
                alt.Tooltip("layer_hi:Q", title="credible interval to layer"),
            ],
        )
    )
    return alt.layer(band, rules, lines).properties(width=panel_width(1), height=280, title=title)
