"""Several models' per-layer signals, one model in memory at a time (the cross-model page).

:func:`compare_models` opens each model's results in turn (its results pack when the
parameters are the pack's, else computed now) and returns, per model, its per-sequence sums
(:class:`stages.analyses.cross_model.Sample`) and one long table of curves with 95% bootstrap
intervals; :mod:`stages.claims.cross_model` decides whether the shapes agree.
"""

from __future__ import annotations

import gc
from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd

from stages.analyses.cross_model import Sample, model_signals
from stages.results.opening import open_results, packs_for


@dataclass
class Comparison:
    """What :func:`compare_models` returns.

    Attributes:
        samples: each model's per-sequence sums, in the order given.
        table: every model's :func:`model_signals`, with a ``model`` column first.
        reports: each model's :meth:`stages.results.source.Results.report` (where its numbers came
            from, and its live slice check).
        provenance: each model's provenance record.
        headlines: each model's :meth:`stages.results.source.Results.headline` (the same, in one
            sentence).
    """

    samples: list[Sample]
    table: pd.DataFrame
    reports: dict[str, str]
    provenance: dict[str, dict]
    headlines: dict[str, str] = field(default_factory=dict)


def compare_models(
    models: Sequence[str],
    *,
    n_tokens: int,
    seq_len: int,
    batch_size: int | None = None,
    device: str = "auto",
    dtype: str = "float32",
    corpus: str = "default",
    seed: int = 0,
    pack: str = "default",
    parameters: dict | None = None,
) -> Comparison:
    """Every model's per-sequence sums and curves, one model after the other.

    Each model reads ``n_tokens`` tokens of ``corpus`` in its own tokenization (the same seed).
    With ``pack="default"`` a model whose shipped results pack holds exactly these parameters is
    read from it (see :func:`stages.results.opening.open_results`); a pack folder serves the
    model it names (:func:`stages.results.opening.packs_for`).

    Raises:
        ValueError: no model, or a model named twice.
    """
    if not models or len(set(models)) != len(models):
        raise ValueError(f"models must be a non-empty list of distinct names, got {models!r}")
    samples, parts, reports, records, headlines = [], [], {}, {}, {}
    for name, its_pack in zip(models, packs_for(list(models), pack), strict=True):
        res = open_results(
            name, n_tokens=n_tokens, seq_len=seq_len, seed=seed, corpus=corpus, device=device,
            dtype=dtype, batch_size=batch_size, pack=its_pack,
        )  # fmt: skip
        frames = {part: res.sums(part) for part in ("sweep", "attention", "norms", "lens")}
        sample = Sample(res.name, frames, res.classes(), res.n_layers)
        samples.append(sample)
        parts.append(model_signals(sample, seed=seed).assign(model=res.name))
        reports[res.name] = res.report()
        headlines[res.name] = res.headline()
        records[res.name] = {"n_layers": res.n_layers} | res.provenance(parameters or {})
        del res
        gc.collect()
    table = pd.concat(parts, ignore_index=True)
    table = table[["model", *(c for c in table.columns if c != "model")]]
    return Comparison(samples, table, reports, records, headlines)
