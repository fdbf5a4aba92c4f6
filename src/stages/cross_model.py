"""The paper's per-layer signals for several models, on one relative-depth axis.

The paper compares Pythia, GPT-2 and Phi models by plotting each on relative depth
``layer / (n_layers - 1)``. :func:`compare_models` loads each model in turn, runs the analyses
behind the signals on its own tokens of the same corpus, and returns one long table;
:func:`shape_agreement` says how alike two models' curves are.
"""

from __future__ import annotations

import gc
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

SIGNALS: dict[str, str] = {
    "drop_rel_acc": "drop: relative accuracy (Fig. 2)",
    "swap_rel_acc": "swap: relative accuracy (Fig. 2)",
    "prev_attention": "attention on previous 5 tokens (Fig. 4)",
    "norm_ratio": "|attention out| / |MLP out| (Fig. 5)",
    "lens_kl": "logit lens: KL to final, nats (Fig. 6)",
    "prediction_frac": "prediction neurons, fraction (Fig. 6)",
}
"""The signals compared, and their titles."""


def model_signals(
    model: Any, tokens: Any, *, batch_size: int | None = None, seed: int = 0, progress: bool = True
) -> pd.DataFrame:
    """One model's signals: ``layer``, ``rel_depth``, ``signal``, ``value``, ``lo``, ``hi``.

    Drops and swaps (:func:`stages.run_sweep`: relative accuracy, the swap plotted at its first
    layer), previous-5 attention (:func:`stages.attention_locality`, mean over heads), the
    attention / MLP output norm ratio (:func:`stages.component_norms`), the logit lens's KL to
    the final distribution (:func:`stages.logit_lens`) and the fraction of prediction neurons
    (:func:`stages.neuron_classes`, no interval). Every analysis is cached as usual.
    """
    from stages.attention import attention_locality
    from stages.lens import logit_lens
    from stages.neurons import class_counts, neuron_classes
    from stages.norms import component_norms
    from stages.sweep import run_sweep

    kw = {"batch_size": batch_size, "seed": seed, "progress": progress}
    sweep = run_sweep(model, tokens, **kw)  # every intervention: the book's other pages' cache
    n = len(model.blocks)
    parts = []
    for kind in ("drop", "swap"):
        rows = sweep[sweep["kind"] == kind]
        parts.append(_long(rows, f"{kind}_rel_acc", "rel_acc"))
    locality = attention_locality(model, tokens, **kw)
    parts.append(_long(locality[locality["head"] == -1], "prev_attention", "attn_prev5"))
    parts.append(_long(component_norms(model, tokens, **kw), "norm_ratio", "ratio"))
    parts.append(_long(logit_lens(model, tokens, **kw), "lens_kl", "kl_to_final"))
    counts = class_counts(neuron_classes(model, progress=progress))
    parts.append(_long(counts, "prediction_frac", "prediction_frac"))
    out = pd.concat(parts, ignore_index=True)
    out["rel_depth"] = out["layer"] / max(1, n - 1)
    return out[["signal", "layer", "rel_depth", "value", "lo", "hi"]]


def _long(table: pd.DataFrame, signal: str, column: str) -> pd.DataFrame:
    return pd.DataFrame({
        "signal": signal,
        "layer": table["layer"].to_numpy(),
        "value": table[column].to_numpy(),
        "lo": table.get(f"{column}_lo", table[column]).to_numpy(),
        "hi": table.get(f"{column}_hi", table[column]).to_numpy(),
    })  # fmt: skip


def compare_models(
    models: Sequence[str],
    *,
    n_tokens: int,
    seq_len: int,
    batch_size: int | None = None,
    device: str = "auto",
    dtype: str | None = "float32",
    corpus: str = "default",
    seed: int = 0,
    progress: bool = True,
) -> pd.DataFrame:
    """:func:`model_signals` of every model, one after the other (one model in memory at once).

    Each model reads ``n_tokens`` tokens of ``corpus`` in its own tokenization (the same text
    sample for the same ``seed``). Returns the long table with a ``model`` column, and
    ``attrs["models"]``: per model, ``n_layers`` and its :func:`stages.provenance.provenance`
    record (weights hash, tokens, dtype, device, versions, ...).

    Raises:
        ValueError: fewer than one model, or a model named twice.
    """
    from stages.corpus import load_corpus
    from stages.models import load_model
    from stages.provenance import provenance

    if not models or len(set(models)) != len(models):
        raise ValueError(f"models must be a non-empty list of distinct names, got {models!r}")
    parts, about = [], {}
    for name in models:
        lm = load_model(name, device=device, dtype=dtype)
        tokens = load_corpus(lm, corpus=corpus, n_tokens=n_tokens, seq_len=seq_len, seed=seed)
        signals = model_signals(lm, tokens, batch_size=batch_size, seed=seed, progress=progress)
        parts.append(signals.assign(model=lm.stages_info["name"]))
        about[lm.stages_info["name"]] = {"n_layers": len(lm.blocks)} | provenance(
            lm, tokens, {}, corpus=corpus
        )
        del lm
        gc.collect()
    table = pd.concat(parts, ignore_index=True)
    table.attrs["models"] = about
    return table[["model", *(c for c in table.columns if c != "model")]]


def shape_agreement(table: pd.DataFrame, a: str, b: str, *, points: int = 21) -> pd.DataFrame:
    """How alike two models' curves are, per signal, on a common relative-depth grid.

    Both curves are linearly interpolated onto ``points`` evenly spaced depths in 0..1.

    Returns:
        One row per signal: ``signal``, ``pearson_r`` (of the two interpolated curves; NaN when
        one is constant), ``peak_depth_a``, ``peak_depth_b`` (relative depth of each model's
        largest value).
    """
    grid = np.linspace(0.0, 1.0, points)
    rows = []
    for signal in SIGNALS:
        curves, peaks = [], []
        for name in (a, b):
            part = table[(table["model"] == name) & (table["signal"] == signal)]
            part = part.sort_values("rel_depth")
            curves.append(np.interp(grid, part["rel_depth"], part["value"]))
            peaks.append(float(part["rel_depth"].iloc[int(np.argmax(part["value"]))]))
        flat = any(np.ptp(c) == 0 for c in curves)
        r = float("nan") if flat else float(np.corrcoef(*curves)[0, 1])
        rows.append({"signal": signal, "pearson_r": r, "peak_depth_a": peaks[0],
                     "peak_depth_b": peaks[1]})  # fmt: skip
    return pd.DataFrame(rows)
