"""Swap similarity (appendix A) against plain hooks on surgically swapped Hugging Face copies."""

from __future__ import annotations

import pytest
import torch

from stages.analyses.swap_similarity import (
    ROWS,
    baseline_outputs,
    cosine,
    pair_outputs,
    pair_similarity,
    swap_similarity,
)
from tests.reference import _layers, surgery


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
    """``{(weights layer, component): [batch, pos, d_model]}`` from the edited copy.

    For LayerNorm models the outputs are centred over ``d_model``, as the bridge's weight
    processing (center writing weights) makes them; Gemma's RMSNorm models are not centred.
    """
    model = surgery(hf, spec)
    layers = _layers(model)
    weights = list(range(len(layers)))
    if spec[0] == "swap":
        i = spec[1]
        weights[i], weights[i + 1] = i + 1, i
    store, handles = {}, []
    for position, block in enumerate(layers):
        for comp, module in _output_modules(block, arch).items():

            def hook(_m, _a, out, key=(weights[position], comp)):
                out = (out[0] if isinstance(out, tuple) else out).detach()
                if arch != "gemma3":  # the bridge's center_writing_weights (LayerNorm models)
                    out = out - out.mean(-1, keepdim=True)
                store[key] = out

            handles.append(module.register_forward_hook(hook))
    with torch.no_grad():
        model(tokens, use_cache=False)
    for h in handles:
        h.remove()
    return store


def _plain_cos(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a[:, 1:].double(), b[:, 1:].double()
    return ((a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1))).mean().item()


@pytest.mark.parametrize("arch, swapped", [("gpt2", (0, 3)), ("neox", (1, 3)), ("gemma3", (1, 2))])
def test_matches_hooks_on_a_surgically_swapped_copy(arch, swapped, tiny_models, tiny_tokens):
    bridge, hf = tiny_models(arch)
    table = swap_similarity(
        bridge, tiny_tokens, batch_size=4, n_boot=20, progress=False, cache=False
    )
    base = _reference_outputs(hf, tiny_tokens, ("none",), arch)
    for i in swapped:
        swap = _reference_outputs(hf, tiny_tokens, ("swap", i), arch)
        j = i + 1
        for c in ("attn", "mlp"):
            want = {
                ("self", "moved later"): _plain_cos(swap[(i, c)], base[(i, c)]),
                ("self", "moved earlier"): _plain_cos(swap[(j, c)], base[(j, c)]),
                ("index", "moved earlier"): _plain_cos(swap[(j, c)], base[(i, c)]),
                ("index", "moved later"): _plain_cos(swap[(i, c)], base[(j, c)]),
                ("adjacent", "baseline"): _plain_cos(base[(i, c)], base[(j, c)]),
            }
            # guards against a reference that ignores the swap
            assert want[("self", "moved later")] < 1 - 1e-4, (arch, i, c)
            for (metric, which), value in want.items():
                row = table.query(
                    "layer == @i and component == @c and metric == @metric and which == @which"
                )
                assert len(row) == 1
                got = row.value.item()
                assert got == pytest.approx(value, abs=1e-6), (arch, i, c, metric, which)


@pytest.mark.parametrize("arch", ["gpt2", "gemma3"])
def test_without_a_swap_self_similarity_is_one(arch, tiny_models, tiny_tokens):
    """Re-running the pair unswapped through the same path: self is 1, index equals adjacent."""
    bridge, _ = tiny_models(arch)
    base, outputs = baseline_outputs(bridge, tiny_tokens)
    for i in range(len(bridge.blocks) - 1):
        sims = pair_similarity(outputs, pair_outputs(bridge, base, (i, i + 1)), i)
        swapped = pair_similarity(outputs, pair_outputs(bridge, base, (i + 1, i)), i)
        for c in ("attn", "mlp"):
            for which in ("moved later", "moved earlier"):
                ones = sims[(c, "self", which)]
                assert ones.shape == (tiny_tokens.shape[0], tiny_tokens.shape[1] - 1)
                assert (ones - 1).abs().max().item() < 1e-12, (arch, i, c, which)
                adjacent = sims[(c, "adjacent", "baseline")]
                assert torch.allclose(sims[(c, "index", which)], adjacent, atol=1e-12, rtol=0)
            # and the real swap does move the outputs away from their baseline
            assert swapped[(c, "self", "moved later")].min().item() < 1 - 1e-4, (arch, i, c)


def test_cosine():
    a = torch.randn(3, 4, 8, dtype=torch.float64)
    assert torch.allclose(cosine(a, a), torch.ones(3, 4, dtype=torch.float64), atol=1e-14)
    assert torch.allclose(cosine(a, -2 * a), -torch.ones(3, 4, dtype=torch.float64), atol=1e-14)
    assert cosine(torch.zeros(8), torch.ones(8)).item() == 0.0
    assert cosine(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 3.0])).item() == 0.0
    assert cosine(a, a).dtype == torch.float64


def test_rows_bounds_and_cache(tiny_models, tiny_tokens):
    bridge, _ = tiny_models("neox")
    n = len(bridge.blocks)
    first = swap_similarity(bridge, tiny_tokens, batch_size=4, n_boot=50, progress=False)
    assert not first.attrs["provenance"]["from_cache"]
    assert len(first) == 2 * len(ROWS) * (n - 1)
    assert set(first.metric) == {"self", "index", "adjacent"}
    assert set(first.component) == {"attn", "mlp"}
    assert first.groupby(["layer", "component", "metric", "which"]).size().eq(1).all()
    assert list(first.layer.unique()) == list(range(n - 1))
    assert set(first.layers) == {f"{i}-{i + 1}" for i in range(n - 1)}
    assert first.rel_depth.min() == 0 and first.rel_depth.max() == pytest.approx((n - 2) / (n - 1))
    assert first.value.between(-1, 1).all()
    assert (first.lo <= first.value + 1e-12).all() and (first.value <= first.hi + 1e-12).all()
    assert (first.n_tokens == tiny_tokens.shape[0] * (tiny_tokens.shape[1] - 1)).all()
    assert (first.n_seq == tiny_tokens.shape[0]).all()
    again = swap_similarity(bridge, tiny_tokens, batch_size=4, n_boot=50, progress=False)
    assert again.attrs["provenance"]["from_cache"]
    assert again.equals(first)
