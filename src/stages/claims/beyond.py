"""Claims beyond single layers (the later version and related work), decided.

Each claim is a function of per-sequence sums (:mod:`stages.engine.sweep` for the plan
experiments), so its interval resamples sequences and compares plans *paired*, on the same
resampled sequences (:mod:`stages.stats`). KL is in nats; entropy change in bits.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np
import pandas as pd

from stages import stats
from stages.analyses.duplication import TIMES, duplication_ranges
from stages.analyses.reorder import REORDERINGS, span_length, span_starts, where
from stages.analyses.skip_effects import first_half_vs_second_half
from stages.claims.association import score_tracks_drop
from stages.depth import MIDDLE, layers_where, scored, stack
from stages.engine.plans import duplicate, parallel
from stages.stats import Verdict


def _decide(
    claim: str, figure: str, statistic: str, sums: pd.DataFrame, columns: list[str],
    f: Callable[[np.ndarray], np.ndarray], *, above: bool, unit: str, detail: str, seed: int,
    source: str,
) -> Verdict:  # fmt: skip
    """A verdict on ``f`` (of the means of ``columns``) against 0, with its paired interval."""
    estimate, lo, hi = stats.interval(stack(sums, columns), scored(sums), f, seed=seed)
    return stats.verdict(
        claim, figure, statistic, estimate, lo, hi, threshold=0.0, above=above, n=len(sums),
        threshold_unit=unit, detail=detail, source=source,
    )  # fmt: skip


def _per_item(
    claim: str, figure: str, statistic: str, sums: pd.DataFrame, columns: list[str],
    f: Callable[[np.ndarray], np.ndarray], *, above: bool, unit: str, detail: str, seed: int,
    source: str,
) -> Verdict:  # fmt: skip
    """A claim about *every* item of ``f`` (``[k]`` per-item differences), decided item by item.

    ``above=True``: every item above 0 (the least item, :func:`stages.stats.lowest`);
    ``above=False``: every item below 0 (the greatest, :func:`stages.stats.highest`); each with
    the bounds of a simultaneous 95% band over the items.
    """
    estimate, dist = stats.bootstrap(stack(sums, columns), scored(sums), f, seed=seed)
    pick = stats.lowest if above else stats.highest
    value, lo, hi, band_lo, band_hi = pick(estimate, dist)
    good = int((band_lo > 0).sum() if above else (band_hi < 0).sum())
    bad = int((band_hi < 0).sum() if above else (band_lo > 0).sum())
    return stats.verdict(
        claim, figure, statistic, value, lo, hi, threshold=0.0, above=above, n=len(sums),
        threshold_unit=unit, source=source,
        detail=f"{detail}; with simultaneous 95% confidence {good} of {len(estimate)} agree "
        f"with the claim and {bad} contradict it",
    )  # fmt: skip


# --------------------------------------------------------------------------- block deletion


def deeper_blocks_are_safer(sums: pd.DataFrame, n_layers: int, *, seed: int = 0) -> Verdict:
    """Gromov et al.: the best block of a quarter of the depth to delete lies in the deeper half.

    Blocks wholly inside the first half are compared with blocks wholly inside the second (the
    blocks across the middle belong to neither): the smallest KL in the first half minus the
    smallest in the second, decided block by block (:func:`stages.stats.gap` of the negated
    KL: a sup-t band over every pair of blocks).
    """
    k = max(2, n_layers // 4)
    half = n_layers / 2
    first = [s for s in range(n_layers - k + 1) if s + k <= half]
    second = [s for s in range(n_layers - k + 1) if s >= half]
    labels = [f"drop_range {s}-{s + k - 1}" for s in first + second]
    columns = [f"{label}:kl" for label in labels]
    means, dist = stats.bootstrap(stack(sums, columns), scored(sums), seed=seed)
    a = list(range(len(first)))
    b = list(range(len(first), len(labels)))
    # min(first) - min(second) = max(-second) - max(-first)
    value, lo, hi = stats.gap(-means, -dist, b, a)
    best_first, best_second = int(np.argmin(means[a])), len(first) + int(np.argmin(means[b]))
    return stats.verdict(
        f"deleting {k} consecutive layers hurts less in the deeper half than in the first half "
        "(the best block wholly inside each half)",
        "Gromov et al. 2024 (block deletion)",
        f"smallest KL over blocks of {k} layers in the first half minus smallest in the second "
        "half (nats, paired; simultaneous 95% band over every pair of blocks)",
        value, lo, hi, threshold=0.0, n=len(sums), threshold_unit=" nats",
        source="related work",
        detail=f"best in the first half: {labels[best_first]} (KL {means[best_first]:.3g}); in "
        f"the second half: {labels[best_second]} (KL {means[best_second]:.3g})",
    )  # fmt: skip


# --------------------------------------------------------------------------- reorderings


def _spans(n_layers: int, kind: str) -> list[int]:
    s = span_length(n_layers)
    return [i for i in span_starts(n_layers) if where(i, i + s, n_layers) == kind]


def _reordered(sums: pd.DataFrame, i: int, j: int) -> list[str]:
    """Labels of the order-only plans of span ``i..j-1`` in ``sums`` (reverse, shuffles)."""
    kinds = tuple(f"{k} {i}-{j - 1}" for k in REORDERINGS)
    return [c[: -len(":kl")] for c in sums.columns if c.endswith(":kl") and c.startswith(kinds)]


def reordering_gentler_than_dropping(
    sums: pd.DataFrame, n_layers: int, kind: str = "reorder", *, seed: int = 0
) -> Verdict:
    """Painters: reordering (or running in parallel) each middle span hurts less than dropping it.

    Per middle span: the mean KL of its reorderings (or its parallel run) minus the KL of
    dropping it; decided span by span with a simultaneous band (every span below 0: holds).
    """
    s = span_length(n_layers)
    middle = _spans(n_layers, "middle")
    what = "reordering" if kind == "reorder" else "running in parallel"
    claim = f"{what} a middle span of {s} layers hurts less than dropping it"
    source = "related work"
    if not middle:
        return stats.missing(claim, "Painters", f"no middle span of {s} layers", source=source)
    columns, groups = [], []
    for i in middle:
        plans = _reordered(sums, i, i + s) if kind == "reorder" else [parallel(i, i + s).label]
        groups.append((len(columns), len(columns) + len(plans)))
        columns += [f"drop_range {i}-{i + s - 1}:kl"] + [f"{p}:kl" for p in plans]

    def excess(m: np.ndarray) -> np.ndarray:  # [spans, ...]
        return np.stack([m[a + 1 : b + 1].mean(axis=0) - m[a] for a, b in groups])

    kl = dict(zip(columns, stats.means(stack(sums, columns), scored(sums)), strict=True))
    kinds = [k for k in ("drop_range", "reverse", "shuffle", "parallel") if k in " ".join(kl)]
    by_kind = {k: np.mean([v for c, v in kl.items() if c.startswith(k)]) for k in kinds}
    return _per_item(
        claim, "Sun et al. 2024, Painters (Figures 2-4)",
        f"per middle span, the mean KL of {what} minus the KL of dropping the span; the largest "
        "over the spans (nats, paired; simultaneous 95% band over the spans)",
        sums, columns, excess, above=False, unit=" nats", seed=seed, source=source,
        detail=f"middle spans starting at layers {', '.join(map(str, middle))}; mean KL "
        + ", ".join(f"{k} {v:.3g}" for k, v in by_kind.items()),
    )  # fmt: skip


def order_matters_less_in_the_middle(
    sums: pd.DataFrame, n_layers: int, *, seed: int = 0
) -> Verdict:
    """Reordering each middle span hurts less than reordering the first or the last span.

    Per (end span, middle span) pair: the end's mean reordering KL minus the middle span's;
    decided pair by pair with a simultaneous band (every pair above 0: holds).
    """
    s = span_length(n_layers)
    middle, edge = _spans(n_layers, "middle"), _spans(n_layers, "edge")
    claim = f"the order of a middle span of {s} layers matters less than near either end"
    if not middle or not edge:
        return stats.missing(claim, "Painters", "no middle or no edge span", source="related work")
    groups = [_reordered(sums, i, i + s) for i in middle]
    ends = [_reordered(sums, 0, s), _reordered(sums, n_layers - s, n_layers)]
    every = [p for g in groups + ends for p in g]
    columns = [f"{p}:kl" for p in every]
    where = np.cumsum([0] + [len(g) for g in groups + ends])
    n_mid = len(groups)

    def excess(m: np.ndarray) -> np.ndarray:  # [ends x middle spans, ...]
        means = [m[a:b].mean(axis=0) for a, b in zip(where[:-1], where[1:], strict=True)]
        return np.stack([means[n_mid + e] - means[j] for e in range(2) for j in range(n_mid)])

    return _per_item(
        claim, "Sun et al. 2024, Painters; the paper's section 4",
        "mean KL of reordering (reverse, shuffles) the first or the last span minus that of "
        "each middle span; the smallest over every (end, middle span) pair (nats, paired; "
        "simultaneous 95% band over the pairs)",
        sums, columns, excess, above=True, unit=" nats", seed=seed, source="related work",
        detail=f"{len(middle)} middle spans ({sum(map(len, groups))} reorderings); "
        f"{len(ends[0])} reorderings of the first and {len(ends[1])} of the last span",
    )  # fmt: skip


# --------------------------------------------------------------------------- duplication


def more_copies_more_damage(sums: pd.DataFrame, n_layers: int, *, seed: int = 0) -> Verdict:
    """KL grows with the number of copies, for every duplicated range (decided range by range)."""
    ranges = duplication_ranges(n_layers)
    lo_n, hi_n = TIMES[0], TIMES[-1]
    columns = [f"{duplicate(i, j, n).label}:kl" for i, j in ranges for n in (lo_n, hi_n)]
    return _per_item(
        f"running each layer of a range {hi_n} times hurts more than {lo_n} times, for every range",
        "the later version (layer duplication)",
        f"KL(x{hi_n}) minus KL(x{lo_n}) per range, the smallest over the {len(ranges)} ranges "
        "(nats, paired; simultaneous 95% band over the ranges)",
        sums, columns, lambda m: m[1::2] - m[0::2], above=True, unit=" nats", seed=seed,
        source="paper v3",
        detail="ranges " + ", ".join(f"{i}-{j - 1}" for i, j in ranges),
    )  # fmt: skip


def duplication_raises_entropy(sums: pd.DataFrame, n_layers: int, *, seed: int = 0) -> Verdict:
    """Duplicating the widest middle range (the most copies) raises the predictions' entropy."""
    i, j = duplication_ranges(n_layers)[-1]
    label = duplicate(i, j, TIMES[-1]).label
    return _decide(
        f"duplicating layers {i}-{j - 1} ({TIMES[-1]} runs each) raises the entropy of the "
        "predictions",
        "the later version (layer duplication, entropy)",
        f"mean entropy change H(Q) - H(P) under {label} (bits)",
        sums, [f"{label}:entropy_delta"], lambda m: m[0], above=True, unit=" bits", seed=seed,
        source="this book",
        detail="the direction is ours to test: the later version reports the entropy, not a sign",
    )  # fmt: skip


# --------------------------------------------------------------------------- similarity, skips


def early_skips_change_more(skips: pd.DataFrame, n_layers: int, *, seed: int = 0) -> Verdict:
    """Csordás et al.: skipping a first-half layer changes later layers more than a late one."""
    without_first = skips[[c for c in skips.columns if not c.startswith("0>")]]
    estimate, lo, hi = first_half_vs_second_half(without_first, n_layers, seed=seed)
    with_first = first_half_vs_second_half(skips, n_layers, seed=seed)
    return stats.verdict(
        "skipping a layer in the first half changes what later layers write more than skipping "
        "one in the second half",
        "Csordás et al. 2025 (Figure 2)",
        "mean relative change of every later layer's attention and MLP output, drops of layers "
        "1.. in the first half minus drops in the second half (paired)",
        estimate, lo, hi, threshold=0.0, n=len(skips), source="related work",
        detail=f"layer 0, whose drop is catastrophic, is left out; with it {with_first[0]:.3g} "
        f"({with_first[1]:.3g} to {with_first[2]:.3g})",
    )  # fmt: skip


def similarity_claims(
    similarity: pd.DataFrame, skips: pd.DataFrame, sweep: pd.DataFrame, n_layers: int,
    *, seed: int = 0,
) -> list[Verdict]:  # fmt: skip
    """The layer-similarity and skip-effect claims."""
    return [
        score_tracks_drop(similarity, sweep, "block_influence", seed=seed),
        score_tracks_drop(similarity, sweep, "angular", seed=seed),
        early_skips_change_more(skips, n_layers, seed=seed),
    ]


# --------------------------------------------------------------------------- cloze

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


def depth_edit_claims(
    blocks: pd.DataFrame, reorder: pd.DataFrame, duplication: pd.DataFrame, n_layers: int,
    *, seed: int = 0,
) -> list[Verdict]:  # fmt: skip
    """Every claim of the block-deletion, reordering and duplication experiments."""
    return [
        deeper_blocks_are_safer(blocks, n_layers, seed=seed),
        reordering_gentler_than_dropping(reorder, n_layers, seed=seed),
        reordering_gentler_than_dropping(reorder, n_layers, "parallel", seed=seed),
        order_matters_less_in_the_middle(reorder, n_layers, seed=seed),
        more_copies_more_damage(duplication, n_layers, seed=seed),
        duplication_raises_entropy(duplication, n_layers, seed=seed),
    ]
