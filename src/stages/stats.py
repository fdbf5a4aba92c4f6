"""The book's inference: bootstrap intervals over independent units, and verdicts from them.

The independent unit is a sequence (or, in the case studies, a window): tokens of one sequence
are not independent of each other, so every interval resamples whole sequences. Per-sequence
sums ``[k, n]`` (``k`` quantities, ``n`` sequences) and counts give token-weighted means
``sum_s sums[:, s] / sum_s counts[s]``; :func:`bootstrap` resamples the ``n`` columns with
:func:`scipy.stats.bootstrap` (``paired=True``: one resample serves every quantity, so
differences, ratios and maxima over quantities are *paired*: computed on the same sequences).

- :func:`interval`: a percentile interval of any statistic of the means
  (:func:`defined_percentile` where some resamples leave it undefined, as a ratio can).
- :func:`simultaneous`: a sup-t band over ``k`` quantities (every layer at once): with 95%
  confidence *all* ``k`` intervals hold together.

- :func:`gap`: "the largest of one group minus the largest of another" (where over the layers
  a curve peaks) with an interval from a sup-t band over every pairwise difference, instead of a
  percentile bootstrap of a maximum (biased, and decided by whichever layer happens to be top).
- :func:`lowest` / :func:`highest`: the least (greatest) of ``k`` quantities with the
  simultaneous band: a claim about *every* layer is decided layer by layer.
- :func:`clopper_pearson`, :func:`mcnemar`, :func:`holm`: exact bounds for counts and paired
  per-layer tests on binary outcomes.

A verdict (:class:`Verdict`) is one of :data:`VERDICTS`: ``holds``, ``does not hold`` (the data
are evidence *against* the claim), ``unclear`` (the interval straddles the threshold: more data
could decide), ``no evidence`` (a test against a null found nothing: not evidence against the
claim) or ``not enough data`` (fewer units than the rule needs). :func:`decide` decides from an
interval and a threshold; :func:`decide_against_null` from an interval, a null's 95th percentile
and, where the claim has one, a margin below which the data count against it. Every verdict says
where its claim comes from (:data:`SOURCES`).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy import stats as sps

LEVEL = 0.95
N_BOOT = 2000
MIN_UNITS = 30
"""Fewest independent units (sequences, windows) a verdict needs; below it: not enough data.

A percentile bootstrap from fewer than about 30 units gives intervals that are too narrow
(it cannot see the tails it has not sampled)."""

_BATCH_ELEMENTS = 2e7  # resampled values per vectorised call (bounds memory at ~320 MB)

VERDICTS = ("holds", "does not hold", "unclear", "no evidence", "not enough data")
"""Every verdict, in the order pages list them."""

SOURCES = ("paper v1", "paper v3", "related work", "this book")
"""Where a claim comes from: the paper as published (v1, 2024), its later version (v3, 2025:
its abstract and the co-author's public code), the related work the book reproduces, or a claim
this book adds (a baseline, a direction the paper does not state)."""

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


def decide(lo: float, hi: float, threshold: float, *, above: bool = True) -> str:
    """``holds`` / ``does not hold`` / ``unclear`` for "the statistic is above ``threshold``".

    With ``above=True``: holds when ``lo > threshold``, does not hold when ``hi < threshold``,
    unclear when the interval contains it. With ``above=False`` the claim is "below".
    """
    if not above:
        lo, hi, threshold = -hi, -lo, -threshold
    if lo > threshold:
        return "holds"
    if hi < threshold:
        return "does not hold"
    return "unclear"


def decide_within(lo: float, hi: float, low: float, high: float) -> str:
    """``holds`` / ``does not hold`` / ``unclear`` for "the statistic lies in ``[low, high]``".

    Holds when the whole interval lies inside the range (an equivalence test when the range is
    a margin around 0), does not hold when it lies entirely outside (entirely below ``low`` or
    entirely above ``high``), unclear otherwise.
    """
    if low < lo and hi < high:
        return "holds"
    if hi < low or lo > high:
        return "does not hold"
    return "unclear"


def decide_against_null(
    lo: float, hi: float, critical: float, *, against: float | None = None
) -> str:
    """A verdict for "the statistic is larger than chance", from its interval and a null.

    ``critical`` is the null distribution's 95th percentile (what the statistic reaches by
    chance). Holds when ``lo > critical``; *no evidence* when ``hi <= critical`` (the data show
    no more than chance: not evidence against the claim); *does not hold* only when the claim
    has a margin ``against`` and ``hi < against`` (the data contradict it, e.g. two curves that
    move in opposite directions); unclear otherwise.
    """
    if against is not None and hi < against:
        return "does not hold"
    if lo > critical:
        return "holds"
    if hi <= critical:
        return "no evidence"
    return "unclear"


def rule_text(
    statistic: str, threshold: float, *, above: bool = True, unit: str = "", null: bool = False,
    against: float | None = None,
) -> str:  # fmt: skip
    """The decision rule of :func:`decide` (or :func:`decide_against_null`) in words.

    With ``null=True`` the threshold is a null distribution's 95th percentile; an interval
    below it is *no evidence*, and *does not hold* needs the interval below ``against``.
    """
    sign, other = (">", "<") if above else ("<", ">")
    t = f"{threshold:.3g}{unit}"
    if null:
        fails = (
            f"does not hold if it is entirely below {against:.3g}{unit} (evidence against the "
            "claim); " if against is not None else ""
        )
        return (
            f"holds if the whole 95% interval of {statistic} is > {t} (the null's 95th "
            f"percentile: what chance gives); {fails}no evidence if it lies entirely at or "
            f"below {t} (no more than chance: not evidence against the claim); unclear "
            f"otherwise; not enough data below {MIN_UNITS} units"
        )
    return (
        f"holds if the whole 95% interval of {statistic} is {sign} {t}; does not hold if it is "
        f"entirely {other} {t}; unclear if it contains {t}; not enough data below {MIN_UNITS} "
        "units"
    )


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


@dataclass(frozen=True)
class Verdict:
    """A claim decided from data.

    Attributes:
        claim: the claim, as tested.
        figure: where the paper shows it.
        statistic: what was computed (words, with units).
        value: its estimate.
        lo: lower end of its 95% interval (equal to ``value`` when exact, e.g. weights only).
        hi: upper end.
        rule: the decision rule exactly as applied.
        n: independent units the interval rests on (the units resampled).
        unit: what ``n`` counts (``sequences``, ``windows``, ``neurons``, ``layers``, ...).
        verdict: one of :data:`VERDICTS`.
        detail: the numbers behind it, in a sentence.
        source: where the claim comes from, one of :data:`SOURCES`.
    """

    claim: str
    figure: str
    statistic: str
    value: float
    lo: float
    hi: float
    rule: str
    n: int
    unit: str
    verdict: str
    detail: str = ""
    source: str = "paper v1"

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")
        if self.source not in SOURCES:
            raise ValueError(f"source must be one of {SOURCES}, got {self.source!r}")


def verdict(
    claim: str,
    figure: str,
    statistic: str,
    value: float,
    lo: float,
    hi: float,
    *,
    threshold: float,
    above: bool = True,
    n: int,
    unit: str = "sequences",
    min_units: int = MIN_UNITS,
    detail: str = "",
    threshold_unit: str = "",
    null: bool = False,
    against: float | None = None,
    source: str = "paper v1",
) -> Verdict:
    """A :class:`Verdict` decided by :func:`decide`, or ``not enough data`` below ``min_units``.

    ``null=True``: the threshold is a null distribution's 95th percentile, decided by
    :func:`decide_against_null` with the margin ``against`` (see :func:`rule_text`).
    """
    if n < min_units:
        decided = "not enough data"
    elif null:
        decided = decide_against_null(lo, hi, threshold, against=against)
    else:
        decided = decide(lo, hi, threshold, above=above)
    rule = rule_text(
        statistic, threshold, above=above, unit=threshold_unit, null=null, against=against
    )
    if min_units != MIN_UNITS:
        rule = rule.replace(f"{MIN_UNITS} units", f"{min_units} {unit}")
    else:
        rule = rule.replace("units", unit)
    return Verdict(
        claim, figure, statistic, float(value), float(lo), float(hi), rule, int(n), unit,
        decided, detail, source,
    )  # fmt: skip


def missing(
    claim: str, figure: str, why: str, unit: str = "sequences", *, source: str = "paper v1"
) -> Verdict:
    """``not enough data`` for a claim the data cannot reach (``why`` says what is missing)."""
    nan = float("nan")
    return Verdict(claim, figure, why, nan, nan, nan, why, 0, unit, "not enough data", why,
                   source)  # fmt: skip


def table(verdicts: list[Verdict]) -> pd.DataFrame:
    """Verdicts as a DataFrame, one row each (the columns of :class:`Verdict`)."""
    return pd.DataFrame([asdict(v) for v in verdicts])
