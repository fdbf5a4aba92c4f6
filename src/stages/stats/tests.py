"""Exact tests for counts and paired binary outcomes: Clopper-Pearson, McNemar, Holm."""

from __future__ import annotations

import numpy as np
from scipy import stats as sps

from stages.stats.bootstrap import LEVEL


def clopper_pearson(k: int, n: int, level: float = LEVEL) -> tuple[float, float]:
    """Exact (Clopper-Pearson) interval of a proportion ``k / n`` (never of zero width)."""
    if n <= 0:
        return float("nan"), float("nan")
    ci = sps.binomtest(int(k), int(n)).proportion_ci(level, method="exact")
    return float(ci.low), float(ci.high)


def mcnemar(a: np.ndarray, b: np.ndarray) -> tuple[float, int, int]:
    """Exact McNemar test of two paired binary outcomes (the same units under two conditions).

    Args:
        a: ``[n]`` bool, each unit's outcome under one condition (e.g. a window answered right
            with an intervention).
        b: ``[n]`` bool, the same units under the other condition.

    Returns:
        ``(p, a_only, b_only)``: the two-sided exact p (a binomial test of the discordant pairs
        at 1/2; 1.0 when there are none), and how many units only ``a`` (only ``b``) got.
    """
    a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    a_only, b_only = int((a & ~b).sum()), int((~a & b).sum())
    if a_only + b_only == 0:
        return 1.0, 0, 0
    return float(sps.binomtest(a_only, a_only + b_only, 0.5).pvalue), a_only, b_only


def holm(pvalues: np.ndarray) -> np.ndarray:
    """Holm's step-down adjustment of ``[m]`` p-values (family-wise error, any dependence)."""
    p = np.asarray(pvalues, dtype=np.float64)
    order = np.argsort(p)
    m = len(p)
    adjusted = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out = np.empty(m)
    out[order] = np.minimum(adjusted, 1.0)
    return out
