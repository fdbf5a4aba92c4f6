"""Appendix A's claims on what swapped layers write (Figure 12), from per-sequence cosine sums.

Inputs are :func:`stages.analyses.swap_similarity.swap_similarity_sums`: per sequence, the cosine of
component outputs summed over positions ``1..seq_len-1`` for every swap ``i, i+1``. "Stage 2" is
taken as the swaps starting at relative depth 0.25-0.5 and "stage 3" as those after 0.5 and up
to 0.85 (the stages the paper names in its appendix; its boundaries are drawn by eye).

A claim about what a swapped MLP does in a stage is a claim about every swap of the stage: it is
decided swap by swap (:func:`stages.stats.every_verdict`: the least per-swap difference with a
simultaneous band over the swaps), not from a mean that one swap can carry. The comparison of
two stages' levels (:func:`index_similarity_drops_at_midpoint`) is a claim about means.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from stages import stats
from stages.analyses.swap_similarity import _column
from stages.depth import EARLY, HALF, LAST, rel_depth, span, stack
from stages.stats import Verdict


def _swaps(n_layers: int, lo: float, hi: float, *, closed_lo: bool = True) -> list[int]:
    out = []
    for i in range(n_layers - 1):
        d = rel_depth(i, n_layers)
        if (d >= lo if closed_lo else d > lo) and d <= hi:
            out.append(i)
    return out


def _mean_gap(
    sums: pd.DataFrame, first: list[str], second: list[str], *, seed: int
) -> tuple[float, float, float]:
    """Mean over columns ``first`` minus mean over ``second`` (per-token cosines; paired)."""
    counts = (sums["seq_len"] - 1).to_numpy(dtype=np.float64)
    values = stack(sums, first + second)
    k = len(first)
    estimate, lo, hi = stats.interval(
        values, counts, lambda m: m[:k].mean(axis=0) - m[k:].mean(axis=0), seed=seed
    )
    return float(estimate), float(lo), float(hi)


def _per_swap(
    sums: pd.DataFrame, first: list[str], second: list[str], *, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per item ``first[i] - second[i]`` of mean per-token cosines, with its bootstrap.

    Returns:
        ``(differences, distribution)``: ``[k]`` and ``[k, n_boot]``, paired over sequences.
    """
    counts = (sums["seq_len"] - 1).to_numpy(dtype=np.float64)
    k = len(first)
    return stats.bootstrap(
        stack(sums, first + second), counts, lambda m: m[:k] - m[k:], seed=seed
    )


def mlp_index_beats_self_in_stage2(sums: pd.DataFrame, n_layers: int, *, seed: int = 0) -> Verdict:
    """Stage 2: an MLP moved earlier writes more like the layer it replaced than like itself."""
    swaps = _swaps(n_layers, EARLY, HALF)
    first = [_column(i, "mlp", "index", "moved earlier") for i in swaps]
    second = [_column(i, "mlp", "self", "moved earlier") for i in swaps]
    estimate, dist = _per_swap(sums, first, second, seed=seed)
    return stats.every_verdict(
        "in stage 2, an MLP moved earlier writes more like the MLP it replaced than like itself",
        "Figure 12 (MLPs)",
        f"least over swaps {span(swaps).removeprefix('layers ')} of the MLP index minus "
        "self-similarity of the layer moved earlier (cosine, paired; simultaneous 95% band "
        "over the swaps)",
        estimate,
        dist,
        n=len(sums),
        detail="the paper finds this in Pythia 1.4B and, less, in GPT-2 XL",
    )


def mlp_index_beats_adjacent_in_stage2(
    sums: pd.DataFrame, n_layers: int, *, seed: int = 0
) -> Verdict:
    """Stage 2: an MLP moved earlier writes more like the MLP it replaced than neighbours do.

    The paper: in stage 2 the index similarity "is higher than both the adjacent similarity and
    the self-similarity"; this is the adjacent half (the self half is
    :func:`mlp_index_beats_self_in_stage2`).
    """
    swaps = _swaps(n_layers, EARLY, HALF)
    first = [_column(i, "mlp", "index", "moved earlier") for i in swaps]
    second = [_column(i, "mlp", "adjacent", "baseline") for i in swaps]
    estimate, dist = _per_swap(sums, first, second, seed=seed)
    return stats.every_verdict(
        "in stage 2, an MLP moved earlier writes more like the MLP it replaced than two "
        "neighbouring MLPs write like each other",
        "Figure 12 (MLPs)",
        f"least over swaps {span(swaps).removeprefix('layers ')} of the MLP index similarity "
        "of the layer moved earlier minus the adjacent similarity of the unswapped pair "
        "(cosine, paired; simultaneous 95% band over the swaps)",
        estimate,
        dist,
        n=len(sums),
        detail="the paper finds the index similarity above both the adjacent and the self "
        "similarity in stage 2",
    )


def index_similarity_drops_at_midpoint(
    sums: pd.DataFrame, n_layers: int, *, seed: int = 0
) -> Verdict:
    """MLP index similarity is lower after the midpoint than in stage 2."""
    before, after = _swaps(n_layers, EARLY, HALF), _swaps(n_layers, HALF, LAST, closed_lo=False)
    pairs = ("moved earlier", "moved later")
    first = [_column(i, "mlp", "index", w) for i in before for w in pairs]
    second = [_column(i, "mlp", "index", w) for i in after for w in pairs]
    estimate, lo, hi = _mean_gap(sums, first, second, seed=seed)
    return stats.verdict(
        "MLP index similarity drops after the midpoint (from iterative refinement to "
        "specialised layers)",
        "Figure 12 (MLPs)",
        f"mean MLP index similarity of swaps {span(before).removeprefix('layers ')} minus "
        f"swaps {span(after).removeprefix('layers ')} (cosine, paired)",
        estimate,
        lo,
        hi,
        threshold=0.0,
        n=len(sums),
    )


def mlps_stubborn_in_stage3(sums: pd.DataFrame, n_layers: int, *, seed: int = 0) -> Verdict:
    """Stage 3: a swapped MLP writes more like itself than like the MLP it replaced."""
    swaps = _swaps(n_layers, HALF, LAST, closed_lo=False)
    pairs = ("moved earlier", "moved later")
    first = [_column(i, "mlp", "self", w) for i in swaps for w in pairs]
    second = [_column(i, "mlp", "index", w) for i in swaps for w in pairs]
    estimate, dist = _per_swap(sums, first, second, seed=seed)
    return stats.every_verdict(
        "in stage 3, a swapped MLP keeps writing what it wrote in its own place (stubborn)",
        "Figure 12 (MLPs)",
        f"least over swaps {span(swaps).removeprefix('layers ')} and both moved layers of the "
        "MLP self- minus index similarity (cosine, paired; simultaneous 95% band over the "
        "swapped layers)",
        estimate,
        dist,
        n=len(sums),
    )


def appendix_claims(sums: pd.DataFrame, n_layers: int, *, seed: int = 0) -> list[Verdict]:
    """Every appendix A claim the book tests."""
    return [
        mlp_index_beats_self_in_stage2(sums, n_layers, seed=seed),
        index_similarity_drops_at_midpoint(sums, n_layers, seed=seed),
        mlps_stubborn_in_stage3(sums, n_layers, seed=seed),
        mlp_index_beats_adjacent_in_stage2(sums, n_layers, seed=seed),
    ]
