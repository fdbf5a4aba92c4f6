"""Ray's wall-clock overhead: the same sweep locally and on a local Ray cluster.

A two-CPU machine gains nothing from two workers (each already uses both cores), so this
measures the cost of scale-out (starting actors, each loading the model, shipping tokens and
sums), and checks that the tables are identical.
"""

from __future__ import annotations

import time
from typing import Any

import pandas as pd

import stages
from stages.engine.forward import start_groups


def run(n_tokens: int = 512) -> dict[str, Any]:
    """Time one start-layer group of interventions locally, then with 1 and 2 Ray workers."""
    import ray

    model = stages.load_model("gemma-3-270m", device="cpu", dtype="float32")
    tokens = stages.load_corpus(model, n_tokens=n_tokens, seq_len=128, seed=0)
    ivs = start_groups(stages.default_interventions(model))[6]
    kwargs = {"batch_size": 2, "progress": False, "cache": False}
    start = time.perf_counter()
    local = stages.run_sweep(model, tokens, ivs, **kwargs)
    record: dict[str, Any] = {
        "tokens": list(tokens.shape),
        "interventions": [iv.label for iv in ivs],
        "local_s": time.perf_counter() - start,
    }
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        for workers in (1, 2):
            start = time.perf_counter()
            remote = stages.run_sweep(model, tokens, ivs, executor="ray", workers=workers, **kwargs)
            record[f"ray_{workers}_workers_s"] = time.perf_counter() - start
            pd.testing.assert_frame_equal(remote, local, check_exact=True)
    finally:
        ray.shutdown()
    record["identical_tables"] = True
    record["overhead_1_worker_s"] = record["ray_1_workers_s"] - record["local_s"]
    print(f"  local {record['local_s']:.1f} s, Ray 1 worker {record['ray_1_workers_s']:.1f} s, "
          f"2 workers {record['ray_2_workers_s']:.1f} s")  # fmt: skip
    return record
