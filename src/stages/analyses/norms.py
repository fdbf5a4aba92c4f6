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

COMPONENTS: dict[str, str] = {"attn": "hook_attn_out", "mlp": "hook_mlp_out"}


def norms_sums(
    model: Model,
    tokens: Tokens,
    **run: Unpack[RunOptions],
) -> pd.DataFrame:
    """Per-sequence sums of the output norms (arguments as :func:`component_norms`).

    Returns:
        One row per sequence: ``"<layer>:hook_attn_out"`` and ``"<layer>:hook_mlp_out"``, the
        L2 norms of each component's output summed over positions ``1..seq_len-1``, and
        ``seq_len``.
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
        with checked_hooks(model, hooks):
            run_to_last_block(model, batch)
        return columns

    return per_sequence(
        "norms",
        model,
        tokens,
        compute=compute,
        params={},
        desc="component norms",
        min_len=2,
        **run,
    )


def norms_table(sums: pd.DataFrame, *, n_boot: int = stats.N_BOOT, seed: int = 0) -> pd.DataFrame:
    """Reduce :func:`norms_sums` to one row per layer with 95% bootstrap intervals.

    Returns:
        One row per layer: ``layer``, ``rel_depth``, ``attn_norm``, ``mlp_norm`` (residual-
        stream units, mean over positions ``1..seq_len-1``), ``ratio``, each with
        ``_lo`` / ``_hi`` 95% bootstrap bounds; ``n_tokens``, ``n_seq``.
    """
    n_layers = layers_of(sums)
    n_seq = len(sums)
    counts = (sums["seq_len"] - 1).to_numpy(dtype=np.float64)
    names = ("attn_norm", "mlp_norm", "ratio")
    values, dens = [], []
    for layer in range(n_layers):
        parts = {c: sums[f"{layer}:{point}"].to_numpy() for c, point in COMPONENTS.items()}
        values += [parts["attn"], parts["mlp"], parts["attn"]]
        dens += [counts, counts, parts["mlp"]]
    estimate, lo, hi = (
        a.reshape(n_layers, len(names))
        for a in stats.mean_intervals(np.stack(values), np.stack(dens), n_boot=n_boot, seed=seed)
    )  # fmt: skip
    records = []
    for layer in range(n_layers):
        rec: dict[str, Any] = {"layer": layer, "rel_depth": layer / max(1, n_layers - 1)}
        for k, name in enumerate(names):
            rec |= {name: estimate[layer, k], f"{name}_lo": lo[layer, k],
                    f"{name}_hi": hi[layer, k]}  # fmt: skip
        rec |= {"n_tokens": int(counts.sum()), "n_seq": n_seq}
        records.append(rec)
    return with_provenance(pd.DataFrame.from_records(records), sums, n_boot=n_boot, seed=seed)


component_norms = analysis(
    'component_norms', norms_sums, norms_table,
    'Mean L2 norm of the attention and MLP outputs per layer, and their ratio.',
)
