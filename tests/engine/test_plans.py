"""The plan engine against the independent slow reference (tests/reference.py).

Each factory is checked against surgery on a deep copy of the Hugging Face model, on tiny
float64 GPT-2, GPT-NeoX, Phi and Gemma 3 models of 5 layers.
"""

from __future__ import annotations

import pytest
import torch

import stages
from stages.engine.forward import (
    capture_baseline,
    head,
    intervened_logits,
    run_block,
    run_group,
    run_intervened,
    start_groups,
)
from stages.engine.plans import BASELINE, FAMILIES, Plan
from tests.conftest import ARCHS
from tests.reference import reference_logits

# Every factory, as (name, args): the engine runs getattr(stages, name)(*args), the reference
# edits the model by the same name and arguments.
SINGLE_LAYER = [
    *[("drop", (i,)) for i in range(5)],
    *[("drop_component", (i, c)) for c in ("attn", "mlp") for i in range(5)],
    *[("swap", (i,)) for i in range(4)],
]
SPANS = [
    ("drop_range", (1, 4)),
    ("drop_range", (3, 5)),
    ("reverse", (1, 4)),
    ("reverse", (0, 5)),
    ("shuffle", (0, 5, 1)),
    ("shuffle", (1, 4, 3)),
    ("repeat", (1, 3, 2)),
    ("repeat", (2, 3, 3)),
    ("duplicate", (1, 3, 2)),
    ("duplicate", (2, 5, 3)),
    ("parallel", (1, 4)),
    ("parallel", (3, 5)),
]
CASES = SINGLE_LAYER + SPANS


def _plan(name: str, args: tuple) -> Plan:
    return getattr(stages, name)(*args)


def test_every_family_has_a_factory_case():
    assert {_plan(n, a).kind for n, a in CASES} == set(FAMILIES) - {"none"}


@pytest.mark.parametrize("arch", ARCHS)
def test_every_factory_matches_surgery(arch, tiny_models, tiny_tokens):
    bridge, hf = tiny_models(arch)
    for name, args in [("none", ()), *CASES]:
        plan = BASELINE if name == "none" else _plan(name, args)
        got = torch.log_softmax(intervened_logits(bridge, tiny_tokens, plan), -1)
        want = torch.log_softmax(reference_logits(hf, tiny_tokens, (name, *args)), -1)
        err = (got - want).abs().max().item()
        assert err < 1e-5, f"{arch} {plan.label}: max |log p - log p_ref| = {err:.2e}"


@pytest.mark.parametrize("arch", ARCHS)
def test_interventions_change_the_output(arch, tiny_models, tiny_tokens):
    """Guards the test above against a reference that ignores the surgery."""
    bridge, hf = tiny_models(arch)
    base = reference_logits(hf, tiny_tokens, ("none",))
    for name, args in CASES:
        moved = (reference_logits(hf, tiny_tokens, (name, *args)) - base).abs().max().item()
        assert moved > 1e-4, f"{arch} {name}{args} left the reference logits unchanged"


def test_plans_spell_out_what_runs():
    assert stages.drop(3) == Plan("drop", 3, 4)
    assert stages.drop_range(2, 5) == Plan("drop_range", 2, 5)
    assert stages.drop_component(1, "mlp").zeroed == ("blocks.1.hook_mlp_out",)
    assert stages.swap(1).order == (2, 1)
    assert stages.reverse(1, 4).order == (3, 2, 1)
    assert sorted(stages.shuffle(0, 6, 2).order) == list(range(6))
    assert stages.repeat(1, 3, 2).order == (1, 2, 1, 2)
    assert stages.parallel(1, 4).combine == "mean"
    labels = [_plan(n, a).label for n, a in [("swap", (3,)), ("drop_range", (2, 5)),
                                             ("shuffle", (0, 5, 1)), ("repeat", (1, 3, 2))]]
    assert labels == ["swap 3-4", "drop_range 2-4", "shuffle 0-4 seed 1", "repeat 1-2 x2"]
    assert BASELINE.label == "none" and BASELINE.layer == -1
    assert stages.Intervention is Plan  # the former name still works


def test_shuffles_tested_here_are_not_the_identity():
    for name, args in SPANS:
        if name == "shuffle":
            plan = _plan(name, args)
            assert plan.order != tuple(range(plan.start, plan.stop)), plan


@pytest.mark.parametrize("arch", ARCHS)
def test_the_model_is_unchanged_after_an_exception_inside_any_plan(arch, tiny_models, tiny_tokens):
    bridge, _ = tiny_models(arch)
    before = intervened_logits(bridge, tiny_tokens)
    base = capture_baseline(bridge, tiny_tokens)

    def boom(*_):
        raise RuntimeError("inside the plan")

    for name, args in CASES:
        plan = _plan(name, args)
        runs = [*plan.order, *range(plan.stop, len(bridge.blocks))]
        if not runs:  # drops the last blocks: nothing runs that could raise
            continue
        handle = bridge.blocks[runs[0]].register_forward_hook(boom)
        try:
            with pytest.raises(RuntimeError, match="inside the plan"):
                run_intervened(bridge, base, plan)
        finally:
            handle.remove()
        assert not any(point._forward_hooks for point in bridge.hook_dict.values()), plan.label
    torch.testing.assert_close(intervened_logits(bridge, tiny_tokens), before, rtol=0, atol=0)


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
    got = intervened_logits(bridge, tiny_tokens, stages.swap(1))
    base = capture_baseline(bridge, tiny_tokens)
    hidden = base.resid_pre[1]
    hidden = run_block(bridge, 2, hidden, base, args_of=1)  # global block given the sliding mask
    hidden = run_block(bridge, 1, hidden, base, args_of=2)
    for j in range(3, len(bridge.blocks)):
        hidden = run_block(bridge, j, hidden, base)
    other = head(bridge, hidden)
    assert (got - other).abs().max().item() > 1e-4


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: Plan("delete", 1, 2), "unknown intervention kind"),
        (lambda: stages.drop(-1), "non-negative"),
        (lambda: stages.drop_range(3, 3), "at least 1"),
        (lambda: stages.reverse(2, 3), "at least 2"),
        (lambda: stages.repeat(1, 2, 0), "times"),
        (lambda: stages.drop_component(1, "head"), "component"),
        (lambda: Plan("swap", 1, 2, (2, 1)), "leaves the span"),
        (lambda: Plan("drop", 1, 2, (1,), ("blocks.3.hook_attn_out",)), "cannot zero"),
        (lambda: Plan("parallel", 1, 3, (), combine="mean"), "combine"),
    ],
)
def test_bad_plans_are_rejected(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_layer_out_of_range(tiny_models, tiny_tokens):
    bridge, _ = tiny_models("gpt2")
    with pytest.raises(ValueError, match="out of range"):
        intervened_logits(bridge, tiny_tokens, stages.drop(5))
    with pytest.raises(ValueError, match="out of range"):
        intervened_logits(bridge, tiny_tokens, stages.swap(4))


def test_drops_and_swaps_enumerate_every_layer(tiny_models):
    bridge, _ = tiny_models("neox")
    assert [iv.layers for iv in stages.drops(bridge)] == [str(i) for i in range(5)]
    assert [iv.layers for iv in stages.swaps(bridge)] == [f"{i}-{i + 1}" for i in range(4)]
    assert {iv.kind for iv in stages.drops(bridge, component="attn")} == {"drop_attn"}
    with pytest.raises(ValueError, match="component"):
        stages.drops(bridge, component="head")


@pytest.mark.parametrize("arch", ["gpt2", "gemma3"])
def test_run_to_last_block_stops_before_the_unembedding(arch, tiny_models, tiny_tokens):
    from stages.engine.forward import run_to_last_block

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
        run_group(bridge, base, [stages.drop(1), stages.drop(2)])


@pytest.mark.parametrize("arch", ["gpt2", "gemma3"])
def test_a_group_of_any_plans_with_one_start_equals_its_members_run_alone(
    arch, tiny_models, tiny_tokens
):
    bridge, _ = tiny_models(arch)
    base = capture_baseline(bridge, tiny_tokens)
    group = [_plan(n, a) for n, a in CASES if _plan(n, a).start == 1]
    assert len({p.kind for p in group}) == len(FAMILIES) - 1  # every family starts at 1 once
    for plan, got in zip(group, run_group(bridge, base, group), strict=True):
        want = run_intervened(bridge, base, plan)
        assert (got - want).abs().max().item() < 1e-10, f"{arch} {plan.label}"
