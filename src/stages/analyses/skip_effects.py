"""How skipping one layer changes what every later layer writes (after Csordás et al. 2025).

"Do language models use their depth efficiently?" skips a layer and asks how much the layers
after it change their computation: if a layer in the first half of the model is skipped, the
later layers write something quite different; in the second half, they hardly react. Here the
skip is the plan :func:`stages.engine.plans.drop` ``(i)``: block ``i`` is left out and block
``i + 1`` reads ``resid_pre[i]``; every other block runs with its own weights and arguments.

Notation. ``out[j, c]`` is what component ``c`` of block ``j`` writes to the residual stream
(TransformerLens ``blocks.{j}.hook_attn_out`` for ``c = "attn"``, ``blocks.{j}.hook_mlp_out`` for
``"mlp"``: after Gemma's post-attention / post-feedforward norms; for parallel blocks, GPT-NeoX
and Phi, one term of the sum) in the unperturbed model, ``out'[j, c]`` the same with block ``i``
dropped; both are ``[batch, pos, d_model]`` outputs of the model as loaded (with the paper's
weight processing, LayerNorm models have centred writing weights). For every dropped layer
``i``, later layer ``j > i`` and component, per token (vectors over ``d_model``, float64):

- ``rel_change = |out' - out| / |out|``: the relative change of what the layer writes
  (0: unchanged; 1: a change as large as the output itself);
- ``cos = cos(out', out)``: whether it still writes in the same direction (1: the same);
- ``norm_ratio = |out'| / |out|``: whether it writes more (> 1) or less (< 1); this is the
  ratio itself, not the ratio minus 1.

Each is computed per token, then averaged over the tokens at positions ``1..seq_len-1`` of all
sequences (the BOS position, whose outputs are often orders of magnitude larger than the rest,
is left out): a mean of per-token ratios, not a ratio of mean norms. A zero baseline vector
gives ratios over the smallest positive float64 (not NaN). Intervals are 95% bootstrap over
sequences, one resample serving every quantity (:func:`stages.stats.bootstrap`), so
differences between cells are paired.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import partial
from typing import Any, Unpack

import numpy as np
import pandas as pd
import torch

from stages import stats
from stages.engine.analysis import analysis
from stages.engine.forward import BaselineRun, capture_baseline, run_block, run_own
from stages.engine.hooks import checked_hooks
from stages.engine.plans import drop
from stages.engine.runs import (
    RunOptions,
    forward_bytes_per_seq,
    per_sequence,
    with_provenance,
)
from stages.shapes import Model, Tokens

COMPONENTS: dict[str, str] = {"attn": "hook_attn_out", "mlp": "hook_mlp_out"}
QUANTITIES: tuple[str, ...] = ("rel_change", "cos", "norm_ratio")
NEXT_LAYERS = 3
"""The "next few" layers of :func:`regime_summary`: ``j = i + 1 .. i + NEXT_LAYERS``."""

_TINY = torch.finfo(torch.float64).tiny

Outputs = dict[tuple[int, str], torch.Tensor]
"""``{(layer, component): [batch, seq_len - 1, d_model]}``, positions ``1..seq_len-1``."""


def column(i: int, j: int, component: str, quantity: str) -> str:
    """The sums column of dropped layer ``i``, later layer ``j``: ``"3>5:attn:cos"``."""
    return f"{i}>{j}:{component}:{quantity}"


def _parse(name: str) -> tuple[int, int, str, str]:
    pair, component, quantity = name.split(":")
    i, j = pair.split(">")
    return int(i), int(j), component, quantity


def compare(new: torch.Tensor, old: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-token ``rel_change``, ``cos`` and ``norm_ratio`` of ``new`` against ``old``.

    Args:
        new: ``[..., d_model]``, the perturbed output.
        old: ``[..., d_model]``, the baseline output.

    Returns:
        ``{quantity: [...] float64}`` as defined in the module docstring.
    """
    new, old = new.double(), old.double()
    n_new = torch.linalg.vector_norm(new, dim=-1)
    n_old = torch.linalg.vector_norm(old, dim=-1).clamp_min(_TINY)
    return {
        "rel_change": torch.linalg.vector_norm(new - old, dim=-1) / n_old,
        "cos": (new * old).sum(-1) / (n_new * n_old).clamp_min(_TINY),
        "norm_ratio": n_new / n_old,
    }


def _recorder(model: Model, layers: Iterable[int], hook: Any) -> Any:
    """A ``model.hooks`` context calling ``hook`` on both component outputs of ``layers``."""
    fwd_hooks = [(f"blocks.{j}.{point}", hook) for j in layers for point in COMPONENTS.values()]
    return checked_hooks(model, fwd_hooks)


def _key(hook: Any) -> tuple[int, str]:
    """``(layer, component)`` of a hook point ``blocks.{j}.hook_{component}_out``."""
    _, layer, point = hook.name.split(".")
    return int(layer), point.removeprefix("hook_").removesuffix("_out")


def _check(seen: Iterable[tuple[int, str]], layers: Iterable[int]) -> None:
    seen = set(seen)
    missing = [(j, c) for j in layers for c in COMPONENTS if (j, c) not in seen]
    if missing:
        raise RuntimeError(f"component hooks did not fire for (layer, component) {missing}")


def baseline_outputs(
    model: Model, tokens: Tokens, layers: Sequence[int]
) -> tuple[BaselineRun, Outputs]:
    """One unperturbed pass: the engine's record and the component outputs of ``layers``.

    Args:
        model: a ``TransformerBridge`` from :func:`stages.load_model`.
        tokens: ``[batch, seq_len]`` token ids on the model's device.
        layers: the blocks whose outputs to keep.

    Returns:
        ``(base, outputs)``: :func:`stages.engine.forward.capture_baseline`'s record, and
        ``outputs[(j, c)]``, ``[batch, seq_len - 1, d_model]`` in the model's dtype.
    """
    store: Outputs = {}

    def hook(out: torch.Tensor, hook: Any) -> None:
        store[_key(hook)] = out[:, 1:].detach()

    with torch.no_grad(), _recorder(model, layers, hook):
        base = capture_baseline(model, tokens)
    _check(store, layers)
    return base, store


def dropped_sums(
    model: Model, base: BaselineRun, outputs: Outputs, i: int
) -> dict[str, np.ndarray]:
    """Per-sequence sums of every quantity of the later layers with block ``i`` dropped.

    Runs the plan ``drop(i)`` from the baseline ``resid_pre[i]`` through blocks ``i+1..L-1``
    (each with its baseline arguments) and compares each component's output with
    ``outputs`` as it is written (nothing ``[batch, pos, d_model]`` is kept).

    Args:
        model: the ``TransformerBridge`` ``base`` was captured from.
        base: the baseline record of the batch.
        outputs: baseline outputs of at least layers ``i+1..L-1`` (:func:`baseline_outputs`).
        i: the dropped block, in ``0..L-2``.

    Returns:
        ``{column(i, j, c, q): [batch] float64}``, sums over positions ``1..seq_len-1``.
    """
    later = range(i + 1, len(base.block_args))
    sums: dict[str, np.ndarray] = {}
    seen = []

    def hook(out: torch.Tensor, hook: Any) -> None:
        j, c = _key(hook)
        seen.append((j, c))
        for q, per_token in compare(out[:, 1:], outputs[(j, c)]).items():
            sums[column(i, j, c, q)] = per_token.sum(-1).cpu().numpy()

    plan = drop(i)
    with torch.no_grad(), _recorder(model, later, hook):
        hidden = run_own(model, base, plan)
        for j in range(plan.stop, len(base.block_args)):
            hidden = run_block(model, j, hidden, base)
    _check(seen, later)
    return sums


def _layers(model: Model, layers: Sequence[int] | None) -> list[int]:
    n = len(model.blocks)
    if n < 2:
        raise ValueError("skip effects need a model with at least two layers")
    chosen = sorted({int(i) for i in (range(n - 1) if layers is None else layers)})
    bad = [i for i in chosen if not 0 <= i <= n - 2]
    if bad or not chosen:
        raise ValueError(
            f"layers to drop must be a non-empty subset of 0..{n - 2} (the last layer has no "
            f"later layer), got {layers!r}"
        )
    return chosen


def _bytes_per_seq(model: Model, seq_len: int) -> int:
    """:func:`forward_bytes_per_seq` plus the kept baseline outputs and float64 temporaries.

    The outputs are ``2 L`` residual-sized tensors in the model's dtype; :func:`compare` holds
    about four residual-sized float64 tensors at once. With the same margin of 1.5.
    """
    size = next(model.parameters()).element_size()
    resid = seq_len * model.cfg.d_model
    extra = resid * (2 * len(model.blocks) * size + 4 * 8)
    return forward_bytes_per_seq(model, seq_len) + int(1.5 * extra)


def skip_sums(
    model: Model,
    tokens: Tokens,
    *,
    layers: Sequence[int] | None = None,
    **run: Unpack[RunOptions],
) -> pd.DataFrame:
    """Per-sequence sums of the skip effects (arguments as :func:`skip_effects`).

    Per batch: one baseline pass keeping the component outputs of the layers after the first
    dropped one (``2 (L - 1)`` tensors ``[batch, seq_len - 1, d_model]`` at most, in the model's
    dtype; the default batch size allows for them), then for each dropped layer ``i`` the
    blocks ``i+1..L-1``: about ``L / 2`` forward passes' worth of blocks in all.

    Returns:
        One row per sequence: ``column(i, j, c, q)`` = ``"<i>><j>:<component>:<quantity>"``
        for every dropped ``i`` in ``layers``, later layer ``j`` in ``i+1..L-1``, component
        ``attn`` / ``mlp`` and quantity of :data:`QUANTITIES`, summed over positions
        ``1..seq_len-1``; and ``seq_len``. ``attrs["provenance"]["layers"]``: the dropped
        layers.
    """
    chosen = _layers(model, layers)
    n_layers = len(model.blocks)
    kept = range(chosen[0] + 1, n_layers)

    def compute(batch: torch.Tensor) -> dict[str, np.ndarray]:
        base, outputs = baseline_outputs(model, batch, kept)
        columns: dict[str, np.ndarray] = {}
        for i in chosen:
            columns |= dropped_sums(model, base, outputs, i)
            for c in COMPONENTS:  # no later drop compares layer i + 1
                outputs.pop((i + 1, c), None)
        return columns

    return per_sequence(
        "skip_effects",
        model,
        tokens,
        compute=compute,
        params={"layers": chosen},
        bytes_per_seq=partial(_bytes_per_seq, model),
        desc="skip effects",
        units_per_seq=len(chosen),
        min_len=2,
        **run,
    )


def _cells(sums: pd.DataFrame) -> pd.DataFrame:
    """The ``(dropped, layer, component)`` cells present in ``sums``, sorted."""
    found = {_parse(c)[:3] for c in sums.columns if ">" in c}
    return pd.DataFrame(sorted(found), columns=["dropped", "layer", "component"])


def _counts(sums: pd.DataFrame) -> np.ndarray:
    """``[n_seq]`` tokens per sequence each mean is over: positions ``1..seq_len-1``."""
    return (sums["seq_len"] - 1).to_numpy(dtype=np.float64)


def skip_table(sums: pd.DataFrame, *, n_boot: int = stats.N_BOOT, seed: int = 0) -> pd.DataFrame:
    """Reduce :func:`skip_sums` to a tidy table with 95% bootstrap intervals.

    One bootstrap over sequences serves every column (:func:`stages.stats.mean_intervals`:
    the resamples of :func:`stages.stats.bootstrap` with ``seed``, applied to all
    ``cells x 3`` per-sequence sums at once).

    Returns:
        One row per dropped layer, later layer and component (sorted in that order):
        ``dropped`` (``i``), ``layer`` (``j``), ``component`` (``"attn"`` / ``"mlp"``),
        ``rel_change``, ``cos``, ``norm_ratio`` (token means as in the module docstring; the
        ratio itself, 1 for an unchanged norm), each with ``_lo`` / ``_hi`` 95% bootstrap
        bounds; ``distance`` (``j - i``), ``n_tokens``, ``n_seq``.
    """
    table = _cells(sums)
    names = [column(i, j, c, q) for i, j, c in table.itertuples(index=False) for q in QUANTITIES]
    values = sums[names].to_numpy(dtype=np.float64).T  # [cells * 3, n_seq]
    estimate, lo, hi = stats.mean_intervals(values, _counts(sums), n_boot=n_boot, seed=seed)
    shape = (len(table), len(QUANTITIES))
    for k, q in enumerate(QUANTITIES):
        for suffix, array in (("", estimate), ("_lo", lo), ("_hi", hi)):
            table[q + suffix] = np.reshape(array, shape)[:, k]
    table["distance"] = table["layer"] - table["dropped"]
    table["n_tokens"] = int(_counts(sums).sum())
    table["n_seq"] = len(sums)
    return with_provenance(table, sums, n_boot=n_boot, seed=seed)


def _later_means(
    sums: pd.DataFrame, n_layers: int, width: int | None
) -> tuple[list[int], np.ndarray, list[int]]:
    """Per-sequence sums of the mean ``rel_change`` over each dropped layer's later cells.

    Args:
        sums: :func:`skip_sums`.
        n_layers: the model's ``L``.
        width: average layers ``i+1..i+width`` (None: all later layers), both components.

    Returns:
        ``(dropped, values, n_cells)``: the dropped layers, ``[len(dropped), n_seq]``, and how
        many ``(layer, component)`` cells each row averages. The mean of the per-cell token
        means equals the token mean of these sums, since every cell has the same tokens.
    """
    cells = _cells(sums)
    if cells.empty or cells["layer"].max() != n_layers - 1:
        raise ValueError(f"these sums are not of a model with n_layers={n_layers}")
    dropped = sorted(cells["dropped"].unique().tolist())
    rows, sizes = [], []
    for i in dropped:
        top = n_layers - 1 if width is None else min(n_layers - 1, i + width)
        names = [column(i, j, c, "rel_change") for j in range(i + 1, top + 1) for c in COMPONENTS]
        rows.append(sums[names].to_numpy(dtype=np.float64).mean(axis=1))
        sizes.append(len(names))
    return dropped, np.stack(rows), sizes


def regime_summary(
    sums: pd.DataFrame, n_layers: int, *, n_boot: int = stats.N_BOOT, seed: int = 0
) -> pd.DataFrame:
    """Per dropped layer, the mean relative change of the next few and of all later layers.

    "Is there a change of regime at mid-depth?": Csordás et al. find that skipping a layer in
    the first half changes later computation a lot, in the second half little.

    Args:
        sums: :func:`skip_sums`.
        n_layers: the model's number of layers ``L``.
        n_boot: bootstrap resamples (over sequences).
        seed: bootstrap seed (one resample serves every row and both columns).

    Returns:
        One row per dropped layer ``i``: ``dropped``, ``rel_depth`` (``i / (L - 1)``),
        ``next_rel_change`` (the mean over layers ``j = i+1..i+3`` (:data:`NEXT_LAYERS`; fewer
        near the end) and both components of the token-mean ``rel_change``) and
        ``later_rel_change`` (the same over all ``j > i``), each with ``_lo`` / ``_hi`` 95%
        bootstrap bounds; ``n_next`` and ``n_later`` (the ``(layer, component)`` cells
        averaged), ``n_seq``.
    """
    dropped, nxt, n_next = _later_means(sums, n_layers, NEXT_LAYERS)
    _, later, n_later = _later_means(sums, n_layers, None)
    estimate, lo, hi = stats.interval(
        np.concatenate([nxt, later]), _counts(sums), n_boot=n_boot, seed=seed
    )
    k = len(dropped)
    table = pd.DataFrame({"dropped": dropped})
    table["rel_depth"] = table["dropped"] / (n_layers - 1)
    for name, part in (("next_rel_change", slice(0, k)), ("later_rel_change", slice(k, 2 * k))):
        table[name], table[f"{name}_lo"], table[f"{name}_hi"] = estimate[part], lo[part], hi[part]
    table["n_next"], table["n_later"], table["n_seq"] = n_next, n_later, len(sums)
    return with_provenance(table, sums, n_boot=n_boot, seed=seed)


def first_half_vs_second_half(
    sums: pd.DataFrame, n_layers: int, *, n_boot: int = stats.N_BOOT, seed: int = 0
) -> tuple[float, float, float]:
    """Paired bootstrap ``(estimate, lo, hi)`` of first-half minus second-half skip effect.

    The effect of dropping ``i`` is ``later_rel_change`` of :func:`regime_summary` (the mean
    ``rel_change`` over every later layer and both components). The first half is the
    dropped layers with ``i / (L - 1) < 0.5``, the second half the others present in
    ``sums`` (the last layer, with no later layer, never is); the statistic is the mean effect
    over the first half minus the mean over the second, with a 95% bootstrap interval over
    sequences (both halves on the same resampled sequences).

    Raises:
        ValueError: one half has no dropped layer in ``sums``.
    """
    dropped, later, _ = _later_means(sums, n_layers, None)
    first = np.array([i / (n_layers - 1) < 0.5 for i in dropped])
    if first.all() or not first.any():
        raise ValueError(f"both halves need a dropped layer; sums have {dropped} of {n_layers}")
    diff = later[first].mean(axis=0) - later[~first].mean(axis=0)  # [n_seq]
    estimate, lo, hi = stats.interval(diff, _counts(sums), n_boot=n_boot, seed=seed)
    return float(estimate[0]), float(lo[0]), float(hi[0])


skip_effects = analysis(
    'skip_effects', skip_sums, skip_table,
    "How much every later layer's attention and MLP output changes when a layer is dropped.", args={
        'layers': "the blocks to drop, each in ``0..L-2`` (default: all of them).",
    },
)
