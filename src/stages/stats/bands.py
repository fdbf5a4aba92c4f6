"""Claims about every item, or about where a curve peaks, decided item by item from sup-t bands.

- :func:`gap`: "the largest of one group minus the largest of another" with an interval from a
  sup-t band over every pairwise difference (not a percentile bootstrap of a maximum, which is
  biased upward and decided by whichever item happens to be largest);
- :func:`lowest` / :func:`highest`: the least (greatest) of ``k`` quantities with the bounds a
  simultaneous band gives it, so a claim about *every* layer is decided layer by layer.
"""

from __future__ import annotations

import numpy as np

from stages.stats.bootstrap import LEVEL, simultaneous


def _pairwise_band(
    estimate: np.ndarray, distribution: np.ndarray, first: list[int], second: list[int],
    level: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """``[len(first), len(second)]`` differences ``v[a] - v[b]`` with their simultaneous band."""
    a, b = np.asarray(first), np.asarray(second)
    diff = estimate[a][:, None] - estimate[b][None, :]
    dist = distribution[a][:, None, :] - distribution[b][None, :, :]
    lo, hi = simultaneous(diff.reshape(-1), dist.reshape(-1, dist.shape[-1]), level)
    return diff, lo.reshape(diff.shape), hi.reshape(diff.shape)


def gap(
    estimate: np.ndarray, distribution: np.ndarray, first: list[int], second: list[int], *,
    level: float = LEVEL,
) -> tuple[float, float, float]:  # fmt: skip
    """The largest of ``first`` minus the largest of ``second``, with a simultaneous interval.

    For per-item values ``v`` (layers, usually), the gap ``max_{a in first} v_a - max_{b in
    second} v_b`` equals ``max_a min_b (v_a - v_b)``. A sup-t band (:func:`simultaneous`) over
    every pairwise difference ``v_a - v_b`` holds for all pairs at once with ``level``; then the
    gap lies between ``max_a min_b lo_ab`` and ``max_a min_b hi_ab``. So the gap is above 0 only
    when some item of ``first`` is above *every* item of ``second`` (layer by layer), and below
    0 only when every item of ``first`` is below some item of ``second``. (A percentile bootstrap
    of a maximum is biased upward and is decided by whichever item happens to be largest.)

    Args:
        estimate: ``[k]`` per-item values.
        distribution: ``[k, n_boot]`` their paired bootstrap distribution (:func:`bootstrap`).
        first: item indices of the group whose largest is taken first.
        second: item indices of the other group (disjoint from ``first``).
        level: joint coverage of the pairwise band.

    Returns:
        ``(gap, lo, hi)``.
    """
    diff, lo, hi = _pairwise_band(estimate, distribution, first, second, level)
    return float(diff.min(1).max()), float(lo.min(1).max()), float(hi.min(1).max())


def lowest(
    estimate: np.ndarray, distribution: np.ndarray, *, level: float = LEVEL
) -> tuple[float, float, float, np.ndarray, np.ndarray]:
    """The least of ``k`` quantities, with the bounds a simultaneous band gives it.

    Under the band (:func:`simultaneous`) every quantity lies in its interval at once, so the
    least lies in ``[min lo, min hi]``: above a threshold only when *every* quantity is, below
    it when *some* quantity is. This is how a claim about every layer is decided layer by layer.

    Returns:
        ``(least, lo, hi, band_lo, band_hi)``: the last two are the per-quantity band ``[k]``.
    """
    lo, hi = simultaneous(estimate, distribution, level)
    return float(estimate.min()), float(lo.min()), float(hi.min()), lo, hi


def highest(
    estimate: np.ndarray, distribution: np.ndarray, *, level: float = LEVEL
) -> tuple[float, float, float, np.ndarray, np.ndarray]:
    """The greatest of ``k`` quantities with its simultaneous bounds (see :func:`lowest`)."""
    lo, hi = simultaneous(estimate, distribution, level)
    return float(estimate.max()), float(lo.max()), float(hi.max()), lo, hi
