"""The logit lens against final norm + unembedding applied to Hugging Face hidden states."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch

import stages
from stages.analyses.lens import logit_lens
from tests.reference import reference_metrics

FINAL_NORMS = (
    "transformer.ln_f",
    "gpt_neox.final_layer_norm",
    "model.final_layernorm",
    "model.norm",
)


def _final_norm(model: torch.nn.Module) -> torch.nn.Module:
    (norm,) = [model.get_submodule(p) for p in FINAL_NORMS if _has(model, p)]
    return norm


def _has(model: torch.nn.Module, path: str) -> bool:
    try:
        model.get_submodule(path)
    except AttributeError:
        return False
    return True


@pytest.mark.parametrize("arch", ["gpt2", "neox", "phi", "gemma3"])
def test_every_layer_equals_norm_and_unembedding_of_the_hidden_state(
    arch, tiny_models, tiny_tokens
):
    bridge, reference = tiny_models(arch)
    table = logit_lens(bridge, tiny_tokens, batch_size=4, progress=False, cache=False)
    n = len(bridge.blocks)
    assert list(table.layer) == list(range(n))
    with torch.no_grad():
        out = reference(tiny_tokens, output_hidden_states=True, use_cache=False)
        final = out.logits
        for layer in range(n):
            # hidden_states[l + 1] is the output of block l; the last one is already normed
            lens = (
                final
                if layer == n - 1
                else reference.lm_head(_final_norm(reference)(out.hidden_states[layer + 1]))
            )
            want = reference_metrics(final, lens, tiny_tokens)
            p = torch.softmax(final[:, 1:-1].double(), -1)
            h_p = -(p * p.log()).sum(-1).mean().item() / math.log(2)
            row = table.iloc[layer]
            assert row.kl_to_final == pytest.approx(want["kl"], rel=1e-6, abs=1e-9)
            assert row.top1_agreement == pytest.approx(want["rel_acc"])
            assert row.entropy == pytest.approx(want["entropy_delta"] + h_p, rel=1e-6)
            assert row.loss == pytest.approx(want["loss"], rel=1e-6)
    last = table.iloc[-1]
    assert last.kl_to_final == 0.0 and last.top1_agreement == 1.0
    assert last.entropy == pytest.approx(last.final_entropy, rel=1e-12)


def test_the_lens_is_cached_and_a_new_bootstrap_reuses_the_sums(
    tiny_models, tiny_tokens, monkeypatch
):
    bridge, _ = tiny_models("gemma3")
    first = logit_lens(bridge, tiny_tokens, batch_size=2, progress=False)

    def fail(*a, **k):
        raise AssertionError("recomputed a cached batch")

    monkeypatch.setattr(stages.analyses.lens, "score_residuals", fail)
    again = logit_lens(bridge, tiny_tokens, batch_size=2, progress=False)
    pd.testing.assert_frame_equal(first, again, check_exact=True)
    assert again.attrs["provenance"]["from_cache"]
    other = logit_lens(bridge, tiny_tokens, batch_size=2, progress=False, seed=1)
    pd.testing.assert_frame_equal(
        first[["kl_to_final", "entropy"]], other[["kl_to_final", "entropy"]]
    )
    assert other.attrs["provenance"]["seed"] == 1  # re-reduced from the cached sums
    assert not (first["kl_to_final_lo"] == other["kl_to_final_lo"]).all()
