"""The benchmark's re-implementation of the authors' method gives run_sweep's numbers."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

import stages

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "authors_method.py"
_SPEC = importlib.util.spec_from_file_location("authors_method", _PATH)
authors_method = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(authors_method)


@pytest.mark.parametrize("arch", ["gpt2", "neox", "gemma3"])
def test_the_authors_method_agrees_with_run_sweep(arch, tiny_models, tiny_tokens, tiny_tokenizer):
    bridge, reference = tiny_models(arch)
    ivs = [
        stages.drop(1),
        stages.drop_component(2, "attn"),
        stages.drop_component(0, "mlp"),
        stages.swap(1),  # for gemma3: a sliding-window layer with a global one
    ]
    tokens = tiny_tokens[:3]
    theirs = authors_method.authors_sweep(reference, tiny_tokenizer, tokens, ivs, dtype="float64")
    ours = stages.run_sweep(bridge, tokens, ivs, progress=False, cache=False, n_boot=10)
    ours = ours[ours.kind != "none"].reset_index(drop=True)
    for name in ("kl", "rel_acc", "entropy_delta", "loss"):
        for a, b in zip(theirs[name], ours[name], strict=True):
            assert a == pytest.approx(b, rel=1e-6, abs=1e-9), name


def test_a_rebuilt_swap_exchanges_the_weights(tiny_models):
    _, reference = tiny_models("gemma3")
    swapped = authors_method.rebuild_swapped(reference, 1)
    prefix = authors_method.layer_prefix(reference)
    before, after = reference.state_dict(), swapped.state_dict()
    key = "self_attn.q_proj.weight"
    assert (after[f"{prefix}1.{key}"] == before[f"{prefix}2.{key}"]).all()
    assert (after[f"{prefix}2.{key}"] == before[f"{prefix}1.{key}"]).all()
    assert swapped.config.layer_types[1:3] == reference.config.layer_types[1:3][::-1]
