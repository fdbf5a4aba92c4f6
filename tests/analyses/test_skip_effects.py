"""Skip effects against surgery on Hugging Face copies and against a hooked full pass.

The engine calls ``model.blocks[j]`` directly; the first test checks that the component hook
points fire (and hold the right values) when it does, on every tiny architecture, since a hook
that never fired would leave the analysis nothing to compare. The bridge's weight processing
round-trips the weights through float32, so the Hugging Face reference agrees to ~1e-7
relative; the bridge's own full forward pass with block ``i`` bypassed by hooks agrees to ~1e-16.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from stages.analyses.skip_effects import (
    QUANTITIES,
    column,
    first_half_vs_second_half,
    regime_summary,
    skip_sums,
    skip_table,
)
from stages.engine.forward import capture_baseline, run_block
from tests.conftest import ARCHS
from tests.reference import _layers, surgery

POINTS = ("attn", "mlp")


@pytest.fixture(scope="module")
def sums_of(tiny_models, tiny_tokens):
    """``sums_of(arch)``: :func:`skip_sums` of every layer of the tiny model, computed once."""
    done: dict[str, pd.DataFrame] = {}

    def get(arch: str) -> pd.DataFrame:
        if arch not in done:
            bridge, _ = tiny_models(arch)
            done[arch] = skip_sums(bridge, tiny_tokens, batch_size=6, progress=False, cache=False)
        return done[arch]

    return get


def _quantities(new: torch.Tensor, old: torch.Tensor) -> dict[str, float]:
    """Token means over positions 1.. of the three quantities, written out plainly."""
    a, b = new[:, 1:].double(), old[:, 1:].double()
    return {
        "rel_change": ((a - b).norm(dim=-1) / b.norm(dim=-1)).mean().item(),
        "cos": ((a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1))).mean().item(),
        "norm_ratio": (a.norm(dim=-1) / b.norm(dim=-1)).mean().item(),
    }


def _row(table: pd.DataFrame, i: int, j: int, c: str) -> pd.Series:
    row = table.query("dropped == @i and layer == @j and component == @c")
    assert len(row) == 1, (i, j, c)
    return row.iloc[0]


@pytest.mark.parametrize("arch", ARCHS)
def test_component_hooks_fire_when_the_engine_calls_blocks_directly(arch, tiny_models, tiny_tokens):
    bridge, _ = tiny_models(arch)
    n = len(bridge.blocks)
    names = [f"blocks.{j}.hook_{c}_out" for j in range(n) for c in POINTS]
    seen: dict[str, torch.Tensor] = {}

    def hook(out, hook):
        seen[hook.name] = out.detach()

    base = capture_baseline(bridge, tiny_tokens)
    with bridge.hooks(fwd_hooks=[(name, hook) for name in names]):
        for j in range(n):
            run_block(bridge, j, base.resid_pre[j], base)
    assert sorted(seen) == sorted(names)
    _, cache = bridge.run_with_cache(tiny_tokens, use_cache=False)
    for name in names:
        assert cache[name].abs().max() > 1e-3, name  # not a hook point that is always zero
        torch.testing.assert_close(seen[name], cache[name], rtol=1e-12, atol=1e-12)


def _output_modules(block: torch.nn.Module, arch: str) -> dict[str, torch.nn.Module]:
    """The HF modules whose outputs are what attention / MLP add to the residual stream."""
    if arch == "gemma3":  # after the post-norms
        return {"attn": block.post_attention_layernorm, "mlp": block.post_feedforward_layernorm}
    if arch == "gpt2":
        return {"attn": block.attn, "mlp": block.mlp}
    if arch == "neox":
        return {"attn": block.attention, "mlp": block.mlp}
    raise ValueError(arch)


def _reference_outputs(hf, tokens, spec: tuple, arch: str) -> dict:
    """``{(weights layer, component): [batch, pos, d_model]}`` of the surgically edited copy.

    LayerNorm models' outputs are centred over ``d_model``, as the bridge's weight processing
    (center writing weights) makes them; Gemma's RMSNorm models are not centred.
    """
    model = surgery(hf, spec)
    layers = _layers(model)
    weights = [k for k in range(len(layers) + 1) if k != spec[1]] if spec[0] == "drop" else None
    weights = weights or list(range(len(layers)))
    store, handles = {}, []
    for position, block in enumerate(layers):
        for c, module in _output_modules(block, arch).items():

            def hook(_m, _a, out, key=(weights[position], c)):
                out = (out[0] if isinstance(out, tuple) else out).detach()
                if arch != "gemma3":
                    out = out - out.mean(-1, keepdim=True)
                store[key] = out

            handles.append(module.register_forward_hook(hook))
    with torch.no_grad():
        model(tokens, use_cache=False)
    for h in handles:
        h.remove()
    return store


@pytest.mark.parametrize("arch", ["gpt2", "neox", "gemma3"])
def test_matches_hooks_on_surgically_dropped_copies(arch, tiny_models, tiny_tokens, sums_of):
    bridge, hf = tiny_models(arch)
    n = len(bridge.blocks)
    table = skip_table(sums_of(arch), n_boot=20)
    assert len(table) == n * (n - 1)  # (i, j > i) pairs x 2 components
    base = _reference_outputs(hf, tiny_tokens, ("none",), arch)
    for i in range(n - 1):
        dropped = _reference_outputs(hf, tiny_tokens, ("drop", i), arch)
        for j in range(i + 1, n):
            for c in POINTS:
                want = _quantities(dropped[(j, c)], base[(j, c)])
                assert want["rel_change"] > 1e-2, (arch, i, j, c)  # the drop changes layer j
                row = _row(table, i, j, c)
                for q, value in want.items():
                    assert row[q] == pytest.approx(value, rel=2e-6), (arch, i, j, c, q)


@pytest.mark.parametrize("arch", ["phi", "gemma3"])
def test_matches_a_full_pass_with_the_block_bypassed(arch, tiny_models, tiny_tokens, sums_of):
    """The bridge's own forward pass, block ``i``'s output replaced by its input: ~1e-9."""
    bridge, _ = tiny_models(arch)
    n = len(bridge.blocks)
    table = skip_table(sums_of(arch), n_boot=20)
    wanted = [f"blocks.{j}.hook_{c}_out" for j in range(n) for c in POINTS]
    wanted += [f"blocks.{j}.hook_resid_pre" for j in range(n)]
    _, base = bridge.run_with_cache(tiny_tokens, use_cache=False, names_filter=wanted)
    entering = {}

    def keep(x, hook):
        entering["x"] = x.clone()

    def bypass(x, hook):
        return entering["x"]

    for i in range(n - 1):
        hooks = [(f"blocks.{i}.hook_resid_pre", keep), (f"blocks.{i}.hook_resid_post", bypass)]
        with bridge.hooks(fwd_hooks=hooks):
            _, cache = bridge.run_with_cache(tiny_tokens, use_cache=False, names_filter=wanted)
        assert torch.equal(
            cache[f"blocks.{i + 1}.hook_resid_pre"], base[f"blocks.{i}.hook_resid_pre"]
        )
        for j in range(i + 1, n):
            for c in POINTS:
                name = f"blocks.{j}.hook_{c}_out"
                want = _quantities(cache[name], base[name])
                assert want["rel_change"] > 1e-2, (arch, i, j, c)
                row = _row(table, i, j, c)
                for q, value in want.items():
                    assert row[q] == pytest.approx(value, rel=1e-9, abs=1e-12), (arch, i, j, c, q)


def test_sums_columns_layers_and_cache(tiny_models, tiny_tokens):
    bridge, _ = tiny_models("gpt2")
    n = len(bridge.blocks)
    kw = {"layers": [3, 1], "batch_size": 4, "progress": False}
    first = skip_sums(bridge, tiny_tokens, **kw)
    assert not first.attrs["provenance"]["from_cache"]
    assert first.attrs["provenance"]["layers"] == [1, 3]
    expected = {
        column(i, j, c, q)
        for i in (1, 3)
        for j in range(i + 1, n)
        for c in POINTS
        for q in QUANTITIES
    }
    assert set(first.columns) == expected | {"seq_len"}
    assert len(first) == tiny_tokens.shape[0]
    assert (first.drop(columns="seq_len").dtypes == np.float64).all()
    again = skip_sums(bridge, tiny_tokens, **kw)
    assert again.attrs["provenance"]["from_cache"]
    pd.testing.assert_frame_equal(again, first)
    for bad in ([n - 1], [], [-1]):
        with pytest.raises(ValueError, match="layers to drop"):
            skip_sums(bridge, tiny_tokens, layers=bad, progress=False, cache=False)


def test_table_is_the_token_mean_of_the_sums(sums_of, tiny_tokens):
    sums = sums_of("gemma3")
    table = skip_table(sums, n_boot=200, seed=1)
    tokens = tiny_tokens.shape[0] * (tiny_tokens.shape[1] - 1)
    for row in table.itertuples():
        assert row.distance == row.layer - row.dropped > 0
        for q in QUANTITIES:
            values = sums[column(row.dropped, row.layer, row.component, q)]
            assert getattr(row, q) == pytest.approx(values.sum() / tokens, rel=1e-12)
            assert getattr(row, f"{q}_lo") <= getattr(row, q) <= getattr(row, f"{q}_hi")
    assert table.cos.between(-1, 1).all() and (table.rel_change > 0).all()
    assert (table.n_seq == tiny_tokens.shape[0]).all() and (table.n_tokens == tokens).all()
    assert table.attrs["provenance"]["n_boot"] == 200


def test_regime_summary_averages_the_later_cells(sums_of):
    sums = sums_of("gemma3")
    n = 6
    table = skip_table(sums, n_boot=20)
    summary = regime_summary(sums, n, n_boot=200)
    assert summary.dropped.tolist() == list(range(n - 1))
    for row in summary.itertuples():
        nxt = table.query("dropped == @row.dropped and distance <= 3").rel_change
        later = table.query("dropped == @row.dropped").rel_change
        assert row.next_rel_change == pytest.approx(nxt.mean(), rel=1e-12)
        assert row.later_rel_change == pytest.approx(later.mean(), rel=1e-12)
        assert (row.n_next, row.n_later) == (len(nxt), len(later))
        assert row.rel_depth == row.dropped / (n - 1)
        assert row.next_rel_change_lo <= row.next_rel_change <= row.next_rel_change_hi
        assert row.later_rel_change_lo <= row.later_rel_change <= row.later_rel_change_hi
    assert summary.n_next.tolist() == [6, 6, 6, 4, 2] and summary.n_later.iloc[0] == 10
    with pytest.raises(ValueError, match="n_layers=7"):
        regime_summary(sums, 7)


def test_first_half_minus_second_half(sums_of):
    sums = sums_of("gemma3")
    later = regime_summary(sums, 6, n_boot=20).set_index("dropped").later_rel_change
    estimate, lo, hi = first_half_vs_second_half(sums, 6, n_boot=500)
    # relative depth i / 5 < 0.5: layers 0, 1, 2 against 3, 4
    assert estimate == pytest.approx(later[[0, 1, 2]].mean() - later[[3, 4]].mean(), rel=1e-12)
    assert lo < estimate < hi
    first_only = sums[[c for c in sums.columns if c.split(">")[0] in ("0", "1")] + ["seq_len"]]
    with pytest.raises(ValueError, match="both halves"):
        first_half_vs_second_half(first_only, 6)


def _synthetic_sums(n_layers: int, n_seq: int, effect) -> pd.DataFrame:
    """Per-sequence sums with token-mean ``rel_change`` ``effect(i)`` plus noise, 20 tokens."""
    rng = np.random.default_rng(0)
    columns = {
        column(i, j, c, q): 20 * (effect(i) + 0.05 * rng.standard_normal(n_seq))
        for i in range(n_layers - 1)
        for j in range(i + 1, n_layers)
        for c in POINTS
        for q in QUANTITIES
    }
    return pd.DataFrame(columns).assign(seq_len=21)


def test_a_change_of_regime_is_found_and_its_absence_is_not():
    n = 8
    shift = _synthetic_sums(n, 40, lambda i: 0.5 if i / (n - 1) < 0.5 else 0.1)
    estimate, lo, hi = first_half_vs_second_half(shift, n)
    assert estimate == pytest.approx(0.4, abs=0.02) and lo > 0.35 and hi < 0.45
    flat = _synthetic_sums(n, 40, lambda i: 0.3)
    estimate, lo, hi = first_half_vs_second_half(flat, n)
    assert lo < 0 < hi
    summary = regime_summary(shift, n, n_boot=200)
    assert (summary.query("rel_depth < 0.5").later_rel_change_lo > 0.45).all()
    assert (summary.query("rel_depth >= 0.5").later_rel_change_hi < 0.15).all()
