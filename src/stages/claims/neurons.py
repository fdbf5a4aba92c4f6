"""Claims about prediction and suppression neurons (paper sections 5.3-5.4, Figure 6).

The classes come from the weights alone (:func:`stages.analyses.neurons.neuron_classes`): a claim
about neuron counts treats the neurons as the units, with an exact binomial interval for a share
(:func:`stages.stats.clopper_pearson`) or each layer's fraction drawn over its neurons for a
comparison of layers (:func:`fraction_bootstrap`), and needs :data:`MIN_NEURONS` neurons of the
class. The phase transition (:func:`fall_tracks_neurons`) compares them with the logit lens over
blocks.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from stages import stats
from stages.analyses.neurons import class_counts
from stages.claims.association import (
    FREEDMAN_LANE,
    Association,
    block_length,
    circular_block_indices,
    freedman_lane,
    layer_verdict,
    partial_spearman,
    spearman,
)
from stages.depth import HALF, LAST, layers_where, rel_depth, span, stack
from stages.stats import Verdict

PEAK_RANGE = (0.75, 0.95)
"""Where "peaking near 85% depth" is taken to hold."""


AFTER_MIDPOINT = 0.9
"""Share of prediction neurons past the midpoint for "they appear after the midpoint"."""


DECLINE = 0.5
"""The last layer's prediction-neuron fraction at most this share of the peak's: a decline."""


MIN_NEURONS = 10
"""Fewest classed neurons a neuron-count claim needs."""


def _share(
    claim: str, statistic: str, k: int, n: int, threshold: float, unit: str, detail: str,
) -> Verdict:  # fmt: skip
    """A verdict on a share of neurons ``k / n`` above ``threshold``, with its exact interval.

    The interval is Clopper-Pearson's (:func:`stages.stats.clopper_pearson`): the neurons of
    the class are the units, as if the model had been trained again and grown another sample
    of them.
    """
    share = k / n if n else np.nan
    lo, hi = stats.clopper_pearson(k, n)
    decided = "not enough data" if n < MIN_NEURONS else stats.decide(lo, hi, threshold)
    rule = (
        f"holds if the whole exact (Clopper-Pearson) 95% interval of the share is above "
        f"{threshold:.0%}; does not hold if it is entirely below; unclear otherwise; not enough "
        f"data below {MIN_NEURONS} {unit}"
    )
    return Verdict(claim, "Figure 6", statistic, float(share), lo, hi, rule, n, unit, decided,
                   detail)  # fmt: skip


def fraction_bootstrap(
    classes: pd.DataFrame, cls: str, *, n_boot: int = stats.N_BOOT, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Each layer's fraction of ``cls`` neurons, and its distribution over the layer's neurons.

    A layer holding ``k`` of its ``d_mlp`` neurons in the class has its fraction drawn from the
    Jeffreys posterior ``Beta(k + 1/2, d_mlp - k + 1/2)``: its spread is the binomial
    bootstrap's (resampling the layer's neurons) where ``k > 0``, and a layer with no neuron of
    the class still varies (the binomial bootstrap of an observed 0 is 0 in every resample, a
    zero-width band that would let such a layer decide a comparison).

    Returns:
        ``(fractions, distribution)``: ``[n_layers]`` (``k / d_mlp``) and ``[n_layers, n_boot]``.
    """
    counts = class_counts(classes).sort_values("layer")
    k, size = counts[cls].to_numpy(), counts["d_mlp"].to_numpy()
    rng = np.random.default_rng(seed)
    draws = rng.beta((k + 0.5)[:, None], (size - k + 0.5)[:, None], size=(len(k), n_boot))
    return k / size, draws


def _fraction_gap(
    claim: str, classes: pd.DataFrame, cls: str, first: list[int], second: list[int],
    statistic: str, detail: str, n_layers: int, seed: int, *, scale_second: float = 1.0,
) -> Verdict:  # fmt: skip
    """The largest ``cls`` fraction among ``first`` layers minus the largest among ``second``.

    ``scale_second`` multiplies the ``second`` layers' fractions first (2: "at most half").
    Decided layer by layer from a sup-t band over every pairwise difference
    (:func:`stages.stats.gap`), each layer's fraction varying over its neurons
    (:func:`fraction_bootstrap`): the unit, and the verdict's ``n``, is the neuron (every MLP
    neuron of every layer); the gate is on the neurons of the class.
    """
    estimate, dist = fraction_bootstrap(classes, cls, seed=seed)
    scale = np.ones(n_layers)
    scale[second] = scale_second
    value, lo, hi = stats.gap(estimate * scale, dist * scale[:, None], first, second)
    in_class = int((classes["cls"] == cls).sum())
    neurons = int(class_counts(classes)["d_mlp"].sum())
    decided = "not enough data" if in_class < MIN_NEURONS else stats.decide(lo, hi, 0.0)
    rule = (
        "holds if the whole 95% interval is above 0 (some layer of the first group above every "
        "layer of the second, with simultaneous confidence over all pairs); does not hold if it "
        f"is entirely below 0; unclear otherwise; not enough data below {MIN_NEURONS} {cls} "
        "neurons (each layer's fraction drawn over its neurons: Jeffreys posterior)"
    )
    return Verdict(claim, "Figure 6", statistic, value, lo, hi, rule, neurons,
                   "MLP neurons (within layers)", decided,
                   f"{detail}; {in_class} {cls} neurons of {neurons}")  # fmt: skip


def prediction_after_midpoint(classes: pd.DataFrame, n_layers: int) -> Verdict:
    """At least 90% of prediction neurons lie past the midpoint."""
    pred = classes[classes["cls"] == "prediction"]
    after = int((rel_depth(pred["layer"], n_layers) > HALF).sum())
    return _share(
        "prediction neurons appear after the midpoint",
        "share of prediction neurons past relative depth 0.5",
        after,
        len(pred),
        AFTER_MIDPOINT,
        "prediction neurons",
        f"{after} of {len(pred)} prediction neurons",
    )


def prediction_peak_depth(classes: pd.DataFrame, n_layers: int, *, seed: int = 0) -> Verdict:
    """The prediction-neuron fraction peaks at 75-95% depth."""
    inside = layers_where(n_layers, *PEAK_RANGE)
    outside = [x for x in range(n_layers) if x not in inside]
    counts = class_counts(classes)
    peak = counts.loc[counts["prediction_frac"].idxmax()]
    return _fraction_gap(
        "the prediction-neuron fraction peaks near 85% depth",
        classes,
        "prediction",
        inside,
        outside,
        f"the largest prediction-neuron fraction in {span(inside)} (relative depth "
        f"{PEAK_RANGE[0]}-{PEAK_RANGE[1]}) minus the largest elsewhere",
        f"the largest fraction is at layer {int(peak['layer'])} (relative depth "
        f"{rel_depth(int(peak['layer']), n_layers):.2f}): {int(peak['prediction'])} neurons, "
        f"{peak['prediction_frac']:.1%} of the layer",
        n_layers,
        seed,
    )


def prediction_declines_at_end(classes: pd.DataFrame, n_layers: int, *, seed: int = 0) -> Verdict:
    """The last layer has at most half the prediction-neuron fraction of some earlier layer."""
    counts = class_counts(classes).sort_values("layer")
    peak = counts["prediction_frac"].max()
    last = counts["prediction_frac"].iloc[-1]
    return _fraction_gap(
        "prediction neurons decline in the last layers",
        classes,
        "prediction",
        list(range(n_layers - 1)),
        [n_layers - 1],
        f"the largest prediction-neuron fraction of layers 0-{n_layers - 2} minus "
        f"{1 / DECLINE:.0f}x the last layer's (above 0: the last layer has at most "
        f"{DECLINE:.0%} of the peak's)",
        f"last layer {last:.2%} of its neurons vs {peak:.2%} at the peak",
        n_layers,
        seed,
        scale_second=1 / DECLINE,
    )


def suppression_dominates_last(classes: pd.DataFrame, n_layers: int) -> Verdict:
    """In the last layers, suppression neurons outnumber prediction neurons."""
    last = classes[rel_depth(classes["layer"], n_layers) >= LAST]
    pred = int((last["cls"] == "prediction").sum())
    supp = int((last["cls"] == "suppression").sum())
    layers = sorted(last["layer"].unique().tolist())
    return _share(
        "suppression neurons outnumber prediction neurons in the last layers",
        f"share of suppression among the classed neurons of {span(layers)}",
        supp,
        pred + supp,
        0.5,
        "classed neurons",
        f"{supp} suppression vs {pred} prediction neurons",
    )


def suppression_peaks_last(classes: pd.DataFrame, n_layers: int, *, seed: int = 0) -> Verdict:
    """The last layers hold the highest density of suppression neurons."""
    last = layers_where(n_layers, LAST, 1.0)
    rest = [x for x in range(n_layers) if x not in last]
    counts = class_counts(classes)
    peak = counts.loc[counts["suppression_frac"].idxmax()]
    return _fraction_gap(
        "the final layers hold the highest density of suppression neurons",
        classes,
        "suppression",
        last,
        rest,
        f"the largest suppression-neuron fraction in {span(last)} minus the largest elsewhere",
        f"the largest fraction is at layer {int(peak['layer'])} (relative depth "
        f"{rel_depth(int(peak['layer']), n_layers):.2f}): {peak['suppression_frac']:.1%}",
        n_layers,
        seed,
    )


def _lens_kl(lens: pd.DataFrame, n_layers: int) -> np.ndarray:
    """``[n_layers - 1]``: token-mean KL of the lens after blocks ``0..L-2`` to the final output."""
    values = stack(lens, [f"{x}:kl" for x in range(n_layers - 1)])
    return stats.means(values, (lens["seq_len"] - 2).to_numpy(dtype=np.float64))


def fall_tracks_neurons(
    lens: pd.DataFrame, classes: pd.DataFrame, n_layers: int, *, seed: int = 0
) -> Verdict:
    """Whether the logit-lens KL falls where prediction neurons are, beyond what depth explains.

    For each block ``l`` in ``1..L-2``, its fall ``log KL_{l-1} - log KL_l`` (token-mean KL of
    the lens after a block to the final distribution; the last block, KL 0 by construction, is
    left out) and its prediction-neuron count. Both grow with depth in most models, so their
    plain rank correlation is high by construction; the statistic is their partial Spearman
    correlation controlling for depth (:func:`partial_spearman`), its interval a circular block
    bootstrap over blocks, its null Freedman–Lane permutations (:func:`freedman_lane`).

    Args:
        lens: :func:`stages.analyses.lens.lens_sums` (``"{l}:kl"`` per sequence, ``seq_len``).
        classes: a neuron-class table (:func:`stages.analyses.neurons.classify_table`).
        n_layers: the model's blocks ``L``.
        seed: bootstrap and permutation seed.
    """
    claim = "the logit-lens KL falls where prediction neurons are (a phase transition they drive)"
    figure = "Figure 6"
    counts = class_counts(classes).set_index("layer")["prediction"].reindex(range(n_layers))
    blocks = np.arange(1, n_layers - 1)
    neurons = counts.fillna(0).to_numpy(dtype=np.float64)[blocks]
    if len(blocks) < 3 or np.ptp(neurons) == 0:
        return stats.missing(claim, figure, "needs prediction neurons in some but not all of at "
                             "least 3 blocks", "blocks")  # fmt: skip
    fall = -np.diff(np.log(np.maximum(_lens_kl(lens, n_layers), 1e-300)))  # [L-2]
    depth = blocks.astype(np.float64)
    idx = circular_block_indices(len(blocks), seed=seed)
    association = Association(
        float(partial_spearman(fall, neurons, depth)),
        partial_spearman(fall[idx], neurons[idx], depth[idx]),
        freedman_lane(fall, neurons, depth, seed=seed), len(blocks), block_length(len(blocks)),
    )  # fmt: skip
    steepest = int(blocks[np.argmax(fall)])
    detail = (
        f"{association.describe(FREEDMAN_LANE, 'blocks')}; without the control, Spearman's rho "
        f"of the fall with depth {float(spearman(fall, depth)):.2f}, with the neuron counts "
        f"{float(spearman(fall, neurons)):.2f}; the steepest fall enters block {steepest} "
        f"(relative depth {rel_depth(steepest, n_layers):.2f}); {len(lens)} sequences"
    )
    return layer_verdict(
        claim, figure,
        f"partial Spearman correlation, controlling for depth, between each block's fall of log "
        f"KL and its prediction-neuron count, blocks 1-{n_layers - 2}",
        association, unit="blocks", n_seq=len(lens), detail=detail,
    )  # fmt: skip
