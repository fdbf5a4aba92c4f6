"""Altair charts of the book's tables, labelled with the paper's figure numbers and units.

This module holds the style and the shared pieces; the figures are in :mod:`.robustness`,
:mod:`.stages`, :mod:`.case_studies` and :mod:`.book`.

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

FONT = "Helvetica Neue, Helvetica, Arial, sans-serif"

COLUMN = 680
"""The widest a chart may be, in pixels, axes, titles and legends included: the text column of
a book page in a 1280-pixel window (688 px; narrower screens scale the chart down, see
``_static/stages.css``)."""

Y_AXIS = 75
"""Room a panel's y axis (labels and title) takes beside its plot area, in pixels."""

GAP = 20
"""Space between panels side by side, in pixels."""

MIN_FONT = 11
"""The smallest text a chart draws, in pixels."""


def panel_width(columns: int = 1, *, axes: int | None = None) -> int:
    """The plot-area width of each of ``columns`` panels in a row that fits :data:`COLUMN`.

    Args:
        columns: panels side by side (a facet's ``columns``, or an ``hconcat``'s panels).
        axes: how many of them draw a y axis (default: every one, as with independent scales).
    """
    axes = columns if axes is None else axes
    return int((COLUMN - axes * Y_AXIS - (columns - 1) * GAP) / columns)

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
                       "titleFontSize": 12, "symbolStrokeWidth": 2, "orient": "bottom",
                       "labelLimit": 300},  # fmt: skip
            "text": {"fontSize": MIN_FONT},
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
    # SVG, not canvas: crisp at any zoom and in print, and its text can be measured by the tests
    alt.renderers.set_embed_options(renderer="svg")


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


def depth_lines(
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


def family_colors(*kinds: str) -> dict[str, str]:
    """``{title: colour}`` of intervention families (:data:`stages.FAMILIES`), in order."""
    return {FAMILIES[kind].title: FAMILIES[kind].color for kind in kinds}


def long_layers(table: pd.DataFrame, columns: dict[str, str]) -> pd.DataFrame:
    """Reshape a per-layer table to one row per (layer, column) for :func:`depth_lines`.

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


def layer_panel(
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
    """One panel of per-layer lines (``columns``: column -> series title) in ``colors``."""
    data = long_layers(table, columns)
    palette = dict(zip(columns.values(), colors, strict=False))
    return depth_lines(
        data, palette, width, height, series="series", label="layer", y_title=y_title,
        y_scale=y_scale, depth=depth,
    )  # fmt: skip


def side_by_side(panels: list[alt.TopLevelMixin], title: str) -> alt.HConcatChart:
    """Panels in a row, each with its own colours and legend."""
    return (
        alt.hconcat(*panels)
        .resolve_scale(color="independent")
        .resolve_legend(color="independent")
        .properties(title=title)
    )
