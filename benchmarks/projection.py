"""A projection, not a measurement: the full sweep of Pythia-1.4B on one H100 at 1M tokens.

The FLOPs come from the model's exact shapes (the Hugging Face model built on the meta device,
no weights) with ``flops.sweep_flops``; the time from published peak figures and stated
assumptions. No GPU was used.
"""

from __future__ import annotations

from typing import Any

import torch
import transformers as tf

from stages.engine.flops import sweep_flops
from stages.engine.plans import drop, drop_component, swap

# NVIDIA H100 SXM5 datasheet: dense BF16 tensor-core peak and HBM3 bandwidth.
H100_BF16_FLOPS = 989.4e12
H100_BYTES_PER_S = 3.35e12
# Assumed model-FLOP utilisation of the bf16 matrix products (large, well-shaped GEMMs).
MFU_RANGE = (0.35, 0.60)
# Bytes moved per logit per distribution by the tiled metrics when tiles live in HBM: the
# logits written, then read by max, exp (read + write), sum and two dot products (float32).
BYTES_PER_LOGIT = 28
AUTHORS_HOURS_PER_TYPE = 8.0  # the paper: ~8 h per model per intervention type, one A6000


def pythia_1_4b() -> tuple[torch.nn.Module, tf.GPTNeoXConfig]:
    """Pythia-1.4B's architecture on the meta device (shapes only, no memory)."""
    cfg = tf.GPTNeoXConfig(
        vocab_size=50304, hidden_size=2048, num_hidden_layers=24, num_attention_heads=16,
        intermediate_size=8192, rotary_pct=0.25, use_parallel_residual=True,
        max_position_embeddings=2048,
    )  # fmt: skip
    with torch.device("meta"):
        return tf.GPTNeoXForCausalLM(cfg), cfg


def project(n_tokens: int = 1_000_000, seq_len: int = 1024) -> dict[str, Any]:
    """Projected time of drops, swaps, attention-only and MLP-only drops; see the module text."""
    model, cfg = pythia_1_4b()
    n = cfg.num_hidden_layers
    ivs = (
        [drop(i) for i in range(n)]
        + [drop_component(i, c) for c in ("attn", "mlp") for i in range(n)]
        + [swap(i) for i in range(n - 1)]
    )  # fmt: skip
    n_seq = -(-n_tokens // seq_len)  # at least n_tokens
    flops = sweep_flops(
        block=model.gpt_neox.layers[0], n_layers=n, n_heads=cfg.num_attention_heads,
        d_head=cfg.hidden_size // cfg.num_attention_heads, d_model=cfg.hidden_size,
        d_vocab=cfg.vocab_size, n_seq=n_seq, seq_len=seq_len, interventions=ivs,
    )  # fmt: skip
    logits = (len(ivs) + 1) * n_seq * (seq_len - 2) * cfg.vocab_size
    memory_s = logits * BYTES_PER_LOGIT / H100_BYTES_PER_S
    times = {f"mfu_{mfu:.2f}": flops / (H100_BF16_FLOPS * mfu) + memory_s for mfu in MFU_RANGE}
    return {
        "label": "PROJECTION (no GPU was used): Pythia-1.4B, full sweep, one H100 SXM5",
        "model": "EleutherAI/pythia-1.4b-deduped shapes (24 layers, d_model 2048, vocab 50304)",
        "tokens": f"{n_seq * seq_len} ({n_seq} sequences x {seq_len})",
        "n_interventions": len(ivs),
        "sweep_pflop": flops / 1e15,
        "assumptions": {
            "bf16_peak_tflops": H100_BF16_FLOPS / 1e12,
            "hbm_tb_per_s": H100_BYTES_PER_S / 1e12,
            "mfu_range": list(MFU_RANGE),
            "softmax_bytes_per_logit": BYTES_PER_LOGIT,
            "autocast": "bfloat16 products, float32 tiles, float64 sums",
            "not included": "model load, data loading, Python overhead between kernels",
        },
        "softmax_memory_s": memory_s,
        "projected_minutes": {k: v / 60 for k, v in times.items()},
        "authors_reported_hours": AUTHORS_HOURS_PER_TYPE * 4,
        "authors_note": "8 h per intervention type x 4 types, on one A6000 (the paper)",
    }
