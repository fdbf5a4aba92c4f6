"""Benchmark (issue 8, first part): the authors' method against ``stages.run_sweep``, one process.

Run: .venv/bin/python benchmarks/versus_authors.py [n_tokens] [seq_len]

On the embedded gemma-3-270m (real weights) and on random-init models with the exact shapes of
GPT-2 small and Pythia-410M, each on one set of tokens, it times (a) the faithful re-implementation
of the authors' method (``benchmarks/authors_method.py``) and (b) ``stages.run_sweep`` on a few
interventions of each kind, checks that both give the same metrics, measures this machine's
float32 matrix-multiply peak in the same process, and reports for each: seconds per
intervention, tokens per second, the speed ratio (b)/(a), and (b)'s model-FLOP utilisation
(the forward FLOPs the sweep needs, counted from the model's shapes, over time and peak).
Results go to ``benchmarks/results/versus_authors.json`` with the machine's description.
A benchmark, not a test: the numbers depend on the machine.
"""

from __future__ import annotations

import copy
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path
from typing import Any

import torch
from authors_method import authors_sweep
from transformers import AutoModelForCausalLM

import stages
from stages.interventions import Intervention, block_order
from stages.models import models_dir

RESULTS = Path(__file__).resolve().parent / "results"


def matmul_peak(n: int = 2048, repeats: int = 5) -> float:
    """Best float32 FLOP/s of an ``n x n`` matrix product over ``repeats`` timed runs."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best


def block_flops_per_token(model, context: float) -> float:
    """Forward FLOPs of one block per token: 2 x its matrix parameters + attention products."""
    params = sum(p.numel() for p in model.blocks[0].parameters() if p.ndim == 2)
    attn = 4 * context * model.cfg.n_heads * model.cfg.d_head  # scores and weighted values
    return 2 * params + attn


def sweep_flops(model, tokens: torch.Tensor, interventions) -> float:
    """Forward FLOPs ``run_sweep`` needs on ``tokens``.

    One baseline pass, each intervention's tail blocks, and one unembedding per intervention
    (plus the reference) at the scored positions.
    """
    n_seq, seq_len = tokens.shape
    per_block = block_flops_per_token(model, context=seq_len / 2) * n_seq * seq_len
    unembed = 2 * model.cfg.d_model * model.cfg.d_vocab * n_seq * (seq_len - 2)
    n = len(model.blocks)
    blocks = n + sum(len(block_order(iv, n)[1]) for iv in interventions)
    return blocks * per_block + (len(interventions) + 1) * unembed


def shaped_models() -> dict[str, tuple[torch.nn.Module, Any]]:
    """Random-init models with the exact shapes of GPT-2 small and Pythia-410M, float32.

    Their weights are random (no hub here), so only their speed means anything; the tokenizer
    is the tests' tiny one (token ids are drawn at random below the model's vocabulary).
    """
    import transformers as tf

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.conftest import make_tiny_tokenizer

    tok = make_tiny_tokenizer()
    torch.manual_seed(0)
    gpt2 = tf.GPT2LMHeadModel(tf.GPT2Config(bos_token_id=1, eos_token_id=2)).eval()
    pythia = tf.GPTNeoXForCausalLM(
        tf.GPTNeoXConfig(
            vocab_size=50304, hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
            intermediate_size=4096, rotary_pct=0.25, use_parallel_residual=True,
            max_position_embeddings=2048, bos_token_id=1, eos_token_id=2,
        )
    ).eval()  # fmt: skip
    return {"gpt2-small shapes (random init)": (gpt2, tok),
            "pythia-410m shapes (random init)": (pythia, tok)}  # fmt: skip


def compare(name: str, hf: torch.nn.Module, tokenizer: Any, tokens: torch.Tensor, peak: float):
    """Time (a) and (b) on one model; return the result record."""
    model = stages.load_model(copy.deepcopy(hf), tokenizer=tokenizer, device="cpu", dtype="float32")
    n = len(model.blocks)
    ivs = [
        Intervention("drop", (n // 6,)),
        Intervention("drop_attn", (n // 2,)),
        Intervention("drop_mlp", (5 * n // 6,)),
        Intervention("swap", (n // 2 - 1, n // 2)),
    ]
    scored = tokens.shape[0] * (tokens.shape[1] - 2)

    start = time.perf_counter()
    ours = stages.run_sweep(model, tokens, ivs, progress=False, cache=False)
    t_ours = time.perf_counter() - start
    flops = sweep_flops(model, tokens, ivs)
    start = time.perf_counter()
    theirs = authors_sweep(hf, tokenizer, tokens, ivs)
    t_theirs = time.perf_counter() - start

    ours = ours[ours.kind != "none"].reset_index(drop=True)
    worst = max(
        abs(a - b) / max(abs(b), 1e-6)
        for metric in ("kl", "rel_acc", "entropy_delta", "loss")
        for a, b in zip(theirs[metric], ours[metric], strict=True)
    )
    return {
        "model": name,
        "tokens": list(tokens.shape),
        "interventions": [iv.label for iv in ivs],
        "authors_s_per_intervention": t_theirs / len(ivs),
        "stages_s_per_intervention": t_ours / len(ivs),
        "authors_tokens_per_s": scored * len(ivs) / t_theirs,
        "stages_tokens_per_s": scored * len(ivs) / t_ours,
        "speed_ratio": t_theirs / t_ours,
        "stages_mfu": flops / t_ours / peak,
        "max_relative_difference": worst,
    }


def main(n_tokens: int = 256, seq_len: int = 128) -> None:
    """Time both methods on ``n_tokens`` tokens per model, print and save the comparison."""
    peak = matmul_peak()
    print(f"threads {torch.get_num_threads()}; matmul peak {peak / 1e9:.1f} GFLOP/s (float32)")
    gemma = stages.load_model("gemma-3-270m", device="cpu", dtype="float32")
    tokens = stages.load_corpus(gemma, n_tokens=n_tokens, seq_len=seq_len, seed=0)
    folder = next(models_dir().glob("gemma-3-270m*"))
    runs = [("gemma-3-270m (real weights)",
             AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval(),
             gemma.tokenizer, tokens)]  # fmt: skip
    del gemma
    generator = torch.Generator().manual_seed(0)
    for name, (hf, tok) in shaped_models().items():
        ids = torch.randint(4, hf.config.vocab_size, tokens.shape, generator=generator)
        ids[:, 0] = tok.bos_token_id
        runs.append((name, hf, tok, ids))
    records = []
    for name, hf, tok, ids in runs:
        record = compare(name, hf, tok, ids, peak)
        records.append(record)
        print(json.dumps(record, indent=1))
    result = {
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                    "torch_threads": torch.get_num_threads(), "torch": torch.__version__},
        "matmul_peak_gflops": peak / 1e9,
        "runs": records,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "versus_authors.json").write_text(json.dumps(result, indent=1) + "\n")
    print(f"peak RSS {result['peak_rss_mb']:.0f} MB; written to {RESULTS / 'versus_authors.json'}")


if __name__ == "__main__":
    main(*map(int, sys.argv[1:]))
