"""Attention locality: hand-built patterns with known answers, and the real hooks against HF."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from stages.analyses.attention import QUANTITIES, attention_locality, locality_counts, locality_sums


def _brute_force(a: np.ndarray, offsets: int) -> dict[str, float]:
    """Per-sequence means of one head's ``[q, k]`` pattern, by plain loops."""
    n = a.shape[0]
    entries, entries_nobos, sums, sums_nobos = [], [], [], []
    for q in range(1, n):
        rest = a[q, 1:].sum()
        local = [a[q, q - k] for k in range(1, offsets + 1) if q - k >= 0]
        entries += local
        sums.append(sum(local))
        if q >= 2:
            local_nobos = [a[q, q - k] / rest for k in range(1, offsets + 1) if q - k >= 1]
            entries_nobos += local_nobos
            sums_nobos.append(sum(local_nobos))
    return {
        "attn_prev5": np.mean(entries),
        "prev_sum": np.mean(sums),
        "attn_prev5_nobos": np.mean(entries_nobos),
        "prev_sum_nobos": np.mean(sums_nobos),
        "bos": a[1:, 0].mean(),
    }


def _means(pattern: torch.Tensor, offsets: int) -> dict[str, np.ndarray]:
    counts = locality_counts(pattern.shape[-1], offsets)
    return {k: v.numpy() / counts[k] for k, v in locality_sums(pattern, offsets).items()}


def test_previous_token_head_has_a_known_answer():
    n = 10
    a = torch.zeros(1, 1, n, n, dtype=torch.float64)
    a[0, 0, 0, 0] = 1.0
    for q in range(1, n):
        a[0, 0, q, q - 1] = 1.0  # every query looks only at the token before it
    got = {k: float(v[0, 0]) for k, v in _means(a, 5).items()}
    assert got["prev_sum"] == pytest.approx(1.0)
    assert got["prev_sum_nobos"] == pytest.approx(1.0)
    assert got["bos"] == pytest.approx(1 / (n - 1))  # only query 1's previous token is BOS
    assert got["attn_prev5"] == pytest.approx((n - 1) / sum(n - k for k in range(1, 6)))


def test_uniform_and_random_patterns_match_loops():
    g = torch.Generator().manual_seed(0)
    n = 12
    causal = torch.tril(torch.ones(n, n, dtype=torch.bool))
    scores = torch.randn(2, 3, n, n, generator=g, dtype=torch.float64) * 2
    random = torch.softmax(scores.masked_fill(~causal, -torch.inf), -1)
    uniform = causal.double() / causal.sum(-1, keepdim=True)
    for pattern in (random, uniform.expand(2, 3, n, n)):
        for offsets in (1, 5, 20):
            got = _means(pattern, offsets)
            for b in range(2):
                for h in range(3):
                    want = _brute_force(pattern[b, h].numpy(), offsets)
                    for name in QUANTITIES:
                        assert got[name][b, h] == pytest.approx(want[name], rel=1e-12), name


def test_bad_patterns_are_refused():
    with pytest.raises(ValueError, match="pattern"):
        locality_sums(torch.ones(2, 3, 4))
    with pytest.raises(ValueError, match="offsets"):
        locality_sums(torch.ones(1, 1, 4, 4), offsets=0)


@pytest.mark.parametrize("arch", ["gpt2", "neox", "gemma3"])
def test_model_table_matches_hugging_face_attentions(arch, tiny_models, tiny_tokens):
    bridge, reference = tiny_models(arch)
    table = attention_locality(bridge, tiny_tokens, batch_size=4, progress=False, cache=False)
    n_heads = bridge.cfg.n_heads
    assert len(table) == len(bridge.blocks) * (n_heads + 1)
    with torch.no_grad():
        attentions = reference(tiny_tokens, output_attentions=True, use_cache=False).attentions
    for layer, att in enumerate(attentions):  # eager attention: [batch, head, q, k]
        per_head = np.array(
            [[_brute_force(att[b, h].numpy(), 5)["prev_sum_nobos"] for h in range(n_heads)]
             for b in range(len(att))]
        )  # fmt: skip
        rows = table[table.layer == layer].set_index("head")
        for h in range(n_heads):
            assert rows.loc[h, "prev_sum_nobos"] == pytest.approx(per_head[:, h].mean(), abs=1e-6)
        assert rows.loc[-1, "prev_sum_nobos"] == pytest.approx(per_head.mean(), abs=1e-6)
        lo, hi = rows.loc[-1, ["prev_sum_nobos_lo", "prev_sum_nobos_hi"]]
        assert lo <= rows.loc[-1, "prev_sum_nobos"] <= hi
