"""``run_sweep``: the paper's layer-intervention experiment as one tidy table.

For every batch of sequences the baseline runs once (:func:`stages.interventions.capture_baseline`);
each intervention then recomputes only the blocks from its first layer on. Logits are made one
chunk of positions at a time, compared with the baseline chunk, and reduced to per-sequence sums
in float64; per-token vocabulary-sized tensors never outlive a chunk.

Metrics average over every predicted position except position 0 (the prediction made at the BOS
token), as the authors did: a row of ``seq_len`` tokens contributes ``seq_len - 2`` predictions
(positions ``1..seq_len-2``, each scored against the next token).
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from stages import interventions as _interventions_module
from stages import metrics as _metrics_module
from stages.interventions import (
    BASELINE,
    Intervention,
    capture_baseline,
    drops,
    head,
    n_layers,
    run_intervened,
    swaps,
    validate_interventions,
)
from stages.metrics import LN2, METRICS, Distribution, bootstrap_interval, compare
from stages.runs import batched_analysis, check_tokens

# Per-token vocabulary tensors of one chunk: about this many elements (float32: 128 MB).
_CHUNK_ELEMENTS = 1 << 25
# Final residuals of a group of interventions held at once: about this many bytes.
_GROUP_BYTES = 1 << 30


def default_interventions(model: Any) -> list[Intervention]:
    """Every drop, swap, attention-only drop and MLP-only drop of ``model``."""
    return drops(model) + swaps(model) + drops(model, "attn") + drops(model, "mlp")


def run_sweep(
    model: Any,
    tokens: torch.Tensor,
    interventions: Sequence[Intervention] | None = None,
    *,
    batch_size: int | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    progress: bool = True,
    cache: bool = True,
) -> pd.DataFrame:
    """Measure every intervention against the unperturbed model on ``tokens``.

    Args:
        model: a ``TransformerBridge`` from :func:`stages.load_model`.
        tokens: ``[n_seq, seq_len]`` token ids, each row starting with BOS.
        interventions: defaults to every drop, swap, attention-only and MLP-only drop; an
            empty list measures the baseline alone.
        batch_size: sequences per forward pass (default: :func:`default_batch_size`).
        n_boot: bootstrap resamples (over sequences) for the 95% intervals.
        seed: bootstrap seed.
        progress: show a tqdm progress bar.
        cache: read and write the result cache (:mod:`stages.cache`): each batch is
            checkpointed as it finishes, so an interrupted run resumes where it stopped and
            gives the same table as an uninterrupted one; a finished table is reused.

    Returns:
        One row per intervention plus a baseline row (``kind == "none"``), with columns
        ``kind``, ``layer`` (first layer; -1 for the baseline), ``layers`` (e.g. ``"3-4"``),
        ``rel_depth`` (``layer / (n_layers - 1)``), ``kl`` (nats), ``rel_acc`` (0..1),
        ``entropy_delta`` (bits), ``loss`` (nats), each with ``_lo`` / ``_hi`` 95% bootstrap
        bounds, ``baseline_loss`` (nats), ``baseline_entropy`` (bits), ``n_tokens`` (scored
        positions) and ``n_seq``. ``table.attrs["provenance"]`` records the model, weights
        hash, dtype, device, tokens (shape and sha256), parameters, versions and the date the
        table was computed (``from_cache`` is True when it was read from the cache).

    Raises:
        ValueError: bad tokens, batch size or interventions.
        FloatingPointError: a metric came out NaN or infinite (the message names the
            intervention); nothing non-finite is averaged into a table.
    """
    tokens = check_tokens(model, tokens)
    if interventions is None:
        interventions = default_interventions(model)
    ivs = [BASELINE] + [
        iv for iv in validate_interventions(model, interventions) if iv.kind != "none"
    ]
    n_seq, seq_len = tokens.shape

    def compute(batch: torch.Tensor) -> dict[str, np.ndarray]:
        sums = np.zeros((len(ivs), len(METRICS), len(batch)))
        base_entropy = np.zeros(len(batch))
        base = capture_baseline(model, batch)
        finals = (None if iv == BASELINE else run_intervened(model, base, iv) for iv in ivs)
        score_residuals(
            model, batch, base.final_resid, finals, sums, base_entropy, [iv.label for iv in ivs]
        )
        columns = {"entropy": base_entropy}
        for i in range(len(ivs)):
            for m, name in enumerate(METRICS):
                columns[f"{i}:{name}"] = sums[i, m]
        return columns

    def reduce(per_seq: pd.DataFrame) -> pd.DataFrame:
        sums = np.stack(
            [np.stack([per_seq[f"{i}:{name}"] for name in METRICS]) for i in range(len(ivs))]
        )
        counts = np.full(n_seq, float(seq_len - 2))
        return _table(
            model, ivs, sums, counts, per_seq["entropy"].to_numpy(), n_boot=n_boot, seed=seed
        )

    return batched_analysis(
        "sweep",
        model,
        tokens,
        compute=compute,
        reduce=reduce,
        params={"interventions": [iv.label for iv in ivs]},
        reduce_params={"n_boot": n_boot, "seed": seed},
        sources=[_interventions_module, _metrics_module, sys.modules[__name__]],
        batch_size=batch_size,
        progress=progress,
        cache=cache,
        desc="interventions x sequences",
        units_per_seq=len(ivs),
    )


def score_residuals(
    model: Any,
    batch: torch.Tensor,
    ref_resid: torch.Tensor,
    candidates: Iterable[torch.Tensor | None],
    sums: np.ndarray,
    ref_entropy: np.ndarray,
    labels: Sequence[str],
) -> None:
    """Compare next-token distributions read from residuals with the reference; sum per sequence.

    Every residual goes through :func:`stages.interventions.head` (final norm, unembedding),
    one chunk of positions at a time, and is compared with the reference's distribution by
    :func:`stages.metrics.compare` at the scored positions ``1..seq_len-2``.

    Args:
        model: the bridge.
        batch: ``[b, seq_len]`` token ids (the targets are the next tokens).
        ref_resid: ``[b, seq_len, d_model]`` residual giving the reference distribution P.
        candidates: residuals ``[b, seq_len, d_model]`` giving each Q, produced lazily (at most
            about 1 GB of them is held at once); None stands for ``ref_resid`` itself.
        sums: ``[n_candidates, len(METRICS), b]`` float64, incremented in place.
        ref_entropy: ``[b]`` float64, incremented in place by P's entropy in bits.
        labels: a name per candidate, for error messages.

    Raises:
        FloatingPointError: a metric is NaN or infinite (the message names the candidate).
    """
    b, seq_len = batch.shape
    d_model, d_vocab = model.cfg.d_model, model.cfg.d_vocab
    chunk_tokens = max(1, _CHUNK_ELEMENTS // d_vocab)
    targets = batch[:, 2:].reshape(-1)
    seq_of = torch.arange(b).repeat_interleave(seq_len - 2)
    rows = slice(1, seq_len - 1)
    group = max(1, _GROUP_BYTES // max(1, b * seq_len * d_model * ref_resid.element_size()))
    ref_final = ref_resid[:, rows].reshape(-1, d_model)
    candidates = iter(candidates)
    g0 = 0
    while finals := [
        None if c is None else c[:, rows].reshape(-1, d_model)
        for c in itertools.islice(candidates, group)
    ]:
        for c0 in range(0, len(targets), chunk_tokens):
            sl = slice(c0, c0 + chunk_tokens)
            ref = Distribution.from_logits(head(model, ref_final[sl]))
            seq_idx = seq_of[sl].numpy()
            if g0 == 0:
                np.add.at(ref_entropy, seq_idx, ref.entropy.cpu().numpy() / LN2)
            for k, final in enumerate(finals):
                new = ref if final is None else Distribution.from_logits(head(model, final[sl]))
                got = compare(ref, new, targets[sl])
                for m, name in enumerate(METRICS):
                    values = got[name].cpu().numpy()
                    if not np.isfinite(values).all():
                        raise FloatingPointError(
                            f"{labels[g0 + k]}: metric {name!r} is not finite at "
                            f"{int((~np.isfinite(values)).sum())} position(s) "
                            f"(model dtype {model.cfg.dtype}); try dtype='float32'"
                        )
                    np.add.at(sums[g0 + k, m], seq_idx, values)
        g0 += len(finals)


def _table(
    model: Any,
    ivs: list[Intervention],
    sums: np.ndarray,
    counts: np.ndarray,
    base_entropy: np.ndarray,
    *,
    n_boot: int,
    seed: int,
) -> pd.DataFrame:
    """Reduce per-sequence sums to one row per intervention with bootstrap intervals."""
    n = n_layers(model)
    total = counts.sum()
    baseline_loss = sums[0, METRICS.index("loss")].sum() / total
    records = []
    for i, iv in enumerate(ivs):
        rec: dict[str, Any] = {
            "kind": iv.kind,
            "layer": iv.layer,
            "layers": "-".join(map(str, iv.layers)),
            "rel_depth": iv.layer / max(1, n - 1) if iv.layers else np.nan,
        }
        for m, name in enumerate(METRICS):
            rec[name] = sums[i, m].sum() / total
            rec[f"{name}_lo"], rec[f"{name}_hi"] = bootstrap_interval(
                sums[i, m], counts, n_boot=n_boot, seed=seed
            )
        rec.update(
            baseline_loss=baseline_loss,
            baseline_entropy=base_entropy.sum() / total,
            n_tokens=int(total),
            n_seq=len(counts),
        )
        records.append(rec)
    return pd.DataFrame.from_records(records)
