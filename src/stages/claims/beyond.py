"""Claims beyond single layers (the later version and related work), decided.

Each claim is a function of per-sequence sums (:mod:`stages.engine.sweep` for the plan
experiments), so its interval resamples sequences and compares plans *paired*, on the same
resampled sequences (:mod:`stages.stats`). KL is in nats; entropy change in bits.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from scipy import stats as sps

from stages import stats
from stages.analyses.duplication import TIMES, duplication_ranges
from stages.analyses.reorder import REORDERINGS, span_length, span_starts, where
from stages.analyses.similarity import SCORES, n_layers_of
from stages.analyses.skip_effects import first_half_vs_second_half
from stages.claims.association import (
    N_PERMUTATIONS,
    Association,
    block_length,
    circular_block_indices,
    layer_verdict,
    spearman,
)
from stages.depth import scored, stack
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
    return stats.every_verdict(
        claim, figure, statistic, estimate, dist, above=above, n=len(sums), threshold_unit=unit,
        source=source, detail=detail,
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


def score_tracks_drop(
    similarity: pd.DataFrame, sweep: pd.DataFrame, score: str = "block_influence",
    *, seed: int = 0,
) -> Verdict:  # fmt: skip
    """ShortGPT / Gromov: a one-pass layer score ranks the layers as dropping them does.

    Spearman's rho across layers ``1..L-1`` between the layer's token-mean ``score`` (over
    positions ``1..seq_len-1``) and the token-mean KL of the sweep's ``drop l`` (positions
    ``1..seq_len-2``), the means of :func:`stages.analyses.similarity.predicts_drop_kl`. Layer 0
    is left out (dropping it is catastrophic in every model and would decide alone). Interval: a
    circular block bootstrap over the layers; null: every layer's score exchangeable
    (``scipy.stats.permutation_test``, pairings). The two frames may hold different numbers of
    the same sequences: the first common rows are used.

    Args:
        similarity: :func:`stages.analyses.similarity.similarity_sums`.
        sweep: :func:`stages.engine.sweep.sweep_sums` of the same sequences.
        score: ``"block_influence"`` or ``"angular"``.
        seed: bootstrap and permutation seed.
    """
    n_seq = min(len(similarity), len(sweep))
    sim, drops = similarity.head(n_seq), sweep.head(n_seq)
    title = {"block_influence": "Block Influence 1 - cos(h_in, h_out)",
             "angular": "the angular distance across one block"}[score]  # fmt: skip
    claim = f"{title} predicts which layer is safe to drop"
    figure = "Men et al. 2024 (ShortGPT)" if score == "block_influence" else "Gromov et al. 2024"
    layers = [x for x in range(n_layers_of(sim)) if f"drop {x}:kl" in drops.columns]
    if len(layers) < 4 or layers[0] != 0:
        return stats.missing(claim, figure, "needs drops of layer 0 and at least 3 more layers",
                             "layers", source="related work")  # fmt: skip
    seq_len = sim["seq_len"].to_numpy(dtype=np.float64)
    x_all = stats.means(stack(sim, [SCORES[score].format(l=x) for x in layers]), seq_len - 1)
    y_all = stats.means(stack(drops, [f"drop {x}:kl" for x in layers]), seq_len - 2)
    x, y, layers = x_all[1:], y_all[1:], layers[1:]
    idx = circular_block_indices(len(layers), seed=seed)
    null = sps.permutation_test(
        (x, y), lambda u, v, axis=-1: spearman(u, v), permutation_type="pairings",
        n_resamples=N_PERMUTATIONS, alternative="greater", vectorized=True,
        rng=np.random.default_rng(seed),
    )  # fmt: skip
    association = Association(
        float(spearman(x, y)), spearman(x[idx], y[idx]),
        np.concatenate([[spearman(x, y)], null.null_distribution]), len(layers),
        block_length(len(layers)),
    )  # fmt: skip
    return layer_verdict(
        claim, figure,
        f"Spearman's rho across layers {layers[0]}-{layers[-1]} between each layer's mean "
        f"{score.replace('_', ' ')} and the mean KL of dropping it",
        association, unit="layers", n_seq=n_seq,
        detail=f"{association.describe('layers exchangeable (permutations of the scores)')}; "
        f"with layer 0, rho = {float(spearman(x_all, y_all)):.2f}; means over {n_seq} sequences",
        source="related work",
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
