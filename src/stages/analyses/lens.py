"""The logit lens (the paper's Figures 6 and 8): what each layer's residual already predicts.

After block ``l`` the residual stream is read as the model reads its last one: the final norm,
applied explicitly with this residual's own statistics, then the unembedding (and Gemma 2's
logit soft-capping where a model has it): :func:`stages.engine.forward.head`. Its next-token
distribution Q_l is compared with the model's own output distribution P (layer ``L - 1``) at the
positions the sweep scores, ``1..seq_len-2``:

- ``kl_to_final``: KL(P || Q_l) in nats (0 at the last layer);
- ``top1_agreement``: the fraction of positions where Q_l's top-1 token is P's;
- ``entropy``: the entropy of Q_l in bits;
- ``loss``: the cross-entropy of Q_l against the true next token, nats.

The authors' notebook used TransformerLens' ``accumulated_resid(apply_ln=True) @ W_U``, which
in the versions of the time normalised every layer with the *final* layer's cached scale; here
every layer gets its own normalisation (the definition of the logit lens).

The same chunked float64 arithmetic as :func:`stages.run_sweep` (:mod:`stages.engine.metrics`); 95%
bootstrap intervals over sequences.
"""

from __future__ import annotations

from typing import Any, Unpack

import numpy as np
import pandas as pd
import torch

from stages import stats
from stages.engine.analysis import analysis
from stages.engine.forward import capture_baseline
from stages.engine.metrics import METRICS
from stages.engine.runs import RunOptions, layers_of, per_sequence, with_provenance
from stages.engine.sweep import score_residuals
from stages.shapes import Model, Tokens

# compare()'s names, and what this table calls them
_COLUMNS = {
    "kl": "kl_to_final",
    "rel_acc": "top1_agreement",
    "entropy_delta": "entropy",
    "loss": "loss",
}


def lens_sums(
    model: Model,
    tokens: Tokens,
    **run: Unpack[RunOptions],
) -> pd.DataFrame:
    """Per-sequence sums of the logit lens at every layer (arguments as :func:`logit_lens`).

    Returns:
        One row per sequence: ``"<layer>:<metric>"`` for every layer and
        :data:`stages.engine.metrics.METRICS` entry (sums over the scored positions
        ``1..seq_len-2``; ``entropy_delta`` is H(Q_l) - H(P) in bits), ``final_entropy`` (H(P)
        summed, bits) and ``seq_len``.
    """
    n_layers = len(model.blocks)

    def compute(batch: torch.Tensor) -> dict[str, np.ndarray]:
        base = capture_baseline(model, batch)
        # resid_pre[l + 1] is the residual after block l; the last one is the model's own.
        layers = [*base.resid_pre[1:-1], None]
        labels = [f"logit lens at layer {layer}" for layer in range(n_layers)]
        sums, final_entropy = score_residuals(model, batch, base.final_resid, layers, labels)
        columns = {"final_entropy": final_entropy}
        for layer in range(n_layers):
            for m, name in enumerate(METRICS):
                columns[f"{layer}:{name}"] = sums[layer, m]
        return columns

    return per_sequence(
        "lens",
        model,
        tokens,
        compute=compute,
        params={},
        desc="logit lens",
        **run,
    )


def lens_table(sums: pd.DataFrame, *, n_boot: int = stats.N_BOOT, seed: int = 0) -> pd.DataFrame:
    """Reduce :func:`lens_sums` to one row per layer with 95% bootstrap intervals.

    Returns:
        One row per layer ``l`` (the residual after block ``l``): ``layer``, ``rel_depth``,
        ``kl_to_final`` (nats), ``top1_agreement`` (0..1), ``entropy`` (bits), ``loss``
        (nats), each with ``_lo`` / ``_hi`` 95% bootstrap bounds; ``final_entropy`` (bits,
        the model's own), ``n_tokens``, ``n_seq``.
    """
    n_layers = layers_of(sums)
    n_seq = len(sums)
    counts = (sums["seq_len"] - 2).to_numpy(dtype=np.float64)
    final_entropy = sums["final_entropy"].to_numpy()
    values = np.stack([
        sums[f"{layer}:{name}"].to_numpy(dtype=np.float64)
        # H(Q_l) = H(P) + (H(Q_l) - H(P)), in bits
        + (final_entropy if name == "entropy_delta" else 0.0)
        for layer in range(n_layers) for name in _COLUMNS
    ])  # fmt: skip
    estimate, lo, hi = (a.reshape(n_layers, len(_COLUMNS)) for a in
                        stats.mean_intervals(values, counts, n_boot=n_boot, seed=seed))  # fmt: skip
    records = []
    for layer in range(n_layers):
        rec: dict[str, Any] = {"layer": layer, "rel_depth": layer / max(1, n_layers - 1)}
        for k, column in enumerate(_COLUMNS.values()):
            rec |= {column: estimate[layer, k], f"{column}_lo": lo[layer, k],
                    f"{column}_hi": hi[layer, k]}  # fmt: skip
        rec |= {
            "final_entropy": final_entropy.sum() / counts.sum(),
            "n_tokens": int(counts.sum()),
            "n_seq": n_seq,
        }
        records.append(rec)
    return with_provenance(pd.DataFrame.from_records(records), sums, n_boot=n_boot, seed=seed)


logit_lens = analysis(
    'logit_lens', lens_sums, lens_table,
    "KL to the final distribution, top-1 agreement and entropy of every layer's logit lens.",
)
