"""The paper's per-layer signals of one model, for comparing models on one relative-depth axis.

The paper compares Pythia, GPT-2 and Phi models by plotting each on relative depth
``layer / (n_layers - 1)``. A :class:`Sample` holds one model's per-sequence sums;
:func:`model_signals` gives its curves with 95% bootstrap intervals;
:func:`stages.results.cross_model.compare_models` opens several models in turn and
:mod:`stages.claims.cross_model` decides whether their shapes agree.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from stages import stats
from stages.analyses.signals import CURVES, curve


@dataclass(frozen=True)
class Sample:
    """One model's per-sequence sums (``frames``: sweep, attention, norms, lens) and classes."""

    name: str
    frames: Mapping[str, pd.DataFrame]
    classes: pd.DataFrame
    n_layers: int

    @property
    def n_seq(self) -> int:
        """Sequences of the sample."""
        return len(self.frames["sweep"])


SIGNALS: dict[str, str] = {
    name: CURVES[name]
    for name in (
        "drop_rel_acc", "swap_rel_acc", "prev_attention", "norm_ratio", "lens_kl",
        "prediction_frac",
    )
}  # fmt: skip
"""The signals drawn, and their titles."""


def model_signals(sample: Sample, *, seed: int = 0) -> pd.DataFrame:
    """One model's curves: ``signal``, ``layer``, ``rel_depth``, ``value``, ``lo``, ``hi``.

    Drops and swaps (relative accuracy; a swap at its first layer), previous-5 attention (mean
    over heads), the attention / MLP output-norm ratio, the logit lens's KL to the final
    distribution and the fraction of prediction neurons (weights only: no interval), each from
    the sample's per-sequence sums (:func:`stages.analyses.signals.curve`).
    """
    parts = []
    for signal in SIGNALS:
        estimate, dist = curve(sample.frames, sample.classes, sample.n_layers, signal, seed=seed)
        lo, hi = stats.percentile(dist)
        parts.append(pd.DataFrame({"signal": signal, "layer": np.arange(len(estimate)),
                                   "value": estimate, "lo": lo, "hi": hi}))  # fmt: skip
    out = pd.concat(parts, ignore_index=True)
    out["rel_depth"] = out["layer"] / max(1, sample.n_layers - 1)
    return out[["signal", "layer", "rel_depth", "value", "lo", "hi"]]
