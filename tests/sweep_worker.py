"""A sweep in its own process, for the interruption and concurrency tests of the result cache.

Usage: python -m tests.sweep_worker OUT.parquet [--slow SECONDS] [--no-cache]
Builds the tiny seeded Gemma 3 model of tests/conftest.py, runs every intervention over six
sequences with batch_size=1 (six checkpoints), writes the table to OUT.parquet, and prints
``computed N`` (how many batches this process computed rather than read from the cache).
"""

from __future__ import annotations

import argparse
import time

import torch

import stages
import stages.engine.sweep
from tests.conftest import TEXT, make_tiny_hf, make_tiny_tokenizer


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--slow", type=float, default=0.0)
    parser.add_argument("--no-cache", action="store_true")
    args = parser.parse_args()

    tok = make_tiny_tokenizer()
    model = stages.load_model(
        make_tiny_hf("gemma3", len(tok)), tokenizer=tok, device="cpu", dtype="float64"
    )
    ids = tok(TEXT, add_special_tokens=False)["input_ids"]
    tokens = torch.tensor([[tok.bos_token_id] + ids[k * 23 : (k + 1) * 23] for k in range(6)])

    computed = 0
    original = stages.engine.sweep.score_residuals

    def counted(*a, **kw):
        nonlocal computed
        result = original(*a, **kw)
        computed += 1
        print(f"batch done {computed}", flush=True)
        time.sleep(args.slow)
        return result

    stages.engine.sweep.score_residuals = counted
    table = stages.run_sweep(model, tokens, batch_size=1, progress=False, cache=not args.no_cache)
    table.to_parquet(args.out)
    print(f"computed {computed}", flush=True)


if __name__ == "__main__":
    main()
