"""Altair charts of the book's tables, labelled with the paper's figure numbers and units.

Charts use Altair's default renderer; the book ships one offline Vega bundle
(:func:`stages.book.write_vega_bundle`) so they display with no network.
"""

from __future__ import annotations

import altair as alt
import pandas as pd

METRIC_TITLES = {
    "kl": "KL(baseline ‖ intervened), nats",
    "rel_acc": "relative accuracy (top-1 kept)",
    "entropy_delta": "entropy change, bits",
    "loss": "loss, nats",
}
KIND_TITLES = {
    "drop": "drop layer",
    "swap": "swap layers i, i+1",
    "drop_attn": "drop attention only",
    "drop_mlp": "drop MLP only",
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
    out["intervention"] = out["kind"].map(KIND_TITLES)
    return out


def _metric_panel(
    data: pd.DataFrame,
    colors: dict[str, str],
    width: int,
    height: int,
    depth: tuple[float, float] = (0.0, 1.0),
) -> alt.LayerChart:
    x = alt.X(
        "rel_depth:Q",
        title="relative depth (layer / (n_layers − 1))",
        scale=alt.Scale(domain=list(depth)),
    )
    scale = alt.Scale(domain=list(colors), range=list(colors.values()))
    color = alt.Color("intervention:N", title=None, scale=scale, legend=alt.Legend(orient="top"))
    tooltip = [
        alt.Tooltip("intervention:N"),
        alt.Tooltip("layers:N", title="layer(s)"),
        alt.Tooltip("value:Q", format=".3f"),
        alt.Tooltip("lo:Q", format=".3f", title="95% CI low"),
        alt.Tooltip("hi:Q", format=".3f", title="95% CI high"),
    ]
    base = alt.Chart(data).encode(x=x)
    band = base.mark_area(opacity=0.2).encode(
        y=alt.Y("lo:Q", title=None),
        y2="hi:Q",
        color=alt.Color("intervention:N", scale=scale, legend=None),
    )
    line = base.mark_line(point=True).encode(
        y=alt.Y("value:Q", title=None), color=color, tooltip=tooltip
    )
    return alt.layer(band, line).properties(width=width, height=height)


def _three_metric_figure(table: pd.DataFrame, colors: dict[str, str], title: str) -> alt.FacetChart:
    """KL, relative accuracy and entropy change against depth; one colour per intervention kind."""
    kinds = {kind for kind, label in KIND_TITLES.items() if label in colors}
    data = long_metrics(table[table["kind"].isin(kinds)])
    return (
        _metric_panel(data, colors, 170, 170)
        .facet(column=alt.Column("metric:N", title=None, sort=list(METRIC_TITLES.values())))
        .resolve_scale(y="independent")
        .properties(title=title)
    )


def robustness_figure(table: pd.DataFrame, *, title: str) -> alt.FacetChart:
    """The paper's Figure 3: KL, relative accuracy and entropy change against relative depth.

    Swap and drop side by side (one colour each), one panel per metric, with shaded 95%
    bootstrap intervals over sequences.
    """
    colors = {KIND_TITLES["swap"]: "#6a3d9a", KIND_TITLES["drop"]: "#1f78b4"}
    return _three_metric_figure(table, colors, title)


def component_figure(table: pd.DataFrame, *, title: str) -> alt.FacetChart:
    """The paper's Figures 13-15: attention-only and MLP-only drops, same three metrics."""
    colors = {KIND_TITLES["drop_attn"]: "#e6550d", KIND_TITLES["drop_mlp"]: "#31a354"}
    return _three_metric_figure(table, colors, title)


def swap_vs_drop_zoom(
    table: pd.DataFrame, middle: tuple[float, float], *, title: str
) -> alt.LayerChart:
    """Figure 3's zoom: KL of swaps and drops over the middle layers only."""
    rows = table[table["kind"].isin(["drop", "swap"]) & table["rel_depth"].between(*middle)]
    data = long_metrics(rows, ("kl",))
    colors = {KIND_TITLES["swap"]: "#6a3d9a", KIND_TITLES["drop"]: "#1f78b4"}
    return _metric_panel(data, colors, 400, 220, depth=middle).properties(title=title)
