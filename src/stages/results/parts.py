"""What each part of a results pack is, and how its rows are computed (:class:`Parts`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
import torch

from stages.results.pack import (
    NEURON_COLUMNS,
    PLAN_PARTS,
    PROFILE_HEADS,
    ROW_PARTS,
    Pack,
    Recipe,
)

SLICE_GROUPS = 3
"""Start-layer groups of a plan part that its live slice recomputes (:meth:`Parts.slice_rows`)."""


def interleaved(labels: np.ndarray) -> np.ndarray:
    """An order of the rows alternating the two classes while both last (positive first).

    The pack's first chunk (the live slice) then holds one window of each class.
    """
    labels = np.asarray(labels, dtype=bool)
    pos, neg = np.flatnonzero(labels), np.flatnonzero(~labels)
    n = min(len(pos), len(neg))
    pairs = np.stack([pos[:n], neg[:n]], axis=1).reshape(-1)
    return np.concatenate([pairs, pos[n:], neg[n:]])


def _datasets(model: Any, recipe: Recipe) -> dict[str, Any]:
    """The case-study windows of ``recipe``, classes interleaved (:func:`interleaved`).

    Returns:
        ``{"subjoiner": WordDataset, "ing": WordDataset}``.
    """
    from stages.text.words import WordDataset, ing_dataset, subjoiner_dataset

    kw = {"corpus": recipe.corpus, "n_per_class": recipe.n_per_class, "seed": recipe.seed}
    out = {}
    for name, data in (("subjoiner", subjoiner_dataset(model, up_to=True, **kw)),
                       ("ing", ing_dataset(model, **kw))):  # fmt: skip
        order = interleaved(data.labels)
        out[name] = WordDataset(
            data.tokens[torch.as_tensor(order)], data.labels[order],
            [data.words[i] for i in order], data.position[order],
        )  # fmt: skip
    return out


def ing_neuron_sets(model: Any, classes: pd.DataFrame, recipe: Recipe) -> dict[str, pd.DataFrame]:
    """The "-ing" neurons of each selection rule (:func:`stages.analyses.probes.ing_neurons`)."""
    from stages.analyses.probes import SELECTIONS, ing_neurons
    from stages.text.words import Vocabulary

    ing = Vocabulary.of(model.tokenizer, model.cfg.d_vocab).ing()
    return {
        rule: ing_neurons(model, classes, ing, k=recipe.n_neurons, selection=rule)
        for rule in SELECTIONS
    }


def part_plans(part: str, n_layers: int) -> list[Any]:
    """The plans of a plan part (:data:`PLAN_PARTS`) for a model of ``n_layers`` blocks."""
    from stages.analyses.blocks import block_plans
    from stages.analyses.duplication import duplication_plans
    from stages.analyses.reorder import reorder_plans

    plans = {"blocks": block_plans, "reorder": reorder_plans, "duplication": duplication_plans}
    return plans[part](n_layers)


def _neuron_union(sets: dict[str, pd.DataFrame]) -> pd.DataFrame:
    both = pd.concat(list(sets.values()), ignore_index=True)
    return both.drop_duplicates(["layer", "neuron"]).reset_index(drop=True)


def profile_heads(subjoiner: pd.DataFrame, labels: np.ndarray, k: int = PROFILE_HEADS) -> list[str]:
    """The ``k`` heads (``"layer.head"``) with the largest subjoiner effect over all windows."""
    from stages.analyses.subjoiner import OFFSET, effect_of_heads

    effects = effect_of_heads(subjoiner, labels, offset=OFFSET)
    return [f"{int(r.layer)}.{int(r.head)}" for r in effects.head(k).itertuples()]


class Parts:
    """Computes any part's rows for a model and recipe (shared by the builder and the slice)."""

    def __init__(self, model: Any, recipe: Recipe, pack: Pack | None = None) -> None:
        from stages.text.corpus import load_corpus

        self.model, self.recipe, self.pack = model, recipe, pack
        self.tokens = load_corpus(
            model, corpus=recipe.corpus, n_tokens=recipe.n_tokens, seq_len=recipe.seq_len,
            seed=recipe.seed,
        )  # fmt: skip
        self._datasets: dict[str, Any] | None = None
        self._cloze: Any = None
        self._classes: pd.DataFrame | None = None
        self._profile: list[str] | None = None
        self._ing_neurons: dict[str, pd.DataFrame] | None = None

    @property
    def datasets(self) -> dict[str, Any]:
        """The case studies' windows (:mod:`stages.text.words`), made once."""
        if self._datasets is None:
            self._datasets = _datasets(self.model, self.recipe)
        return self._datasets

    @property
    def cloze(self) -> Any:
        """The cloze windows (:func:`stages.text.cloze.cloze_set`), made once."""
        if self._cloze is None:
            from stages.text.cloze import cloze_set

            r = self.recipe
            self._cloze = cloze_set(
                self.model, corpus=r.corpus, context=r.cloze_context, n=r.n_cloze, seed=r.seed
            )
        return self._cloze

    def classes(self) -> pd.DataFrame:
        """Neuron classes from the pack when it has them, else computed (and cached)."""
        from stages.analyses.neurons import classify_table, neuron_classes

        if self._classes is None:
            if self.pack is not None and self.pack.has("neurons"):
                self._classes = classify_table(self.pack.frame("neurons"), len(self.model.blocks))
            else:
                self._classes = neuron_classes(self.model)
        return self._classes

    def n_rows(self, part: str) -> int:
        """Rows of ``part``: sequences, windows, or neurons."""
        if part in ROW_PARTS:
            return len(self.tokens)
        if part == "cloze":
            return len(self.cloze.tokens)
        return len(self.datasets["ing" if part == "ing" else "subjoiner"].labels)

    def rows(self, part: str, a: int, b: int, *, cache: bool, progress: bool) -> pd.DataFrame:
        """Rows ``a..b-1`` of ``part`` computed now."""
        from stages.analyses.probes import neuron_activations
        from stages.analyses.subjoiner import final_token_attention
        from stages.text.words import Vocabulary

        kw = {"progress": progress, "cache": cache}
        if part in ROW_PARTS:
            batch = min(self.recipe.batch_size, b - a)
            return self.live_sums(part, self.tokens[a:b], batch_size=batch, **kw)
        wkw = kw | {"batch_size": min(self.recipe.window_batch, b - a)}
        if part == "cloze":
            from stages.analyses.cloze import cloze_sums

            c = self.cloze
            rows = replace(c, tokens=c.tokens[a:b], n_target=c.n_target[a:b],
                           words=c.words[a:b], position=c.position[a:b])  # fmt: skip
            return cloze_sums(self.model, rows, **wkw)
        if part == "ing":
            data = self.datasets["ing"]
            ing = Vocabulary.of(self.model.tokenizer, self.model.cfg.d_vocab).ing()
            neurons = _neuron_union(self.ing_sets())
            rows = neuron_activations(self.model, data.tokens[a:b], neurons, ing, **wkw)
            return rows.assign(label=data.labels[a:b], position=data.position[a:b])
        data = self.datasets["subjoiner"]
        attention = final_token_attention(self.model, data.tokens[a:b], **wkw)
        if part == "subjoiner":
            from stages.analyses.subjoiner import OFFSET

            keep = [c for c in attention.columns if c.endswith(f".{OFFSET}")]
        else:
            heads = self.profile_heads()
            keep = [c for c in attention.columns if c.rsplit(".", 1)[0] in heads]
        out = attention[[*keep, "seq_len"]]
        return out.assign(label=data.labels[a:b], position=data.position[a:b])

    def ing_sets(self) -> dict[str, pd.DataFrame]:
        """The "-ing" neurons of each selection rule (from the pack's manifest when it has them)."""
        if self._ing_neurons is None:
            if self.pack is not None and "ing_neurons" in self.pack.manifest:
                stored = self.pack.manifest["ing_neurons"]
                self._ing_neurons = {
                    rule: pd.DataFrame(rows, columns=NEURON_COLUMNS)
                    for rule, rows in stored.items()
                }
            else:
                self._ing_neurons = ing_neuron_sets(self.model, self.classes(), self.recipe)
        return self._ing_neurons

    def live_sums(
        self, part: str, tokens: torch.Tensor, *, batch_size: int | None, progress: bool,
        cache: bool,
    ) -> pd.DataFrame:  # fmt: skip
        """A sequence part's per-sequence sums of ``tokens``, computed now."""
        from stages.analyses.attention import attention_sums
        from stages.analyses.lens import lens_sums
        from stages.analyses.norms import norms_sums
        from stages.analyses.similarity import similarity_sums
        from stages.analyses.skip_effects import skip_sums
        from stages.analyses.swap_similarity import swap_similarity_sums
        from stages.engine.sweep import sweep_sums

        f: Callable[..., pd.DataFrame] | None = {
            "sweep": sweep_sums,
            "attention": attention_sums,
            "norms": norms_sums,
            "lens": lens_sums,
            "swap_similarity": swap_similarity_sums,
            "similarity": similarity_sums,
            "skip_effects": skip_sums,
        }.get(part)
        if f is None:  # a plan part
            plans = part_plans(part, len(self.model.blocks))
            return sweep_sums(
                self.model, tokens, plans, batch_size=batch_size, progress=progress, cache=cache
            )  # fmt: skip
        return f(self.model, tokens, batch_size=batch_size, progress=progress, cache=cache)

    def slice_rows(self, part: str, n: int) -> pd.DataFrame:
        """The first ``n`` rows of ``part`` as the live slice recomputes them.

        A plan part (:data:`PLAN_PARTS`, up to hundreds of plans) recomputes the plans of
        :data:`SLICE_GROUPS` start layers spread over the depth (the first, the middle and the
        last), with all their columns; each start-layer group runs exactly as in the full
        part (:func:`stages.engine.forward.run_group`), so its values are the same. Every other
        part recomputes all its columns.
        """
        if part not in PLAN_PARTS:
            return self.rows(part, 0, n, cache=True, progress=False)
        from stages.engine.forward import start_groups
        from stages.engine.sweep import sweep_sums

        groups = start_groups(part_plans(part, len(self.model.blocks)))
        keep = np.unique(np.linspace(0, len(groups) - 1, SLICE_GROUPS).round().astype(int))
        chosen = [plan for k in keep for plan in groups[k]]
        batch = min(self.recipe.batch_size, n)
        return sweep_sums(self.model, self.tokens[:n], chosen, batch_size=batch, progress=False)

    def profile_heads(self) -> list[str]:
        """The heads whose whole attention profile is kept (the pack's, or chosen now)."""
        if self._profile is None:
            if self.pack is not None and "profile_heads" in self.pack.manifest:
                self._profile = list(self.pack.manifest["profile_heads"])
            else:
                n = self.n_rows("subjoiner")
                sub = self.rows("subjoiner", 0, n, cache=True, progress=False)
                self._profile = profile_heads(sub, sub["label"].to_numpy(bool))
        return self._profile
