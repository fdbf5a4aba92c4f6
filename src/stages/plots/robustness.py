"""Figures of the robustness section: the paper's Figure 3 and Figures 13-15."""

from __future__ import annotations

import altair as alt
import pandas as pd

from stages.engine.plans import FAMILIES
from stages.plots import METRIC_TITLES, depth_lines, family_colors, long_metrics, panel_width


def _three_metric_figure(table: pd.DataFrame, kinds: tuple[str, ...], title: str) -> alt.FacetChart:
    """KL, relative accuracy and entropy change against depth; one colour per intervention kind.

    One panel a row, each with its own y axis, on one depth axis as wide as the text column
    (:data:`stages.plots.COLUMN`).
    """
    data = long_metrics(table[table["kind"].isin(kinds)])
    colors = family_colors(*kinds)
    return (
        depth_lines(data, colors, panel_width(1), 130)
        .facet(row=alt.Row("metric:N", title=None, sort=list(METRIC_TITLES.values()),
                           header=alt.Header(labelAngle=0, labelOrient="top", labelAnchor="start",
                                             labelFontWeight="bold")))
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
    colors = family_colors("swap", "drop")
    return depth_lines(data, colors, panel_width(1), 220, depth=middle).properties(title=title)


def cloze_figure(table: pd.DataFrame, *, title: str) -> alt.LayerChart:
    """Cloze accuracy under every single-layer drop and swap, with the unperturbed model's.

    ``table``: :func:`stages.analyses.cloze.cloze_table` (accuracy with 95% bounds per plan).
    """
    rows = table[table["kind"].isin(["drop", "swap"])]
    data = rows[["kind", "layer", "layers", "rel_depth"]].assign(
        value=rows["accuracy"], lo=rows["accuracy_lo"], hi=rows["accuracy_hi"],
        intervention=rows["kind"].map(lambda kind: FAMILIES[kind].title),
    )  # fmt: skip
    base = table[table["kind"] == "none"].iloc[0]
    lines = depth_lines(
        data, family_colors("swap", "drop"), 480, 260, y_title="cloze accuracy (whole word)",
        y_scale=alt.Scale(domain=[0, max(0.05, float(data["hi"].max()), float(base.accuracy_hi))]),
    )  # fmt: skip
    rule = (
        alt.Chart(pd.DataFrame({"y": [base.accuracy]}))
        .mark_rule(strokeDash=[4, 3])
        .encode(y="y:Q", tooltip=[alt.Tooltip("y:Q", title="unperturbed", format=".3f")])
    )
    return alt.layer(lines, rule).properties(title=title)
