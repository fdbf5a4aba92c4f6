"""Every hook point stages relies on fires, with its shape, on every supported architecture.

And a hook that never fires (simulated by a hook point that drops what is registered on it, the
failure seen with some bridge hooks) makes the engine refuse instead of returning a table in
which an intervention silently did nothing.
"""

from __future__ import annotations

import pytest
import torch

import stages
from stages.analyses.norms import norms_sums
from stages.engine.hooks import HookNotFiredError, checked_hooks
from stages.shapes import HOOK_POINTS
from tests.conftest import ARCHS


def _expected_shape(model, template: str, batch: int, pos: int) -> tuple[int, ...]:
    cfg = model.cfg
    if template.endswith("hook_pattern"):
        return (batch, cfg.n_heads, pos, pos)
    if template.endswith("mlp.out.hook_in"):
        return (batch, pos, cfg.d_mlp)
    return (batch, pos, cfg.d_model)


def _assert_every_point_fires(model, tokens: torch.Tensor) -> None:
    seen: dict[str, list[tuple[int, ...]]] = {}

    def recorder(name: str):  # by the name registered: hook.name is the canonical one
        return lambda tensor, hook: seen.setdefault(name, []).append(tuple(tensor.shape))

    names = [t.format(layer=k) for t in HOOK_POINTS for k in range(model.cfg.n_layers)]
    with torch.no_grad(), checked_hooks(model, [(name, recorder(name)) for name in names]):
        model(tokens.to(model.cfg.device), return_type=None)
    batch, pos = tokens.shape
    for template in HOOK_POINTS:
        for k in range(model.cfg.n_layers):
            name = template.format(layer=k)
            assert seen.get(name) == [_expected_shape(model, template, batch, pos)], name


@pytest.mark.parametrize("arch", ARCHS)
def test_every_hook_point_fires_once_with_its_shape(arch, tiny_models, tiny_tokens):
    bridge, _ = tiny_models(arch)
    _assert_every_point_fires(bridge, tiny_tokens[:2])


@pytest.mark.real
@pytest.mark.parametrize("name", ["gemma-3-270m", "smollm2-135m-instruct"])
def test_every_hook_point_fires_on_the_shipped_models(name):
    model = stages.load_model(name, device="cpu")
    _assert_every_point_fires(model, stages.load_corpus(model, n_tokens=64, seq_len=32, seed=0))


def _deaf(model, name: str, monkeypatch) -> None:
    """Make hook point ``name`` register its hooks on a detached point: they never fire."""
    from transformer_lens.hook_points import HookPoint

    detached = HookPoint()
    monkeypatch.setattr(model.hook_dict[name], "add_hook", detached.add_hook)


def test_a_hook_that_never_fires_is_named_not_ignored(tiny_models, tiny_tokens, monkeypatch):
    bridge, _ = tiny_models("gemma3")
    _deaf(bridge, "blocks.1.hook_attn_out", monkeypatch)
    plans = [stages.drop_component(1, "attn"), stages.drop(2)]
    with pytest.raises(HookNotFiredError, match=r"blocks\.1\.hook_attn_out"):
        stages.run_sweep(bridge, tiny_tokens, plans, progress=False, cache=False)
    with pytest.raises(HookNotFiredError, match=r"blocks\.1\.hook_attn_out"):
        norms_sums(bridge, tiny_tokens, progress=False, cache=False)
    monkeypatch.undo()
    table = stages.run_sweep(bridge, tiny_tokens, plans, progress=False, cache=False)
    assert (table.loc[table["kind"] != "none", "kl"] > 0).all()  # the interventions act
