"""Bootstrap intervals over independent units, percentile and simultaneous (sup-t) bands.

The independent unit is a sequence (or a window, a word): tokens of one sequence are not
independent of each other, so every interval resamples whole units. Per-unit sums ``[k, n]``
(``k`` quantities, ``n`` units) and counts give token-weighted means; :func:`bootstrap`
resamples the ``n`` columns with :func:`scipy.stats.bootstrap` (``paired=True``: one resample
serves every quantity, so differences, ratios and maxima over quantities are *paired*).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
from scipy import stats as sps

LEVEL = 0.95
N_BOOT = 2000
MIN_UNITS = 30
"""Fewest independent units (sequences, windows) a verdict needs; below it: not enough data.

A percentile bootstrap from fewer than about 30 units gives intervals that are too narrow
(it cannot see the tails it has not sampled)."""

_BATCH_ELEMENTS = 2e7  # resampled values per vectorised call (bounds memory at ~320 MB)

Statistic = Callable[[np.ndarray], np.ndarray]
"""Maps means ``[k, ...]`` (quantities first) to the statistic ``[...]`` (or ``[m, ...]``)."""


def means(sums: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Token-weighted means over the last axis: ``sums.sum(-1) / counts.sum(-1)``.

    Args:
        sums: ``[k, ..., n]`` per-unit sums.
        counts: ``[n]`` or broadcastable to ``sums``: tokens (or 1 per unit for plain means).
    """
    counts = np.broadcast_to(counts, np.shape(sums))
    return np.sum(sums, axis=-1) / np.sum(counts, axis=-1)


def bootstrap(
    sums: np.ndarray,
    counts: np.ndarray | None = None,
    statistic: Statistic = lambda m: m,
    *,
    n_boot: int = N_BOOT,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """The statistic of the means, and its bootstrap distribution over units.

    Args:
        sums: ``[k, n]`` per-unit sums of ``k`` quantities over ``n`` units.
        counts: ``[n]`` weights (tokens per unit); None: 1 per unit (plain means).
        statistic: means ``[k, ...]`` to the statistic; applied to the observed means and to
            each resample's.
        n_boot: resamples.
        seed: the resampling seed (the same seed and ``n`` give the same resamples, so
            separate calls on the same units are paired too).

    Returns:
        ``(estimate, distribution)``: the statistic ``[...]`` and ``[..., n_boot]``.
    """
    sums = np.atleast_2d(np.asarray(sums, dtype=np.float64))
    n = sums.shape[-1]
    counts = np.ones(n) if counts is None else np.asarray(counts, dtype=np.float64)
    weights = np.broadcast_to(counts, sums.shape)

    def stat(s: np.ndarray, c: np.ndarray, axis: int = -1) -> np.ndarray:
        # scipy inserts the resample axis before the last one: [k, B, n] -> means [k, B]
        return np.asarray(statistic(np.sum(s, axis=axis) / np.sum(c, axis=axis)))

    estimate = np.asarray(statistic(means(sums, counts)))
    if n < 2:
        return estimate, np.repeat(estimate[..., None], n_boot, axis=-1)
    with warnings.catch_warnings():  # degenerate resamples (a few units) are judged by n
        warnings.simplefilter("ignore", sps.DegenerateDataWarning)
        result = sps.bootstrap(
            (sums, weights),
            stat,
            paired=True,
            vectorized=True,
            n_resamples=n_boot,
            method="percentile",
            axis=-1,
            rng=np.random.default_rng(seed),
            batch=max(1, int(_BATCH_ELEMENTS // sums.size)),
        )
    return estimate, np.asarray(result.bootstrap_distribution)


def percentile(distribution: np.ndarray, level: float = LEVEL) -> tuple[np.ndarray, np.ndarray]:
    """Central percentile interval ``(lo, hi)`` of a bootstrap distribution (last axis)."""
    alpha = (1 - level) / 2
    lo, hi = np.quantile(distribution, [alpha, 1 - alpha], axis=-1)
    return lo, hi


def interval(
    sums: np.ndarray,
    counts: np.ndarray | None = None,
    statistic: Statistic = lambda m: m,
    *,
    n_boot: int = N_BOOT,
    seed: int = 0,
    level: float = LEVEL,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(estimate, lo, hi)``: a statistic of the means with its percentile bootstrap interval.

    Arguments as :func:`bootstrap`; ``level`` is the interval's coverage.
    """
    estimate, dist = bootstrap(sums, counts, statistic, n_boot=n_boot, seed=seed)
    lo, hi = percentile(dist, level)
    return estimate, lo, hi


def defined_percentile(distribution: np.ndarray, level: float = LEVEL) -> tuple[float, float, int]:
    """:func:`percentile` of a scalar's bootstrap distribution that some resamples leave NaN.

    A ratio of means is undefined on a resample whose denominator is 0 (a cloze baseline with
    no hit among the resampled windows). Each undefined resample counts against the claim at
    both ends: as ``-inf`` for the lower end and as ``+inf`` for the upper, so the interval
    holds whatever those resamples' values would have been. With none undefined it is
    :func:`percentile`'s; once more than ``(1 - level) / 2`` of them are, an end is infinite.

    Args:
        distribution: ``[n_boot]``, from :func:`bootstrap`.
        level: the interval's coverage.

    Returns:
        ``(lo, hi, undefined)``: ``undefined`` counts the resamples that are not finite.
    """
    dist = np.asarray(distribution, dtype=np.float64)
    if dist.ndim != 1:
        raise ValueError(f"a scalar's distribution [n_boot] is needed, got shape {dist.shape}")
    finite = dist[np.isfinite(dist)]
    k, alpha = len(dist) - len(finite), (1 - level) / 2
    # the alpha-quantile of the resamples with the undefined ones at -inf is (up to the
    # interpolation) the finite ones' quantile at (alpha * n - k) / (n - k); likewise at the
    # upper end with them at +inf
    q_lo = (alpha * len(dist) - k) / max(len(finite), 1)
    q_hi = (1 - alpha) * len(dist) / max(len(finite), 1)
    lo = float(np.quantile(finite, q_lo)) if len(finite) and q_lo >= 0 else -np.inf
    hi = float(np.quantile(finite, q_hi)) if len(finite) and q_hi <= 1 else np.inf
    return lo, hi, k


def mean_intervals(
    values: np.ndarray, counts: np.ndarray, *, n_boot: int = N_BOOT, seed: int = 0,
    level: float = LEVEL,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """Token-weighted means of ``k`` quantities with their percentile intervals, in one go.

    ``interval(values, counts)`` (:func:`interval`), the tables' intervals: the same resamples,
    drawn once as per-unit weights (:func:`bootstrap` of the ``[n, n]`` identity gives each
    resample's share of every unit) and applied to every row by one matrix product. With
    thousands of rows this is about ten times faster than resampling the rows themselves, and a
    table's interval is the one a verdict on the same mean gets with the same seed.

    Args:
        values: ``[k, n]`` per-unit sums.
        counts: ``[n]`` or ``[k, n]`` per-unit counts (tokens) each mean divides by.
        n_boot: resamples.
        seed: the resampling seed.
        level: the intervals' coverage.

    Returns:
        ``(estimate, lo, hi)``, each ``[k]``.
    """
    values = np.atleast_2d(np.asarray(values, dtype=np.float64))
    counts = np.broadcast_to(np.asarray(counts, dtype=np.float64), values.shape)
    n = values.shape[-1]
    estimate = values.sum(-1) / counts.sum(-1)
    if n < 2:
        return estimate, estimate.copy(), estimate.copy()
    _, shares = bootstrap(np.eye(n), None, n_boot=n_boot, seed=seed)  # [n, B]
    with np.errstate(invalid="ignore", divide="ignore"):
        distribution = (values @ shares) / (counts @ shares)  # [k, B]
    lo, hi = percentile(distribution, level)
    return estimate, lo, hi


def two_sample(
    a: np.ndarray, b: np.ndarray, *, n_boot: int = N_BOOT, seed: int = 0, level: float = LEVEL
) -> tuple[float, float, float]:
    """``(mean(a) - mean(b), lo, hi)`` for two independent samples, each resampled on its own."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    result = sps.bootstrap(
        (a, b),
        lambda x, y, axis=-1: x.mean(axis=axis) - y.mean(axis=axis),
        vectorized=True,
        n_resamples=n_boot,
        method="percentile",
        confidence_level=level,
        rng=np.random.default_rng(seed),
    )
    ci = result.confidence_interval
    return float(a.mean() - b.mean()), float(ci.low), float(ci.high)


def simultaneous(
    estimate: np.ndarray, distribution: np.ndarray, level: float = LEVEL
) -> tuple[np.ndarray, np.ndarray]:
    """A sup-t band: intervals for ``k`` quantities that hold *together* with ``level``.

    ``estimate ± c * se`` where ``se`` is each quantity's bootstrap standard error and ``c``
    the ``level`` quantile of ``max_k |theta*_k - theta_k| / se_k`` over the resamples
    (Montiel Olea and Plagborg-Moller 2019). Quantities with no spread get a zero-width band.

    Args:
        estimate: ``[k]``.
        distribution: ``[k, n_boot]`` (from :func:`bootstrap`, so the resamples are paired).
        level: joint coverage.

    Returns:
        ``(lo, hi)``, each ``[k]``.
    """
    se = distribution.std(axis=-1, ddof=1)
    safe = np.where(se > 0, se, 1.0)
    t = np.abs(distribution - estimate[:, None]) / safe[:, None]
    t[se == 0] = 0.0
    c = np.quantile(t.max(axis=0), level)
    return estimate - c * se, estimate + c * se
