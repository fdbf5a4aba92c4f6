"""Speed figures: the committed benchmark results as a table, and a live measurement.

The benchmark (``benchmarks/run.py``) writes ``benchmarks/results/speed.json``; the book's
performance page reads it with :func:`load_speed_results` and :func:`speed_table`, and
measures the reader's own machine with :func:`measure_sweep`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from stages.engine.flops import bridge_sweep_flops, matmul_peak
from stages.engine.plans import Plan
from stages.shapes import Model, Tokens

METHODS = {
    "authors": "authors' method (batch 1, model rebuilt per swap)",
    "stages": "stages.run_sweep",
}


def load_speed_results(path: str | Path) -> dict[str, Any]:
    """Read a results file written by ``benchmarks/run.py``.

    Raises:
        FileNotFoundError: with the command that writes it.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"no benchmark results at {path}: run `.venv/bin/python benchmarks/run.py` first"
        )
    return json.loads(path.read_text())


def speed_table(results: dict[str, Any]) -> pd.DataFrame:
    """One row per (model, method) of the authors'-method comparison.

    Columns: ``model``, ``method``, ``tokens`` (``"n_seq x seq_len"``), ``n_interventions``,
    ``s_per_intervention``, ``s_per_intervention_per_1k_tokens`` (seconds per intervention per
    1,000 scored positions, comparable across token counts), ``tokens_per_s`` (scored
    positions x interventions per second), ``speed_ratio`` (authors' time / stages' time) and
    ``mfu`` (stages' model-FLOP utilisation; NaN for the authors' method).
    """
    rows = []
    for record in results["versus_authors"]:
        n_seq, seq_len = record["tokens"]
        scored_k = n_seq * (seq_len - 2) / 1000
        for key, method in METHODS.items():
            seconds = record[f"{key}_s_per_intervention"]
            rows.append({
                "model": record["model"],
                "method": method,
                "tokens": f"{n_seq} x {seq_len}",
                "n_interventions": record["n_interventions"],
                "s_per_intervention": seconds,
                "s_per_intervention_per_1k_tokens": seconds / scored_k,
                "tokens_per_s": record[f"{key}_tokens_per_s"],
                "speed_ratio": record["speed_ratio"],
                "mfu": record["stages_mfu"] if key == "stages" else float("nan"),
            })  # fmt: skip
    return pd.DataFrame(rows)


def measure_sweep(
    model: Model, tokens: Tokens, interventions: Sequence[Plan], *,
    batch_size: int | None = None,
) -> dict[str, float]:  # fmt: skip
    """Time :func:`stages.run_sweep` here (no cache) and relate it to this machine's peak.

    Returns:
        ``seconds``, ``s_per_intervention``, ``tokens_per_s`` (scored positions x
        interventions per second), ``tflop`` (the forward FLOPs the sweep needs,
        :mod:`stages.engine.flops`), ``peak_gflops`` (float32 matmul peak measured just before) and
        ``mfu``.
    """
    from stages.engine.sweep import run_sweep

    peak = matmul_peak()
    start = time.perf_counter()
    run_sweep(model, tokens, interventions, batch_size=batch_size, progress=False, cache=False)
    seconds = time.perf_counter() - start
    flops = bridge_sweep_flops(model, tokens, interventions)
    scored = tokens.shape[0] * (tokens.shape[1] - 2)
    return {
        "seconds": seconds,
        "s_per_intervention": seconds / len(interventions),
        "tokens_per_s": scored * len(interventions) / seconds,
        "tflop": flops / 1e12,
        "peak_gflops": peak / 1e9,
        "mfu": flops / seconds / peak,
    }
