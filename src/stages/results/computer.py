"""Computing any part's rows for a model and a recipe (:class:`Computer`).

Shared by the pack builder (:mod:`stages.results.build`), the live slice check
(:mod:`stages.results.check`) and the pages when they compute now
(:mod:`stages.results.source`). What a part is and how its rows are computed is in the registry
:data:`stages.results.parts.PARTS`; the computer holds what every part needs, made once: the
model, the recipe's token sample, its case-study and cloze windows, the neuron classes, the
"-ing" neurons and the profiled heads.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from stages.analyses.neurons import classify_table, neuron_classes
from stages.analyses.probes import SELECTIONS, ing_neurons
from stages.analyses.subjoiner import OFFSET, effect_of_heads
from stages.engine.sweep import sweep_sums
from stages.results.pack import NEURON_COLUMNS, PROFILE_HEADS, Pack, Recipe
from stages.results.parts import PARTS, PLAN_PARTS, slice_plans
from stages.shapes import Model
from stages.text.cloze import ClozeSet, cloze_set
from stages.text.corpus import load_corpus
from stages.text.words import Vocabulary, WordDataset, ing_dataset, subjoiner_dataset


def interleaved(labels: np.ndarray) -> np.ndarray:
    """An order of the rows alternating the two classes while both last (positive first).

    The pack's first chunk (the live slice) then holds one window of each class.
    """
    labels = np.asarray(labels, dtype=bool)
    pos, neg = np.flatnonzero(labels), np.flatnonzero(~labels)
    n = min(len(pos), len(neg))
    pairs = np.stack([pos[:n], neg[:n]], axis=1).reshape(-1)
    return np.concatenate([pairs, pos[n:], neg[n:]])


def case_study_windows(model: Model, recipe: Recipe) -> dict[str, WordDataset]:
    """The case-study windows of ``recipe``, classes interleaved (:func:`interleaved`).

    Returns:
        ``{"subjoiner": WordDataset, "ing": WordDataset}``.
    """
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


def ing_neuron_sets(model: Model, classes: pd.DataFrame, recipe: Recipe) -> dict[str, pd.DataFrame]:
    """The "-ing" neurons of each selection rule (:func:`stages.analyses.probes.ing_neurons`)."""
    ing = Vocabulary.of(model.tokenizer, model.cfg.d_vocab).ing()
    return {
        rule: ing_neurons(model, classes, ing, k=recipe.n_neurons, selection=rule)
        for rule in SELECTIONS
    }


def profile_heads(subjoiner: pd.DataFrame, labels: np.ndarray, k: int = PROFILE_HEADS) -> list[str]:
    """The ``k`` heads (``"layer.head"``) with the largest subjoiner effect over all windows."""
    effects = effect_of_heads(subjoiner, labels, offset=OFFSET)
    return [f"{int(r.layer)}.{int(r.head)}" for r in effects.head(k).itertuples()]


class Computer:
    """Computes any part's rows for a model and recipe (shared by the builder and the slice).

    Args:
        model: the recipe's model.
        recipe: what the pack computes.
        pack: the pack being built or checked, if any: the choices it made once (the neuron
            classes, the "-ing" neurons, the profiled heads) are read from it.
    """

    def __init__(self, model: Model, recipe: Recipe, pack: Pack | None = None) -> None:
        self.model, self.recipe, self.pack = model, recipe, pack
        self.tokens = load_corpus(
            model, corpus=recipe.corpus, n_tokens=recipe.n_tokens, seq_len=recipe.seq_len,
            seed=recipe.seed,
        )  # fmt: skip
        self._datasets: dict[str, WordDataset] | None = None
        self._cloze: ClozeSet | None = None
        self._classes: pd.DataFrame | None = None
        self._profile: list[str] | None = None
        self._ing_neurons: dict[str, pd.DataFrame] | None = None

    @property
    def datasets(self) -> dict[str, WordDataset]:
        """The case studies' windows (:mod:`stages.text.words`), made once."""
        if self._datasets is None:
            self._datasets = case_study_windows(self.model, self.recipe)
        return self._datasets

    @property
    def cloze(self) -> ClozeSet:
        """The cloze windows (:func:`stages.text.cloze.cloze_set`), made once."""
        if self._cloze is None:
            r = self.recipe
            self._cloze = cloze_set(
                self.model, corpus=r.corpus, context=r.cloze_context, n=r.n_cloze, seed=r.seed
            )
        return self._cloze

    def classes(self) -> pd.DataFrame:
        """Neuron classes from the pack when it has them, else computed (and cached)."""
        if self._classes is None:
            if self.pack is not None and self.pack.has("neurons"):
                self._classes = classify_table(self.pack.frame("neurons"), len(self.model.blocks))
            else:
                self._classes = neuron_classes(self.model)
        return self._classes

    def n_rows(self, part: str) -> int:
        """Rows of ``part``: sequences, windows (1 for the weights)."""
        if PARTS[part].unit == "sequences":
            return len(self.tokens)
        if part == "cloze":
            return len(self.cloze.tokens)
        if part == "neurons":
            return 1
        return len(self.datasets["ing" if part == "ing" else "subjoiner"].labels)

    def rows(self, part: str, a: int, b: int, *, cache: bool, progress: bool) -> pd.DataFrame:
        """Rows ``a..b-1`` of ``part`` computed now (:data:`stages.results.parts.PARTS`)."""
        return PARTS[part].rows(self, a, b, cache, progress)

    def slice_rows(self, part: str, n: int) -> pd.DataFrame:
        """The first ``n`` rows of ``part`` as the live slice recomputes them.

        A plan part recomputes the plans of a few start layers
        (:func:`stages.results.parts.slice_plans`), with all their columns; every other part
        recomputes all its columns.
        """
        if part not in PLAN_PARTS:
            return self.rows(part, 0, n, cache=True, progress=False)
        plans = slice_plans(part, len(self.model.blocks))
        batch = min(self.recipe.batch_size, n)
        return sweep_sums(self.model, self.tokens[:n], plans, batch_size=batch, progress=False)

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

    def ing_neuron_union(self) -> pd.DataFrame:
        """Every rule's "-ing" neurons once (the neurons the ``ing`` part records)."""
        both = pd.concat(list(self.ing_sets().values()), ignore_index=True)
        return both.drop_duplicates(["layer", "neuron"]).reset_index(drop=True)

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
