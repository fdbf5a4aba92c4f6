"""The paper's four stages (section 5) as claims decided from per-sequence sums and weights.

Inputs are the analyses' per-sequence sums (:func:`stages.analyses.attention.attention_sums`,
:func:`stages.analyses.norms.norms_sums`, :func:`stages.analyses.lens.lens_sums`) and the neuron
classes (:func:`stages.analyses.neurons.neuron_classes`, weights only: a claim about neuron
counts treats the neurons as the units, with an exact binomial interval for a share or a
bootstrap over each layer's neurons for a comparison of layers, and needs :data:`MIN_NEURONS`
neurons of the class). Depth ranges are relative depth ``layer / (n_layers - 1)``: *early* is at
most 0.25, the *first half* at most 0.5, the *last layers* at least 0.85.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from stages import stats
from stages.analyses.attention import locality_counts
from stages.claims.neurons import (
    fall_tracks_neurons,
    prediction_after_midpoint,
    prediction_declines_at_end,
    prediction_peak_depth,
    suppression_dominates_last,
    suppression_peaks_last,
)
from stages.depth import EARLY, HALF, LAST, layers_where, rel_depth, span, stack
from stages.stats import Verdict

AGREEMENT = 0.2
"""Top-1 agreement of the logit lens at the midpoint below which it is "far from final"."""


# --------------------------------------------------------------------------- stage 1


def _head_summed(sums: pd.DataFrame, layers: list[int], quantity: str) -> np.ndarray:
    """``[len(layers), n]``: a locality quantity summed over each layer's heads."""
    heads = sorted({c.split(":")[0].split(".")[1] for c in sums.columns if ":" in c}, key=int)
    return np.stack(
        [stack(sums, [f"{layer}.{h}:{quantity}" for h in heads]).sum(0) for layer in layers]
    )


def local_attention_early(
    attention: pd.DataFrame, n_layers: int, *, offsets: int = 5, seed: int = 0
) -> Verdict:
    """Attention to the previous five tokens peaks in the first quarter.

    Decided layer by layer: the largest early layer mean minus the largest later one, with an
    interval from a sup-t band over every (early, later) pair (:func:`stages.stats.gap`).
    """
    layers = list(range(n_layers))
    early = layers_where(n_layers, 0.0, EARLY)
    later = [x for x in layers if x not in early]
    n_heads = len({c.split(":")[0] for c in attention.columns if ":" in c}) // n_layers
    values = _head_summed(attention, layers, "attn_prev5")
    counts = np.array(
        [locality_counts(int(t), offsets)["attn_prev5"] for t in attention["seq_len"]]
    )
    per_layer, dist = stats.bootstrap(values, counts * n_heads, seed=seed)
    estimate, lo, hi = stats.gap(per_layer, dist, early, later)
    peak = int(np.argmax(per_layer))
    return stats.verdict(
        "attention to the previous five tokens is highest in the early layers",
        "Figure 4",
        f"the largest layer mean of attention per previous-5 entry (the paper's quantity) in "
        f"{span(early)} minus the largest in the later layers (paired; simultaneous 95% band "
        "over every pair of layers)",
        estimate,
        lo,
        hi,
        threshold=0.0,
        n=len(attention),
        detail=f"{per_layer[early].mean():.3f} in the first quarter vs "
        f"{per_layer[later].mean():.3f} later; highest at layer {peak} (relative depth "
        f"{rel_depth(peak, n_layers):.2f})",
    )


def attention_outweighs_mlp_early(norms: pd.DataFrame, n_layers: int, *, seed: int = 0) -> Verdict:
    """Over the first quarter taken together, attention writes more into the residual than the MLP.

    A claim about the early layers as a whole (the ratio of norms summed over them), not about
    each early layer: the page's Figure 5 shows each layer's ratio.
    """
    early = layers_where(n_layers, 0.0, EARLY)
    attn = stack(norms, [f"{x}:hook_attn_out" for x in early]).sum(0)
    mlp = stack(norms, [f"{x}:hook_mlp_out" for x in early]).sum(0)
    estimate, lo, hi = stats.interval(np.stack([attn, mlp]), None, lambda m: m[0] / m[1], seed=seed)
    later = [x for x in range(n_layers) if x not in early]
    ratio_later = (
        stack(norms, [f"{x}:hook_attn_out" for x in later]).sum()
        / stack(norms, [f"{x}:hook_mlp_out" for x in later]).sum()
    )
    return stats.verdict(
        "over the early layers taken together, attention writes more into the residual than "
        "the MLP",
        "Figure 5",
        f"|attention output| / |MLP output| over {span(early)} (ratio of summed norms)",
        estimate,
        lo,
        hi,
        threshold=1.0,
        n=len(norms),
        detail=f"the same ratio over the later layers is {ratio_later:.2f}",
    )


# --------------------------------------------------------------------------- stage 2


def _lens_counts(lens: pd.DataFrame) -> np.ndarray:
    return (lens["seq_len"] - 2).to_numpy(dtype=np.float64)


def lens_far_at_midpoint(lens: pd.DataFrame, n_layers: int, *, seed: int = 0) -> Verdict:
    """At the midpoint the logit lens rarely agrees with the final top-1 prediction."""
    mid = layers_where(n_layers, 0.0, HALF)[-1]
    estimate, lo, hi = stats.interval(
        stack(lens, [f"{mid}:rel_acc", f"{mid}:kl"]), _lens_counts(lens), seed=seed
    )
    return stats.verdict(
        f"at the midpoint the logit lens is far from the final prediction (top-1 agreement "
        f"below {AGREEMENT:.0%})",
        "Figures 6, 8",
        f"top-1 agreement of the logit lens after layer {mid} (relative depth "
        f"{rel_depth(mid, n_layers):.2f}) with the model's own top-1",
        estimate[0],
        lo[0],
        hi[0],
        threshold=AGREEMENT,
        above=False,
        n=len(lens),
        detail=f"KL to the final distribution there: {estimate[1]:.2f} nats "
        f"({lo[1]:.2f}-{hi[1]:.2f})",
    )


def lens_entropy_high_first_half(lens: pd.DataFrame, n_layers: int, *, seed: int = 0) -> Verdict:
    """At every layer of the first half, the logit lens's entropy exceeds the model's own."""
    half = layers_where(n_layers, 0.0, HALF)
    # entropy_delta sums are H(Q_l) - H(P): each layer's mean is its gap
    values = stack(lens, [f"{x}:entropy_delta" for x in half])
    estimate, dist = stats.bootstrap(values, _lens_counts(lens), seed=seed)
    lo, hi = stats.simultaneous(estimate, dist)
    final = lens["final_entropy"].sum() / _lens_counts(lens).sum()
    low = half[int(np.argmin(estimate))]
    return stats.verdict(
        "through the first half, the logit-lens distributions have higher entropy than the "
        "model's own",
        "Figure 8",
        f"the smallest entropy gap H(Q_l) - H(P) over {span(half)} (bits; simultaneous 95% band "
        "over those layers)",
        estimate.min(),
        lo.min(),
        hi.min(),
        threshold=0.0,
        n=len(lens),
        threshold_unit=" bits",
        detail=f"smallest after layer {low}; the model's own entropy is {final:.2f} bits",
    )


# --------------------------------------------------------------------------- stage 3


# --------------------------------------------------------------------------- stage 4


def mlp_norm_peaks_last(norms: pd.DataFrame, n_layers: int, *, seed: int = 0) -> Verdict:
    """The largest MLP output norm is in the last layers (decided layer by layer)."""
    last = layers_where(n_layers, LAST, 1.0)
    rest = [x for x in range(n_layers) if x not in last]
    order = last + rest
    values = stack(norms, [f"{x}:hook_mlp_out" for x in order])
    counts = (norms["seq_len"] - 1).to_numpy(dtype=np.float64)
    log_means, dist = stats.bootstrap(values, counts, np.log, seed=seed)
    k = len(last)
    estimate, lo, hi = stats.gap(log_means, dist, list(range(k)), list(range(k, len(order))))
    peak = order[int(np.argmax(log_means))]
    return stats.verdict(
        "the MLP output norm peaks in the last layers",
        "Figure 7",
        f"the largest mean MLP output norm in {span(last)} over the largest elsewhere (a ratio; "
        "simultaneous 95% band over every pair of layers)",
        float(np.exp(estimate)),
        float(np.exp(lo)),
        float(np.exp(hi)),
        threshold=1.0,
        n=len(norms),
        detail=f"largest at layer {peak} (relative depth {rel_depth(peak, n_layers):.2f})",
    )


def last_layer_raises_entropy(lens: pd.DataFrame, n_layers: int, *, seed: int = 0) -> Verdict:
    """The last block raises the entropy of the prediction (lens after L-2 vs the output)."""
    before = n_layers - 2
    # H(P) - H(Q_{L-2}) = -(entropy_delta of layer L-2)
    return stats.mean_verdict(
        "the last layer raises the entropy of the prediction",
        "Figure 8",
        f"entropy of the output minus that of the logit lens after layer {before} (bits, paired)",
        -stack(lens, [f"{before}:entropy_delta"]),
        _lens_counts(lens),
        seed=seed,
        threshold=0.0,
        threshold_unit=" bits",
    )


def detokenization_claims(
    attention: pd.DataFrame, norms: pd.DataFrame, n_layers: int, *, seed: int = 0
) -> list[Verdict]:
    """Stage 1: local attention and attention-dominated writes in the early layers."""
    return [
        local_attention_early(attention, n_layers, seed=seed),
        attention_outweighs_mlp_early(norms, n_layers, seed=seed),
    ]


def feature_engineering_claims(
    lens: pd.DataFrame, n_layers: int, *, seed: int = 0
) -> list[Verdict]:
    """Stage 2: the logit lens makes little progress through the first half."""
    return [
        lens_far_at_midpoint(lens, n_layers, seed=seed),
        lens_entropy_high_first_half(lens, n_layers, seed=seed),
    ]


def ensembling_claims(
    classes: pd.DataFrame, lens: pd.DataFrame, n_layers: int, *, seed: int = 0
) -> list[Verdict]:
    """Stage 3: prediction neurons after the midpoint, peaking late; the KL falls with them."""
    return [
        prediction_after_midpoint(classes, n_layers),
        prediction_peak_depth(classes, n_layers, seed=seed),
        prediction_declines_at_end(classes, n_layers, seed=seed),
        fall_tracks_neurons(lens, classes, n_layers, seed=seed),
    ]


def sharpening_claims(
    classes: pd.DataFrame, norms: pd.DataFrame, lens: pd.DataFrame, n_layers: int, *,
    seed: int = 0,
) -> list[Verdict]:  # fmt: skip
    """Stage 4: suppression neurons, large MLP outputs and rising entropy at the end."""
    return [
        suppression_dominates_last(classes, n_layers),
        mlp_norm_peaks_last(norms, n_layers, seed=seed),
        last_layer_raises_entropy(lens, n_layers, seed=seed),
        suppression_peaks_last(classes, n_layers, seed=seed),
    ]
