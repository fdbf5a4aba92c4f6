"""The paper's claims, each decided from per-sequence (or per-window) data as a verdict.

Each module turns one part of the paper into :class:`stages.stats.Verdict` values: a statistic,
its 95% interval, the rule exactly as applied, the number of independent units, and one of
``holds``, ``does not hold``, ``unclear`` or ``not enough data``. :mod:`stages.claims.groups`
registers every group of claims with its page; :func:`verdict_summary` and :func:`conclusions`
state what they add up to.
"""

from __future__ import annotations

from collections import Counter

import pandas as pd

from stages.stats import VERDICTS, Verdict

__all__ = ["agreement", "conclusions", "verdict_summary"]


_PLURAL = {
    "holds": ("holds", "hold"),
    "does not hold": ("does not hold", "do not hold"),
    "unclear": ("is unclear", "are unclear"),
    "no evidence": ("finds no evidence", "find no evidence"),
    "not enough data": ("has not enough data", "have not enough data"),
}
"""Each verdict as the verb of one claim, and of several."""


def _counted(counts: Counter) -> str:
    """``**3** hold, **1** is unclear``: counts of verdicts, in :data:`VERDICTS` order."""
    return ", ".join(f"**{counts[v]}** {_PLURAL[v][counts[v] != 1]}" for v in VERDICTS
                     if counts[v])  # fmt: skip


def verdict_summary(verdicts: list[Verdict], *, findings: tuple[str, ...] = ()) -> str:
    """A page's Summary in Markdown: its findings in words, then how many claims hold.

    The verdicts themselves are in the page's table (:func:`stages.book.present.verdict_table`);
    the Summary says what they add up to.

    Args:
        verdicts: the page's verdicts.
        findings: the page's findings, each a Markdown sentence computed from its numbers
            (with its interval, and the paper's figure beside it where the paper gives one).
    """
    lines = [f"- {finding}" for finding in findings]
    if verdicts:
        counts = Counter(v.verdict for v in verdicts)
        claims = "claim" if len(verdicts) == 1 else "claims"
        lines += ["", f"Of the **{len(verdicts)}** {claims} tested here, {_counted(counts)} "
                  "(each with its statistic, interval and rule above)."]  # fmt: skip
    return "\n".join(lines).strip()


AGREEMENT = {
    "hold": "hold on every model",
    "fail": "hold on none",
    "differ": "hold on one model and not on another",
    "undecided": "are unclear, find no evidence, or lack data, on at least one model",
}
"""How the claims decided for every model are grouped (see :func:`conclusions`)."""


def agreement(verdicts: pd.Series) -> str:
    """One claim's verdicts across models (one value per model) as a key of :data:`AGREEMENT`.

    ``hold``: every model holds; ``fail``: none does (every verdict "does not hold");
    ``differ``: at least one holds and at least one does not; otherwise ``undecided`` (some
    model is unclear, finds no evidence or lacks data, and no two models decide it opposite
    ways).
    """
    values = set(verdicts)
    if values == {"holds"}:
        return "hold"
    if values == {"does not hold"}:
        return "fail"
    return "differ" if {"holds", "does not hold"} <= values else "undecided"


SOURCE_NAMES = {
    "paper v1": "the paper's claims (v1)",
    "paper v3": "the later version's (v3)",
    "related work": "the related work's",
    "this book": "this book's own",
}
"""How :func:`conclusions` names the claims of each source (:data:`stages.stats.SOURCES`)."""


def conclusions(claims: pd.DataFrame) -> str:
    """The book's conclusions in a few Markdown sentences, from the What holds table.

    Args:
        claims: :func:`stages.results.verdicts.decide_all` of each model, concatenated, with
            a ``model`` column. A claim is the same across models by its ``group`` and
            ``number`` (its wording may name model-specific layers).

    Returns:
        For each source (:data:`SOURCE_NAMES`: the paper's own claims first, counted apart from
        the related work's and this book's), each model's counts of each verdict; over the
        paper's claims decided for every model, how many fall in each :data:`AGREEMENT` class,
        with the page groups they come from; and the range of n behind the verdicts, per unit.
    """
    models = list(dict.fromkeys(claims["model"]))
    text = []
    for source, name in SOURCE_NAMES.items():
        mine = claims[claims["source"] == source]
        if mine.empty:
            continue
        counts = "; ".join(
            f"on **{m}**, " + _counted(Counter(mine.loc[mine.model == m, "verdict"]))
            + f" (of {int((mine.model == m).sum())})"
            for m in models if (mine.model == m).any()
        )  # fmt: skip
        text.append(f"Of {name}: {counts}." if source != "paper v1"
                    else f"Of the paper's claims (v1) this book tests: {counts}.")  # fmt: skip
    paper = claims[claims["source"].isin(["paper v1", "paper v3"])]
    wide = paper.pivot_table(index=["group", "number"], columns="model", values="verdict",
                             aggfunc="first", sort=False).dropna()  # fmt: skip
    if len(models) > 1 and len(wide):
        status = wide.apply(agreement, axis=1)
        parts = []
        for key, words in AGREEMENT.items():
            chosen = status[status == key]
            groups = pd.Series(chosen.index.get_level_values("group")).value_counts(sort=False)
            where = ", ".join(f"{g} ({k})" for g, k in groups.items())
            parts.append(f"**{len(chosen)} {words}**" + (f": {where}" if where else ""))
        text.append(f"Of the {len(wide)} claims of the paper (v1 and v3) decided for every "
                    "model, " + "; ".join(parts) + " (claims per page group).")  # fmt: skip
    sampled = claims[claims["n"] > 0]
    spans = sampled.groupby("unit")["n"].agg(["min", "max"])
    text.append("Each verdict rests on its own n of independent units: " + ", ".join(
        f"{lo:,} to {hi:,} {unit}" if lo != hi else f"{lo:,} {unit}"
        for unit, lo, hi in spans.itertuples()
    ) + ".")  # fmt: skip
    return " ".join(text)
