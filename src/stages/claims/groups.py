"""The groups of claims, one record each (:data:`GROUPS`).

A group is tested on one page: the record names the page, the parts of a results pack it reads,
and how it decides its claims.

Pages and the What holds page read this registry (``res.verdicts(group)``,
:func:`stages.results.verdicts.decide_all`), so a new group of claims is its module plus one
line here. A group decides its claims from :class:`Inputs`: what a page's results offer (a
results pack's rows, or rows computed now; :class:`stages.results.source.Results`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import pandas as pd

from stages.analyses.probes import probe_accuracies
from stages.claims.appendix import appendix_claims
from stages.claims.beyond import depth_edit_claims, similarity_claims
from stages.claims.cloze import cloze_claims
from stages.claims.probes import probe_claims
from stages.claims.robustness import robustness_claims
from stages.claims.stages import (
    detokenization_claims,
    ensembling_claims,
    feature_engineering_claims,
    sharpening_claims,
)
from stages.claims.subjoiner import subjoiner_claims
from stages.stats import Verdict


class Inputs(Protocol):
    """What a group of claims reads: one model's rows (a results pack's, or computed now)."""

    n_layers: int

    def sums(self, part: str) -> pd.DataFrame:
        """Per-row sums of a part (one row per sequence or cloze window)."""

    def window_rows(self, part: str) -> pd.DataFrame:
        """Per-window rows of a case-study part."""

    def classes(self) -> pd.DataFrame:
        """Every neuron's moments and class."""

    def windows(self, name: str) -> Any:
        """The case-study windows (``"subjoiner"`` or ``"ing"``)."""

    def ing_neurons(self) -> dict[str, pd.DataFrame]:
        """The "-ing" neurons of each selection rule."""


Decide = Callable[[Inputs, int], list[Verdict]]
"""``decide(inputs, seed)``: a group's verdicts, in its order."""


@dataclass(frozen=True)
class ClaimGroup:
    """A group of claims, tested on one page.

    Attributes:
        name: the group (``"robustness"``), as the What holds page lists it.
        page: the notebook that tests it (``"01_robustness"``).
        parts: the results-pack parts it reads.
        decide: its verdicts from a model's rows.
        extension: it reads extension parts, which a pack may not hold yet (then the group is
            left out, and the page says which parts are missing).
    """

    name: str
    page: str
    parts: tuple[str, ...]
    decide: Decide
    extension: bool = False


def _case_studies(r: Inputs, seed: int) -> list[Verdict]:
    sub = r.window_rows("subjoiner")
    labels = sub["label"].to_numpy(bool)
    ing = r.window_rows("ing")
    probes = probe_accuracies(ing, ing["label"].to_numpy(bool), r.ing_neurons()["authors"],
                              seed=seed)  # fmt: skip
    words = r.windows("subjoiner").words
    return [
        *subjoiner_claims(sub, r.window_rows("subjoiner_profile"), labels, words, r.n_layers,
                          seed=seed),  # fmt: skip
        *probe_claims(probes, seed=seed),
    ]


GROUPS: dict[str, ClaimGroup] = {
    g.name: g
    for g in (
        ClaimGroup("robustness", "01_robustness", ("sweep",),
                   lambda r, s: robustness_claims(r.sums("sweep"), r.n_layers, seed=s)),
        ClaimGroup("detokenization", "02_detokenization", ("attention", "norms"),
                   lambda r, s: detokenization_claims(r.sums("attention"), r.sums("norms"),
                                                      r.n_layers, seed=s)),
        ClaimGroup("feature engineering", "03_feature_engineering", ("lens",),
                   lambda r, s: feature_engineering_claims(r.sums("lens"), r.n_layers, seed=s)),
        ClaimGroup("prediction ensembling", "04_ensembling", ("neurons", "lens"),
                   lambda r, s: ensembling_claims(r.classes(), r.sums("lens"), r.n_layers,
                                                  seed=s)),
        ClaimGroup("residual sharpening", "05_sharpening", ("neurons", "norms", "lens"),
                   lambda r, s: sharpening_claims(r.classes(), r.sums("norms"), r.sums("lens"),
                                                  r.n_layers, seed=s)),
        ClaimGroup("case studies", "06_case_studies",
                   ("subjoiner", "subjoiner_profile", "ing"), _case_studies),
        ClaimGroup("appendix A", "07_appendix_cosine_similarity", ("swap_similarity",),
                   lambda r, s: appendix_claims(r.sums("swap_similarity"), r.n_layers, seed=s)),
        ClaimGroup("beyond single layers", "09_depth_edits", ("blocks", "reorder", "duplication"),
                   lambda r, s: depth_edit_claims(r.sums("blocks"), r.sums("reorder"),
                                                  r.sums("duplication"), r.n_layers, seed=s),
                   extension=True),
        ClaimGroup("layer similarity", "10_layer_similarity",
                   ("similarity", "skip_effects", "sweep"),
                   lambda r, s: similarity_claims(r.sums("similarity"), r.sums("skip_effects"),
                                                  r.sums("sweep"), r.n_layers, seed=s),
                   extension=True),
        ClaimGroup("cloze", "11_cloze", ("cloze",),
                   lambda r, s: cloze_claims(r.sums("cloze"), r.n_layers, seed=s),
                   extension=True),
    )
}  # fmt: skip
"""Every group of claims a model's page tests, in book order (the cross-model claims, which
read several models, are :mod:`stages.claims.cross_model`)."""

PAGES = {name: group.page for name, group in GROUPS.items()}
"""Each group and the page (executed notebook) that tests it."""
