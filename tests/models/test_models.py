"""load_model: sources (in-memory, local folder, hub name via a local hub cache), errors."""

from __future__ import annotations

import pytest
import torch

import stages
from stages.models import ModelLoadError, resolve_device, resolve_dtype
from tests.conftest import make_tiny_hf


def _fake_hub_cache(root, repo: str, hf_model, tokenizer) -> None:
    """Lay out ``root`` like a Hugging Face hub cache holding ``repo`` (as a download would)."""
    commit = "0" * 40
    base = root / f"models--{repo.replace('/', '--')}"
    (base / "refs").mkdir(parents=True)
    (base / "refs" / "main").write_text(commit)
    snapshot = base / "snapshots" / commit
    hf_model.save_pretrained(snapshot)
    tokenizer.save_pretrained(snapshot)


@pytest.fixture
def offline_hub(tmp_path, monkeypatch):
    """An offline hub with an empty cache; returns the cache folder."""
    import huggingface_hub.constants as hub_constants

    cache = tmp_path / "hub"
    cache.mkdir()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(cache))
    return cache


@pytest.mark.parametrize(
    "arch, repo",
    [
        ("gpt2", "gpt2"),
        ("neox", "EleutherAI/pythia-14m"),
        ("phi", "microsoft/phi-2"),
        ("gemma3", "google/gemma-3-270m"),
    ],
)
def test_hub_name_loads_from_the_local_hub_cache(arch, repo, offline_hub, tiny_tokenizer):
    """The hub-name path, exercised offline on a random-init model of the same architecture."""
    hf = make_tiny_hf(arch, len(tiny_tokenizer))
    _fake_hub_cache(offline_hub, repo, hf, tiny_tokenizer)
    bridge = stages.load_model(repo, device="cpu", dtype="float64")
    assert bridge.stages_info["name"] == repo
    assert len(bridge.blocks) == hf.config.num_hidden_layers
    tokens = torch.tensor([[1, 40, 41, 42, 43, 44]])
    with torch.no_grad():
        want = torch.log_softmax(hf(tokens, use_cache=False).logits, -1)
    got = torch.log_softmax(bridge(tokens, use_cache=False), -1)
    assert (got - want).abs().max() < 1e-6


def test_hub_name_without_weights_says_what_to_do(offline_hub):
    with pytest.raises(ModelLoadError, match="gemma-3-270m") as info:
        stages.load_model("EleutherAI/pythia-410m-deduped", device="cpu")
    message = str(info.value)
    assert "pythia-410m-deduped" in message and "folder" in message


def test_local_folder(tmp_path, tiny_tokenizer):
    hf = make_tiny_hf("phi", len(tiny_tokenizer))
    hf.save_pretrained(tmp_path / "phi")
    tiny_tokenizer.save_pretrained(tmp_path / "phi")
    bridge = stages.load_model(tmp_path / "phi", device="cpu", dtype="float64")
    assert len(bridge.blocks) == 5 and bridge.stages_info["weights_hash"]
    assert bridge.cfg.dtype == torch.float64 or next(bridge.parameters()).dtype == torch.float64


def test_folder_without_config(tmp_path):
    with pytest.raises(ModelLoadError, match="config.json"):
        stages.load_model(tmp_path, device="cpu")


def test_in_memory_model_needs_a_tokenizer(tiny_tokenizer):
    with pytest.raises(ValueError, match="tokenizer"):
        stages.load_model(make_tiny_hf("gpt2", len(tiny_tokenizer)), device="cpu")


def test_not_a_model():
    with pytest.raises(ValueError, match="source must be"):
        stages.load_model(42, device="cpu")


def test_remote_code_is_off_unless_asked(monkeypatch, tiny_tokenizer):
    seen = {}

    def fake_boot(name, **kwargs):
        seen.update(kwargs)
        raise OSError("stop here")

    monkeypatch.setattr(stages.models, "_boot", fake_boot)
    with pytest.raises(ModelLoadError):
        stages.load_model("someone/some-model", device="cpu")
    assert "trust_remote_code" not in seen or seen["trust_remote_code"] is False
    with pytest.raises(ModelLoadError):
        stages.load_model("someone/some-model", device="cpu", trust_remote_code=True)
    assert seen["trust_remote_code"] is True


def test_devices_and_dtypes():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="unknown device"):
        resolve_device("tpu7")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU"):
            resolve_device("cuda")
    cpu = torch.device("cpu")
    assert resolve_dtype(None, cpu) == torch.float32
    assert resolve_dtype(None, torch.device("cuda")) == torch.float32  # the paper's precision
    assert resolve_dtype("float64", cpu) == torch.float64
    assert resolve_dtype(torch.bfloat16, cpu) == torch.bfloat16
    with pytest.raises(ValueError, match="unknown dtype"):
        resolve_dtype("float8", cpu)
