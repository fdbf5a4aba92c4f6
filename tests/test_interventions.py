"""The intervention engine against the independent slow reference (tests/reference.py)."""

from __future__ import annotations

import pytest
import torch

import stages
from stages.interventions import (
    BASELINE,
    Intervention,
    block_order,
    capture_baseline,
    head,
    intervened_logits,
    run_block,
    run_group,
    run_intervened,
    start_groups,
)
from tests.conftest import ARCHS
from tests.reference import reference_logits


def _all(bridge) -> list[Intervention]:
    return [BASELINE, *stages.default_interventions(bridge)]


@pytest.mark.parametrize("arch", ARCHS)
def test_every_intervention_matches_surgery(arch, tiny_models, tiny_tokens):
    bridge, hf = tiny_models(arch)
    for iv in _all(bridge):
        got = torch.log_softmax(intervened_logits(bridge, tiny_tokens, iv), -1)
        want = torch.log_softmax(reference_logits(hf, tiny_tokens, iv), -1)
        err = (got - want).abs().max().item()
        assert err < 1e-5, f"{arch} {iv.label}: max |log p - log p_ref| = {err:.2e}"


@pytest.mark.parametrize("arch", ARCHS)
def test_interventions_change_the_output(arch, tiny_models, tiny_tokens):
    """Guards the test above against a reference that ignores the surgery."""
    bridge, hf = tiny_models(arch)
    base = reference_logits(hf, tiny_tokens, BASELINE)
    for iv in stages.default_interventions(bridge):
        moved = (reference_logits(hf, tiny_tokens, iv) - base).abs().max().item()
        assert moved > 1e-4, f"{arch} {iv.label} left the reference logits unchanged"


@pytest.mark.parametrize("arch", ARCHS)
def test_resuming_from_any_layer_equals_a_full_pass(arch, tiny_models, tiny_tokens):
    bridge, hf = tiny_models(arch)
    full = bridge(tiny_tokens, use_cache=False)
    base = capture_baseline(bridge, tiny_tokens)
    for start in range(len(bridge.blocks)):
        hidden = base.resid_pre[start]
        for j in range(start, len(bridge.blocks)):
            hidden = run_block(bridge, j, hidden, base)
        assert torch.allclose(head(bridge, hidden), full, atol=1e-10, rtol=0), start
    _, cache = bridge.run_with_cache(tiny_tokens, use_cache=False)
    for i in range(len(bridge.blocks)):
        assert torch.allclose(base.resid_pre[i], cache[f"blocks.{i}.hook_resid_pre"], atol=1e-12)


def test_gemma_swap_keeps_each_blocks_attention_type(tiny_models, tiny_tokens):
    """Swapping a sliding-window and a global block differs from running them with swapped types."""
    bridge, hf = tiny_models("gemma3")
    assert hf.config.layer_types[1:3] == ["sliding_attention", "full_attention"]
    got = intervened_logits(bridge, tiny_tokens, Intervention("swap", (1, 2)))
    base = capture_baseline(bridge, tiny_tokens)
    hidden = base.resid_pre[1]
    hidden = run_block(bridge, 2, hidden, base, args_of=1)  # global block given the sliding mask
    hidden = run_block(bridge, 1, hidden, base, args_of=2)
    for j in range(3, len(bridge.blocks)):
        hidden = run_block(bridge, j, hidden, base)
    other = head(bridge, hidden)
    assert (got - other).abs().max().item() > 1e-4


def test_block_order_examples():
    assert block_order(Intervention("swap", (1, 2)), 5) == (1, [2, 1, 3, 4])
    assert block_order(Intervention("drop", (3,)), 5) == (3, [4])
    assert block_order(Intervention("drop", (4,)), 5) == (4, [])
    assert block_order(Intervention("drop_mlp", (0,)), 3) == (0, [0, 1, 2])
    assert block_order(BASELINE, 3) == (0, [0, 1, 2])


@pytest.mark.parametrize(
    "kind, layers, message",
    [
        ("delete", (1,), "unknown intervention kind"),
        ("drop", (1, 2), "takes 1 layer"),
        ("swap", (1, 3), "adjacent"),
        ("swap", (2,), "takes 2 layer"),
        ("drop", (-1,), "non-negative"),
    ],
)
def test_bad_interventions_are_rejected(kind, layers, message):
    with pytest.raises(ValueError, match=message):
        Intervention(kind, layers)


def test_layer_out_of_range(tiny_models, tiny_tokens):
    bridge, _ = tiny_models("gpt2")
    with pytest.raises(ValueError, match="out of range"):
        intervened_logits(bridge, tiny_tokens, Intervention("drop", (5,)))
    with pytest.raises(ValueError, match="out of range"):
        intervened_logits(bridge, tiny_tokens, Intervention("swap", (4, 5)))


def test_drops_and_swaps_enumerate_every_layer(tiny_models):
    bridge, _ = tiny_models("neox")
    assert [iv.layers for iv in stages.drops(bridge)] == [(i,) for i in range(5)]
    assert [iv.layers for iv in stages.swaps(bridge)] == [(i, i + 1) for i in range(4)]
    assert {iv.kind for iv in stages.drops(bridge, component="attn")} == {"drop_attn"}
    with pytest.raises(ValueError, match="component"):
        stages.drops(bridge, component="head")


@pytest.mark.parametrize("arch", ["gpt2", "gemma3"])
def test_run_to_last_block_stops_before_the_unembedding(arch, tiny_models, tiny_tokens):
    from stages.interventions import capture_baseline, run_to_last_block

    bridge, _ = tiny_models(arch)
    seen = []
    unembedded = []
    with bridge.hooks(fwd_hooks=[("blocks.0.hook_attn_out", lambda t, hook: seen.append(1))]):
        handle = bridge.unembed.register_forward_hook(lambda *a: unembedded.append(1))
        try:
            out = run_to_last_block(bridge, tiny_tokens)
        finally:
            handle.remove()
    assert seen and not unembedded
    torch.testing.assert_close(out, capture_baseline(bridge, tiny_tokens).final_resid)
    assert not bridge.blocks[-1]._forward_hooks  # its stopping hook is gone


@pytest.mark.parametrize("arch", ARCHS)
def test_a_group_sharing_a_start_layer_equals_its_members_run_alone(arch, tiny_models, tiny_tokens):
    bridge, _ = tiny_models(arch)
    base = capture_baseline(bridge, tiny_tokens)
    groups = start_groups(stages.default_interventions(bridge))
    assert [len(g) for g in groups] == [4] * (len(bridge.blocks) - 1) + [3]
    for group in groups:
        assert len({iv.layer for iv in group}) == 1
        for iv, got in zip(group, run_group(bridge, base, group), strict=True):
            want = run_intervened(bridge, base, iv)
            err = (got - want).abs().max().item()
            assert err < 1e-10, f"{arch} {iv.label}: {err:.2e}"


def test_run_group_refuses_mixed_start_layers(tiny_models, tiny_tokens):
    bridge, _ = tiny_models("gpt2")
    base = capture_baseline(bridge, tiny_tokens[:1])
    with pytest.raises(ValueError, match="one start layer"):
        run_group(bridge, base, [Intervention("drop", (1,)), Intervention("drop", (2,))])
