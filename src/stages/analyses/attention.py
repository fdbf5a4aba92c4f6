"""Attention locality (the paper's Figure 4): how much each head attends to the previous tokens.

For one head, ``A[q, k]`` is the attention weight of query position ``q`` on key position ``k``
(TransformerLens ``blocks.{l}.attn.hook_pattern``; rows sum to 1; Gemma's sliding-window
layers are read as they are, with their window). With ``K = 5`` offsets:

- ``attn_prev5``, **the paper's quantity** (the authors' notebook): the mean of every entry on
  the sub-diagonals ``k = q - 1 .. q - K``, i.e. over all (query, offset) pairs with
  ``q - offset >= 0``. BOS is not excluded as a key. Roughly the attention on the ``K``
  previous tokens divided by ``K``.
- ``prev_sum``: the attention on the ``K`` previous keys summed per query (a fraction, 0..1),
  averaged over queries ``1..seq_len-1``.
- ``attn_prev5_nobos`` / ``prev_sum_nobos``: the same with BOS removed as a key and each query's
  attention renormalised over the other keys, ``A[q, k] / sum_{j >= 1} A[q, j]``, over queries
  ``2..seq_len-1``. Models that park most attention on BOS (an "attention sink") show their
  local attention only this way.
- ``bos``: the attention on BOS, averaged over queries ``1..seq_len-1``.

Every value is a token-weighted mean over sequences, accumulated in float64, with a 95% bootstrap
interval over sequences.
"""

from __future__ import annotations

from typing import Any, Unpack

import numpy as np
import pandas as pd
import torch

from stages import stats
from stages.engine.analysis import analysis
from stages.engine.forward import run_to_last_block
from stages.engine.hooks import checked_hooks
from stages.engine.runs import RunOptions, layers_of, per_sequence, with_provenance
from stages.shapes import Model, Tokens

QUANTITIES: tuple[str, ...] = (
    "attn_prev5",
    "prev_sum",
    "attn_prev5_nobos",
    "prev_sum_nobos",
    "bos",
)


def locality_sums(pattern: torch.Tensor, offsets: int = 5) -> dict[str, torch.Tensor]:
    """Per-sequence, per-head sums and counts of the locality quantities of one layer.

    Args:
        pattern: ``[batch, head, query, key]`` attention weights (rows sum to 1), causal.
        offsets: ``K``, how many previous tokens count as local.

    Returns:
        For each name in :data:`QUANTITIES`, a float64 ``[batch, head]`` sum over its entries
        or queries (see the module docstring); divided by :func:`locality_counts` it gives the
        per-sequence mean.
    """
    if pattern.ndim != 4 or pattern.shape[-1] != pattern.shape[-2]:
        raise ValueError(f"pattern must be [batch, head, query, key], got {tuple(pattern.shape)}")
    if offsets < 1:
        raise ValueError(f"offsets must be at least 1, got {offsets}")
    a = pattern.double()
    n = a.shape[-1]
    rest = a[..., 1:].sum(-1).clamp_min(torch.finfo(torch.float64).tiny)  # [b, h, q]
    diagonals = [a.diagonal(offset=-k, dim1=-2, dim2=-1) for k in range(1, min(offsets, n - 1) + 1)]
    # diagonal k holds A[q, q - k] for q = k..n-1; its first entry has BOS as the key.
    per_query = torch.zeros(a.shape[:3], dtype=torch.float64)  # [b, h, q]
    per_query_nobos = torch.zeros_like(per_query)
    for k, d in enumerate(diagonals, start=1):
        per_query[..., k:] += d
        per_query_nobos[..., k + 1 :] += d[..., 1:]
    per_query_nobos = per_query_nobos / rest
    return {
        "attn_prev5": sum(d.sum(-1) for d in diagonals),
        "prev_sum": per_query[..., 1:].sum(-1),
        "attn_prev5_nobos": sum(
            (d[..., 1:] / rest[..., k + 1 :]).sum(-1) for k, d in enumerate(diagonals, start=1)
        ),
        "prev_sum_nobos": per_query_nobos[..., 2:].sum(-1),
        "bos": a[..., 1:, 0].sum(-1),
    }


def locality_counts(seq_len: int, offsets: int = 5) -> dict[str, int]:
    """How many terms each sum of :func:`locality_sums` has for one sequence and head."""
    ks = range(1, min(offsets, seq_len - 1) + 1)
    return {
        "attn_prev5": sum(seq_len - k for k in ks),
        "prev_sum": seq_len - 1,
        "attn_prev5_nobos": sum(seq_len - k - 1 for k in ks),
        "prev_sum_nobos": seq_len - 2,
        "bos": seq_len - 1,
    }


def attention_sums(
    model: Model,
    tokens: Tokens,
    *,
    offsets: int = 5,
    **run: Unpack[RunOptions],
) -> pd.DataFrame:
    """Per-sequence, per-head locality sums (arguments as :func:`attention_locality`).

    Returns:
        One row per sequence: ``"<layer>.<head>:<quantity>"`` for every head and quantity of
        :data:`QUANTITIES` (the :func:`locality_sums`; :func:`locality_counts` gives their
        term counts), and ``seq_len``.
    """
    if not isinstance(offsets, int) or isinstance(offsets, bool) or offsets < 1:
        raise ValueError(f"offsets must be a positive integer, got {offsets!r}")
    n_layers, n_heads = len(model.blocks), model.cfg.n_heads

    def compute(batch: torch.Tensor) -> dict[str, np.ndarray]:
        columns: dict[str, np.ndarray] = {}

        def hook(pattern: torch.Tensor, hook: Any) -> None:
            layer = int(hook.name.split(".")[1])
            for name, value in locality_sums(pattern, offsets).items():
                for h in range(n_heads):
                    columns[f"{layer}.{h}:{name}"] = value[:, h].cpu().numpy()

        hooks = [(f"blocks.{layer}.attn.hook_pattern", hook) for layer in range(n_layers)]
        with checked_hooks(model, hooks):
            run_to_last_block(model, batch)
        return columns

    return per_sequence(
        "attention",
        model,
        tokens,
        compute=compute,
        params={"offsets": offsets},
        desc="attention patterns",
        **run,
    )


def heads_of(sums: pd.DataFrame) -> int:
    """Heads per layer of an :func:`attention_sums` frame."""
    return 1 + max(int(c.split(":")[0].split(".")[1]) for c in sums.columns if "." in c)


def attention_table(
    sums: pd.DataFrame, *, offsets: int = 5, n_boot: int = stats.N_BOOT, seed: int = 0
) -> pd.DataFrame:
    """Reduce :func:`attention_sums` to per-head and per-layer means with 95% intervals.

    Args:
        sums: an :func:`attention_sums` frame.
        offsets: the ``offsets`` the sums were computed with.
        n_boot: bootstrap resamples (over sequences).
        seed: bootstrap seed.

    Returns:
        One row per (layer, head), plus one row per layer with ``head == -1`` holding the
        mean over the layer's heads. Columns: ``layer``, ``head``, ``rel_depth``, and for each
        quantity of the module docstring its value with ``_lo`` / ``_hi`` 95% bootstrap bounds;
        ``n_seq``.
    """
    n_layers, n_heads = layers_of(sums), heads_of(sums)
    n_seq = len(sums)
    seq_lens = sums["seq_len"].to_numpy()
    cells = [(layer, head) for layer in range(n_layers) for head in [*range(n_heads), -1]]
    entries = {name: np.array([locality_counts(int(t), offsets)[name] for t in seq_lens],
                              dtype=np.float64) for name in QUANTITIES}  # fmt: skip
    values, counts = [], []
    for layer, head in cells:
        heads = range(n_heads) if head == -1 else [head]
        for name in QUANTITIES:
            values.append(sum(sums[f"{layer}.{h}:{name}"].to_numpy() for h in heads))
            counts.append(entries[name] * len(heads))
    estimate, lo, hi = (
        a.reshape(len(cells), len(QUANTITIES))
        for a in stats.mean_intervals(np.stack(values), np.stack(counts), n_boot=n_boot,
                                      seed=seed)
    )  # fmt: skip
    records = []
    for c, (layer, head) in enumerate(cells):
        rec: dict[str, Any] = {"layer": layer, "head": head,
                               "rel_depth": layer / max(1, n_layers - 1)}  # fmt: skip
        for k, name in enumerate(QUANTITIES):
            rec |= {name: estimate[c, k], f"{name}_lo": lo[c, k], f"{name}_hi": hi[c, k]}
        rec["n_seq"] = n_seq
        records.append(rec)
    table = pd.DataFrame.from_records(records)
    return with_provenance(table, sums, offsets=offsets, n_boot=n_boot, seed=seed)


attention_locality = analysis(
    'attention_locality', attention_sums, attention_table,
    'Attention on the previous ``offsets`` tokens, per layer and head (Figure 4).', args={
        'offsets': "how many previous tokens count as local (the paper: 5).",
    },
)
