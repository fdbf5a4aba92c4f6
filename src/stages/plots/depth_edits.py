"""Figures beyond single layers: block deletion, reorderings of a span, and duplication."""

from __future__ import annotations

import altair as alt
import pandas as pd

from stages.plots import (
    METRIC_TITLES,
    depth_lines,
    family_colors,
    long_metrics,
    panel_width,
    side_by_side,
)


def block_heatmap(table: pd.DataFrame, *, title: str) -> alt.VConcatChart:
    """Two triangles (start x length) from :func:`stages.analyses.blocks.block_table`.

    KL (nats, log colour scale) above, the share of top-1 predictions kept below, one cell per
    deleted block, each panel the width of the text column (a model of 30 layers has 30
    columns of cells); the tooltip gives each value with its 95% interval.
    """

    def panel(metric: str, scale: alt.Scale) -> alt.Chart:
        return (
            alt.Chart(table)
            .mark_rect()
            .encode(
                x=alt.X("start:O", title="first deleted layer",
                        axis=alt.Axis(labelAngle=0, labelOverlap="parity")),
                y=alt.Y("length:O", title="layers deleted", sort="descending"),
                color=alt.Color(
                    f"{metric}:Q",
                    title=METRIC_TITLES[metric],
                    scale=scale,
                    legend=alt.Legend(orient="bottom", gradientLength=220, titleLimit=300),
                ),  # fmt: skip
                tooltip=[
                    alt.Tooltip("layers:N", title="deleted"),
                    alt.Tooltip(f"{metric}:Q", format=".3f"),
                    alt.Tooltip(f"{metric}_lo:Q", format=".3f", title="95% CI low"),
                    alt.Tooltip(f"{metric}_hi:Q", format=".3f", title="95% CI high"),
                ],
            )
            .properties(width=panel_width(1), height=170)
        )

    return (
        alt.vconcat(
            panel("kl", alt.Scale(type="log", scheme="reds")),
            panel("rel_acc", alt.Scale(domain=[0, 1], scheme="blues")),
            spacing=24,
        )
        .resolve_scale(color="independent")
        .resolve_legend(color="independent")
        .properties(title=title)
    )


REORDER_KINDS = ("drop_range", "reverse", "shuffle", "repeat", "parallel")


def reorder_figure(table: pd.DataFrame, *, title: str) -> alt.LayerChart:
    """KL of each way of changing a span against the depth of its centre (log scale).

    One colour per family (:data:`stages.FAMILIES`), with 95% bands; the shuffles are drawn as
    the mean of their orders, without a band (a mean of intervals is not an interval; each
    order's KL and interval are in the table).
    """
    rows = table[table["kind"].isin(REORDER_KINDS)].copy()
    rows["rel_depth"] = rows["mid_depth"]
    means = (
        rows.groupby(["kind", "layers", "rel_depth"], as_index=False)[["kl", "kl_lo", "kl_hi"]]
        .mean()
        .assign(layer=lambda d: d["layers"].str.split("-").str[0].astype(int))
    )
    shuffled = means["kind"] == "shuffle"
    means.loc[shuffled, "kl_lo"] = means.loc[shuffled, "kl_hi"] = means.loc[shuffled, "kl"]
    data = long_metrics(means, ("kl",))
    kinds = [k for k in REORDER_KINDS if k in set(rows["kind"])]
    return depth_lines(
        data, family_colors(*kinds), panel_width(1), 260, y_title=METRIC_TITLES["kl"] + " (log)",
        y_scale=alt.Scale(type="log"),
    ).properties(title=title)  # fmt: skip


def duplication_figure(table: pd.DataFrame, *, title: str) -> alt.HConcatChart:
    """KL and entropy change against the number of runs of each layer, one line per range."""
    data = table.assign(range=lambda d: "layers " + d["layers"]).copy()
    base = alt.Chart(data).encode(
        x=alt.X("times:O", title="runs of each layer (n)", axis=alt.Axis(labelAngle=0)),
        color=alt.Color("range:N", title=None, legend=alt.Legend(orient="top")),
    )

    def panel(metric: str) -> alt.LayerChart:
        y = alt.Y(f"{metric}:Q", title=METRIC_TITLES[metric])
        line = base.mark_line(point=True).encode(
            y=y,
            tooltip=[
                "range:N", "times:O", alt.Tooltip(f"{metric}:Q", format=".3f"),
                alt.Tooltip(f"{metric}_lo:Q", format=".3f", title="95% CI low"),
                alt.Tooltip(f"{metric}_hi:Q", format=".3f", title="95% CI high"),
            ],
        )  # fmt: skip
        bars = base.mark_errorbar().encode(  # the same title: a layer's axis shows both
            y=alt.Y(f"{metric}_lo:Q", title=METRIC_TITLES[metric]), y2=f"{metric}_hi:Q"
        )
        return alt.layer(bars, line).properties(width=panel_width(2), height=220)

    return side_by_side([panel("kl"), panel("entropy_delta")], title)
