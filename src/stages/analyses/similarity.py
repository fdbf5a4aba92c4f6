"""Layer similarity from one unperturbed pass: linear CKA, Block Influence, angular distance.

Residual points. With ``L`` blocks there are ``L + 1`` residual points ``h_0 .. h_L``: ``h_l``
(``l < L``) is ``blocks.{l}.hook_resid_pre``, the residual entering block ``l``, and ``h_L`` is
``blocks.{L-1}.hook_resid_post``, the output of the last block (before the final norm; read as
the block's output, the same tensor). So "the residual after block ``l``" is ``h_{l+1}``. Every
quantity uses the positions ``1..seq_len-1`` of each sequence (the BOS position, whose residual
is often orders of magnitude larger than the rest, is left out), is computed in float64, and is
reduced with 95% percentile bootstrap intervals over sequences (the independent unit).

- Linear CKA (Kornblith et al. 2019) between every pair of points, as *minibatch CKA* (Nguyen,
  Raghu & Kornblith 2021): each sequence is a minibatch whose ``n = seq_len - 1`` samples are its
  token positions; per sequence, the unbiased HSIC estimator of Song et al. (2012) of the linear
  Gram matrices ``K_a = X_a X_a^T`` (``X_a``: ``[n, d_model]``, no centring needed) is
  ``HSIC_1(K, L) = [tr(K~ L~) + (1^T K~ 1)(1^T L~ 1) / ((n-1)(n-2)) - 2/(n-2) 1^T K~ L~ 1]
  / (n(n-3))`` with ``K~``, ``L~`` the Gram matrices with zeroed diagonals (needs ``n >= 4``);
  then ``CKA(a, b) = mean_s HSIC_ab / sqrt(mean_s HSIC_aa * mean_s HSIC_bb)``. Unbiased HSIC makes
  minibatch CKA converge to the population CKA as sequences are added (a mean of biased
  per-minibatch HSICs would not).
- Block Influence (ShortGPT, Men et al. 2024): ``BI_l = 1 - cos(h_l, h_{l+1})`` per token, the
  cosine over ``d_model`` between what enters block ``l`` and what leaves it, in ``[0, 2]``.
- Angular distance (Gromov et al. 2024, "The Unreasonable Ineffectiveness of the Deeper
  Layers"): ``d(l, n) = arccos(cos(h_l, h_{l+n})) / pi`` in ``[0, 1]`` between the residual
  entering block ``l`` and the one entering block ``l + n`` (``h_L`` when ``l + n = L``), for
  every start ``l`` and length ``n = 1..max(1, floor(L/2))`` with ``l + n <= L``. Gromov et al.
  use the last token only; here the main value is the mean over positions ``1..seq_len-1`` and
  the last-token value is kept too (``angular_last``).

:func:`stages.claims.association.score_tracks_drop` asks whether these one-pass scores rank the
layers as dropping them does (the sweep's KL, :func:`stages.engine.sweep.sweep_sums`).
"""

from __future__ import annotations

from functools import partial
from typing import Any, Unpack

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from stages import stats
from stages.engine.forward import run_to_last_block
from stages.engine.hooks import checked_hooks
from stages.engine.runs import (
    RunOptions,
    forward_bytes_per_seq,
    per_sequence,
    with_provenance,
)
from stages.shapes import Model, Tokens

SCORES: dict[str, str] = {"block_influence": "bi:{l}", "angular": "angular:{l}+1"}
"""Per-layer scores, and their column in the sums."""


def lengths(n_layers: int) -> range:
    """Angular-distance lengths ``n``: ``1..max(1, floor(n_layers / 2))``."""
    return range(1, max(1, n_layers // 2) + 1)


def unbiased_hsic(grams: Tensor) -> Tensor:
    """Song et al.'s (2012) unbiased HSIC estimator between every pair of Gram matrices.

    ``HSIC_1(K, L) = [tr(K~ L~) + (1^T K~ 1)(1^T L~ 1) / ((n-1)(n-2)) - 2/(n-2) 1^T K~ L~ 1]
    / (n(n-3))``, where ``K~`` is ``K`` with its diagonal set to zero.

    Args:
        grams: ``[point, *batch, n, n]`` symmetric Gram matrices of ``n >= 4`` samples.

    Returns:
        ``[point, point, *batch]``: entry ``[a, b]`` is ``HSIC_1(grams[a], grams[b])``.
    """
    n = grams.shape[-1]
    if n < 4:
        raise ValueError(f"the unbiased HSIC estimator needs n >= 4 samples, got {n}")
    k = grams.clone()
    k.diagonal(dim1=-2, dim2=-1).zero_()
    trace = torch.einsum("p...ij,q...ij->pq...", k, k)  # tr(K~ L~), the Grams being symmetric
    rows = k.sum(-1)  # K~ 1: [point, *batch, n]
    total = rows.sum(-1)  # 1^T K~ 1: [point, *batch]
    cross = torch.einsum("p...i,q...i->pq...", rows, rows)  # 1^T K~ L~ 1
    outer = total[:, None] * total[None, :]
    return (trace + outer / ((n - 1) * (n - 2)) - 2 * cross / (n - 2)) / (n * (n - 3))


def _unit(points: Tensor) -> Tensor:
    """``points`` ``[..., d_model]`` scaled to unit L2 norm (a zero vector stays zero)."""
    norms = torch.linalg.vector_norm(points, dim=-1, keepdim=True)
    return points / norms.clamp_min(torch.finfo(points.dtype).tiny)


def _cosines(unit: Tensor, n: int) -> Tensor:
    """Per-token ``cos(h_l, h_{l+n})`` for every start ``l``, clipped to ``[-1, 1]``.

    Args:
        unit: ``[P, batch, pos, d_model]`` unit vectors (:func:`_unit` of the points).
        n: the distance between the points compared, ``1 <= n < P``.

    Returns:
        ``[P - n, batch, pos]``.
    """
    return torch.linalg.vecdot(unit[:-n], unit[n:]).clamp(-1.0, 1.0)


def _columns(points: Tensor) -> dict[str, np.ndarray]:
    """Per-sequence sums of every quantity from the residual points (positions ``1..`` only).

    Args:
        points: ``[L + 1, batch, seq_len - 1, d_model]`` float64, ``points[a]`` = ``h_a``.

    Returns:
        ``{column: [batch]}``, the columns of :func:`similarity_sums` but ``seq_len``.
    """
    n_points = points.shape[0]
    n_layers = n_points - 1
    hsic = unbiased_hsic(points @ points.transpose(-1, -2))  # [P, P, batch]
    columns = {f"hsic:{a}-{b}": hsic[a, b] for a in range(n_points) for b in range(a, n_points)}
    unit = _unit(points)
    block_influence = (1 - _cosines(unit, 1)).sum(-1)  # [L, batch]
    columns |= {f"bi:{layer}": block_influence[layer] for layer in range(n_layers)}
    for n in lengths(n_layers):
        angle = torch.arccos(_cosines(unit, n)) / torch.pi  # [P - n, batch, pos]
        for start in range(n_points - n):
            columns[f"angular:{start}+{n}"] = angle[start].sum(-1)
            columns[f"angular_last:{start}+{n}"] = angle[start, :, -1]
    values = torch.stack(list(columns.values())).cpu().numpy()  # one transfer from the device
    return dict(zip(columns, values, strict=True))


def _bytes_per_seq(model: Model, seq_len: int) -> int:
    """A forward pass keeping every residual, plus the float64 points and Gram matrices."""
    n_points, n = len(model.blocks) + 1, seq_len - 1
    extra = 8 * n_points * n * 2 * (model.cfg.d_model + n)  # points, unit vectors, two Grams
    return forward_bytes_per_seq(model, seq_len) + int(1.5 * extra)


def similarity_sums(
    model: Model,
    tokens: Tokens,
    **run: Unpack[RunOptions],
) -> pd.DataFrame:
    """Per-sequence sums of the layer-similarity quantities, from one unperturbed pass.

    Args:
        model: a ``TransformerBridge`` from :func:`stages.load_model`.
        tokens: ``[n_seq, seq_len]`` token ids, each row starting with BOS; ``seq_len >= 5``
            (the unbiased HSIC needs ``n = seq_len - 1 >= 4`` positions).
        run: ``batch_size``, ``progress``, ``cache`` (:class:`stages.engine.runs.RunOptions`;
            the default batch counts the ``[L + 1, seq_len - 1, seq_len - 1]`` float64 Gram
            matrices of each sequence).

    Returns:
        One row per sequence, float64 (residual points ``a, b`` in ``0..L`` as in the module
        docstring; every sum is over positions ``1..seq_len-1``):

        - ``"hsic:{a}-{b}"`` for ``a <= b``: the sequence's unbiased HSIC of the linear Gram
          matrices of ``h_a`` and ``h_b`` (residual-stream units to the fourth power);
        - ``"bi:{l}"`` for ``l`` in ``0..L-1``: the sum of ``1 - cos(h_l, h_{l+1})``;
        - ``"angular:{l}+{n}"``: the sum of ``arccos(cos(h_l, h_{l+n})) / pi``;
        - ``"angular_last:{l}+{n}"``: the same at the last position only (Gromov et al.);
        - ``seq_len``.
    """
    n_layers = len(model.blocks)

    def compute(batch: torch.Tensor) -> dict[str, np.ndarray]:
        resid: dict[int, Tensor] = {}

        def hook(x: Tensor, hook: Any) -> None:
            resid[int(hook.name.split(".")[1])] = x[:, 1:].detach().double()

        hooks = [(f"blocks.{layer}.hook_resid_pre", hook) for layer in range(n_layers)]
        with checked_hooks(model, hooks):
            resid[n_layers] = run_to_last_block(model, batch)[:, 1:].double()
        if len(resid) != n_layers + 1:
            raise RuntimeError(f"residual hooks fired at points {sorted(resid)} only")
        return _columns(torch.stack([resid[a] for a in range(n_layers + 1)]))

    return per_sequence(
        "similarity",
        model,
        tokens,
        compute=compute,
        params={},
        bytes_per_seq=partial(_bytes_per_seq, model),
        desc="layer similarity",
        min_len=5,
        **run,
    )


def n_layers_of(sums: pd.DataFrame) -> int:
    """Blocks ``L`` of a :func:`similarity_sums` frame (its ``"bi:{l}"`` columns)."""
    return sum(c.startswith("bi:") for c in sums.columns)


def _stack(sums: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """``[len(columns), n_seq]`` float64."""
    return sums[columns].to_numpy(dtype=np.float64).T


def _positions(sums: pd.DataFrame) -> np.ndarray:
    """``[n_seq]``: the positions ``1..seq_len-1`` each sequence's sums run over."""
    return (sums["seq_len"] - 1).to_numpy(dtype=np.float64)


def cka_table(sums: pd.DataFrame, *, n_boot: int = stats.N_BOOT, seed: int = 0) -> pd.DataFrame:
    """Minibatch linear CKA between every pair of residual points, with 95% intervals.

    ``CKA(a, b) = mean_s HSIC_ab / sqrt(mean_s HSIC_aa * mean_s HSIC_bb)`` over sequences ``s``
    (each sequence one minibatch, equally weighted); the interval is the percentile bootstrap
    of this ratio over sequences, one resample serving every pair. CKA is 1 on the diagonal; it
    is NaN where a mean self-HSIC is not positive.

    Args:
        sums: :func:`similarity_sums`.
        n_boot: bootstrap resamples.
        seed: bootstrap seed.

    Returns:
        ``(L + 1)^2`` rows, the symmetric matrix in long form (both orders of each pair):
        ``a``, ``b`` (residual points ``0..L``, ``a`` = the residual entering block ``a``,
        ``L`` = the last block's output), ``cka`` (in ``[0, 1]`` up to estimator noise),
        ``cka_lo``, ``cka_hi``, ``n_seq``.
    """
    n_points = n_layers_of(sums) + 1
    pairs = [(a, b) for a in range(n_points) for b in range(a, n_points)]
    index = {pair: k for k, pair in enumerate(pairs)}
    self_a = np.array([index[(a, a)] for a, _ in pairs])
    self_b = np.array([index[(b, b)] for _, b in pairs])

    def cka(m: np.ndarray) -> np.ndarray:  # [pairs, ...] mean HSICs -> [pairs, ...] CKA
        with np.errstate(invalid="ignore", divide="ignore"):
            return m / np.sqrt(m[self_a] * m[self_b])

    values = _stack(sums, [f"hsic:{a}-{b}" for a, b in pairs])
    estimate, lo, hi = stats.interval(values, None, cka, n_boot=n_boot, seed=seed)
    records = []
    for k, (a, b) in enumerate(pairs):
        row = {"cka": estimate[k], "cka_lo": lo[k], "cka_hi": hi[k], "n_seq": len(sums)}
        records.append({"a": a, "b": b} | row)
        if a != b:
            records.append({"a": b, "b": a} | row)
    table = pd.DataFrame.from_records(records).sort_values(["a", "b"], ignore_index=True)
    return with_provenance(table, sums, n_boot=n_boot, seed=seed)


def layer_scores(sums: pd.DataFrame, *, n_boot: int = stats.N_BOOT, seed: int = 0) -> pd.DataFrame:
    """Block Influence and the one-block angular distance of every layer, with 95% intervals.

    Both are token means over positions ``1..seq_len-1`` of all sequences; intervals are
    percentile bootstraps over sequences.

    Args:
        sums: :func:`similarity_sums`.
        n_boot: bootstrap resamples.
        seed: bootstrap seed.

    Returns:
        One row per block ``l``: ``layer``, ``rel_depth`` (``l / (L - 1)``),
        ``block_influence`` (``1 - cos(h_l, h_{l+1})``, in ``[0, 2]``), ``angular``
        (``arccos(cos(h_l, h_{l+1})) / pi``, in ``[0, 1]``), each with ``_lo`` / ``_hi``;
        ``n_seq``.
    """
    n_layers = n_layers_of(sums)
    table = pd.DataFrame(
        {"layer": range(n_layers), "rel_depth": np.arange(n_layers) / max(1, n_layers - 1)}
    )
    for name, pattern in SCORES.items():
        values = _stack(sums, [pattern.format(l=layer) for layer in range(n_layers)])
        estimate, lo, hi = stats.interval(values, _positions(sums), n_boot=n_boot, seed=seed)
        table[name], table[f"{name}_lo"], table[f"{name}_hi"] = estimate, lo, hi
    table["n_seq"] = len(sums)
    return with_provenance(table, sums, n_boot=n_boot, seed=seed)


def angular_table(
    sums: pd.DataFrame, *, last_token: bool = False, n_boot: int = stats.N_BOOT, seed: int = 0
) -> pd.DataFrame:
    """Angular distance between the residuals entering blocks ``l`` and ``l + n``.

    Args:
        sums: :func:`similarity_sums`.
        last_token: the last position only (Gromov et al.'s measure) instead of the token mean
            over positions ``1..seq_len-1``.
        n_boot: bootstrap resamples.
        seed: bootstrap seed.

    Returns:
        One row per (start ``l``, length ``n``) with ``n`` in ``1..max(1, floor(L/2))`` and
        ``l + n <= L``: ``start``, ``length``, ``angular`` (``arccos(cos) / pi``, in
        ``[0, 1]``), ``angular_lo``, ``angular_hi``, ``n_seq``.
    """
    n_layers = n_layers_of(sums)
    keys = [(start, n) for n in lengths(n_layers) for start in range(n_layers + 1 - n)]
    prefix = "angular_last" if last_token else "angular"
    counts = np.ones(len(sums)) if last_token else _positions(sums)
    values = _stack(sums, [f"{prefix}:{start}+{n}" for start, n in keys])
    estimate, lo, hi = stats.interval(values, counts, n_boot=n_boot, seed=seed)
    table = pd.DataFrame(keys, columns=["start", "length"])
    table["angular"], table["angular_lo"], table["angular_hi"] = estimate, lo, hi
    table["n_seq"] = len(sums)
    return with_provenance(table, sums, n_boot=n_boot, seed=seed, last_token=last_token)
