"""FLOP counts of a sweep from a model's shapes, and this machine's matrix-multiply peak.

Used by the speed benchmark (``benchmarks/``) and the book's performance page.

Model-FLOP utilisation (MFU) = the forward FLOPs the sweep needs / time / peak. The count is
what the experiment needs, not what an engine happens to do: one baseline pass, every
intervention's blocks from its first touched layer on, and one unembedding per distribution
(the baseline's and each intervention's) at the scored positions. Work an engine adds (the
stages engine's pass for the expected unembedding row, the authors' recomputed baseline and
prefix blocks) is not counted.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import torch

from stages.engine.plans import Plan
from stages.shapes import Model, Tokens


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


def block_flops_per_token(
    block: torch.nn.Module, n_heads: int, d_head: int, context: float
) -> float:
    """Forward FLOPs of one block per token: 2 x its matrix parameters + attention products.

    ``context`` is the mean number of keys a query attends to (``seq_len / 2`` for causal
    attention); scores and the weighted sum of values cost ``2 x 2 x context x n_heads x d_head``.
    Works on meta-device modules (only shapes are read).
    """
    params = sum(p.numel() for p in block.parameters() if p.ndim == 2)
    return 2 * params + 4 * context * n_heads * d_head


def sweep_flops(
    *,
    block: torch.nn.Module,
    n_layers: int,
    n_heads: int,
    d_head: int,
    d_model: int,
    d_vocab: int,
    n_seq: int,
    seq_len: int,
    interventions: Sequence[Plan],
) -> float:
    """Forward FLOPs a sweep of ``interventions`` needs on ``n_seq x seq_len`` tokens."""
    per_block = block_flops_per_token(block, n_heads, d_head, seq_len / 2) * n_seq * seq_len
    unembed = 2 * d_model * d_vocab * n_seq * (seq_len - 2)
    blocks = n_layers + sum(iv.blocks_run(n_layers) for iv in interventions)
    return blocks * per_block + (len(interventions) + 1) * unembed


def bridge_sweep_flops(
    model: Model, tokens: Tokens, interventions: Sequence[Plan]
) -> float:
    """:func:`sweep_flops` for a loaded bridge on ``tokens`` ``[n_seq, seq_len]``."""
    cfg = model.cfg
    return sweep_flops(
        block=model.blocks[0], n_layers=len(model.blocks), n_heads=cfg.n_heads, d_head=cfg.d_head,
        d_model=cfg.d_model, d_vocab=cfg.d_vocab, n_seq=tokens.shape[0], seq_len=tokens.shape[1],
        interventions=interventions,
    )  # fmt: skip
