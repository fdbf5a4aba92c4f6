"""The authors' method against ``stages.run_sweep``: same model, same tokens, one process.

For each model it times (a) the faithful re-implementation of the authors' method
(``authors_method.py``) and (b) ``stages.run_sweep``, checks that both give the same metrics,
and reports seconds per intervention, tokens/s, the speed ratio (b)/(a), peak memory and (b)'s
model-FLOP utilisation against the matmul peak measured in the same process (``flops.py``).
Models: the embedded gemma-3-270m (real weights; the full 71-intervention sweep, or a subset),
and random-init models with the exact shapes of GPT-2 small and Pythia-410M (a subset: their
weights are random, only their speed means anything).
"""

from __future__ import annotations

import copy
import resource
import sys
import time
from pathlib import Path
from typing import Any

import torch
from authors_method import authors_sweep
from transformers import AutoModelForCausalLM

import stages
from stages.engine.flops import bridge_sweep_flops
from stages.engine.plans import Intervention, drop, drop_component, swap
from stages.models import embedded_model_dir

METRICS = ("kl", "rel_acc", "entropy_delta", "loss")


def subset(n: int) -> list[Intervention]:
    """One intervention of each kind, spread over the depth of an ``n``-layer model."""
    return [
        drop(n // 6),
        drop_component(n // 2, "attn"),
        drop_component(5 * n // 6, "mlp"),
        swap(n // 2 - 1),
    ]


def shaped_models() -> dict[str, tuple[torch.nn.Module, Any]]:
    """Random-init float32 models with the exact shapes of GPT-2 small and Pythia-410M."""
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


def compare(
    name: str, hf: torch.nn.Module, tokenizer: Any, tokens: torch.Tensor, peak: float, full: bool
) -> dict[str, Any]:
    """Time (a) and (b) on one model; return the result record."""
    model = stages.load_model(copy.deepcopy(hf), tokenizer=tokenizer, device="cpu", dtype="float32")
    ivs = stages.default_interventions(model) if full else subset(len(model.blocks))
    scored = tokens.shape[0] * (tokens.shape[1] - 2)
    print(f"{name}: {len(ivs)} interventions on {tokens.shape[0]} x {tokens.shape[1]} tokens")

    start = time.perf_counter()
    ours = stages.run_sweep(model, tokens, ivs, progress=True, cache=False)
    t_ours = time.perf_counter() - start
    flops = bridge_sweep_flops(model, tokens, ivs)
    print(f"  stages.run_sweep: {t_ours:.1f} s")
    start = time.perf_counter()
    theirs = authors_sweep(hf, tokenizer, tokens, ivs)
    t_theirs = time.perf_counter() - start
    print(f"  authors' method:  {t_theirs:.1f} s")

    ours = ours[ours.kind != "none"].reset_index(drop=True)
    worst = {
        metric: max(
            abs(a - b) / max(abs(b), 1e-3)
            for a, b in zip(theirs[metric], ours[metric], strict=True)
        )
        for metric in METRICS
    }
    per_kind = theirs.groupby("kind")["seconds"].mean().to_dict()
    return {
        "model": name,
        "tokens": list(tokens.shape),
        "n_interventions": len(ivs),
        "interventions": "all (drop, swap, attention-only, MLP-only)" if full
        else [iv.label for iv in ivs],
        "authors_s": t_theirs,
        "stages_s": t_ours,
        "authors_s_per_intervention": t_theirs / len(ivs),
        "stages_s_per_intervention": t_ours / len(ivs),
        "authors_s_per_intervention_by_kind": per_kind,
        "authors_tokens_per_s": scored * len(ivs) / t_theirs,
        "stages_tokens_per_s": scored * len(ivs) / t_ours,
        "speed_ratio": t_theirs / t_ours,
        "sweep_tflop": flops / 1e12,
        "stages_mfu": flops / t_ours / peak,
        "max_relative_difference": worst,
        "peak_rss_mb_so_far": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }  # fmt: skip


def run(peak: float, *, full: bool, n_seq: int, seq_len: int) -> list[dict[str, Any]]:
    """Compare on gemma-3-270m (all interventions if ``full``) and on the two shaped models."""
    gemma = stages.load_model("gemma-3-270m", device="cpu", dtype="float32")
    tokens = stages.load_corpus(gemma, n_tokens=n_seq * seq_len, seq_len=seq_len, seed=0)
    tokenizer = gemma.tokenizer
    del gemma
    hf = AutoModelForCausalLM.from_pretrained(embedded_model_dir(), dtype=torch.float32).eval()
    records = [compare("gemma-3-270m (real weights)", hf, tokenizer, tokens, peak, full)]
    del hf
    generator = torch.Generator().manual_seed(0)
    for name, (model, tok) in shaped_models().items():
        ids = torch.randint(4, model.config.vocab_size, (2, 128), generator=generator)
        ids[:, 0] = tok.bos_token_id
        records.append(compare(name, model, tok, ids, peak, full=False))
    return records
