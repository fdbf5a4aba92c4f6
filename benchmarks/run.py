"""The speed benchmark (issue 8), one command: ``.venv/bin/python benchmarks/run.py``.

1. this machine's float32 matmul peak, measured first (it varies ~15% between runs);
2. the authors' method against ``stages.run_sweep`` (``versus_authors.py``): the full
   71-intervention sweep of gemma-3-270m on 1024 tokens (4 x 256), and four interventions on
   random-init GPT-2-small and Pythia-410M shapes;
3. peak memory at 1x and 8x the tokens (``memory.py``);
4. Ray's overhead over a local run, and identical tables (``ray_overhead.py``);
5. the projection for Pythia-1.4B on one H100 at 1M tokens (``projection.py``).

Writes ``benchmarks/results/speed.json`` (with the machine's description), which the book's
performance page shows. ``--quick``: four interventions instead of 71 and smaller runs, a few
minutes (results go to ``speed-quick.json``). A benchmark, not a test: it takes ~50 minutes on
a 2-core CPU.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import memory  # noqa: E402
import projection  # noqa: E402
import ray_overhead  # noqa: E402
import versus_authors  # noqa: E402

from stages.engine.flops import matmul_peak  # noqa: E402
from stages.provenance import versions  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict[str, object]:
    """The machine the numbers come from."""
    model = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")), platform.processor() or platform.machine(),
    )  # fmt: skip
    memory_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {"cpu": model, "cores": os.cpu_count(), "memory_gb": round(memory_gb, 1),
            "torch_threads": torch.get_num_threads(), "gpu": "none"}  # fmt: skip


def main() -> None:
    """Run every part and write the results file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few minutes instead of ~50")
    args = parser.parse_args()
    peak = matmul_peak()
    print(f"matmul peak: {peak / 1e9:.0f} GFLOP/s (float32, {torch.get_num_threads()} threads)")
    result = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "versions": versions(),
        "matmul_peak_gflops": peak / 1e9,
        "versus_authors": versus_authors.run(
            peak,
            full=not args.quick,
            n_seq=4 if not args.quick else 2,
            seq_len=256 if not args.quick else 128,
        ),
    }
    print("memory at 1x and 8x tokens:")
    result["memory"] = memory.run(n_tokens=1024)
    print("Ray overhead:")
    result["ray"] = ray_overhead.run(n_tokens=512 if not args.quick else 256)
    result["projection"] = projection.project()
    print(json.dumps(result["projection"]["projected_minutes"]))
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / ("speed-quick.json" if args.quick else "speed.json")
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"written to {out}")


if __name__ == "__main__":
    main()
