"""The parts of a results pack, one record each (:data:`PARTS`), as plans have ``FAMILIES``.

A part is one analysis's per-row sums: what its rows are (sequences, case-study windows, cloze
windows, or the weights), how rows ``a..b`` are computed for a model and recipe, how many rows
a chunk holds, whether it is an *extension* part (built on its own, beyond single layers), and
for a part of many plans its plans (its live slice then recomputes a few start layers only).
The pack builder, the live slice check and the pages all read this registry, so a new analysis
is its module plus one line here.

The rows of a part are computed by a :class:`stages.results.computer.Computer` (the model, the
recipe's tokens and windows, made once); the functions here take it as ``c``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from stages.analyses.attention import attention_sums
from stages.analyses.blocks import block_plans, block_sums
from stages.analyses.cloze import cloze_sums
from stages.analyses.duplication import duplication_plans, duplication_sums
from stages.analyses.lens import lens_sums
from stages.analyses.norms import norms_sums
from stages.analyses.probes import neuron_activations
from stages.analyses.reorder import reorder_plans, reorder_sums
from stages.analyses.similarity import similarity_sums
from stages.analyses.skip_effects import skip_sums
from stages.analyses.subjoiner import OFFSET, final_token_attention
from stages.analyses.swap_similarity import swap_similarity_sums
from stages.engine.forward import start_groups
from stages.engine.sweep import single_layer_plans, sweep_sums
from stages.text.words import Vocabulary

if TYPE_CHECKING:
    from stages.results.computer import Computer

CHUNK = 32
"""Sequences (and cloze windows) per chunk after the slice."""

WINDOW_CHUNK = 256
"""Case-study windows per chunk after the slice."""

Rows = Callable[["Computer", int, int, bool, bool], pd.DataFrame]
"""``rows(c, a, b, cache, progress)``: rows ``a..b-1`` of a part, computed now."""


@dataclass(frozen=True)
class Part:
    """One part of a results pack.

    Attributes:
        name: the part's name (its folder in the pack).
        unit: what a row is: ``"sequences"`` (the recipe's token sample), ``"windows"``
            (case-study or cloze windows) or ``"weights"`` (one file, the neuron moments).
        rows: computes rows ``a..b-1`` (None for the weights).
        chunk: rows per chunk after the slice.
        extension: built on its own (``stages pack build --parts``), holding its own number of
            rows; a pack is complete without it.
        plans: for a part of many plans, its plans for ``n_layers`` blocks: its live slice
            recomputes the plans of a few start layers (:data:`SLICE_GROUPS`), not all.
    """

    name: str
    unit: Literal["sequences", "windows", "weights"]
    rows: Rows | None = None
    chunk: int = CHUNK
    extension: bool = False
    plans: Callable[[int], list[Any]] | None = None


def _sequences(sums: Callable[..., pd.DataFrame]) -> Rows:
    """The rows of a sequence part: ``sums`` of the recipe's sequences ``a..b-1``."""

    def rows(c: Computer, a: int, b: int, cache: bool, progress: bool) -> pd.DataFrame:
        batch = min(c.recipe.batch_size, b - a)
        return sums(c.model, c.tokens[a:b], batch_size=batch, progress=progress, cache=cache)

    return rows


def _window_kw(c: Computer, a: int, b: int, cache: bool, progress: bool) -> dict[str, Any]:
    return {"batch_size": min(c.recipe.window_batch, b - a), "progress": progress, "cache": cache}


def _cloze(c: Computer, a: int, b: int, cache: bool, progress: bool) -> pd.DataFrame:
    w = c.cloze
    rows = replace(w, tokens=w.tokens[a:b], n_target=w.n_target[a:b], words=w.words[a:b],
                   position=w.position[a:b])  # fmt: skip
    return cloze_sums(c.model, rows, **_window_kw(c, a, b, cache, progress))


def _ing(c: Computer, a: int, b: int, cache: bool, progress: bool) -> pd.DataFrame:
    data = c.datasets["ing"]
    ing = Vocabulary.of(c.model.tokenizer, c.model.cfg.d_vocab).ing()
    rows = neuron_activations(c.model, data.tokens[a:b], c.ing_neuron_union(), ing,
                              **_window_kw(c, a, b, cache, progress))  # fmt: skip
    return rows.assign(label=data.labels[a:b], position=data.position[a:b])


def _subjoiner(keep: Callable[[Computer, str], bool]) -> Rows:
    """Rows of a subjoiner part: the final token's attention, the columns ``keep`` keeps."""

    def rows(c: Computer, a: int, b: int, cache: bool, progress: bool) -> pd.DataFrame:
        data = c.datasets["subjoiner"]
        attention = final_token_attention(c.model, data.tokens[a:b],
                                          **_window_kw(c, a, b, cache, progress))  # fmt: skip
        out = attention[[*(col for col in attention.columns if keep(c, col)), "seq_len"]]
        return out.assign(label=data.labels[a:b], position=data.position[a:b])

    return rows


PARTS: dict[str, Part] = {
    p.name: p
    for p in (
        Part("neurons", "weights"),
        Part("subjoiner", "windows", _subjoiner(lambda c, col: col.endswith(f".{OFFSET}")),
             WINDOW_CHUNK),
        Part("subjoiner_profile", "windows",
             _subjoiner(lambda c, col: col.rsplit(".", 1)[0] in c.profile_heads()), WINDOW_CHUNK),
        Part("ing", "windows", _ing, WINDOW_CHUNK),
        Part("sweep", "sequences", _sequences(sweep_sums), plans=single_layer_plans),
        Part("attention", "sequences", _sequences(attention_sums)),
        Part("norms", "sequences", _sequences(norms_sums)),
        Part("lens", "sequences", _sequences(lens_sums)),
        Part("swap_similarity", "sequences", _sequences(swap_similarity_sums)),
        Part("blocks", "sequences", _sequences(block_sums), extension=True, plans=block_plans),
        Part("reorder", "sequences", _sequences(reorder_sums), extension=True,
             plans=reorder_plans),
        Part("duplication", "sequences", _sequences(duplication_sums), extension=True,
             plans=duplication_plans),
        Part("similarity", "sequences", _sequences(similarity_sums), extension=True),
        Part("skip_effects", "sequences", _sequences(skip_sums), extension=True),
        Part("cloze", "windows", _cloze, extension=True),
    )
}  # fmt: skip
"""Every part, in the order a full build computes them (the neuron moments, the case studies,
then the sequence parts; the extension parts only when named)."""


def _named(test: Callable[[Part], bool]) -> tuple[str, ...]:
    return tuple(name for name, part in PARTS.items() if test(part))


SEQUENCE_PARTS = _named(lambda p: p.unit == "sequences" and not p.extension)
"""The parts of every complete pack whose rows are its sequences."""
WINDOW_PARTS = _named(lambda p: p.unit == "windows" and not p.extension)
"""The case studies' parts (rows: their windows)."""
EXTENSION_PARTS = _named(lambda p: p.extension)
"""Parts beyond single layers, each built on its own and holding its own number of rows
(:meth:`stages.results.pack.Pack.rows_done`): a pack is complete without them, and a page that
uses one reads the rows it holds and says how many."""
PLAN_PARTS = _named(lambda p: p.plans is not None)
"""Parts of many plans (the sweep of single layers, block deletion, reorderings, duplication):
their live slice recomputes a few start layers (:func:`slice_plans`)."""
ROW_PARTS = _named(lambda p: p.unit == "sequences")
"""Every part whose rows are the pack's sequences."""

SLICE_GROUPS = 3
"""Start-layer groups of a plan part that its live slice recomputes (first, middle, last)."""


def slice_plans(part: str, n_layers: int) -> list[Any]:
    """The plans of a plan part that its live slice recomputes.

    Those of :data:`SLICE_GROUPS` start layers spread over the depth (the first, the middle and
    the last); each start-layer group runs exactly as in the full part
    (:func:`stages.engine.forward.run_group`), so its values are the same.
    """
    groups = start_groups(PARTS[part].plans(n_layers))
    keep = np.unique(np.linspace(0, len(groups) - 1, SLICE_GROUPS).round().astype(int))
    return [plan for k in keep for plan in groups[k]]
