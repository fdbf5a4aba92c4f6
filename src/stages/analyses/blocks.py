"""Contiguous-block deletion (Gromov et al. 2024): how long a run of layers can a model lose?

Every block of ``length`` consecutive layers ``start..start+length-1`` is skipped
(:func:`stages.engine.plans.drop_range`: ``resid_pre[start + length]`` becomes
``resid_pre[start]``), for every ``start`` and every ``length`` from 1 to half the depth
(``floor(L / 2)``), and compared with the unperturbed model by the sweep's metrics
(:mod:`stages.engine.sweep`: KL in nats, the share of top-1 predictions kept, entropy change in
bits, loss), at every scored position ``1..seq_len-2``. Length 1 is the single-layer drop, measured
again here so that the triangle (start x length) is one table.

Gromov et al. choose the block to delete by the angular distance between its input and output
residuals (:mod:`stages.analyses.similarity`); here every block is measured, so the best block of
each length is known directly. There are ``sum over n = 1..L/2 of (L - n + 1)`` plans: 126 for an
18-layer model, 345 for a 30-layer one.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from stages import stats
from stages.engine.analysis import analysis
from stages.engine.plans import Plan, drop_range
from stages.engine.sweep import plan_sums, sweep_table

KIND = "drop_range"


def block_plans(n_layers: int, max_length: int | None = None) -> list[Plan]:
    """Every contiguous block of ``1..max_length`` layers (default ``n_layers // 2``), by start."""
    top = n_layers // 2 if max_length is None else max_length
    if not 1 <= top <= n_layers:
        raise ValueError(f"max_length must lie in 1..{n_layers}, got {top}")
    return [
        drop_range(start, start + length)
        for start in range(n_layers)
        for length in range(1, top + 1)
        if start + length <= n_layers
    ]



block_sums = plan_sums('block_sums', block_plans, '``"drop_range <a>[-<b>]:<metric>"``')


def block_table(
    sums: pd.DataFrame, n_layers: int, *, n_boot: int = stats.N_BOOT, seed: int = 0
) -> pd.DataFrame:
    """One row per deleted block, with 95% bootstrap intervals over sequences.

    Returns:
        The :func:`stages.engine.sweep.sweep_table` rows of the blocks, plus ``start``,
        ``length`` (layers deleted) and ``rel_length`` (``length / n_layers``).
    """
    table = sweep_table(sums, n_layers=n_layers, n_boot=n_boot, seed=seed)
    rows = table[table.kind == KIND].copy()
    last = rows["layers"].str.split("-").str[-1].astype(int)
    rows["start"] = rows["layer"].astype(int)
    rows["length"] = last - rows["start"] + 1
    rows["rel_length"] = rows["length"] / n_layers
    return rows.reset_index(drop=True)


def _blocks(sums: pd.DataFrame) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Labels of the blocks in ``sums``, and their starts and lengths."""
    labels = [c.split(":")[0] for c in sums.columns if c.startswith(KIND) and c.endswith(":kl")]
    spans = [[int(x) for x in label.split(" ")[1].split("-")] for label in labels]
    starts = np.array([s[0] for s in spans])
    lengths = np.array([s[-1] - s[0] + 1 for s in spans])
    return labels, starts, lengths


def longest_kept(
    sums: pd.DataFrame, share: float, *, n_boot: int = stats.N_BOOT, seed: int = 0
) -> tuple[float, float, float, pd.DataFrame]:
    """The longest block whose best placement keeps ``share`` of top-1 predictions.

    For each length, the best block is the one that keeps the most top-1 predictions; the
    statistic is the largest length whose best block keeps at least ``share`` (0 when none
    does). It is recomputed on every bootstrap resample of sequences (the best start may differ
    between resamples), which gives its 95% percentile interval.

    Returns:
        ``(length, lo, hi, best)``: the statistic (layers), its interval, and ``best``, one row
        per length: ``length``, ``start`` (of the best block), ``rel_acc`` (its share kept).
    """
    labels, starts, lengths = _blocks(sums)
    values = np.stack([sums[f"{label}:rel_acc"].to_numpy(np.float64) for label in labels])
    counts = (sums["seq_len"] - 2).to_numpy(np.float64)
    sizes = np.unique(lengths)

    def best_per_length(m: np.ndarray) -> np.ndarray:
        return np.stack([m[lengths == n].max(axis=0) for n in sizes])

    def statistic(m: np.ndarray) -> np.ndarray:
        keeps = best_per_length(m) >= share  # [n_lengths, ...]
        length = np.where(keeps, sizes.reshape(-1, *([1] * (keeps.ndim - 1))), 0).max(axis=0)
        return length.astype(np.float64)

    estimate, lo, hi = stats.interval(values, counts, statistic, n_boot=n_boot, seed=seed)
    means = stats.means(values, counts)
    best = pd.DataFrame(
        [
            {"length": int(n), "start": int(starts[lengths == n][i]), "rel_acc": float(m[i])}
            for n in sizes
            for m in [means[lengths == n]]
            for i in [int(np.argmax(m))]
        ]
    )
    return float(estimate), float(lo), float(hi), best


block_deletion = analysis(
    'block_deletion', block_sums, block_table,
    'Every contiguous block of up to half the depth deleted, one row each.',
)
