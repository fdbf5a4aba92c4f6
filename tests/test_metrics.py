"""Property tests of the per-token metrics and the bootstrap."""

from __future__ import annotations

import math

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from stages.metrics import Distribution, bootstrap_interval, compare


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 50), st.floats(0.1, 10.0))
def test_kl_and_entropy_properties(seed, vocab, scale):
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(7, vocab, generator=g, dtype=torch.float64) * scale
    b = torch.randn(7, vocab, generator=g, dtype=torch.float64) * scale
    targets = torch.randint(0, vocab, (7,), generator=g)
    pa, pb = Distribution.from_logits(a), Distribution.from_logits(b)
    same = compare(pa, Distribution.from_logits(a + 3.0), targets)  # softmax ignores a shift
    assert same["kl"].abs().max() < 1e-12 and (same["rel_acc"] == 1).all()
    assert same["entropy_delta"].abs().max() < 1e-12
    got = compare(pa, pb, targets)
    assert (got["kl"] >= -1e-12).all()
    assert (pa.entropy <= math.log(vocab) + 1e-12).all() and (pa.entropy >= -1e-12).all()
    np.testing.assert_allclose(pa.probs.sum(-1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(compare(pa, pa, targets)["kl"], 0.0, atol=0)
    p, q = torch.softmax(a, -1), torch.softmax(b, -1)
    np.testing.assert_allclose(got["kl"], (p * (p / q).log()).sum(-1), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(
        got["loss"], -q.log()[torch.arange(7), targets], rtol=1e-9, atol=1e-12
    )


def test_half_precision_logits_are_handled_in_float32_and_summed_in_float64():
    lp = Distribution.from_logits(torch.randn(3, 11).half())
    assert lp.logits.dtype == torch.float32 and lp.entropy.dtype == torch.float64


def test_bootstrap_interval():
    rng = np.random.default_rng(0)
    sums, counts = rng.normal(5, 1, 40), np.full(40, 10.0)
    lo, hi = bootstrap_interval(sums, counts, seed=1)
    mean = sums.sum() / counts.sum()
    assert lo < mean < hi
    assert (lo, hi) == bootstrap_interval(sums, counts, seed=1)
    assert bootstrap_interval(sums[:1], counts[:1]) == (sums[0] / 10, sums[0] / 10)
    # constant per-token metric: a zero-width interval
    assert bootstrap_interval(counts * 0.5, counts) == (0.5, 0.5)
