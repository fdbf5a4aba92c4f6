"""``run_sweep``: the paper's layer-intervention experiment as one tidy table.

For every batch of sequences the baseline runs once
(:func:`stages.engine.forward.capture_baseline`); the plans that start at the same layer then run
together (:func:`stages.engine.forward.run_group`): each computes only its own blocks, and the
blocks they share are run once on the group's residuals stacked along the batch. Every final
residual is compared with the baseline by :mod:`stages.engine.metrics`, one vocabulary tile at a
time, and reduced to per-sequence sums in float64 on the model's device, which reach the host at the
end of the batch (no synchronisation inside the intervention loop).

Metrics average over every predicted position except position 0 (the prediction made at the BOS
token), as the authors did: a row of ``seq_len`` tokens contributes ``seq_len - 2`` predictions
(positions ``1..seq_len-2``, each scored against the next token).

The unit of work is (batch, group of start layers). Run locally, a batch's groups run in one
call; with ``executor="ray"`` (:mod:`stages.engine.scale_out`) they may be spread over workers,
each of which repeats the batch's baseline. Each intervention's sums come from the same operations
either way, so both give the same table.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from contextlib import nullcontext
from functools import partial
from typing import Unpack

import numpy as np
import pandas as pd
import torch

from stages import stats
from stages.engine.analysis import analysis
from stages.engine.forward import (
    capture_baseline,
    n_layers,
    run_group,
    start_groups,
    validate_interventions,
)
from stages.engine.metrics import (
    LN2,
    METRICS,
    Unembedding,
    compare,
    reference,
    unchanged,
)
from stages.engine.plans import BASELINE, Plan, drop, drop_component, label_columns, swap
from stages.engine.runs import (
    RunOptions,
    check_tokens,
    forward_bytes_per_seq,
    per_sequence,
    with_provenance,
)
from stages.models import resolve_dtype
from stages.shapes import Model, Tokens

EXECUTORS = ("local", "ray")


def single_layer_plans(n: int) -> list[Plan]:
    """Every drop, swap, attention-only drop and MLP-only drop of a model of ``n`` blocks."""
    return ([drop(i) for i in range(n)] + [swap(i) for i in range(n - 1)]
            + [drop_component(i, "attn") for i in range(n)]
            + [drop_component(i, "mlp") for i in range(n)])  # fmt: skip


def default_interventions(model: Model) -> list[Plan]:
    """Every drop, swap, attention-only drop and MLP-only drop of ``model``."""
    return single_layer_plans(n_layers(model))


def sweep_sums(
    model: Model,
    tokens: Tokens,
    interventions: Sequence[Plan] | None = None,
    *,
    autocast: str | None = None,
    executor: str = "local",
    workers: int | None = None,
    **run: Unpack[RunOptions],
) -> pd.DataFrame:
    """Per-sequence metric sums of every intervention against the unperturbed model.

    Args:
        model: a ``TransformerBridge`` from :func:`stages.load_model`.
        tokens: ``[n_seq, seq_len]`` token ids, each row starting with BOS.
        interventions: defaults to every drop, swap, attention-only and MLP-only drop; an
            empty list measures the baseline alone. Repeated entries are measured once.
        autocast: ``"bfloat16"`` or ``"float16"``: run a float32 model's matrix products in
            that precision under ``torch.autocast`` (for GPUs with fast half-precision units);
            the metrics are still accumulated in float64. None (default): the model's dtype.
        executor: ``"local"`` (this process) or ``"ray"``: spread (batch x start-layer group)
            tasks over Ray workers (:mod:`stages.engine.scale_out`; install ``stages[ray]``). Both
            give the same table and share the cache.
        workers: Ray workers (default: one per GPU for a CUDA model, else two CPUs each).
        run: ``batch_size``, ``progress``, ``cache`` (:class:`stages.engine.runs.RunOptions`;
            the default batch allows for a group of four plans' blocks at once).

    Returns:
        One row per sequence: ``"<label>:<metric>"`` (float64 sums over the sequence's scored
        positions ``1..seq_len-2`` of each :data:`stages.engine.metrics.METRICS` entry, for the
        baseline ``none`` and every intervention, labelled as :attr:`Plan.label`),
        ``entropy`` (the baseline's entropy summed over the same positions, bits) and
        ``seq_len``.

    Raises:
        ValueError: bad tokens, batch size, interventions, autocast or executor.
        FloatingPointError: a metric came out NaN or infinite (the message names the
            intervention); nothing non-finite is averaged into a table.
    """
    tokens = check_tokens(model, tokens)
    if interventions is None:
        interventions = default_interventions(model)
    ivs = list(dict.fromkeys(
        iv for iv in validate_interventions(model, interventions) if iv.kind != "none"
    ))  # fmt: skip
    groups = start_groups(ivs)
    half = _autocast_dtype(model, autocast)
    if executor not in EXECUTORS:
        raise ValueError(f"executor must be one of {EXECUTORS}, got {executor!r}")
    map_batches = None
    if executor == "ray":
        from stages.engine.scale_out import RayBatches

        map_batches = RayBatches(model, sweep_task, groups, {"half": half}, workers=workers)

    def compute(batch: torch.Tensor) -> dict[str, np.ndarray]:
        return sweep_task(model, batch, groups, first=True, half=half)

    sums = per_sequence(
        "sweep",
        model,
        tokens,
        compute=compute,
        params={"interventions": [iv.label for iv in [BASELINE, *ivs]]}
        | ({"autocast": str(half).removeprefix("torch.")} if half else {}),
        bytes_per_seq=partial(forward_bytes_per_seq, model, copies=5),
        desc="interventions x sequences",
        units_per_seq=len(ivs) + 1,
        map_batches=map_batches,
        **run,
    )
    # one column order however the batches' columns arrived (Ray merges chunks as they finish)
    order = [f"{iv.label}:{name}" for iv in [BASELINE, *ivs] for name in METRICS]
    ordered = sums[["entropy", *order, "seq_len"]]
    ordered.attrs = sums.attrs
    return ordered


def plan_sums(
    name: str, plans_of: Callable[[int], list[Plan]], columns: str
) -> Callable[..., pd.DataFrame]:
    """The sums function of a family of plans: :func:`sweep_sums` of ``plans_of(n_layers)``.

    Args:
        name: the function's name (``"block_sums"``).
        plans_of: the family's plans for a model of ``n_layers`` blocks.
        columns: the labels its columns carry, in words (for the docstring).

    Returns:
        ``f(model, tokens, **run)`` (:class:`stages.engine.runs.RunOptions`).
    """

    def sums(model: Model, tokens: Tokens, **run: Unpack[RunOptions]) -> pd.DataFrame:
        return sweep_sums(model, tokens, plans_of(n_layers(model)), **run)

    sums.__name__ = sums.__qualname__ = name
    sums.__module__ = plans_of.__module__
    sums.__doc__ = (
        f"Per-sequence metric sums of every plan of :func:`{plans_of.__name__}`.\n\n"
        f":func:`stages.engine.sweep.sweep_sums` of those plans; columns {columns}."
    )
    return sums


def sweep_labels(sums: pd.DataFrame) -> list[str]:
    """The intervention labels of a :func:`sweep_sums` frame, in column order (``none`` first)."""
    return list(dict.fromkeys(c.split(":")[0] for c in sums.columns if ":" in c))


def sweep_table(
    sums: pd.DataFrame, *, n_layers: int, n_boot: int = stats.N_BOOT, seed: int = 0
) -> pd.DataFrame:
    """Reduce :func:`sweep_sums` to one row per intervention with bootstrap intervals.

    Args:
        sums: a :func:`sweep_sums` frame (computed now or read from a results pack).
        n_layers: the model's number of blocks (for ``rel_depth``).
        n_boot: bootstrap resamples (over sequences) for the 95% intervals.
        seed: bootstrap seed.

    Returns:
        One row per intervention plus a baseline row (``kind == "none"``), with columns
        ``kind``, ``layer`` (first layer; -1 for the baseline), ``layers`` (e.g. ``"3-4"``),
        ``rel_depth`` (``layer / (n_layers - 1)``), ``kl`` (nats), ``rel_acc`` (0..1),
        ``entropy_delta`` (bits), ``loss`` (nats), each with ``_lo`` / ``_hi`` 95% bootstrap
        bounds, ``baseline_loss`` (nats), ``baseline_entropy`` (bits), ``n_tokens`` (scored
        positions), ``n_seq`` and ``label`` (the plan's :attr:`Plan.label`, which tells
        apart plans of one kind over one span, such as shuffles with different seeds).
    """
    rows = sweep_labels(sums)
    stacked = np.stack([np.stack([sums[f"{label}:{name}"] for name in METRICS]) for label in rows])
    counts = (sums["seq_len"] - 2).to_numpy(dtype=np.float64)
    table = _table(
        n_layers, rows, stacked, counts, sums["entropy"].to_numpy(), n_boot=n_boot, seed=seed
    )
    return with_provenance(table, sums, n_boot=n_boot, seed=seed)


def _autocast_dtype(model: Model, autocast: str | None) -> torch.dtype | None:
    """Parse ``autocast``; refuse it for models that are not float32."""
    if autocast is None:
        return None
    half = resolve_dtype(autocast, torch.device("cpu"))
    if half not in (torch.bfloat16, torch.float16):
        raise ValueError(f"autocast must be 'bfloat16' or 'float16', got {autocast!r}")
    if next(model.parameters()).dtype != torch.float32:
        raise ValueError(
            "autocast runs a float32 model's products in half precision: load the model with "
            f"dtype='float32' (it is {model.cfg.dtype})"
        )
    return half


def sweep_task(
    model: Model,
    batch: torch.Tensor,
    groups: Sequence[Sequence[Plan]],
    *,
    first: bool,
    half: torch.dtype | None,
) -> dict[str, np.ndarray]:
    """Per-sequence metric sums of one batch under every intervention of ``groups``.

    Args:
        model: the bridge.
        batch: ``[b, seq_len]`` token ids on the model's device.
        groups: interventions grouped by start layer (:func:`start_groups`), all of the
            sweep's or (with Ray) a chunk of them.
        first: the batch's first chunk: also return the baseline's columns (``none:*`` and
            ``entropy``, the baseline entropy in bits).
        half: the autocast dtype, or None.

    Returns:
        ``{"<label>:<metric>": [b] float64}`` for every intervention of ``groups`` (and the
        baseline's columns with ``first``).
    """
    device = torch.device(model.cfg.device)
    cast = torch.autocast(device.type, dtype=half) if half else nullcontext()
    with torch.no_grad(), cast:
        base = capture_baseline(model, batch)

        def finals() -> Iterable[torch.Tensor | None]:
            if first:
                yield None
            for group in groups:
                yield from run_group(model, base, group)

        labels = ([BASELINE.label] if first else []) + [iv.label for g in groups for iv in g]
        sums, entropy = score_residuals(model, batch, base.final_resid, finals(), labels)
    columns = {"entropy": entropy} if first else {}
    for i, label in enumerate(labels):
        for m, name in enumerate(METRICS):
            columns[f"{label}:{name}"] = sums[i, m]
    return columns


def score_residuals(
    model: Model,
    batch: torch.Tensor,
    ref_resid: torch.Tensor,
    candidates: Iterable[torch.Tensor | None],
    labels: Sequence[str],
) -> tuple[np.ndarray, np.ndarray]:
    """Compare next-token distributions read from residuals with the reference; sum per sequence.

    Every residual goes through the model's final norm and, tile by tile, its unembedding
    (:mod:`stages.engine.metrics`), and is compared with the reference's distribution at the scored
    positions ``1..seq_len-2``. Sums stay on the model's device until the end: two small
    transfers to the host per call (the sums, P's entropy), whatever the number of candidates.

    Args:
        model: the bridge.
        batch: ``[b, seq_len]`` token ids (the targets are the next tokens).
        ref_resid: ``[b, seq_len, d_model]`` residual giving the reference distribution P.
        candidates: residuals ``[b, seq_len, d_model]`` giving each Q, consumed one at a time;
            None stands for ``ref_resid`` itself (its metrics are exact: KL 0, agreement 1).
        labels: a name per candidate, for error messages.

    Returns:
        ``(sums, ref_entropy)``: ``[n_candidates, len(METRICS), b]`` float64 per-sequence sums
        of each metric, and ``[b]`` float64 per-sequence sums of P's entropy in bits.

    Raises:
        FloatingPointError: a metric is NaN or infinite (the message names the candidate).
    """
    b, seq_len = batch.shape
    unembedding = Unembedding.of(model)
    targets = batch[:, 2:].reshape(-1)
    seq_of = torch.arange(b, device=batch.device).repeat_interleave(seq_len - 2)

    def normed(resid: torch.Tensor) -> torch.Tensor:
        return model.ln_final(resid[:, 1 : seq_len - 1]).reshape(-1, resid.shape[-1])

    def per_seq(values: torch.Tensor) -> torch.Tensor:
        return torch.zeros(b, dtype=torch.float64, device=batch.device).index_add_(
            0, seq_of, values
        )

    ref = reference(unembedding, normed(ref_resid))
    rows = []
    for resid in candidates:
        got = (
            unchanged(unembedding, ref, targets)
            if resid is None
            else compare(unembedding, ref, normed(resid), targets)
        )
        rows.append(torch.stack([per_seq(got[name]) for name in METRICS]))
    sums = torch.stack(rows).cpu().numpy() if rows else np.zeros((0, len(METRICS), b))
    entropy = per_seq(ref.entropy / LN2).cpu().numpy()
    bad = ~np.isfinite(sums).all(axis=2)
    if bad.any():
        i, m = map(int, np.argwhere(bad)[0])
        raise FloatingPointError(
            f"{labels[i]}: metric {METRICS[m]!r} is not finite "
            f"(model dtype {model.cfg.dtype}); try dtype='float32'"
        )
    return sums, entropy


def _table(
    n: int,
    labels: list[str],
    sums: np.ndarray,
    counts: np.ndarray,
    base_entropy: np.ndarray,
    *,
    n_boot: int,
    seed: int,
) -> pd.DataFrame:
    """Reduce per-sequence sums to one row per intervention with bootstrap intervals."""
    total = counts.sum()
    baseline_loss = sums[0, METRICS.index("loss")].sum() / total
    estimate, lo, hi = (
        a.reshape(len(labels), len(METRICS))
        for a in stats.mean_intervals(sums.reshape(-1, len(counts)), counts, n_boot=n_boot,
                                      seed=seed)
    )  # fmt: skip
    records = []
    for i, label in enumerate(labels):
        rec = label_columns(label, n)
        for m, name in enumerate(METRICS):
            rec |= {name: estimate[i, m], f"{name}_lo": lo[i, m], f"{name}_hi": hi[i, m]}
        rec.update(
            baseline_loss=baseline_loss,
            baseline_entropy=base_entropy.sum() / total,
            n_tokens=int(total),
            n_seq=len(counts),
            label=label,
        )
        records.append(rec)
    return pd.DataFrame.from_records(records)


run_sweep = analysis(
    "run_sweep", sweep_sums, sweep_table,
    "Measure every intervention against the unperturbed model on ``tokens``: KL, top-1 kept, "
    "entropy change and loss, one row per intervention with 95% intervals.",
)
