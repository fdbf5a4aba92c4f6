"""Every claim the book tests for one model, decided from its results (:func:`decide_all`)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from stages.claims.groups import GROUPS
from stages.results.parts import EXTENSION_PARTS
from stages.stats import table


def missing_parts(results: Any, parts: tuple[str, ...]) -> tuple[str, ...]:
    """The extension parts among ``parts`` that the results' pack holds no row of yet."""
    if results.pack is None:
        return ()
    return tuple(p for p in parts if p in EXTENSION_PARTS and not results.pack.rows_done(p))


def decide_all(results: Any, *, seed: int = 0) -> pd.DataFrame:
    """Every group of :data:`stages.claims.groups.GROUPS` decided for one model.

    Args:
        results: a :class:`stages.results.source.Results` (a pack or live sums).
        seed: the bootstrap and split seed.

    Returns:
        :func:`stages.stats.table` of every verdict (with its ``source``), with ``group`` (the
        paper's section), ``number`` (the claim's place in its group: the same claim on every
        model, even where its wording names model-specific layers) and ``page`` (the notebook
        that tests it). ``attrs["missing"]`` maps each group the results pack cannot decide yet
        (left out) to the parts it does not hold.
    """
    frames, missing = [], {}
    for name, group in GROUPS.items():
        lacking = missing_parts(results, group.parts)
        if lacking:
            missing[name] = lacking
            continue
        verdicts = group.decide(results, seed)
        frames.append(table(verdicts).assign(group=name, number=range(len(verdicts)),
                                             page=group.page))  # fmt: skip
    out = pd.concat(frames, ignore_index=True)
    out.attrs["missing"] = missing
    return out
