"""Figures of layer similarity (CKA, Block Influence, angular distance) and skip effects."""

from __future__ import annotations

import altair as alt
import pandas as pd

from stages.plots import layer_panel, panel_width, side_by_side


def _heatmap(
    data: pd.DataFrame, x: str, y: str, value: str, *, x_title: str, y_title: str,
    color_title: str, scale: alt.Scale, width: int = 300,
) -> alt.Chart:  # fmt: skip
    """Cells ``(x, y)`` coloured by ``value``, the 95% interval in the tooltip."""
    return (
        alt.Chart(data)
        .mark_rect()
        .encode(
            x=alt.X(f"{x}:O", title=x_title, axis=alt.Axis(labelAngle=0, labelOverlap="parity")),
            y=alt.Y(f"{y}:O", title=y_title, sort="descending",
                    axis=alt.Axis(labelOverlap="parity")),
            color=alt.Color(
                f"{value}:Q", title=color_title, scale=scale,
                legend=alt.Legend(orient="bottom", gradientLength=min(width - 20, 220),
                                  titleLimit=width + 60),
            ),  # fmt: skip
            tooltip=[
                alt.Tooltip(f"{x}:O"), alt.Tooltip(f"{y}:O"),
                alt.Tooltip(f"{value}:Q", format=".3f"),
                alt.Tooltip(f"{value}_lo:Q", format=".3f", title="95% CI low"),
                alt.Tooltip(f"{value}_hi:Q", format=".3f", title="95% CI high"),
            ],  # fmt: skip
        )
        .properties(width=width, height=width)
    )


def cka_figure(cka: pd.DataFrame, *, title: str) -> alt.Chart:
    """Linear CKA between the residual points ``h_a`` and ``h_b`` (:func:`cka_table`)."""
    return _heatmap(
        cka, "a", "b", "cka", x_title="residual point a (h_a enters block a)",
        y_title="residual point b", color_title="linear CKA (unbiased HSIC)",
        scale=alt.Scale(domain=[0, 1], scheme="viridis"), width=340,
    ).properties(title=title)  # fmt: skip


def scores_figure(scores: pd.DataFrame, drop: pd.DataFrame, *, title: str) -> alt.HConcatChart:
    """Block Influence and angular distance per layer, beside the KL of dropping each layer.

    ``scores``: :func:`stages.analyses.similarity.layer_scores`; ``drop``: the drop rows of a
    sweep table (``layer``, ``rel_depth``, ``kl`` with bounds).
    """
    one_pass = layer_panel(
        scores, {"block_influence": "Block Influence 1 − cos", "angular": "angular distance / π"},
        ["#1f78b4", "#b15928"], y_title="score (one unperturbed pass)",
        y_scale=alt.Scale(type="log"), width=panel_width(2),
    )  # fmt: skip
    kl = layer_panel(
        drop, {"kl": "drop layer"}, ["#525252"], y_title="KL of dropping the layer (nats, log)",
        y_scale=alt.Scale(type="log"), width=panel_width(2),
    )  # fmt: skip
    return side_by_side([one_pass, kl], title)


def skip_figure(table: pd.DataFrame, *, title: str) -> alt.HConcatChart:
    """Relative change of layer j's attention and MLP output when layer i is dropped (i x j)."""
    panels = [
        _heatmap(
            table[table["component"] == component], "layer", "dropped", "rel_change",
            x_title=f"later layer j ({name} output)", y_title="dropped layer i",
            color_title="relative change ‖out′ − out‖ / ‖out‖",
            scale=alt.Scale(type="log", scheme="magma", reverse=True), width=panel_width(2),
        )  # fmt: skip
        for component, name in (("attn", "attention"), ("mlp", "MLP"))
    ]
    return side_by_side(panels, title)


def regime_figure(summary: pd.DataFrame, *, title: str) -> alt.LayerChart:
    """Per dropped layer, the mean relative change of the next three and of all later layers."""
    table = summary.rename(columns={"dropped": "layer"})
    return layer_panel(
        table, {"next_rel_change": "next 3 layers", "later_rel_change": "all later layers"},
        ["#e6550d", "#6a3d9a"], y_title="mean relative change of later outputs",
        width=panel_width(1),
    ).properties(title=title)  # fmt: skip
