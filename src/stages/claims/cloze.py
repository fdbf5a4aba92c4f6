"""The paper's robustness claims asked of a cloze task (the later version's downstream accuracy).

Per-window correctness under every single-layer drop and adjacent swap
(:func:`stages.analyses.cloze.cloze_sums`), decided layer by layer: the share kept from a
simultaneous band over the middle layers (exact Clopper-Pearson bounds where a drop has no hit),
the paired comparisons by exact McNemar tests per layer with Holm's correction; nothing is
decided below :data:`MIN_HITS` windows the unperturbed model answers right.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from stages import stats
from stages.depth import MIDDLE, layers_where, stack
from stages.stats import Verdict

CLOZE_KEPT = 0.72
"""The paper's lower bound on the share of top-1 predictions a middle-layer drop keeps, asked of
cloze accuracy."""


MIN_HITS = 30
"""Fewest windows the unperturbed model must answer right before a cloze claim is decided (a
share of accuracy kept from a handful of hits says nothing)."""


def _cloze(sums: pd.DataFrame, labels: list[str]) -> np.ndarray:
    """``[len(labels), n_windows]``: 1.0 where the plan produced the window's word."""
    return stack(sums, [f"{label}:correct" for label in labels])


def _paired_tests(
    better: np.ndarray, worse: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Exact McNemar tests of ``better[k]`` against ``worse[k]`` per row, Holm-adjusted.

    Returns:
        ``(adjusted p [k], sign [k])``: sign +1 where ``better`` was right more often, -1 less.
    """
    tests = [stats.mcnemar(a > 0, b > 0) for a, b in zip(better, worse, strict=True)]
    sign = np.sign([a_only - b_only for _, a_only, b_only in tests])
    return stats.holm(np.array([p for p, _, _ in tests])), sign


def _tested(
    claim: str, statistic: str, better: np.ndarray, worse: np.ndarray, names: list[str], *,
    n: int, hits: int, seed: int,
) -> Verdict:  # fmt: skip
    """"``better`` keeps more cloze accuracy than ``worse`` at every layer", tested per layer.

    Decided by exact McNemar tests per layer with Holm's correction over the layers: holds when
    every layer's test rejects in the claim's direction, does not hold when some layer's test
    rejects in the other, unclear otherwise. The interval shown is the simultaneous 95%
    bootstrap band of the smallest accuracy difference.
    """
    estimate, dist = stats.bootstrap(better - worse, seed=seed)
    least, lo, hi, _, _ = stats.lowest(estimate, dist)
    adjusted, sign = _paired_tests(better, worse)
    significant = adjusted < 0.05
    if n < stats.MIN_UNITS or hits < MIN_HITS:
        decided = "not enough data"
    elif (significant & (sign < 0)).any():
        decided = "does not hold"
    elif (significant & (sign > 0)).all():
        decided = "holds"
    else:
        decided = "unclear"
    against = [names[k] for k in np.flatnonzero(significant & (sign < 0))]
    return Verdict(
        claim, CLOZE_FIGURE, statistic, least, lo, hi,
        "exact McNemar test per layer, Holm-adjusted over the layers: holds if every layer's "
        "adjusted p < 0.05 in the claim's direction; does not hold if some layer's is in the "
        "other; unclear otherwise (the interval: simultaneous 95% bootstrap band of the "
        f"smallest difference); not enough data below {stats.MIN_UNITS} windows or "
        f"{MIN_HITS} baseline hits",
        n, "windows", decided,
        f"{int((significant & (sign > 0)).sum())} of {len(names)} layers significant in the "
        "claim's direction"
        + (f"; against it: {', '.join(against)}" if against else ""),
        "paper v3",
    )  # fmt: skip


CLOZE_FIGURE = "the later version (downstream accuracy); the paper's Figure 3"


def cloze_kept(sums: pd.DataFrame, n_layers: int, *, seed: int = 0) -> Verdict:
    """Every middle-layer drop keeps at least 72% of the cloze accuracy, decided per layer.

    Per middle layer ``l``, the share kept ``acc(drop l) / acc(none)`` with a simultaneous
    band over the layers; a layer no window survives (a count of 0) gets the exact
    (Clopper-Pearson) upper bound of its accuracy over the baseline's instead of a band of
    zero width.
    """
    middle = layers_where(n_layers, *MIDDLE)
    labels = ["none", *[f"drop {i}" for i in middle]]
    m = _cloze(sums, labels)
    n, hits = m.shape[1], int(m[0].sum())
    claim = f"every single middle-layer drop keeps at least {CLOZE_KEPT:.0%} of the cloze accuracy"
    base_lo, base_hi = stats.clopper_pearson(hits, n)
    detail = (f"baseline accuracy {hits / n:.1%} ({hits} of {n} windows; exact 95% interval "
              f"{base_lo:.1%} to {base_hi:.1%})")  # fmt: skip
    if hits == 0:
        return Verdict(claim, CLOZE_FIGURE, "the worst middle-layer drop's cloze accuracy "
                       "divided by the baseline's", np.nan, np.nan, np.nan,
                       f"needs {MIN_HITS} baseline hits and {stats.MIN_UNITS} windows", n,
                       "windows", "not enough data", detail, "paper v3")  # fmt: skip
    estimate, dist = stats.bootstrap(m, statistic=lambda x: x[1:] / x[0], seed=seed)
    band_lo, band_hi = stats.simultaneous(estimate, dist)
    band_lo = np.maximum(band_lo, 0.0)  # a share kept is never negative
    zero = m[1:].sum(axis=1) == 0
    band_lo[zero] = 0.0
    band_hi[zero] = stats.clopper_pearson(0, n)[1] / (hits / n)
    worst = int(np.argmin(estimate))
    decided = stats.verdict(
        claim, CLOZE_FIGURE,
        "the worst middle-layer drop's cloze accuracy divided by the baseline's (simultaneous "
        "95% band over the middle layers; exact bounds where a drop has no hit)",
        float(estimate.min()), float(band_lo.min()), float(band_hi.min()),
        threshold=CLOZE_KEPT, n=n, unit="windows", source="paper v3",
        detail=f"{detail}; worst: drop {middle[worst]} ({int(m[1 + worst].sum())} hits); "
        f"{int((band_lo > CLOZE_KEPT).sum())} of {len(middle)} layers keep more than "
        f"{CLOZE_KEPT:.0%} and {int((band_hi < CLOZE_KEPT).sum())} less with simultaneous "
        "confidence",
    )  # fmt: skip
    rule = decided.rule.replace("windows", f"windows or {MIN_HITS} baseline hits")
    gated = "not enough data" if hits < MIN_HITS else decided.verdict
    return replace(decided, rule=rule, verdict=gated)


def cloze_claims(sums: pd.DataFrame, n_layers: int, *, seed: int = 0) -> list[Verdict]:
    """The paper's robustness claims asked of the cloze task (per-window correctness)."""
    middle = layers_where(n_layers, *MIDDLE)
    n, hits = len(sums), int(sums["none:correct"].sum())
    drops = _cloze(sums, [f"drop {i}" for i in middle])
    first = np.broadcast_to(_cloze(sums, ["drop 0"]), drops.shape)
    paired = [i for i in middle if i + 1 < n_layers]
    swaps = _cloze(sums, [f"swap {i}-{i + 1}" for i in paired])
    dropped = _cloze(sums, [f"drop {i}" for i in paired])
    return [
        cloze_kept(sums, n_layers, seed=seed),
        _tested(
            "dropping the first layer hurts cloze accuracy more than any middle-layer drop",
            "accuracy of each middle-layer drop minus the first layer's drop's, the smallest "
            "(paired)",
            drops, first, [f"drop {i}" for i in middle], n=n, hits=hits, seed=seed,
        ),
        _tested(
            "in the middle layers, swapping keeps more cloze accuracy than dropping",
            "accuracy(swap i, i+1) minus accuracy(drop i) per middle layer, the smallest "
            "(paired)",
            swaps, dropped, [f"layer {i}" for i in paired], n=n, hits=hits, seed=seed,
        ),
    ]  # fmt: skip
