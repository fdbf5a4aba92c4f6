"""The block-deletion, reordering and duplication verdicts on tables with planted effects.

For each claim: the planted effect gives ``holds``, the opposite ``does not hold``, no effect
``unclear`` and 6 sequences ``not enough data``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stages.analyses.blocks import block_plans
from stages.analyses.duplication import duplication_plans
from stages.analyses.reorder import reorder_plans, where
from stages.claims import beyond, cloze
from tests import synthetic

N = synthetic.N_LAYERS
ORDER_ONLY = ("reverse", "shuffle")


def _edge(plan) -> bool:
    return where(plan.start, plan.stop, N) == "edge"


# claim, plans, {effect: kl(plan)} (or entropy for the entropy claim)
CASES = {
    "deeper blocks": (
        beyond.deeper_blocks_are_safer,
        block_plans(N),
        {"planted": lambda p: 1.0 if p.start < N / 2 else 0.5,
         "opposite": lambda p: 0.5 if p.start < N / 2 else 1.0},
    ),
    "reorder vs drop": (
        beyond.reordering_gentler_than_dropping,
        reorder_plans(N),
        {"planted": lambda p: 1.0 if p.kind == "drop_range" else 0.5,
         "opposite": lambda p: 0.5 if p.kind == "drop_range" else 1.0},
    ),
    "order in the middle": (
        beyond.order_matters_less_in_the_middle,
        reorder_plans(N),
        {"planted": lambda p: 1.0 if _edge(p) else 0.3,
         "opposite": lambda p: 0.3 if _edge(p) else 1.0},
    ),
    "more copies": (
        beyond.more_copies_more_damage,
        duplication_plans(N),
        {"planted": lambda p: 0.1 * p.order.count(p.start),
         "opposite": lambda p: 1.0 - 0.1 * p.order.count(p.start)},
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize(
    ("effect", "n_seq", "expected"),
    [("planted", 60, "holds"), ("opposite", 60, "does not hold"), ("none", 60, "unclear"),
     ("planted", 6, "not enough data")],
)  # fmt: skip
def test_each_claim_decides_its_planted_effect(case, effect, n_seq, expected):
    claim, plans, kls = CASES[case]
    kl = kls.get(effect, lambda p: 0.5)
    sums = synthetic.plans(n_seq, plans, kl=kl)
    v = claim(sums, N)
    assert v.verdict == expected, (v.value, v.lo, v.hi)
    assert v.n == n_seq


def test_parallel_is_compared_with_dropping_the_same_span():
    plans = reorder_plans(N)
    sums = synthetic.plans(
        60, plans, kl=lambda p: {"parallel": 0.2, "drop_range": 0.8}.get(p.kind, 5.0)
    )
    assert beyond.reordering_gentler_than_dropping(sums, N, "parallel").verdict == "holds"
    assert beyond.reordering_gentler_than_dropping(sums, N).verdict == "does not hold"


@pytest.mark.parametrize(
    ("entropy", "n_seq", "expected"),
    [(0.2, 60, "holds"), (-0.2, 60, "does not hold"), (0.0, 60, "unclear"),
     (0.2, 6, "not enough data")],
)  # fmt: skip
def test_duplication_entropy(entropy, n_seq, expected):
    sums = synthetic.plans(n_seq, duplication_plans(N), entropy=lambda p: entropy)
    assert beyond.duplication_raises_entropy(sums, N).verdict == expected


def _skips(n_seq: int, change) -> pd.DataFrame:
    """Skip sums whose relative change after dropping i is ``change(i)`` in every later cell."""
    from stages.analyses.skip_effects import column

    rng = np.random.default_rng(2)
    count = synthetic.SEQ_LEN - 1
    data = {}
    for i in range(N - 1):
        for j in range(i + 1, N):
            for c in ("attn", "mlp"):
                data[column(i, j, c, "rel_change")] = synthetic._noisy(
                    rng, change(i), n_seq, 0.05, count
                )
                data[column(i, j, c, "cos")] = np.full(n_seq, 0.9 * count)
                data[column(i, j, c, "norm_ratio")] = np.full(n_seq, 1.0 * count)
    frame = pd.DataFrame(data)
    frame["seq_len"] = synthetic.SEQ_LEN
    return frame


@pytest.mark.parametrize(
    ("change", "n_seq", "expected"),
    [(lambda i: 1.0 if i < N / 2 else 0.3, 60, "holds"),
     (lambda i: 0.3 if i < N / 2 else 1.0, 60, "does not hold"),
     (lambda i: 0.5, 60, "unclear"), (lambda i: 1.0 if i < N / 2 else 0.3, 6, "not enough data")],
)  # fmt: skip
def test_early_skips_change_later_layers_more(change, n_seq, expected):
    v = beyond.early_skips_change_more(_skips(n_seq, change), N)
    assert v.verdict == expected, (v.value, v.lo, v.hi)


def _cloze(n: int, accuracy) -> pd.DataFrame:
    """Per-window correctness: exactly ``accuracy(label)`` of the windows right, drawn once.

    Plans with the same accuracy share their outcome vector, so "no effect" is exactly none.
    """
    rng = np.random.default_rng(3)
    order = rng.permutation(n)
    labels = [
        "none",
        *[f"drop {i}" for i in range(N)],
        *[f"swap {i}-{i + 1}" for i in range(N - 1)],
    ]
    data = {}
    for label in labels:
        right = np.zeros(n)
        right[order[: round(accuracy(label) * n)]] = 1.0
        data[f"{label}:correct"] = right
        data[f"{label}:logprob"] = -right
    return pd.DataFrame(data | {"n_target": np.ones(n), "seq_len": np.full(n, 96.0)})


def _kind(label: str) -> str:
    return label.split(" ")[0]


@pytest.mark.parametrize(
    ("index", "accuracy", "expected"),
    [
        (0, lambda lb: {"none": 0.6, "drop": 0.55}.get(_kind(lb), 0.5), "holds"),
        (0, lambda lb: {"none": 0.6, "drop": 0.2}.get(_kind(lb), 0.5), "does not hold"),
        (0, lambda lb: {"none": 0.5, "drop": 0.36}.get(_kind(lb), 0.5), "unclear"),
        (1, lambda lb: 0.05 if lb == "drop 0" else 0.5, "holds"),
        (1, lambda lb: 0.9 if lb == "drop 0" else 0.5, "does not hold"),
        (1, lambda lb: 0.5, "unclear"),
        (2, lambda lb: {"swap": 0.6, "drop": 0.4}.get(_kind(lb), 0.7), "holds"),
        (2, lambda lb: {"swap": 0.3, "drop": 0.5}.get(_kind(lb), 0.7), "does not hold"),
        (2, lambda lb: 0.5, "unclear"),
    ],
)
def test_cloze_claims(index, accuracy, expected):
    v = cloze.cloze_claims(_cloze(400, accuracy), N)[index]
    assert v.verdict == expected, (v.claim, v.value, v.lo, v.hi)
    assert cloze.cloze_claims(_cloze(20, accuracy), N)[index].verdict == "not enough data"


def test_a_cloze_baseline_with_few_hits_decides_nothing():
    # 20 baseline hits of 400 windows: a share of them kept says nothing yet
    few = lambda lb: 20 / 400 if _kind(lb) in ("none", "drop") else 0.5  # noqa: E731
    for v in cloze.cloze_claims(_cloze(400, few), N):
        assert v.verdict == "not enough data", v
        assert "30 baseline hits" in v.rule


def test_a_drop_with_no_hit_gets_an_exact_bound_not_a_zero_width_interval():
    none_right = lambda lb: {"none": 0.5, "drop 5": 0.0}.get(lb, 0.5)  # noqa: E731
    v = cloze.cloze_claims(_cloze(400, none_right), N)[0]
    assert v.value == 0.0 and v.lo == 0.0 and v.hi > 0.0 and v.verdict == "does not hold", v
    # the Clopper-Pearson upper bound of 0 of 400 over the baseline accuracy
    assert v.hi == pytest.approx(cloze.stats.clopper_pearson(0, 400)[1] / 0.5)


def test_each_middle_layer_is_tested_with_holm():
    # the swap keeps more at every middle layer but one, where it keeps less: does not hold
    def acc(lb):
        if lb == "swap 5-6":
            return 0.3
        return {"swap": 0.6, "drop": 0.45}.get(_kind(lb), 0.7)

    v = cloze.cloze_claims(_cloze(400, acc), N)[2]
    assert v.verdict == "does not hold" and "against it: layer 5" in v.detail, v.detail
    assert "McNemar" in v.rule and "Holm" in v.rule
