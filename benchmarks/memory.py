"""Peak memory of a sweep at 1x and 8x the tokens: it must not grow with the token count.

Each size runs in a fresh process: load gemma-3-270m (whose loading has its own, larger peak),
reset the kernel's peak-RSS counter (``/proc/self/clear_refs``), run the sweep of the four
interventions that start at layer 0 (the deepest tails) without the cache, and read the peak
RSS of the sweep alone (``VmHWM``). Linux only.
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys
from pathlib import Path
from typing import Any


def _status_mb(field: str) -> float:
    """``VmRSS`` (current) or ``VmHWM`` (peak) of this process from /proc, in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def child(n_tokens: int) -> None:
    """Run in a subprocess: one sweep on ``n_tokens`` tokens; print the RSS figures as JSON."""
    import stages
    from stages.engine.forward import start_groups

    model = stages.load_model("gemma-3-270m", device="cpu", dtype="float32")
    tokens = stages.load_corpus(model, n_tokens=n_tokens, seq_len=128, seed=0)
    ivs = start_groups(stages.default_interventions(model))[0]
    gc.collect()
    load_peak = _status_mb("VmHWM")
    Path("/proc/self/clear_refs").write_text("5")  # peak RSS := current RSS
    loaded = _status_mb("VmRSS")
    stages.run_sweep(model, tokens, ivs, batch_size=8, progress=False, cache=False)
    print(json.dumps({"n_tokens": int(tokens.numel()), "batch_size": 8,
                      "load_peak_rss_mb": load_peak, "rss_after_load_mb": loaded,
                      "sweep_peak_rss_mb": _status_mb("VmHWM")}))  # fmt: skip


def run(n_tokens: int = 1024) -> dict[str, Any]:
    """Peak RSS at ``n_tokens`` and ``8 * n_tokens``, each in its own process."""
    sizes = []
    for n in (n_tokens, 8 * n_tokens):
        out = subprocess.run(
            [sys.executable, __file__, str(n)], check=True, capture_output=True, text=True
        ).stdout
        sizes.append(json.loads(out.strip().splitlines()[-1]))
        print(f"  {n} tokens: sweep peak RSS {sizes[-1]['sweep_peak_rss_mb']:.0f} MB")
    small, large = sizes
    return {
        "runs": sizes,
        "sweep_peak_ratio_8x_over_1x": large["sweep_peak_rss_mb"] / small["sweep_peak_rss_mb"],
        "sweep_increment_ratio_8x_over_1x": (
            (large["sweep_peak_rss_mb"] - large["rss_after_load_mb"])
            / (small["sweep_peak_rss_mb"] - small["rss_after_load_mb"])
        ),
    }


if __name__ == "__main__":
    child(int(sys.argv[1]))
