"""The book's main findings in sentences, computed from the What holds table.

The introduction opens with these (through the What holds page, :mod:`stages.book.intro`): a
few findings, each a sentence that puts every model's number, with its 95% interval, beside the
paper's, then the counts of verdicts (:func:`stages.claims.conclusions`). Each finding names the
claims it reads by their group and number (the same claim on every model).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from stages.formats import estimate, percent


def _share(row: pd.Series) -> str:
    """A claim's share with its interval, in percent."""
    return percent(row["value"], row["lo"], row["hi"])


def _plain(row: pd.Series) -> str:
    return estimate(row["value"], row["lo"], row["hi"])


_VERB = {
    "holds": "holds",
    "does not hold": "does not hold",
    "unclear": "is unclear",
    "no evidence": "finds no evidence",
    "not enough data": "has not enough data",
}


@dataclass(frozen=True)
class Headline:
    """A finding: the claims it reads and how a model's row of each becomes words.

    Attributes:
        lead: the finding's topic (bold on the page); the numbers, not the lead, say what holds.
        claims: ``(group, number)`` of the claims it reads, in the order ``say`` takes them.
        say: rows of those claims for one model (a list, same order) to a phrase about it.
        paper: what the paper reports, for the end of the sentence.
    """

    lead: str
    claims: tuple[tuple[str, int], ...]
    say: Callable[[list[pd.Series]], str]
    paper: str


HEADLINES = (
    Headline(
        "Dropping a single middle layer.",
        (("robustness", 0), ("robustness", 10)),
        lambda r: (f"the worst middle-layer drop keeps {_share(r[0])} of the top-1 predictions "
                   f"and the average one {_share(r[1])}"),  # fmt: skip
        "72-95% for single middle-layer drops and swaps",
    ),
    Headline(
        "The first layer.",
        (("robustness", 3), ("robustness", 2)),
        lambda r: (f"dropping it raises the entropy of the predictions by {_plain(r[0])} bits, "
                   f"and its KL minus the worst middle layer's is {_plain(r[1])} nats: that it "
                   f"hurts more than any middle layer {_VERB[r[1]['verdict']]}"),  # fmt: skip
        "the first layer's interventions are the most damaging in every model",
    ),
    Headline(
        "Prediction and suppression neurons.",
        (("prediction ensembling", 0), ("residual sharpening", 3)),
        lambda r: (f"{_share(r[0])} of the prediction neurons lie past the midpoint, and the "
                   f"final layers' suppression-neuron density leads every other layer's by "
                   f"{_share(r[1])} of the layer's neurons"),  # fmt: skip
        "prediction neurons after the midpoint, the highest density of suppression neurons in "
        "the final layers",
    ),
    Headline(
        "Neuron ensembles against the model.",
        (("case studies", 4), ("case studies", 5)),
        lambda r: (f"the ensemble's test accuracy minus the model's top-1 answer's is "
                   f"{_share(r[0])}, minus a probe on the model's own log-probability of "
                   f"'-ing' {_share(r[1])}"),  # fmt: skip
        "ensembles that can beat the model's own top-1 answer, the only baseline it compares",
    ),
)
"""The findings the introduction states, in order."""


def _row(claims: pd.DataFrame, model: str, group: str, number_: int) -> pd.Series | None:
    rows = claims[(claims.model == model) & (claims.group == group) & (claims.number == number_)]
    return None if rows.empty else rows.iloc[0]


def headline_findings(claims: pd.DataFrame) -> list[str]:
    """The :data:`HEADLINES` that every model of ``claims`` decides, as Markdown sentences.

    Args:
        claims: :func:`stages.results.verdicts.decide_all` of each model, with a ``model`` column.

    Returns:
        One sentence per finding: its lead in bold, each model's numbers with their 95%
        intervals, and the paper's report.
    """
    models = list(dict.fromkeys(claims["model"]))
    out = []
    for h in HEADLINES:
        parts = []
        for model in models:
            rows = [_row(claims, model, g, k) for g, k in h.claims]
            if any(r is None or pd.isna(r["value"]) for r in rows):
                break
            parts.append(f"on {model}, {h.say(rows)}")
        else:
            text = "; ".join(parts)
            out.append(f"**{h.lead}** {text[0].upper()}{text[1:]} (the paper: {h.paper}).")
    return out
