"""Verdicts: a claim decided from an interval and a rule, and said where it comes from.

A verdict (:class:`Verdict`) is one of :data:`VERDICTS`: ``holds``, ``does not hold`` (the data
are evidence *against* the claim), ``unclear`` (the interval straddles the threshold: more data
could decide), ``no evidence`` (a test against a null found nothing: not evidence against the
claim) or ``not enough data`` (fewer units than the rule needs). :func:`decide` decides from an
interval and a threshold; :func:`decide_against_null` from an interval, a null's 95th percentile
and, where the claim has one, a margin below which the data count against it. Every verdict says
where its claim comes from (:data:`SOURCES`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from stages.stats.bands import highest, lowest
from stages.stats.bootstrap import MIN_UNITS, interval

VERDICTS = ("holds", "does not hold", "unclear", "no evidence", "not enough data")
"""Every verdict, in the order pages list them."""

SOURCES = ("paper v1", "paper v3", "related work", "this book")
"""Where a claim comes from: the paper as published (v1, 2024), its later version (v3, 2025:
its abstract and the co-author's public code), the related work the book reproduces, or a claim
this book adds (a baseline, a direction the paper does not state)."""


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


def mean_verdict(
    claim: str,
    figure: str,
    statistic: str,
    sums: np.ndarray,
    counts: np.ndarray | None = None,
    *,
    seed: int = 0,
    **rule: Any,
) -> Verdict:
    """A :func:`verdict` on one mean, with its percentile bootstrap interval over units.

    Args:
        claim: what is claimed, as the page states it.
        figure: where the paper shows it.
        statistic: what the mean is, with its unit.
        sums: ``[n]`` or ``[1, n]`` per-unit sums of the quantity.
        counts: ``[n]`` weights (tokens per unit); None: a plain mean over units.
        seed: the resampling seed (:func:`stages.stats.interval`).
        **rule: :func:`verdict`'s keywords (``threshold`` and the rest); ``n`` is the number
            of units.
    """
    sums = np.atleast_2d(sums)
    estimate, lo, hi = interval(sums, counts, seed=seed)
    return verdict(claim, figure, statistic, estimate[0], lo[0], hi[0], n=sums.shape[-1], **rule)


def every_verdict(
    claim: str,
    figure: str,
    statistic: str,
    estimate: np.ndarray,
    distribution: np.ndarray,
    *,
    above: bool = True,
    detail: str = "",
    **rule: Any,
) -> Verdict:
    """A claim about *every* item (layer, swap, span), decided item by item against 0.

    ``above=True``: every item above 0, decided from the least item (:func:`lowest`);
    ``above=False``: every item below 0, from the greatest (:func:`highest`); each with the
    bounds of a simultaneous 95% band over the items, so the claim holds only when every item's
    band is on its side and does not hold when some item's band is on the other.

    Args:
        claim: what is claimed, as the page states it.
        figure: where the paper shows it.
        statistic: what the per-item differences are, with their unit.
        estimate: ``[k]`` per-item differences from the claim's boundary.
        distribution: ``[k, n_boot]`` their paired bootstrap distribution.
        above: the claim puts every item above 0 (False: below).
        detail: said first in the verdict's detail, before how many items agree.
        **rule: :func:`verdict`'s keywords but ``threshold`` and ``above`` (``n`` and the rest).
    """
    pick = lowest if above else highest
    value, lo, hi, band_lo, band_hi = pick(estimate, distribution)
    good = int((band_lo > 0).sum() if above else (band_hi < 0).sum())
    bad = int((band_hi < 0).sum() if above else (band_lo > 0).sum())
    return verdict(
        claim, figure, statistic, value, lo, hi, threshold=0.0, above=above,
        detail=f"{detail}; " * bool(detail) + f"with simultaneous 95% confidence {good} of "
        f"{len(estimate)} agree with the claim and {bad} "
        f"{'contradicts' if bad == 1 else 'contradict'} it",
        **rule,
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
