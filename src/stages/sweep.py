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

import datetime as dt
import functools
import hashlib
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from stages.cache import Entry
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
from stages.metrics import METRICS, Distribution, bootstrap_interval, compare
from stages.models import model_info
from stages.provenance import versions

# Per-token vocabulary tensors of one chunk: about this many elements (float32: 128 MB).
_CHUNK_ELEMENTS = 1 << 25
# Final residuals of a group of interventions held at once: about this many bytes.
_GROUP_BYTES = 1 << 30


def default_interventions(model: Any) -> list[Intervention]:
    """Every drop, swap, attention-only drop and MLP-only drop of ``model``."""
    return drops(model) + swaps(model) + drops(model, "attn") + drops(model, "mlp")


def default_batch_size(model: Any, seq_len: int) -> int:
    """Sequences per batch: 8 on the CPU; on a GPU, about 16k tokens per batch."""
    if str(model.cfg.device).startswith("cuda"):
        return max(1, 16384 // seq_len)
    return 8


def _check_tokens(model: Any, tokens: torch.Tensor) -> torch.Tensor:
    if not isinstance(tokens, torch.Tensor) or tokens.ndim != 2 or tokens.dtype != torch.long:
        raise ValueError(
            "tokens must be a LongTensor [n_seq, seq_len] (stages.load_corpus returns one), got "
            f"{type(tokens).__name__} {getattr(tokens, 'shape', '')} {getattr(tokens, 'dtype', '')}"
        )
    if tokens.shape[1] < 3:
        raise ValueError(
            f"seq_len must be at least 3 to score positions 1.., got {tokens.shape[1]}"
        )
    n_ctx = getattr(model.cfg, "n_ctx", None)
    if n_ctx and tokens.shape[1] > n_ctx:
        raise ValueError(f"seq_len {tokens.shape[1]} exceeds the model's context of {n_ctx} tokens")
    vocab = model.cfg.d_vocab
    if tokens.numel() and (int(tokens.min()) < 0 or int(tokens.max()) >= vocab):
        raise ValueError(f"token ids must lie in 0..{vocab - 1} for this model")
    return tokens


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
    tokens = _check_tokens(model, tokens)
    if interventions is None:
        interventions = default_interventions(model)
    ivs = [BASELINE] + [
        iv for iv in validate_interventions(model, interventions) if iv.kind != "none"
    ]
    n_seq, seq_len = tokens.shape
    if batch_size is None:
        batch_size = default_batch_size(model, seq_len)
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")

    tokens_sha = _tokens_sha256(tokens)
    entry = (
        Entry.for_run("sweep", _key(model, tokens, tokens_sha, ivs, batch_size)) if cache else None
    )
    table_name = f"table-boot{n_boot}-seed{seed}"
    if entry is not None and (hit := entry.read(table_name)) is not None:
        table, meta = hit
        table.attrs["provenance"] = meta | {"from_cache": True}
        return table

    # sums[i, m, s]: sum over scored positions of sequence s of metric m under intervention i.
    sums = np.zeros((len(ivs), len(METRICS), n_seq))
    base_entropy = np.zeros(n_seq)
    counts = np.full(n_seq, float(seq_len - 2))

    bar = tqdm(
        total=n_seq * len(ivs), disable=not progress, desc="interventions x sequences", unit="seq"
    )
    for k, start in enumerate(range(0, n_seq, batch_size)):
        seqs = slice(start, min(n_seq, start + batch_size))
        stored = entry.read(f"batch-{k:05d}") if entry is not None else None
        if stored is not None:  # checkpoint of an earlier (maybe interrupted) run
            part, _ = stored
            base_entropy[seqs] = part["entropy"].to_numpy()
            for i in range(len(ivs)):
                for m, name in enumerate(METRICS):
                    sums[i, m, seqs] = part[f"{i}:{name}"].to_numpy()
        else:
            _sweep_batch(model, tokens[seqs], ivs, sums[:, :, seqs], base_entropy[seqs])
            if entry is not None:
                entry.write(f"batch-{k:05d}", _batch_frame(sums[:, :, seqs], base_entropy[seqs]))
        bar.update((seqs.stop - seqs.start) * len(ivs))
    bar.close()
    table = _table(model, ivs, sums, counts, base_entropy, n_boot=n_boot, seed=seed)
    table.attrs["provenance"] = _provenance(
        model, tokens, tokens_sha, ivs, batch_size, n_boot, seed
    )
    if entry is not None:
        entry.write(table_name, table, meta=table.attrs["provenance"])
    return table


def _sweep_batch(
    model: Any,
    batch: torch.Tensor,
    ivs: list[Intervention],
    sums: np.ndarray,
    base_entropy: np.ndarray,
) -> None:
    """Add one batch's per-sequence metric sums into ``sums`` ``[iv, metric, b]`` in place."""
    b, seq_len = batch.shape
    batch = batch.to(model.cfg.device)
    d_model, d_vocab = model.cfg.d_model, model.cfg.d_vocab
    chunk_tokens = max(1, _CHUNK_ELEMENTS // d_vocab)
    base = capture_baseline(model, batch)
    # Scored positions 1..seq_len-2 of every row, flattened; targets are the next tokens.
    targets = batch[:, 2:].reshape(-1)
    seq_of = torch.arange(b).repeat_interleave(seq_len - 2)
    rows = slice(1, seq_len - 1)
    itemsize = base.final_resid.element_size()
    group = max(1, _GROUP_BYTES // max(1, b * seq_len * d_model * itemsize))
    base_final = base.final_resid[:, rows].reshape(-1, d_model)
    for g0 in range(0, len(ivs), group):
        group_ivs = ivs[g0 : g0 + group]
        finals = [
            base_final
            if iv == BASELINE
            else run_intervened(model, base, iv)[:, rows].reshape(-1, d_model)
            for iv in group_ivs
        ]
        for c0 in range(0, len(targets), chunk_tokens):
            sl = slice(c0, c0 + chunk_tokens)
            ref = Distribution.from_logits(head(model, base_final[sl]))
            seq_idx = seq_of[sl].numpy()
            if g0 == 0:
                np.add.at(base_entropy, seq_idx, ref.entropy.cpu().numpy() / np.log(2.0))
            for k, (iv, final) in enumerate(zip(group_ivs, finals, strict=True)):
                new = ref if iv == BASELINE else Distribution.from_logits(head(model, final[sl]))
                got = compare(ref, new, targets[sl])
                for m, name in enumerate(METRICS):
                    values = got[name].cpu().numpy()
                    if not np.isfinite(values).all():
                        raise FloatingPointError(
                            f"{iv.label}: metric {name!r} is not finite at "
                            f"{int((~np.isfinite(values)).sum())} position(s) "
                            f"(model dtype {model.cfg.dtype}); try dtype='float32'"
                        )
                    np.add.at(sums[g0 + k, m], seq_idx, values)


def _batch_frame(sums: np.ndarray, base_entropy: np.ndarray) -> pd.DataFrame:
    """One batch's checkpoint: a column per (intervention index, metric), a row per sequence."""
    columns = {"entropy": base_entropy}
    for i in range(sums.shape[0]):
        for m, name in enumerate(METRICS):
            columns[f"{i}:{name}"] = sums[i, m]
    return pd.DataFrame(columns)


def _tokens_sha256(tokens: torch.Tensor) -> str:
    return hashlib.sha256(tokens.cpu().numpy().astype(np.int64).tobytes()).hexdigest()


def _key(
    model: Any, tokens: torch.Tensor, tokens_sha: str, ivs: list[Intervention], batch_size: int
) -> dict:
    """Everything that determines the per-sequence sums of a sweep (the cache key)."""
    info = model_info(model)
    return {
        "analysis": "sweep",
        "model": {k: info.get(k) for k in ("name", "weights_hash", "dtype", "process_weights")}
        | {"device": torch.device(info.get("device", "cpu")).type},
        "tokens": {"shape": list(tokens.shape), "sha256": tokens_sha},
        "interventions": [iv.label for iv in ivs],
        "batch_size": batch_size,
        "versions": {k: v for k, v in versions().items() if k != "python"},
        "engine": _engine_fingerprint(),
    }


@functools.cache
def _engine_fingerprint() -> str:
    """Hash of the code that computes a sweep, so an edited engine never reuses old results."""
    from stages import interventions, metrics

    digest = hashlib.sha256()
    for module in (interventions, metrics, sys.modules[__name__]):
        digest.update(Path(module.__file__).read_bytes())
    return digest.hexdigest()[:16]


def _provenance(model, tokens, tokens_sha, ivs, batch_size, n_boot, seed) -> dict[str, Any]:
    """What produced a sweep table (kept in ``table.attrs["provenance"]``)."""
    info = model_info(model)
    return {
        "model": info.get("name"),
        "weights_hash": info.get("weights_hash"),
        "dtype": info.get("dtype"),
        "device": info.get("device"),
        "tokens": f"{tokens.shape[0]} x {tokens.shape[1]}",
        "tokens_sha256": tokens_sha,
        "interventions": len(ivs) - 1,
        "batch_size": batch_size,
        "n_boot": n_boot,
        "seed": seed,
        "versions": versions(),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


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
