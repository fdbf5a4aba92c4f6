"""Component output norms (the paper's Figures 5 and 7): how much attention and MLP write.

Per layer, the mean over tokens of the L2 norm of what the attention layer adds to the residual
stream (``blocks.{l}.hook_attn_out``) and of what the MLP adds (``blocks.{l}.hook_mlp_out``):
for Gemma these are after its post-attention and post-feedforward norms, i.e. exactly the terms
added to the residual; for parallel blocks (GPT-NeoX, Phi) the two terms of the sum. The ratio
``ratio`` is the ratio of the two means (the paper's |Attn| / |MLP|). Positions
``1..seq_len-1`` are averaged: the BOS position, whose outputs are often orders of magnitude
larger than the rest, is left out. Norms are computed in float64; intervals are 95% bootstrap
over sequences (for the ratio, of the ratio of the two sums).
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
import pandas as pd
import torch

from stages import interventions
from stages.interventions import run_to_last_block
from stages.runs import batched_analysis, mean_with_interval

COMPONENTS: dict[str, str] = {"attn": "hook_attn_out", "mlp": "hook_mlp_out"}


def component_norms(
    model: Any,
    tokens: torch.Tensor,
    *,
    batch_size: int | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    progress: bool = True,
    cache: bool = True,
) -> pd.DataFrame:
    """Mean L2 norm of the attention and MLP outputs per layer, and their ratio.

    Args:
        model: a ``TransformerBridge`` from :func:`stages.load_model`.
        tokens: ``[n_seq, seq_len]`` token ids, each row starting with BOS.
        batch_size: sequences per forward pass.
        n_boot: bootstrap resamples (over sequences) for the 95% intervals.
        seed: bootstrap seed.
        progress: show a progress bar.
        cache: read and write the result cache, as :func:`stages.run_sweep` does.

    Returns:
        One row per layer: ``layer``, ``rel_depth``, ``attn_norm``, ``mlp_norm`` (residual-
        stream units, mean over positions ``1..seq_len-1``), ``ratio``, each with
        ``_lo`` / ``_hi`` 95% bootstrap bounds; ``n_tokens``, ``n_seq``.
    """
    n_layers = len(model.blocks)

    def compute(batch: torch.Tensor) -> dict[str, np.ndarray]:
        columns: dict[str, np.ndarray] = {}

        def hook(out: torch.Tensor, hook: Any) -> None:
            _, layer, point = hook.name.split(".")
            norms = torch.linalg.vector_norm(out[:, 1:].double(), dim=-1)  # [b, pos]
            columns[f"{layer}:{point}"] = norms.sum(-1).cpu().numpy()

        hooks = [
            (f"blocks.{layer}.{point}", hook)
            for layer in range(n_layers)
            for point in COMPONENTS.values()
        ]
        with model.hooks(fwd_hooks=hooks):
            run_to_last_block(model, batch)
        return columns

    def reduce(per_seq: pd.DataFrame) -> pd.DataFrame:
        n_seq = len(per_seq)
        counts = np.full(n_seq, float(tokens.shape[1] - 1))
        records = []
        for layer in range(n_layers):
            sums = {c: per_seq[f"{layer}:{point}"].to_numpy() for c, point in COMPONENTS.items()}
            rec: dict[str, Any] = {"layer": layer, "rel_depth": layer / max(1, n_layers - 1)}
            for name, num, den in [
                ("attn_norm", sums["attn"], counts),
                ("mlp_norm", sums["mlp"], counts),
                ("ratio", sums["attn"], sums["mlp"]),
            ]:
                value, lo, hi = mean_with_interval(num, den, n_boot=n_boot, seed=seed)
                rec |= {name: value, f"{name}_lo": lo, f"{name}_hi": hi}
            rec |= {"n_tokens": int(counts.sum()), "n_seq": n_seq}
            records.append(rec)
        return pd.DataFrame.from_records(records)

    return batched_analysis(
        "norms",
        model,
        tokens,
        compute=compute,
        reduce=reduce,
        params={},
        reduce_params={"n_boot": n_boot, "seed": seed},
        sources=[sys.modules[__name__], interventions],
        batch_size=batch_size,
        progress=progress,
        cache=cache,
        desc="component norms",
        min_len=2,
    )
