"""Subjoiner heads (paper section 6.1, Figure 9): heads that join a multi-token word's pieces.

On a :func:`stages.text.words.subjoiner_dataset`, every head's attention from the last token of each
window to the ``n_keys`` last positions (offset 0 = itself, offset 3 = three tokens back) is
read from ``blocks.{l}.attn.hook_pattern``. A *subjoiner* head attends from the last token of a
four-token word to the word's first token (offset 3) far more than the same head attends to
offset 3 when the last word is a single token. The effect size of a head is that difference of
mean attention (word class minus control class, in attention-weight units), with a 95%
bootstrap interval that resamples the examples of each class independently.
"""

from __future__ import annotations

from typing import Any, Unpack

import numpy as np
import pandas as pd
import torch

from stages import stats
from stages.engine.forward import run_to_last_block
from stages.engine.hooks import checked_hooks
from stages.engine.runs import RunOptions, per_sequence
from stages.shapes import Model, Tokens


def final_token_attention(
    model: Model,
    tokens: Tokens,
    *,
    n_keys: int = 16,
    **run: Unpack[RunOptions],
) -> pd.DataFrame:
    """Attention of each window's last token on its ``n_keys`` last positions, every head.

    Args:
        model: a ``TransformerBridge``.
        tokens: ``[n, seq_len]`` windows, BOS first (``seq_len > n_keys``).
        n_keys: how many positions back to read, the last token itself included.
        run: ``batch_size`` (windows per forward pass), ``progress``, ``cache``
            (:class:`stages.engine.runs.RunOptions`).

    Returns:
        One row per window; a column ``"{layer}.{head}.{offset}"`` per head and offset
        (``offset`` positions before the last token), float64 attention weights.
    """
    n_layers = len(model.blocks)
    if tokens.shape[1] <= n_keys:
        raise ValueError(f"windows of {tokens.shape[1]} tokens cannot show {n_keys} keys")

    def compute(batch: torch.Tensor) -> dict[str, np.ndarray]:
        columns: dict[str, np.ndarray] = {}

        def hook(pattern: torch.Tensor, hook: Any) -> None:
            layer = int(hook.name.split(".")[1])
            last = pattern[:, :, -1, -n_keys:].flip(-1).double().cpu().numpy()  # [b, h, offset]
            for h in range(last.shape[1]):
                for k in range(n_keys):
                    columns[f"{layer}.{h}.{k}"] = last[:, h, k]

        hooks = [(f"blocks.{layer}.attn.hook_pattern", hook) for layer in range(n_layers)]
        with checked_hooks(model, hooks):
            run_to_last_block(model, batch)
        return columns

    return per_sequence(
        "final_attention",
        model,
        tokens,
        compute=compute,
        params={"n_keys": n_keys},
        desc="attention of the last token",
        min_len=2,
        **run,
    )


def subjoiner_heads(
    model: Model,
    tokens: Tokens,
    labels: np.ndarray,
    *,
    offset: int = 3,
    n_keys: int = 16,
    n_boot: int = stats.N_BOOT,
    seed: int = 0,
    **run: Unpack[RunOptions],
) -> pd.DataFrame:
    """Every head ranked as a subjoiner: :func:`final_token_attention`, then :func:`rank_heads`.

    Args:
        model: a ``TransformerBridge``.
        tokens: ``[n, seq_len]`` windows (:func:`stages.text.words.subjoiner_dataset`).
        labels: ``[n]`` bool, True for the word class.
        offset: the word's first token, positions before the last (4-token words: 3).
        n_keys: positions read back from the last token.
        n_boot: bootstrap resamples.
        seed: bootstrap seed.
        run: ``batch_size`` (windows per forward pass), ``progress``, ``cache``
            (:class:`stages.engine.runs.RunOptions`).

    Returns:
        The :func:`rank_heads` table.
    """
    attention = final_token_attention(model, tokens, n_keys=n_keys, **run)
    return rank_heads(attention, labels, len(model.blocks), offset=offset, n_boot=n_boot, seed=seed)


OFFSET = 3
"""Where a four-token word's first token sits, counted back from its last token."""


def effect_of_heads(
    attention: pd.DataFrame, labels: np.ndarray, *, offset: int = OFFSET
) -> pd.DataFrame:
    """Every head's mean attention at ``offset`` per class, and the difference; largest first.

    Args:
        attention: a :func:`final_token_attention` table (or its columns ending ``.<offset>``).
        labels: ``[n]`` bool, True for the word class.
        offset: positions back from the last token.

    Returns:
        ``layer``, ``head``, ``word``, ``control``, ``effect`` (``word - control``), sorted by
        ``effect``, largest first.
    """
    labels = np.asarray(labels, dtype=bool)
    values, heads = _values(attention, offset)
    table = pd.DataFrame(
        {
            "layer": [la for la, _ in heads],
            "head": [h for _, h in heads],
            "word": values[labels].mean(0),
            "control": values[~labels].mean(0),
        }
    )
    table["effect"] = table["word"] - table["control"]
    return table.sort_values("effect", ascending=False, ignore_index=True, kind="stable")


def _values(attention: pd.DataFrame, offset: int) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """``[n, n_heads_total]`` attention at ``offset`` and the (layer, head) of each column."""
    heads = sorted(
        {tuple(map(int, c.split(".")[:2])) for c in attention.columns if c.endswith(f".{offset}")}
    )
    return attention[[f"{la}.{h}.{offset}" for la, h in heads]].to_numpy(), heads


def rank_heads(
    attention: pd.DataFrame,
    labels: np.ndarray,
    n_layers: int,
    *,
    offset: int = 3,
    n_boot: int = stats.N_BOOT,
    seed: int = 0,
) -> pd.DataFrame:
    """Rank every head by how much more it attends to the word's first token in the word class.

    Args:
        attention: a :func:`final_token_attention` table.
        labels: ``[n]`` bool, True for the word class.
        n_layers: layers of the model (for relative depth).
        offset: the word's first token, positions before the last (4-token words: 3).
        n_boot: bootstrap resamples.
        seed: bootstrap seed.

    Returns:
        One row per head, largest effect first: ``layer``, ``head``, ``rel_depth``,
        ``word`` and ``control`` (mean attention at ``offset`` per class), ``effect``
        (``word - control``), ``effect_lo``, ``effect_hi`` (95% bootstrap).
    """
    labels = np.asarray(labels, dtype=bool)
    if labels.all() or not labels.any():
        raise ValueError("need examples of both classes")
    values, heads = _values(attention, offset)
    word, control = values[labels], values[~labels]
    rng = np.random.default_rng(seed)
    boot_w = word[rng.integers(0, len(word), (n_boot, len(word)))].mean(1)
    boot_c = control[rng.integers(0, len(control), (n_boot, len(control)))].mean(1)
    lo, hi = np.quantile(boot_w - boot_c, [0.025, 0.975], axis=0)
    table = pd.DataFrame(
        {
            "layer": [la for la, _ in heads],
            "head": [h for _, h in heads],
            "word": word.mean(0),
            "control": control.mean(0),
        }
    )
    table["rel_depth"] = table["layer"] / max(1, n_layers - 1)
    table["effect"] = table["word"] - table["control"]
    table["effect_lo"], table["effect_hi"] = lo, hi
    columns = ["layer", "head", "rel_depth", "word", "control", "effect", "effect_lo", "effect_hi"]
    return table[columns].sort_values("effect", ascending=False, ignore_index=True)


def attention_profile(
    attention: pd.DataFrame, labels: np.ndarray, layer: int, head: int
) -> pd.DataFrame:
    """Figure 9: one head's mean attention from the last token to each offset, per class.

    Args:
        attention: a :func:`final_token_attention` table.
        labels: ``[n]`` bool, True for the word class.
        layer: the head's layer.
        head: the head's index.

    Returns:
        One row per (class, offset): ``cls`` (``"multi-token word"`` / ``"one-token word"``),
        ``offset``, ``attention`` (mean), ``sem`` (standard error of the mean).
    """
    labels = np.asarray(labels, dtype=bool)
    prefix = f"{layer}.{head}."
    columns = sorted((c for c in attention.columns if c.startswith(prefix)),
                     key=lambda c: int(c.rsplit(".", 1)[1]))  # fmt: skip
    if not columns:
        raise ValueError(f"no head {layer}.{head} in this table")
    rows = []
    for name, mask in (("multi-token word", labels), ("one-token word", ~labels)):
        values = attention.loc[mask, columns].to_numpy()
        for k, column in enumerate(columns):
            v = values[:, k]
            rows.append(
                {"cls": name, "offset": int(column.rsplit(".", 1)[1]), "attention": v.mean(),
                 "sem": v.std(ddof=1) / np.sqrt(len(v)) if len(v) > 1 else 0.0}
            )  # fmt: skip
    return pd.DataFrame(rows)
