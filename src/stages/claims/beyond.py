"""Claims beyond single layers (the later version and related work), decided.

Each claim is a function of per-sequence sums (:mod:`stages.engine.sweep` for the plan
experiments), so its interval resamples sequences and compares plans *paired*, on the same
resampled sequences (:mod:`stages.stats`). KL is in nats; entropy change in bits.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from stages import stats
from stages.analyses.duplication import TIMES, duplication_ranges
from stages.analyses.reorder import REORDERINGS, span_length, span_starts, where
from stages.claims.depth import scored, stack
from stages.engine.plans import duplicate, parallel
from stages.stats import Verdict


def _decide(
    claim: str, figure: str, statistic: str, sums: pd.DataFrame, columns: list[str],
    f: Callable[[np.ndarray], np.ndarray], *, above: bool, unit: str, detail: str, seed: int,
) -> Verdict:  # fmt: skip
    """A verdict on ``f`` (of the means of ``columns``) against 0, with its paired interval."""
    estimate, lo, hi = stats.interval(stack(sums, columns), scored(sums), f, seed=seed)
    return stats.verdict(
        claim, figure, statistic, estimate, lo, hi, threshold=0.0, above=above, n=len(sums),
        threshold_unit=unit, detail=detail,
    )  # fmt: skip


# --------------------------------------------------------------------------- block deletion


def deeper_blocks_are_safer(sums: pd.DataFrame, n_layers: int, *, seed: int = 0) -> Verdict:
    """Gromov et al.: the best block of a quarter of the depth to delete lies in the deeper half.

    Blocks wholly inside the first half are compared with blocks wholly inside the second (the
    blocks across the middle belong to neither).
    """
    k = max(2, n_layers // 4)
    half = n_layers / 2
    first = [s for s in range(n_layers - k + 1) if s + k <= half]
    second = [s for s in range(n_layers - k + 1) if s >= half]
    labels = [f"drop_range {s}-{s + k - 1}" for s in first + second]
    columns = [f"{label}:kl" for label in labels]

    def margin(m: np.ndarray) -> np.ndarray:
        return m[: len(first)].min(axis=0) - m[len(first) :].min(axis=0)

    means = stats.means(stack(sums, columns), scored(sums))
    best_first, best_second = (
        int(np.argmin(means[: len(first)])),
        int(np.argmin(means[len(first) :])),
    )
    return _decide(
        f"deleting {k} consecutive layers hurts less in the deeper half than in the first half "
        "(the best block wholly inside each half)",
        "Gromov et al. 2024 (block deletion)",
        f"smallest KL over blocks of {k} layers in the first half minus smallest in the second "
        "half (nats, paired)",
        sums, columns, margin, above=True, unit=" nats", seed=seed,
        detail=f"best in the first half: {labels[best_first]} (KL {means[best_first]:.3g}); in "
        f"the second half: {labels[len(first) + best_second]} (KL "
        f"{means[len(first) + best_second]:.3g})",
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
    """Painters: reordering (or running in parallel) a middle span hurts less than dropping it."""
    s = span_length(n_layers)
    middle = _spans(n_layers, "middle")
    what = "reordering" if kind == "reorder" else "running in parallel"
    claim = f"{what} a middle span of {s} layers hurts less than dropping it"
    if not middle:
        return stats.missing(claim, "Painters", f"no middle span of {s} layers")
    columns, groups = [], []
    for i in middle:
        plans = _reordered(sums, i, i + s) if kind == "reorder" else [parallel(i, i + s).label]
        groups.append((len(columns), len(columns) + len(plans)))
        columns += [f"drop_range {i}-{i + s - 1}:kl"] + [f"{p}:kl" for p in plans]

    def margin(m: np.ndarray) -> np.ndarray:
        return np.mean([m[a + 1 : b + 1].mean(axis=0) - m[a] for a, b in groups], axis=0)

    kl = dict(zip(columns, stats.means(stack(sums, columns), scored(sums)), strict=True))
    kinds = [k for k in ("drop_range", "reverse", "shuffle", "parallel") if k in " ".join(kl)]
    by_kind = {k: np.mean([v for c, v in kl.items() if c.startswith(k)]) for k in kinds}
    return _decide(
        claim, "Sun et al. 2024, Painters (Figures 2-4)",
        f"mean over the middle spans of [mean KL of {what} minus KL of dropping the span] "
        "(nats, paired)",
        sums, columns, margin, above=False, unit=" nats", seed=seed,
        detail=f"middle spans starting at layers {', '.join(map(str, middle))}; mean KL "
        + ", ".join(f"{k} {v:.3g}" for k, v in by_kind.items()),
    )  # fmt: skip


def order_matters_less_in_the_middle(
    sums: pd.DataFrame, n_layers: int, *, seed: int = 0
) -> Verdict:
    """Reordering a middle span hurts less than reordering one holding the first or last layer."""
    s = span_length(n_layers)
    middle, edge = _spans(n_layers, "middle"), _spans(n_layers, "edge")
    claim = f"the order of a middle span of {s} layers matters less than near either end"
    if not middle or not edge:
        return stats.missing(claim, "Painters", "no middle or no edge span")
    mids = [c for i in middle for c in _reordered(sums, i, i + s)]
    first = _reordered(sums, 0, s)
    last = _reordered(sums, n_layers - s, n_layers)
    columns = [f"{p}:kl" for p in mids + first + last]
    a, b = len(mids), len(mids) + len(first)

    def margin(m: np.ndarray) -> np.ndarray:  # the gentler end against the middle
        return np.minimum(m[a:b].mean(axis=0), m[b:].mean(axis=0)) - m[:a].mean(axis=0)

    return _decide(
        claim, "Sun et al. 2024, Painters; the paper's section 4",
        "mean KL of reordering (reverse, shuffles) the first or the last span, whichever is "
        "smaller, minus that of the middle spans (nats, paired)",
        sums, columns, margin, above=True, unit=" nats", seed=seed,
        detail=f"{len(mids)} middle reorderings; {len(first)} of the first and {len(last)} of "
        "the last span",
    )  # fmt: skip


# --------------------------------------------------------------------------- duplication


def more_copies_more_damage(sums: pd.DataFrame, n_layers: int, *, seed: int = 0) -> Verdict:
    """KL grows with the number of copies, for every duplicated range (the least margin of all)."""
    ranges = duplication_ranges(n_layers)
    lo_n, hi_n = TIMES[0], TIMES[-1]
    columns = [f"{duplicate(i, j, n).label}:kl" for i, j in ranges for n in (lo_n, hi_n)]

    def margin(m: np.ndarray) -> np.ndarray:
        return (m[1::2] - m[0::2]).min(axis=0)

    return _decide(
        f"running each layer of a range {hi_n} times hurts more than {lo_n} times, for every range",
        "the later version (layer duplication)",
        f"smallest over the {len(ranges)} ranges of KL(x{hi_n}) minus KL(x{lo_n}) (nats, paired)",
        sums, columns, margin, above=True, unit=" nats", seed=seed,
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
        detail="the direction is ours to test: the later version reports the entropy, not a sign",
    )  # fmt: skip


# --------------------------------------------------------------------------- similarity, skips


def score_predicts_drop(
    similarity: pd.DataFrame, sweep: pd.DataFrame, score: str = "block_influence",
    *, seed: int = 0,
) -> Verdict:  # fmt: skip
    """ShortGPT / Gromov: a one-pass layer score ranks the layers as dropping them does.

    Layer 0 is left out (dropping it is catastrophic in every model and would decide alone).
    The two frames may hold different numbers of the same sequences: the first common rows
    are used.
    """
    from stages.analyses.similarity import predicts_drop_kl

    n = min(len(similarity), len(sweep))
    r = predicts_drop_kl(similarity.head(n), sweep.head(n), score, seed=seed)
    title = {"block_influence": "Block Influence 1 - cos(h_in, h_out)",
             "angular": "the angular distance across one block"}[score]  # fmt: skip
    return stats.verdict(
        f"{title} predicts which layer is safe to drop",
        "Men et al. 2024 (ShortGPT)" if score == "block_influence" else "Gromov et al. 2024",
        f"Spearman's rho across layers 1..L-1 between {score.replace('_', ' ')} and the drop's "
        "KL (paired bootstrap)",
        r["rho_without_first"], r["lo_without_first"], r["hi_without_first"], threshold=0.0,
        n=n, detail=f"with layer 0 rho = {r['rho']:.2f} ({r['lo']:.2f} to {r['hi']:.2f})",
    )  # fmt: skip


def early_skips_change_more(skips: pd.DataFrame, n_layers: int, *, seed: int = 0) -> Verdict:
    """Csordás et al.: skipping a first-half layer changes later layers more than a late one."""
    from stages.analyses.skip_effects import first_half_vs_second_half

    without_first = skips[[c for c in skips.columns if not c.startswith("0>")]]
    estimate, lo, hi = first_half_vs_second_half(without_first, n_layers, seed=seed)
    with_first = first_half_vs_second_half(skips, n_layers, seed=seed)
    return stats.verdict(
        "skipping a layer in the first half changes what later layers write more than skipping "
        "one in the second half",
        "Csordás et al. 2025 (Figure 2)",
        "mean relative change of every later layer's attention and MLP output, drops of layers "
        "1.. in the first half minus drops in the second half (paired)",
        estimate, lo, hi, threshold=0.0, n=len(skips),
        detail=f"layer 0, whose drop is catastrophic, is left out; with it {with_first[0]:.3g} "
        f"({with_first[1]:.3g} to {with_first[2]:.3g})",
    )  # fmt: skip


def similarity_claims(
    similarity: pd.DataFrame, skips: pd.DataFrame, sweep: pd.DataFrame, n_layers: int,
    *, seed: int = 0,
) -> list[Verdict]:  # fmt: skip
    """The layer-similarity and skip-effect claims."""
    return [
        score_predicts_drop(similarity, sweep, "block_influence", seed=seed),
        score_predicts_drop(similarity, sweep, "angular", seed=seed),
        early_skips_change_more(skips, n_layers, seed=seed),
    ]


# --------------------------------------------------------------------------- cloze

CLOZE_KEPT = 0.72
"""The paper's lower bound on the share of top-1 predictions a middle-layer drop keeps, asked of
cloze accuracy."""


def _cloze(sums: pd.DataFrame, labels: list[str]) -> np.ndarray:
    """``[len(labels), n_windows]``: 1.0 where the plan produced the window's word."""
    return stack(sums, [f"{label}:correct" for label in labels])


def cloze_claims(sums: pd.DataFrame, n_layers: int, *, seed: int = 0) -> list[Verdict]:
    """The paper's robustness claims asked of the cloze task (per-window correctness)."""
    from stages.claims.depth import MIDDLE, layers_where

    middle = layers_where(n_layers, *MIDDLE)
    drops = ["none", *[f"drop {i}" for i in middle]]
    swaps = [f"swap {i}-{i + 1}" for i in middle if i + 1 < n_layers]
    n = len(sums)
    figure = "the later version (downstream accuracy); the paper's Figure 3"

    def kept(m: np.ndarray) -> np.ndarray:
        base = np.where(m[0] > 0, m[0], np.nan)  # undefined without a baseline hit
        return m[1:].min(axis=0) / base

    est, dist = stats.bootstrap(_cloze(sums, drops), statistic=kept, seed=seed)
    lo, hi, undefined = stats.defined_percentile(dist)
    share = stats.verdict(
        f"every single middle-layer drop keeps at least {CLOZE_KEPT:.0%} of the cloze accuracy",
        figure, "the worst middle-layer drop's cloze accuracy divided by the baseline's",
        est, lo, hi, threshold=CLOZE_KEPT, n=n, unit="windows",
        detail=f"baseline accuracy {sums['none:correct'].mean():.1%}"
        + (f"; {undefined} of {stats.N_BOOT} resamples had no baseline hit and count against "
           "the claim at both ends of the interval" if undefined else ""),
    )  # fmt: skip

    def first(m: np.ndarray) -> np.ndarray:
        return m[1:].min(axis=0) - m[0]

    est, lo, hi = stats.interval(_cloze(sums, ["drop 0", *drops[1:]]), statistic=first, seed=seed)
    catastrophic = stats.verdict(
        "dropping the first layer hurts cloze accuracy more than any middle-layer drop",
        figure, "worst middle-layer drop's accuracy minus the first layer's drop's (paired)",
        est, lo, hi, threshold=0.0, n=n, unit="windows",
    )  # fmt: skip

    def gentler(m: np.ndarray) -> np.ndarray:
        k = len(swaps)
        return (m[:k] - m[k:]).mean(axis=0)

    labels = swaps + [f"drop {i}" for i in middle if i + 1 < n_layers]
    est, lo, hi = stats.interval(_cloze(sums, labels), statistic=gentler, seed=seed)
    swap = stats.verdict(
        "in the middle layers, swapping keeps more cloze accuracy than dropping",
        figure, "mean over middle layers i of accuracy(swap i, i+1) minus accuracy(drop i) "
        "(paired)",
        est, lo, hi, threshold=0.0, n=n, unit="windows",
    )  # fmt: skip
    return [share, catastrophic, swap]


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
