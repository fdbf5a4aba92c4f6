"""Depth ranges (relative depth) and column access shared by the claims; layers are 0-based."""

from __future__ import annotations

import numpy as np
import pandas as pd

MIDDLE = (0.25, 0.75)
"""Middle layers: relative depth ``layer / (n_layers - 1)`` in this closed range."""
EARLY = 0.25
"""Early layers: relative depth at most this (the first quarter)."""
HALF = 0.5
LAST = 0.85
"""The last layers: relative depth at least this."""


def rel_depth(layer: int | np.ndarray, n_layers: int) -> float | np.ndarray:
    """``layer / (n_layers - 1)``: 0 for the first block, 1 for the last."""
    return layer / max(1, n_layers - 1)


def layers_where(n_layers: int, lo: float = 0.0, hi: float = 1.0) -> list[int]:
    """Layers whose relative depth lies in ``[lo, hi]``."""
    return [layer for layer in range(n_layers) if lo <= rel_depth(layer, n_layers) <= hi]


def stack(sums: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """``[len(columns), n_seq]`` float64: the per-sequence values of ``columns``."""
    return np.stack([sums[c].to_numpy(dtype=np.float64) for c in columns])


def scored(sums: pd.DataFrame) -> np.ndarray:
    """``[n_seq]`` float64: the positions a sweep scores per sequence, ``seq_len - 2``."""
    return (sums["seq_len"] - 2).to_numpy(dtype=np.float64)


def span(layers: list[int]) -> str:
    """``"layers 4-13"`` (or ``"layer 4"``)."""
    if len(layers) == 1:
        return f"layer {layers[0]}"
    return f"layers {layers[0]}-{layers[-1]}"
