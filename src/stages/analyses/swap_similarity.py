"""Component-output similarity under adjacent swaps (the paper's appendix A, Figures 11 and 12).

For a swap of layers ``(i, i + 1)`` (both blocks run in exchanged order, each with its own
weights and its own arguments, see :mod:`stages.engine`) and a component ``c`` in
``{"attn", "mlp"}``, this module compares what the component writes to the residual stream in
the swapped model with what it writes in the baseline (unswapped) model.

Notation. ``out[w, c]`` is the output of component ``c`` of the block with the weights of layer
``w`` (TransformerLens ``blocks.{w}.hook_attn_out`` / ``blocks.{w}.hook_mlp_out``: exactly the
term added to the residual stream, after Gemma's post-attention / post-feedforward norms; for
parallel blocks, GPT-NeoX and Phi, one term of the sum), a ``[batch, pos, d_model]`` tensor.
These are the outputs of the model as loaded: with the paper's weight processing (the default
of :func:`stages.load_model`), LayerNorm models (GPT-2, Pythia, Phi) have centred writing
weights, so their outputs have zero mean over ``d_model`` and the cosine is that of the parts
every later LayerNorm sees; RMSNorm models (Gemma) are not centred.
``base`` is the unswapped model; ``swap`` is the swapped run, which starts from the baseline
``resid_pre[i]`` and applies block ``i + 1`` (now first, at position ``i``) then block ``i`` (now
second, at position ``i + 1``). Nothing after the pair is run: it does not change these outputs.

Per token, ``cos(a, b) = <a, b> / (|a| |b|)`` over ``d_model``, in float64 (0 where a vector is
exactly zero). Rows of the result, per swap ``i`` and component ``c`` (``metric``, ``which``):

- ``("self", "moved later")``: ``cos(swap.out[i, c], base.out[i, c])``: layer ``i``'s weights,
  now at position ``i + 1``, against their own baseline output.
- ``("self", "moved earlier")``: ``cos(swap.out[i + 1, c], base.out[i + 1, c])``: layer
  ``i + 1``'s weights, now at position ``i``, against their own baseline output.
- ``("index", "moved earlier")``: ``cos(swap.out[i + 1, c], base.out[i, c])``: the output at
  position ``i`` (layer ``i + 1``'s weights) against the baseline output at position ``i``.
- ``("index", "moved later")``: ``cos(swap.out[i, c], base.out[i + 1, c])``: the output at
  position ``i + 1`` (layer ``i``'s weights) against the baseline output at position ``i + 1``.
- ``("adjacent", "baseline")``: ``cos(base.out[i, c], base.out[i + 1, c])``: no swap involved.

So ``which`` names the swapped-run layer whose output is compared (``"moved later"``: weights
``i``; ``"moved earlier"``: weights ``i + 1``); ``self`` compares it with the same weights'
baseline output, ``index`` with the baseline output at the position it now occupies.

Each value is the mean over tokens at positions ``1..seq_len-1`` (the BOS position is left
out) of all sequences, with a 95% bootstrap interval over sequences.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Unpack

import numpy as np
import pandas as pd
import torch

from stages import stats
from stages.engine.analysis import analysis
from stages.engine.forward import BaselineRun, capture_baseline, run_block
from stages.engine.hooks import checked_hooks
from stages.engine.runs import RunOptions, layers_of, per_sequence, with_provenance
from stages.shapes import Model, Tokens

COMPONENTS: dict[str, str] = {"attn": "hook_attn_out", "mlp": "hook_mlp_out"}

# (metric, which) in table order; see the module docstring.
ROWS: tuple[tuple[str, str], ...] = (
    ("self", "moved later"),
    ("self", "moved earlier"),
    ("index", "moved earlier"),
    ("index", "moved later"),
    ("adjacent", "baseline"),
)

Outputs = dict[tuple[int, str], torch.Tensor]
"""``{(weights layer, component): [batch, pos - 1, d_model]}``, positions ``1..seq_len-1``."""


def _recorder(model: Model, layers: Iterable[int], store: Outputs) -> Any:
    """A ``model.hooks`` context saving the layers' component outputs (BOS left out)."""
    names = {point: comp for comp, point in COMPONENTS.items()}

    def hook(out: torch.Tensor, hook: Any) -> None:
        _, layer, point = hook.name.split(".")
        store[(int(layer), names[point])] = out[:, 1:].detach()

    fwd_hooks = [(f"blocks.{j}.{point}", hook) for j in layers for point in COMPONENTS.values()]
    return checked_hooks(model, fwd_hooks)


def _check(store: Outputs, layers: Iterable[int]) -> Outputs:
    missing = [(j, c) for j in layers for c in COMPONENTS if (j, c) not in store]
    if missing:
        raise RuntimeError(f"component hooks did not fire for (layer, component) {missing}")
    return store


def baseline_outputs(model: Model, tokens: Tokens) -> tuple[BaselineRun, Outputs]:
    """One unperturbed pass: the intervention engine's record and every component's output.

    Args:
        model: a ``TransformerBridge`` from :func:`stages.load_model`.
        tokens: ``[batch, seq_len]`` token ids on the model's device.

    Returns:
        ``(base, outputs)``: :func:`stages.engine.forward.capture_baseline`'s record, and
        ``outputs[(w, c)]``, the ``[batch, seq_len - 1, d_model]`` output of component ``c`` of
        layer ``w`` at positions ``1..seq_len-1``.
    """
    layers = range(len(model.blocks))
    store: Outputs = {}
    with torch.no_grad(), _recorder(model, layers, store):
        base = capture_baseline(model, tokens)
    return base, _check(store, layers)


def pair_outputs(model: Model, base: BaselineRun, order: Sequence[int]) -> Outputs:
    """Component outputs of blocks run in ``order`` from the residual entering ``min(order)``.

    Each block gets the arguments it got in the baseline pass (its own attention type and RoPE
    table). ``order=(i + 1, i)`` is the swap ``(i, i + 1)``; ``order=(i, i + 1)`` re-runs the
    baseline.

    Args:
        model: the ``TransformerBridge`` ``base`` was captured from.
        base: the baseline record of the batch.
        order: block indices, e.g. ``(i + 1, i)``.

    Returns:
        ``{(w, c): [batch, seq_len - 1, d_model]}`` for the blocks in ``order``, keyed by the
        layer whose weights produced the output (not the position it ran at).
    """
    store: Outputs = {}
    hidden = base.resid_pre[min(order)]
    with torch.no_grad(), _recorder(model, order, store):
        for j in order:
            hidden = run_block(model, j, hidden, base)
    return _check(store, order)


def cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-vector cosine similarity over the last axis, in float64 (0 for a zero vector).

    Args:
        a: ``[..., d_model]``.
        b: ``[..., d_model]``.

    Returns:
        ``[...]`` float64.
    """
    a, b = a.double(), b.double()
    denom = torch.linalg.vector_norm(a, dim=-1) * torch.linalg.vector_norm(b, dim=-1)
    return (a * b).sum(-1) / denom.clamp_min(torch.finfo(torch.float64).tiny)


def pair_similarity(base: Outputs, swapped: Outputs, i: int) -> dict[tuple[str, str, str], Any]:
    """Per-token similarities of one swap ``(i, i + 1)``, as defined in the module docstring.

    Args:
        base: baseline outputs (at least layers ``i`` and ``i + 1``).
        swapped: outputs of the swapped run, keyed by weights (:func:`pair_outputs`).
        i: the first layer of the pair.

    Returns:
        ``{(component, metric, which): [batch, seq_len - 1] float64 tensor}`` for every
        component and every ``(metric, which)`` of :data:`ROWS`.
    """
    j = i + 1
    out = {}
    for c in COMPONENTS:
        pairs = {
            ("self", "moved later"): (swapped[(i, c)], base[(i, c)]),
            ("self", "moved earlier"): (swapped[(j, c)], base[(j, c)]),
            ("index", "moved earlier"): (swapped[(j, c)], base[(i, c)]),
            ("index", "moved later"): (swapped[(i, c)], base[(j, c)]),
            ("adjacent", "baseline"): (base[(i, c)], base[(j, c)]),
        }
        for metric, which in ROWS:
            out[(c, metric, which)] = cosine(*pairs[(metric, which)])
    return out


def _column(i: int, c: str, metric: str, which: str) -> str:
    return f"{i}:{c}:{metric}:{which}"


def swap_similarity_sums(
    model: Model,
    tokens: Tokens,
    **run: Unpack[RunOptions],
) -> pd.DataFrame:
    """Per-sequence cosine sums (arguments as :func:`swap_similarity`).

    Returns:
        One row per sequence: ``"<i>:<component>:<metric>:<which>"`` for every swap ``i``,
        component and :data:`ROWS` entry, the cosine summed over positions ``1..seq_len-1``;
        and ``seq_len``.
    """
    n_layers = len(model.blocks)
    if n_layers < 2:
        raise ValueError("swap similarity needs a model with at least two layers")
    pairs = range(n_layers - 1)

    def compute(batch: torch.Tensor) -> dict[str, np.ndarray]:
        base, outputs = baseline_outputs(model, batch)
        columns: dict[str, np.ndarray] = {}
        for i in pairs:
            swapped = pair_outputs(model, base, (i + 1, i))
            for key, cos in pair_similarity(outputs, swapped, i).items():
                columns[_column(i, *key)] = cos.sum(-1).cpu().numpy()
            for c in COMPONENTS:  # layer i's baseline outputs are not needed any more
                del outputs[(i, c)]
        return columns

    return per_sequence(
        "swap_similarity",
        model,
        tokens,
        compute=compute,
        params={},
        desc="swap similarity",
        units_per_seq=n_layers - 1,
        min_len=2,
        **run,
    )


def swap_similarity_table(
    sums: pd.DataFrame, *, n_boot: int = stats.N_BOOT, seed: int = 0
) -> pd.DataFrame:
    """Reduce :func:`swap_similarity_sums` to a tidy table with 95% bootstrap intervals.

    Returns:
        One row per swap ``i`` in ``0..L-2``, component and ``(metric, which)`` (order: swap,
        component ``attn`` then ``mlp``, then :data:`ROWS`): ``layer`` (``i``), ``layers``
        (``"i-(i+1)"``), ``rel_depth`` (``i / (L - 1)``), ``component`` (``"attn"`` /
        ``"mlp"``), ``metric`` (``"self"`` / ``"index"`` / ``"adjacent"``), ``which``
        (``"moved later"`` / ``"moved earlier"`` / ``"baseline"``), ``value`` (mean cosine over
        positions ``1..seq_len-1``), ``lo`` / ``hi`` (95% bootstrap interval), ``n_tokens``,
        ``n_seq``. The module docstring defines each metric.
    """
    n_layers = layers_of(sums) + 1  # swaps 0..L-2
    n_seq = len(sums)
    counts = (sums["seq_len"] - 1).to_numpy(dtype=np.float64)
    cells = [(i, c, metric, which) for i in range(n_layers - 1) for c in COMPONENTS
             for metric, which in ROWS]  # fmt: skip
    values = np.stack([sums[_column(*cell)].to_numpy(dtype=np.float64) for cell in cells])
    estimate, lo, hi = stats.mean_intervals(values, counts, n_boot=n_boot, seed=seed)
    records = [
        {"layer": i, "layers": f"{i}-{i + 1}", "rel_depth": i / (n_layers - 1), "component": c,
         "metric": metric, "which": which, "value": estimate[k], "lo": lo[k], "hi": hi[k],
         "n_tokens": int(counts.sum()), "n_seq": n_seq}
        for k, (i, c, metric, which) in enumerate(cells)
    ]  # fmt: skip
    return with_provenance(pd.DataFrame.from_records(records), sums, n_boot=n_boot, seed=seed)


swap_similarity = analysis(
    'swap_similarity', swap_similarity_sums, swap_similarity_table,
    'Self, index and adjacent cosine similarity of attention and MLP outputs per swap.',
)
