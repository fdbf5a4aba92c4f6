"""Figures of the robustness section: the paper's Figure 3 and Figures 13-15."""

from __future__ import annotations

import altair as alt
import pandas as pd

from stages.plots import METRIC_TITLES, depth_lines, family_colors, long_metrics


def _three_metric_figure(table: pd.DataFrame, kinds: tuple[str, ...], title: str) -> alt.FacetChart:
    """KL, relative accuracy and entropy change against depth; one colour per intervention kind."""
    data = long_metrics(table[table["kind"].isin(kinds)])
    colors = family_colors(*kinds)
    return (
        depth_lines(data, colors, 170, 170)
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
    return depth_lines(data, family_colors("swap", "drop"), 400, 220, depth=middle).properties(
        title=title
    )
