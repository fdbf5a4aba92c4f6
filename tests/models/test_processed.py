"""The kept twin of a processed model folder (stages.models.processed) and damaged folders.

The reference is the bridge TransformerLens processes live from an in-memory copy of the same
weights; the twin must give the same logits and the same value at every hook, bit for bit.
"""

from __future__ import annotations

import json

import pytest
import torch

import stages
from stages.models import processed
from stages.models.embedded import DIGEST
from tests.conftest import make_tiny_hf


@pytest.fixture
def models_dir(tmp_path, monkeypatch):
    """A private models folder, so nothing here touches the shared converted models."""
    folder = tmp_path / "models"
    monkeypatch.setenv("STAGES_MODELS_DIR", str(folder))
    return folder


def _saved(tmp_path, arch: str, tokenizer) -> tuple[object, object]:
    """``(folder, live bridge)``: a tiny float32 model saved to a folder, and processed live."""
    folder = tmp_path / arch
    make_tiny_hf(arch, len(tokenizer)).float().save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    hf = make_tiny_hf(arch, len(tokenizer)).float()
    return folder, stages.load_model(hf, tokenizer=tokenizer, device="cpu", dtype="float32")


def _same_everywhere(bridge, live, tokens: torch.Tensor) -> None:
    """Logits and every hook of ``live`` equal in ``bridge``, bit for bit."""
    got_logits, got = bridge.run_with_cache(tokens)
    want_logits, want = live.run_with_cache(tokens)
    assert torch.equal(got_logits, want_logits)
    assert set(want.keys()) <= set(got.keys())
    for name in want.keys():
        assert torch.equal(got[name], want[name]), name


def _twins(models_dir) -> list:
    root = models_dir / "processed"
    return sorted(p for p in root.iterdir() if not p.name.startswith(".")) if root.is_dir() else []


@pytest.mark.parametrize("arch", ["phi", "gemma3"])
def test_the_kept_twin_equals_live_processing(
    arch, tmp_path, models_dir, tiny_tokenizer, tiny_tokens
):
    folder, live = _saved(tmp_path, arch, tiny_tokenizer)
    first = stages.load_model(folder, device="cpu")  # processes live and keeps the twin
    [twin] = _twins(models_dir)
    assert json.loads((twin / processed.MARKER).read_text())["version"] == processed.VERSION
    second = stages.load_model(folder, device="cpu")  # boots the twin, no processing
    assert second.stages_info["weights_hash"] == first.stages_info["weights_hash"]
    for bridge in (first, second):
        _same_everywhere(bridge, live, tiny_tokens)


def test_a_model_whose_processing_adds_weights_is_processed_live(
    tmp_path, models_dir, tiny_tokenizer, tiny_tokens, monkeypatch
):
    """GPT-2's folded LayerNorm gives the unembedding a bias its Hugging Face class lacks."""
    folder, live = _saved(tmp_path, "gpt2", tiny_tokenizer)
    _same_everywhere(stages.load_model(folder, device="cpu"), live, tiny_tokens)
    [verdict] = _twins(models_dir)  # the verdict alone: no weights
    assert json.loads((verdict / processed.MARKER).read_text())["reproduced"] is False
    assert not (verdict / "model.safetensors").exists()

    def tried_again(*args, **kwargs):
        raise AssertionError("a refused twin was attempted again")

    monkeypatch.setattr(processed, "_keep", tried_again)
    _same_everywhere(stages.load_model(folder, device="cpu"), live, tiny_tokens)


def test_a_damaged_twin_is_rebuilt_not_read(tmp_path, models_dir, tiny_tokenizer, tiny_tokens):
    folder, live = _saved(tmp_path, "gemma3", tiny_tokenizer)
    stages.load_model(folder, device="cpu")
    [twin] = _twins(models_dir)
    weights = twin / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.warns(UserWarning, match="damaged"):
        bridge = stages.load_model(folder, device="cpu")
    _same_everywhere(bridge, live, tiny_tokens)
    assert _twins(models_dir) == [twin]
    assert stages.store.folder_intact(twin, DIGEST)


def test_a_source_replaced_in_place_rebuilds_the_twin(
    tmp_path, models_dir, tiny_tokenizer, tiny_tokens
):
    import os

    folder, live = _saved(tmp_path, "gemma3", tiny_tokenizer)
    stages.load_model(folder, device="cpu")
    weights = folder / "model.safetensors"
    os.utime(weights, ns=(weights.stat().st_atime_ns, weights.stat().st_mtime_ns + 10**9))
    with pytest.warns(UserWarning, match="older than its source"):
        bridge = stages.load_model(folder, device="cpu")
    _same_everywhere(bridge, live, tiny_tokens)


def test_a_full_disk_keeps_nothing_and_the_next_load_keeps_the_twin(
    tmp_path, models_dir, tiny_tokenizer, tiny_tokens, monkeypatch
):
    import safetensors
    import safetensors.torch

    folder, live = _saved(tmp_path, "gemma3", tiny_tokenizer)
    real_save = safetensors.torch.save_file

    def full_disk(tensors, path, metadata=None):
        with open(path, "wb") as handle:  # a partial file, as a full disk leaves one
            handle.write(b"\0" * 100)
        # what safetensors raises on a full disk: its own error, not an OSError
        raise safetensors.SafetensorError("Error while serializing: No space left on device")

    monkeypatch.setattr(safetensors.torch, "save_file", full_disk)
    with pytest.warns(UserWarning, match="could not keep .*No space left"):
        bridge = stages.load_model(folder, device="cpu")
    _same_everywhere(bridge, live, tiny_tokens)
    kept = (models_dir / "processed").glob("[!.]*")  # the lock files (.*.lock) hold nothing
    assert not list(kept)
    monkeypatch.setattr(safetensors.torch, "save_file", real_save)
    stages.load_model(folder, device="cpu")
    assert len(_twins(models_dir)) == 1


def test_other_dtypes_and_unprocessed_loads_keep_no_twin(tmp_path, models_dir, tiny_tokenizer):
    folder, _ = _saved(tmp_path, "gemma3", tiny_tokenizer)
    stages.load_model(folder, device="cpu", dtype="float64")
    stages.load_model(folder, device="cpu", process_weights=False)
    assert _twins(models_dir) == []
