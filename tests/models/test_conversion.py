"""Converting an embedded model's GGUF: a killed conversion and a damaged folder are redone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from stages.models import embedded_model_dir
from stages.models.embedded import DIGEST
from stages.store import folder_intact

pytestmark = pytest.mark.real

MODEL = "smollm2-135m-instruct"  # the smaller of the two: about 20 s to convert


def test_a_killed_conversion_is_redone_and_a_damaged_folder_converted_again(tmp_path, monkeypatch):
    monkeypatch.setenv("STAGES_MODELS_DIR", str(tmp_path))
    code = f"from stages.models import embedded_model_dir; embedded_model_dir({MODEL!r})"
    child = subprocess.Popen(
        [sys.executable, "-c", code], env=os.environ | {"STAGES_MODELS_DIR": str(tmp_path)}
    )
    deadline = time.monotonic() + 120
    while not any(p.name.startswith(".") and p.is_dir() for p in tmp_path.iterdir()):
        assert child.poll() is None and time.monotonic() < deadline, "the conversion never started"
        time.sleep(0.05)
    time.sleep(1.0)  # well inside the conversion (about 20 s)
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert [p for p in tmp_path.iterdir() if not p.name.startswith(".")] == []

    folder = embedded_model_dir(MODEL)
    assert folder_intact(folder, DIGEST)
    config = folder / "config.json"
    config.write_text(config.read_text().replace('"vocab_size"', '"vocab_size" ', 1))
    with pytest.warns(UserWarning, match="damaged"):
        again = embedded_model_dir(MODEL)
    assert again == folder and folder_intact(folder, DIGEST)


@pytest.mark.parametrize("name", [MODEL, "gemma-3-270m"])  # Llama Q4_1; Gemma 3 Q4_K_M
def test_the_streamed_conversion_writes_the_files_transformers_writes(tmp_path, name):
    """Byte for byte: the folder of ``from_pretrained(gguf_file=...)`` + ``save_pretrained``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from stages.models.embedded import EMBEDDED_MODELS, convert_gguf

    spec = EMBEDDED_MODELS[name]
    gguf_path, _, _ = spec.gguf(tmp_path)
    folder, file = gguf_path.parent, gguf_path.name
    reference, streamed = tmp_path / "reference", tmp_path / "streamed"
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=file, dtype=torch.float32)
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.config.architectures = [type(model).__name__]
    model.config._name_or_path = spec.hf_name
    model.save_pretrained(reference)
    AutoTokenizer.from_pretrained(folder, gguf_file=file).save_pretrained(reference)
    del model
    streamed.mkdir()
    convert_gguf(gguf_path, streamed, spec.hf_name, rows=100)  # several row blocks per weight

    names = sorted(p.name for p in reference.iterdir())
    assert names == sorted(p.name for p in streamed.iterdir())
    assert "model.safetensors" in names
    for name in names:
        assert (streamed / name).read_bytes() == (reference / name).read_bytes(), name
