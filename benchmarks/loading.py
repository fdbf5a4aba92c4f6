"""Memory and time of loading an embedded model: the one-time steps, then every later load.

Each step runs in a fresh process with a fresh models folder (``STAGES_MODELS_DIR`` in a temporary
directory), and reads its own peak RSS (``VmHWM``) and wall time:

1. ``convert``: the GGUF file dequantized and saved as a float32 Hugging Face folder (once);
2. ``first load``: ``stages.load_model``, which processes the weights (TransformerLens folds the
   norms and centres the unembedding) and keeps the processed twin (once);
3. ``later load``: ``stages.load_model`` again, which boots the twin; also the peak after one
   forward pass on 128 tokens, which touches every weight page.

Targets (issue 17): a later load within 2x the float32 weights and 15 s. Linux only.
Run: ``.venv/bin/python benchmarks/loading.py [MODEL]``; writes ``benchmarks/results/loading.json``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results" / "loading.json"
STEPS = ("convert", "first load", "later load")


def _peak_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("VmHWM not in /proc/self/status")


def child(step: str, name: str) -> None:
    """One step in this process; prints its figures as JSON."""
    start = time.perf_counter()
    if step == "convert":
        from stages.models import embedded_model_dir

        folder = embedded_model_dir(name)
        out = {"weights_mb": (folder / "model.safetensors").stat().st_size / 1e6}
    else:
        import torch

        import stages

        model = stages.load_model(name, device="cpu")
        out = {}
    out |= {"seconds": time.perf_counter() - start, "peak_rss_mb": _peak_mb()}
    if step == "later load":
        tokens = torch.randint(0, 1000, (1, 128))
        tokens[:, 0] = model.tokenizer.bos_token_id
        with torch.no_grad():
            model(tokens, return_type=None)
        out["peak_rss_after_forward_mb"] = _peak_mb()
    print(json.dumps(out))


def run(name: str = "gemma-3-270m") -> dict[str, Any]:
    """Every step in order, in fresh processes sharing one fresh models folder."""
    steps = {}
    with tempfile.TemporaryDirectory(prefix="stages-loading-") as models:
        env = os.environ | {"STAGES_MODELS_DIR": models}
        for step in STEPS:
            out = subprocess.run([sys.executable, __file__, step, name], env=env, check=True,
                                 capture_output=True, text=True).stdout  # fmt: skip
            steps[step] = json.loads(out.strip().splitlines()[-1])
            print(f"  {step}: {json.dumps(steps[step])}", flush=True)
    weights = steps["convert"]["weights_mb"]
    later = steps["later load"]
    return {
        "model": name,
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "float32_weights_mb": weights,
        "steps": steps,
        "later_load_peak_over_weights": later["peak_rss_mb"] / weights,
        "later_load_peak_after_forward_over_weights": later["peak_rss_after_forward_mb"] / weights,
        "targets": {"peak_over_weights": 2.0, "later_load_s": 15.0},
    }


if __name__ == "__main__":
    if len(sys.argv) == 3:
        child(sys.argv[1], sys.argv[2])
    else:
        result = run(*sys.argv[1:2])
        RESULTS.write_text(json.dumps(result, indent=1))
        print(RESULTS)
