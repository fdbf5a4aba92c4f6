"""Every verdict function on synthetic per-sequence tables whose verdict is known.

For each claim: a planted effect gives ``holds``, the opposite effect ``does not hold``, no
effect ``unclear`` (claims about the weights alone have no sampling error, so no ``unclear``),
and too few units ``not enough data``. The tables come from ``tests/synthetic.py``.
"""

from __future__ import annotations

import numpy as np
import pytest

from stages.claims import appendix, robustness
from stages.claims import neurons as neuron_claims
from stages.claims import stages as stage_claims
from tests import synthetic as syn

L = syn.N_LAYERS  # 12: middle layers 3-8, early 0-2, last (>= 0.85) 10-11
MID = range(3, 9)
N = 256
EXPECTED = {1: "holds", -1: "does not hold", 0: "unclear"}


def _kept(kind):
    def make(e, n):
        def acc(k, layer):
            if k != kind or layer not in MID:
                return 0.9
            return {1: 0.9, -1: 0.5 if layer == 5 else 0.9, 0: 0.72}[e]

        return robustness.kept_in_every_middle_layer(syn.sweep(n, rel_acc=acc), L, kind)

    return make


def _edge(kind, where):
    edge = 0 if where == "first" else (L - 2 if kind == "swap" else L - 1)

    def make(e, n):
        def kl(k, layer):
            if k == kind and layer == edge:
                return {1: 3.0, -1: 0.05, 0: 0.3}[e]
            return 0.3

        sums = syn.sweep(n if e else min(n, 60), kl=kl)
        return robustness.first_or_last_hurts_most(sums, L, kind, where)

    return make


def _entropy(kind):
    def make(e, n):
        sums = syn.sweep(n, entropy=lambda k, layer: e * 1.0 if (k, layer) == (kind, 0) else 0.1)
        return robustness.first_raises_entropy(sums, L, kind)

    return make


def _gentler(e, n):
    sums = syn.sweep(n, kl=lambda k, layer: 0.3 - 0.1 * e if k == "swap" else 0.3)
    return robustness.swaps_gentler_than_drops(sums, L)


def _mlp_late(e, n):
    def kl(k, layer):
        if k != "drop_mlp":
            return 0.3
        return 5.0 if layer == 0 else (0.3 + 0.2 * e if layer >= 9 else 0.3)

    return robustness.mlp_drops_peak_late(syn.sweep(n, kl=kl), L)


def _local(e, n):
    sums = syn.attention(n, lambda layer: 0.1 + 0.05 * e if layer <= 2 else 0.1)
    return stage_claims.local_attention_early(sums, L)


def _ratio(e, n):
    sums = syn.norms(n, lambda layer: 10.0, lambda layer: 10.0 - 3 * e if layer <= 2 else 10.0)
    return stage_claims.attention_outweighs_mlp_early(sums, L)


def _far(e, n):
    sums = syn.lens(n, agreement=lambda layer: 0.2 - 0.1 * e if layer == 5 else 0.5)
    return stage_claims.lens_far_at_midpoint(sums, L)


def _lens_entropy(e, n):
    sums = syn.lens(n, entropy=lambda layer: 0.5 * e if layer <= 5 else 0.0)
    return stage_claims.lens_entropy_high_first_half(sums, L)


def _norm_peak(e, n):
    sums = syn.norms(n, lambda layer: 5.0, lambda layer: 10.0 + 5 * e if layer >= 10 else 10.0)
    return stage_claims.mlp_norm_peaks_last(sums, L)


def _last_entropy(e, n):
    sums = syn.lens(n, entropy=lambda layer: -0.5 * e if layer == L - 2 else 0.0)
    return stage_claims.last_layer_raises_entropy(sums, L)


def _stage2_index(e, n):
    def value(i, c, metric, which):
        stage2 = c == "mlp" and 3 <= i <= 5
        return 0.5 + 0.2 * e if stage2 and (metric, which) == ("index", "moved earlier") else 0.5

    return appendix.mlp_index_beats_self_in_stage2(syn.swap_similarity(n, value), L)


def _index_drop(e, n):
    def value(i, c, metric, which):
        return 0.5 + 0.2 * e if c == "mlp" and metric == "index" and 3 <= i <= 5 else 0.5

    return appendix.index_similarity_drops_at_midpoint(syn.swap_similarity(n, value), L)


def _stubborn(e, n):
    def value(i, c, metric, which):
        return 0.5 + 0.2 * e if c == "mlp" and metric == "self" and 6 <= i <= 9 else 0.5

    return appendix.mlps_stubborn_in_stage3(syn.swap_similarity(n, value), L)


def _average(kind):
    def make(e, n):
        def acc(k, layer):
            if k != kind or layer not in MID:
                return 0.9
            return {1: 0.85, -1: 0.5, 0: 0.72}[e]

        return robustness.kept_on_average(syn.sweep(n, rel_acc=acc), L, kind)

    return make


def _last_swap_entropy(e, n):
    sums = syn.sweep(n, entropy=lambda k, layer: 0.5 * e if (k, layer) == ("swap", L - 2) else 0.1)
    return robustness.last_swap_raises_entropy(sums, L)


def _stage2_adjacent(e, n):
    def value(i, c, metric, which):
        if c == "mlp" and 3 <= i <= 5 and (metric, which) == ("index", "moved earlier"):
            return 0.5 + 0.2 * e
        return 0.5

    return appendix.mlp_index_beats_adjacent_in_stage2(syn.swap_similarity(n, value), L)


SAMPLED = {
    "kept, drops": _kept("drop"),
    "kept, swaps": _kept("swap"),
    "first drop hurts most": _edge("drop", "first"),
    "first swap hurts most": _edge("swap", "first"),
    "last drop hurts most": _edge("drop", "last"),
    "last swap hurts most": _edge("swap", "last"),
    "first drop raises entropy": _entropy("drop"),
    "first swap raises entropy": _entropy("swap"),
    "swaps gentler than drops": _gentler,
    "MLP drops peak late": _mlp_late,
    "local attention early": _local,
    "attention outweighs MLP early": _ratio,
    "lens far at the midpoint": _far,
    "lens entropy high in the first half": _lens_entropy,
    "MLP norm peaks last": _norm_peak,
    "last layer raises entropy": _last_entropy,
    "MLP index beats self in stage 2": _stage2_index,
    "index similarity drops": _index_drop,
    "MLPs stubborn in stage 3": _stubborn,
    "MLP index beats adjacent in stage 2": _stage2_adjacent,
    "kept on average, drops": _average("drop"),
    "kept on average, swaps": _average("swap"),
    "last swap raises entropy": _last_swap_entropy,
}


@pytest.mark.parametrize("effect", [1, -1, 0])
@pytest.mark.parametrize("claim", list(SAMPLED))
def test_sampled_claim_gives_the_planted_verdict(claim, effect):
    v = SAMPLED[claim](effect, N)
    assert v.verdict == EXPECTED[effect], (v.statistic, v.value, v.lo, v.hi, v.rule, v.detail)
    assert v.n >= 30 and v.rule and v.statistic


@pytest.mark.parametrize("claim", list(SAMPLED))
def test_six_units_are_not_enough_data(claim):
    assert SAMPLED[claim](1, 6).verdict == "not enough data"


def _counts(pred_layers, supp_layers=(), k=10):
    return syn.classes([k if x in pred_layers else 0 for x in range(L)],
                       [k if x in supp_layers else 0 for x in range(L)])  # fmt: skip


WEIGHTS = {  # claim: (function, a table where it holds, one where it does not)
    "prediction after the midpoint": (
        neuron_claims.prediction_after_midpoint,
        _counts(range(7, 12)),
        _counts(range(2, 12)),
    ),
    "prediction peak near 85%": (
        neuron_claims.prediction_peak_depth,
        syn.classes([30 if x == 9 else 5 for x in range(L)], [0] * L),
        syn.classes([30 if x == 5 else 5 for x in range(L)], [0] * L),
    ),
    "prediction declines at the end": (
        neuron_claims.prediction_declines_at_end,
        syn.classes([20 if x == 9 else (0 if x == 11 else 5) for x in range(L)], [0] * L),
        syn.classes([20 if x == 11 else 5 for x in range(L)], [0] * L),
    ),
    "suppression dominates the last layers": (
        neuron_claims.suppression_dominates_last,
        syn.classes([5 if x >= 10 else 0 for x in range(L)],
                    [20 if x >= 10 else 0 for x in range(L)]),
        syn.classes([20 if x >= 10 else 0 for x in range(L)],
                    [5 if x >= 10 else 0 for x in range(L)]),
    ),
    "suppression densest in the last layers": (
        neuron_claims.suppression_peaks_last,
        syn.classes([0] * L, [25 if x >= 10 else 2 for x in range(L)]),
        syn.classes([0] * L, [25 if x == 4 else 2 for x in range(L)]),
    ),
}  # fmt: skip


@pytest.mark.parametrize("claim", list(WEIGHTS))
def test_weight_claims_resample_the_neurons(claim):
    f, good, bad = WEIGHTS[claim]
    v = f(good, L)
    assert v.verdict == "holds" and v.lo < v.hi, v
    assert v.lo <= v.value <= v.hi and "neurons" in v.unit
    assert f(bad, L).verdict == "does not hold"
    few = syn.classes(
        [1 if x >= 9 else 0 for x in range(L)], [1 if x >= 10 else 0 for x in range(L)]
    )
    assert f(few, L).verdict == "not enough data"


def test_a_share_of_every_neuron_has_an_exact_interval_below_one():
    v = neuron_claims.prediction_after_midpoint(_counts(range(7, 12)), L)
    assert v.value == 1.0 and v.hi == 1.0 and 0.9 < v.lo < 1.0  # Clopper-Pearson, 50 neurons
    assert v.lo == pytest.approx(0.025 ** (1 / 50))


def test_one_odd_middle_layer_does_not_decide_the_mlp_claim():
    # an outlier middle layer (5) used to decide "max late vs max early": the median ignores it
    def kl(k, layer):
        if k != "drop_mlp":
            return 0.3
        return {0: 5.0, 5: 3.0}.get(layer, 0.6 if layer >= 9 else 0.3)

    assert robustness.mlp_drops_peak_late(syn.sweep(N, kl=kl), L).verdict == "holds"


def test_swaps_are_decided_layer_by_layer_not_by_their_mean():
    # gentler by a lot at one layer, harsher at the others: the mean says gentler, the claim fails
    def kl(k, layer):
        if k == "swap" and layer in MID:
            return 0.05 if layer == 3 else 0.5
        return 1.5 if (k, layer) == ("drop", 3) else 0.3

    v = robustness.swaps_gentler_than_drops(syn.sweep(N, kl=kl), L)
    assert v.verdict == "does not hold" and "harsher at 5 of 6" in v.detail, v.detail
    assert "averaged over the layers the difference is -0.0" in v.detail


def test_a_stage_claim_is_decided_swap_by_swap_not_by_its_mean():
    # stage 3 swaps 6-9: one very stubborn swap carries the mean; the other three are not
    def value(i, c, metric, which):
        if c == "mlp" and metric == "self" and 6 <= i <= 9:
            return 0.9 if i == 6 else 0.4
        return 0.5

    v = appendix.mlps_stubborn_in_stage3(syn.swap_similarity(N, value), L)
    assert v.verdict == "does not hold" and v.value == pytest.approx(-0.1, abs=0.02), v
    assert "2 of 8 agree with the claim and 6 contradict it" in v.detail, v.detail


def test_a_layer_without_neurons_of_the_class_still_varies():
    classes = syn.classes([30 if x == 9 else (0 if x == 10 else 5) for x in range(L)], [0] * L)
    fractions, dist = neuron_claims.fraction_bootstrap(classes, "prediction")
    assert fractions[10] == 0 and dist[10].std() > 0 and dist[10].min() > 0
    # the spread is a binomial's over the layer's neurons where the layer has some
    d_mlp = 100  # syn.classes' default
    p = fractions[9]
    assert dist[9].std() == pytest.approx(np.sqrt(p * (1 - p) / d_mlp), rel=0.1)
    v = neuron_claims.prediction_peak_depth(classes, L)
    assert v.n == d_mlp * L and v.unit == "MLP neurons (within layers)"
    assert "80 prediction neurons of 1200" in v.detail, v.detail
