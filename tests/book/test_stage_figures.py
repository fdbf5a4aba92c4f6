"""The robustness and stage figures fit the book's text column, in fonts no smaller than 11 px."""

from __future__ import annotations

import re

import altair as alt
import numpy as np
import pandas as pd
import pytest

from stages.plots import COLUMN, MIN_FONT, use_book_style
from stages.plots.robustness import component_figure, robustness_figure, swap_vs_drop_zoom
from stages.plots.schematics import intervention_schematic, similarity_schematic
from stages.plots.stages import (
    ensembling_figure,
    lens_figure,
    locality_figure,
    neuron_counts_figure,
    norms_figure,
    overview_figure,
)

N_LAYERS = 18
NAME = "gemma-3-270m"


def _layers() -> pd.DataFrame:
    return pd.DataFrame(
        {"layer": range(N_LAYERS), "rel_depth": np.arange(N_LAYERS) / (N_LAYERS - 1)}
    )


def _with_bounds(frame: pd.DataFrame, columns: list[str], rng: np.random.Generator) -> pd.DataFrame:
    for c in columns:
        frame[c] = rng.random(len(frame))
        frame[f"{c}_lo"], frame[f"{c}_hi"] = frame[c] - 0.1, frame[c] + 0.1
    return frame


def _figures() -> dict[str, alt.TopLevelMixin]:
    rng = np.random.default_rng(0)
    rows = [{"kind": "none", "layer": -1, "layers": "", "rel_depth": np.nan}]
    for kind in ("drop", "swap", "drop_attn", "drop_mlp"):
        for layer in range(N_LAYERS - (kind == "swap")):
            label = f"{layer}-{layer + 1}" if kind == "swap" else f"{layer}"
            rows.append({"kind": kind, "layer": layer, "layers": label,
                         "rel_depth": layer / (N_LAYERS - 1)})  # fmt: skip
    sweep = _with_bounds(pd.DataFrame(rows), ["kl", "rel_acc", "entropy_delta", "loss"], rng)
    heads = pd.concat([_layers().assign(head=h) for h in (-1, 0, 1)], ignore_index=True)
    locality = _with_bounds(heads, ["attn_prev5", "prev_sum_nobos"], rng)
    norms = _with_bounds(_layers(), ["attn_norm", "mlp_norm", "ratio"], rng)
    lens = _with_bounds(_layers(), ["kl_to_final", "top1_agreement", "entropy"], rng)
    lens["final_entropy"] = 3.0
    counts = _layers()[["layer"]].assign(
        d_mlp=2048, prediction_frac=rng.random(N_LAYERS) / 50,
        suppression_frac=rng.random(N_LAYERS) / 50,
    )  # fmt: skip
    titles = {"log_drop_kl": "drop-layer KL (log)", "prev_attention": "attention to previous 5",
              "prediction_frac": "prediction neurons", "suppression_frac": "suppression neurons"}
    signals = _layers().assign(**{name: rng.random(N_LAYERS) for name in titles})
    fitted = pd.DataFrame({"boundary": [1, 2, 3], "layer": [3, 9, 15], "probability": [0.8] * 3,
                           "layer_lo": [2, 8, 14], "layer_hi": [4, 10, 16]})  # fmt: skip
    for column in ("layer", "layer_lo", "layer_hi"):
        fitted[column.replace("layer", "rel_depth")] = fitted[column] / (N_LAYERS - 1)
    model = f"({NAME})"
    return {
        "Figure 3": robustness_figure(
            sweep, title=f"Figure 3 {model}: swap vs drop of single layers"),
        "Figure 3, zoom": swap_vs_drop_zoom(sweep, (0.25, 0.75), title=f"Figure 3, zoom {model}"),
        "Figures 13-15": component_figure(
            sweep, title=f"Figures 13-15 {model}: dropping only the attention or only the MLP"),
        "Figure 4": locality_figure(
            locality, title=f"Figure 4 {model}: attention to the previous 5 tokens"),
        "Figures 5 and 7": norms_figure(
            norms, title=f"Figures 5 and 7 {model}: what attention and MLP write, per layer"),
        "logit lens": lens_figure(lens, title=f"Figure 8 {model}: logit lens", depth=(0.5, 1.0)),
        "neuron counts": neuron_counts_figure(counts, title=f"neurons {model}"),
        "Figure 6": ensembling_figure(counts, lens, title=f"Figure 6 {model}: prediction neurons"),
        "Figure 1": overview_figure(signals, titles, fitted, title=f"Figure 1 {model}: stages"),
    }  # fmt: skip


@pytest.mark.parametrize("name", list(_figures()))
def test_the_figure_fits_the_column(name):
    import vl_convert as vlc

    use_book_style()
    chart = _figures()[name]
    version = ".".join(alt.VEGALITE_VERSION.split(".")[:2])
    svg = vlc.vegalite_to_svg(chart.to_dict(), vl_version=version)
    width = float(re.search(r'<svg[^>]* width="([\d.]+)"', svg).group(1))
    assert width <= COLUMN, f"{name} is {width:.0f} px wide"
    fonts = [float(size) for size in re.findall(r'font-size="([\d.]+)px"', svg)]
    assert fonts and min(fonts) >= MIN_FONT, (name, sorted(set(fonts)))


def test_the_schematics_fit_the_column():
    for schematic in (intervention_schematic(), similarity_schematic()):
        width = float(re.search(r'viewBox="0 0 ([\d.]+) ', schematic.svg).group(1))
        assert width <= COLUMN, schematic.title
        sizes = [float(s) for s in re.findall(r'font-size="([\d.]+)"', schematic.svg)]
        assert min(sizes) >= MIN_FONT, schematic.title
