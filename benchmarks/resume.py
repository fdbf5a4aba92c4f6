"""Benchmark: what a resumed (or repeated) sweep saves, on the embedded model.

Run: .venv/bin/python benchmarks/resume.py [n_tokens] [seq_len]
1. a full sweep with batch_size=1 (one checkpoint per sequence), timed;
2. the final table and the second half of the checkpoints deleted (as if the run had been
   killed half-way), the same sweep again: it computes only the missing half;
3. the same sweep a third time: the finished table is read from the cache.
Uses a private cache folder, so nothing of the user's is touched.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path


def main(n_tokens: int = 512, seq_len: int = 128) -> None:
    """Time a full, a resumed-from-half and a cached sweep on ``n_tokens`` tokens."""
    os.environ["STAGES_MODELS_DIR"] = str(__import__("stages.store").store.models_dir())
    os.environ["STAGES_CACHE_DIR"] = tempfile.mkdtemp(prefix="stages-resume-bench-")
    import pandas as pd

    import stages

    model = stages.load_model("gemma-3-270m", device="cpu")
    tokens = stages.load_corpus(model, n_tokens=n_tokens, seq_len=seq_len, seed=0)

    def timed() -> tuple[float, pd.DataFrame]:
        start = time.perf_counter()
        table = stages.run_sweep(model, tokens, batch_size=1, progress=False)
        return time.perf_counter() - start, table

    full, reference = timed()
    (entry,) = (Path(os.environ["STAGES_CACHE_DIR"]) / "results" / "sweep").glob("*")
    for path in entry.glob("table-*"):
        path.unlink()
    batches = sorted(entry.glob("batch-*.json"))
    for sidecar in batches[len(batches) // 2 :]:
        sidecar.unlink()
    resumed, table = timed()
    pd.testing.assert_frame_equal(table, reference, check_exact=True)
    cached, table = timed()
    pd.testing.assert_frame_equal(table, reference, check_exact=True)
    print(f"{tokens.shape[0]} sequences x {seq_len} tokens, {len(batches)} checkpoints")
    print(f"full sweep:            {full:7.1f} s")
    print(f"resumed at half-way:   {resumed:7.1f} s  (saves {full - resumed:.1f} s)")
    print(f"finished table cached: {cached:7.2f} s")
    print("tables identical to the uninterrupted run: yes")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:]))
