"""Benchmark: run_sweep throughput on the embedded model, split into blocks / head / metrics.

Run: .venv/bin/python benchmarks/sweep_speed.py [n_tokens] [seq_len]
Prints seconds per intervention per 1,000 scored tokens, the share of the unembedding and of
the metrics, peak memory, and the projected time of the robustness notebook's default sweep.
A benchmark, not a test: numbers depend on the machine (record them with the machine's size).
"""

from __future__ import annotations

import resource
import sys
import time

import torch

import stages
from stages.interventions import capture_baseline, head, run_intervened
from stages.metrics import Distribution, compare


def main(n_tokens: int = 512, seq_len: int = 128) -> None:
    model = stages.load_model("gemma-3-270m", device="cpu", dtype="float32")
    tokens = stages.load_corpus(model, n_tokens=n_tokens, seq_len=seq_len, seed=0)
    ivs = stages.default_interventions(model)
    scored = tokens.shape[0] * (seq_len - 2)
    print(
        f"torch threads: {torch.get_num_threads()}; {len(ivs)} interventions; {scored} scored positions"
    )

    start = time.perf_counter()
    table = stages.run_sweep(model, tokens, ivs, progress=False)
    total = time.perf_counter() - start

    # split one batch's work into its parts
    batch = tokens[:8]
    base = capture_baseline(model, batch)
    t = time.perf_counter()
    finals = [run_intervened(model, base, iv)[:, 1:-1].reshape(-1, model.cfg.d_model) for iv in ivs]
    t_blocks = time.perf_counter() - t
    chunk = finals[0][:128]
    t = time.perf_counter()
    logits = head(model, chunk)
    t_head = time.perf_counter() - t
    ref = Distribution.from_logits(head(model, finals[1][:128]))
    t = time.perf_counter()
    compare(ref, Distribution.from_logits(logits), torch.zeros(len(chunk), dtype=torch.long))
    t_metrics = time.perf_counter() - t
    per_k = 1000 / len(chunk)

    print(
        f"sweep: {total:.1f} s = {total / len(ivs) / scored * 1000:.2f} s per intervention per 1k tokens"
    )
    print(
        f"  blocks (avg over interventions): {t_blocks / len(ivs) / (len(batch) * (seq_len - 2)) * 1000:.2f} s per 1k tokens"
    )
    print(f"  head (final norm + unembedding): {t_head * per_k:.2f} s per 1k tokens")
    print(f"  metrics (one comparison):        {t_metrics * per_k:.2f} s per 1k tokens")
    print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    base_row = table[table.kind == "none"].iloc[0]
    print(f"baseline loss {base_row.baseline_loss:.3f} nats on {int(base_row.n_tokens)} positions")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:]))
