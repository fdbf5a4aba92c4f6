"""The paper's robustness claims (section 4, Figure 3; appendix B, Figures 13-15), decided.

Every claim is a function of :func:`stages.engine.sweep.sweep_sums` (per-sequence metric sums of
every intervention), so its interval resamples sequences and compares interventions *paired*, on the
same resampled sequences (:mod:`stages.stats`). Relative accuracy is the share of top-1
predictions kept; KL is in nats; entropy change in bits.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from stages import stats
from stages.claims.depth import MIDDLE, layers_where, rel_depth, scored, span, stack
from stages.stats import Verdict

PAPER_KEPT = 0.72
"""The lower end of the paper's "72-95% of top-1 predictions kept" by middle-layer interventions."""

FIGURE = "Figure 3"


def _label(kind: str, layer: int) -> str:
    return f"swap {layer}-{layer + 1}" if kind == "swap" else f"{kind} {layer}"


def _layers(sums: pd.DataFrame, kind: str, n_layers: int) -> list[int]:
    """Layers of ``kind`` present in the sums, in order."""
    top = n_layers - 1 if kind == "swap" else n_layers
    return [layer for layer in range(top) if f"{_label(kind, layer)}:kl" in sums.columns]


def _values(sums: pd.DataFrame, kind: str, layers: list[int], metric: str) -> np.ndarray:
    return stack(sums, [f"{_label(kind, layer)}:{metric}" for layer in layers])


def kept_in_every_middle_layer(
    sums: pd.DataFrame, n_layers: int, kind: str, *, seed: int = 0
) -> Verdict:
    """Every middle-layer ``kind`` keeps at least 72% of top-1 predictions (simultaneously)."""
    middle = [x for x in _layers(sums, kind, n_layers) if x in layers_where(n_layers, *MIDDLE)]
    claim = f"every single middle-layer {kind} keeps at least 72% of top-1 predictions"
    if not middle:
        return stats.missing(claim, FIGURE, f"no middle-layer {kind} in the sweep")
    values = _values(sums, kind, middle, "rel_acc")
    estimate, dist = stats.bootstrap(values, scored(sums), seed=seed)
    lo, hi = stats.simultaneous(estimate, dist)
    worst = int(np.argmin(estimate))
    return stats.verdict(
        claim,
        FIGURE,
        "the smallest share of top-1 predictions kept over the middle layers (simultaneous "
        "95% band over those layers)",
        estimate.min(),
        lo.min(),
        hi.min(),
        threshold=PAPER_KEPT,
        n=len(sums),
        detail=f"over {span(middle)} the share kept ranges from {estimate.min():.1%} "
        f"({_label(kind, middle[worst])}) to {estimate.max():.1%}; the paper reports 72-95%",
    )


def first_or_last_hurts_most(
    sums: pd.DataFrame, n_layers: int, kind: str, where: str, *, seed: int = 0
) -> Verdict:
    """The first (or last) ``kind`` raises KL more than any middle-layer ``kind`` (paired)."""
    layers = _layers(sums, kind, n_layers)
    middle = [x for x in layers if x in layers_where(n_layers, *MIDDLE)]
    claim = f"the {where} {kind} hurts more than any middle-layer {kind}"
    if not layers or not middle:
        return stats.missing(claim, FIGURE, f"no {kind} in the sweep")
    edge = layers[0] if where == "first" else layers[-1]
    values = _values(sums, kind, [edge, *middle], "kl")

    def margin(m: np.ndarray) -> np.ndarray:
        return m[0] - m[1:].max(axis=0)

    estimate, lo, hi = stats.interval(values, scored(sums), margin, seed=seed)
    kl = stats.means(values, scored(sums))
    return stats.verdict(
        claim,
        FIGURE + (" (catastrophic first layer)" if where == "first" else " (last layer)"),
        f"KL of the {where} {kind} minus the largest middle-layer KL (nats, paired)",
        estimate,
        lo,
        hi,
        threshold=0.0,
        n=len(sums),
        threshold_unit=" nats",
        detail=f"{_label(kind, edge)}: KL {kl[0]:.3g} nats; middle layers at most "
        f"{kl[1:].max():.3g} ({_label(kind, middle[int(np.argmax(kl[1:]))])})",
    )


def first_raises_entropy(sums: pd.DataFrame, n_layers: int, kind: str, *, seed: int = 0) -> Verdict:
    """The first-layer ``kind`` raises the entropy of the predictions."""
    layers = _layers(sums, kind, n_layers)
    claim = f"the first-layer {kind} raises the entropy of the predictions"
    if not layers:
        return stats.missing(claim, FIGURE, f"no {kind} in the sweep")
    values = _values(sums, kind, layers[:1], "entropy_delta")
    estimate, lo, hi = stats.interval(values, scored(sums), seed=seed)
    return stats.verdict(
        claim,
        FIGURE + " (entropy change)",
        f"mean entropy change H(Q) - H(P) under {_label(kind, layers[0])} (bits)",
        estimate[0],
        lo[0],
        hi[0],
        threshold=0.0,
        n=len(sums),
        threshold_unit=" bits",
        detail=f"baseline entropy {sums['entropy'].sum() / scored(sums).sum():.2f} bits",
    )


def swaps_gentler_than_drops(sums: pd.DataFrame, n_layers: int, *, seed: int = 0) -> Verdict:
    """In the middle layers, swapping ``i, i+1`` hurts less than dropping ``i`` (paired, mean)."""
    middle = [
        x
        for x in layers_where(n_layers, *MIDDLE)
        if x in _layers(sums, "drop", n_layers) and x in _layers(sums, "swap", n_layers)
    ]
    claim = "in the middle layers, swapping layers i, i+1 hurts less than dropping layer i"
    figure = FIGURE + " (zoom)"
    if not middle:
        return stats.missing(claim, figure, "no middle-layer drops and swaps in the sweep")
    diff = _values(sums, "swap", middle, "kl") - _values(sums, "drop", middle, "kl")
    estimate, dist = stats.bootstrap(diff, scored(sums), seed=seed)
    lo_k, hi_k = stats.simultaneous(estimate, dist)
    mean_dist = dist.mean(axis=0)
    lo, hi = stats.percentile(mean_dist)
    below, above = int((hi_k < 0).sum()), int((lo_k > 0).sum())
    return stats.verdict(
        claim,
        figure,
        "KL(swap i, i+1) - KL(drop i), averaged over the middle layers (nats, paired)",
        estimate.mean(),
        lo,
        hi,
        threshold=0.0,
        above=False,
        n=len(sums),
        threshold_unit=" nats",
        detail=f"over {span(middle)}: the swap is gentler at {below} and harsher at {above} "
        f"of {len(middle)} layers with simultaneous 95% confidence",
    )


def mlp_drops_peak_late(sums: pd.DataFrame, n_layers: int, *, seed: int = 0) -> Verdict:
    """Dropping only an MLP hurts most in the last quarter (the first layer aside)."""
    layers = [x for x in _layers(sums, "drop_mlp", n_layers) if x > 0]
    late = [x for x in layers if rel_depth(x, n_layers) > MIDDLE[1]]
    early = [x for x in layers if rel_depth(x, n_layers) <= MIDDLE[1]]
    claim = "dropping only an MLP hurts most in the final layers (the first layer aside)"
    figure = "Figures 13-15"
    if not late or not early:
        return stats.missing(claim, figure, "no MLP-only drops in the sweep")
    values = _values(sums, "drop_mlp", late + early, "kl")

    def gap(m: np.ndarray) -> np.ndarray:
        return m[: len(late)].max(axis=0) - m[len(late) :].max(axis=0)

    estimate, lo, hi = stats.interval(values, scored(sums), gap, seed=seed)
    kl = stats.means(values, scored(sums))
    peak = (late + early)[int(np.argmax(kl))]
    return stats.verdict(
        claim,
        figure,
        f"the largest KL of an MLP-only drop in the last quarter ({span(late)}) minus the "
        f"largest in {span(early)} (nats, paired)",
        estimate,
        lo,
        hi,
        threshold=0.0,
        n=len(sums),
        threshold_unit=" nats",
        detail=f"the largest MLP-only KL after layer 0 is at layer {peak} (relative depth "
        f"{rel_depth(peak, n_layers):.2f}, {kl.max():.3g} nats)",
    )


def robustness_claims(sums: pd.DataFrame, n_layers: int, *, seed: int = 0) -> list[Verdict]:
    """Every robustness claim decided from a sweep's per-sequence sums.

    Args:
        sums: :func:`stages.engine.sweep.sweep_sums` with drops, swaps, attention-only and MLP-only
            drops (a claim whose interventions are missing is ``not enough data``).
        n_layers: the model's number of blocks.
        seed: the bootstrap seed.
    """
    out = []
    for kind in ("drop", "swap"):
        out.append(kept_in_every_middle_layer(sums, n_layers, kind, seed=seed))
    for kind in ("drop", "swap"):
        out.append(first_or_last_hurts_most(sums, n_layers, kind, "first", seed=seed))
        out.append(first_raises_entropy(sums, n_layers, kind, seed=seed))
    for kind in ("drop", "swap"):
        out.append(first_or_last_hurts_most(sums, n_layers, kind, "last", seed=seed))
    out.append(swaps_gentler_than_drops(sums, n_layers, seed=seed))
    out.append(mlp_drops_peak_late(sums, n_layers, seed=seed))
    return out


def most_damaging(table: pd.DataFrame, kind: str, k: int = 3) -> pd.DataFrame:
    """The ``k`` rows of one kind of a sweep table with the largest KL."""
    return table[table["kind"] == kind].nlargest(k, "kl")
