"""Component norms against a direct recomputation from ``run_with_cache``."""

from __future__ import annotations

import pytest
import torch

from stages.analyses.norms import component_norms


@pytest.mark.parametrize("arch", ["gpt2", "neox", "gemma3"])
def test_norms_equal_a_recomputation_from_the_cache(arch, tiny_models, tiny_tokens):
    bridge, _ = tiny_models(arch)
    table = component_norms(bridge, tiny_tokens, batch_size=4, progress=False, cache=False)
    _, cache = bridge.run_with_cache(tiny_tokens, use_cache=False)
    for layer in range(len(bridge.blocks)):
        attn = cache[f"blocks.{layer}.hook_attn_out"][:, 1:].norm(dim=-1)
        mlp = cache[f"blocks.{layer}.hook_mlp_out"][:, 1:].norm(dim=-1)
        row = table.iloc[layer]
        assert row.layer == layer
        assert row.attn_norm == pytest.approx(attn.mean().item(), rel=1e-9)
        assert row.mlp_norm == pytest.approx(mlp.mean().item(), rel=1e-9)
        assert row.ratio == pytest.approx((attn.mean() / mlp.mean()).item(), rel=1e-9)
        assert row.ratio_lo <= row.ratio <= row.ratio_hi


@pytest.mark.parametrize("arch", ["gpt2", "gemma3"])
def test_the_hooks_hold_exactly_what_is_added_to_the_residual(arch, tiny_models, tiny_tokens):
    """Sequential blocks: resid_post - resid_pre = attention output + MLP output."""
    bridge, _ = tiny_models(arch)
    _, cache = bridge.run_with_cache(tiny_tokens, use_cache=False)
    for layer in range(len(bridge.blocks)):
        added = cache[f"blocks.{layer}.hook_resid_post"] - cache[f"blocks.{layer}.hook_resid_pre"]
        parts = cache[f"blocks.{layer}.hook_attn_out"] + cache[f"blocks.{layer}.hook_mlp_out"]
        torch.testing.assert_close(added, parts, rtol=1e-9, atol=1e-9)
