"""A page's Summary and the book's conclusions: computed from the verdicts, nothing else."""

from __future__ import annotations

import math

import pandas as pd

from stages.claims import agreement, conclusions, verdict_summary
from stages.stats import Verdict


def _verdict(claim: str, verdict: str, value: float = 0.5, rule: str = "lo > 0") -> Verdict:
    return Verdict(claim=claim, figure="Fig. 3", statistic="KL ratio", value=value,
                   lo=value - 0.1, hi=value + 0.2, rule=rule, n=64, unit="sequences",
                   verdict=verdict)  # fmt: skip


def test_summary_states_the_findings_then_the_counts():
    verdicts = [_verdict("swaps hurt less", "holds"), _verdict("first layer worst", "holds"),
                _verdict("last layer worst.", "unclear", -0.25),
                _verdict("weights", "does not hold", 0.125, rule="x < 1"),
                _verdict("null", "no evidence", 0.25, rule="above the null")]  # fmt: skip
    text = verdict_summary(verdicts, findings=("A finding (1 to 2).", "Another."))
    lines = text.splitlines()
    assert lines[:2] == ["- A finding (1 to 2).", "- Another."]
    assert lines[-1] == ("Of the **5** claims tested here, **2** hold, **1** does not hold, "
                         "**1** is unclear, **1** finds no evidence (each with its statistic, "
                         "interval and rule above).")  # fmt: skip
    assert "swaps hurt less" not in text  # the verdicts are in the table, not repeated


def test_summary_without_verdicts_is_its_findings():
    assert verdict_summary([], findings=("Only this.",)) == "- Only this."
    assert verdict_summary([_verdict("too few", "not enough data", math.nan)]).startswith(
        "Of the **1** claim tested here, **1** has not enough data")


def test_agreement_across_models():
    assert agreement(pd.Series(["holds", "holds"])) == "hold"
    assert agreement(pd.Series(["does not hold"] * 3)) == "fail"
    assert agreement(pd.Series(["holds", "unclear", "does not hold"])) == "differ"
    assert agreement(pd.Series(["unclear", "unclear"])) == "undecided"
    assert agreement(pd.Series(["holds", "not enough data"])) == "undecided"
    assert agreement(pd.Series(["no evidence", "no evidence"])) == "undecided"
    assert agreement(pd.Series(["holds", "no evidence"])) == "undecided"


def test_conclusions_match_claims_by_number_not_wording_and_keep_unclear_apart():
    rows = [  # (group, number, claim on A, claim on B, verdict on A, verdict on B)
        ("robustness", 0, "c0", "c0", "holds", "holds"),
        ("robustness", 1, "c1", "c1", "holds", "does not hold"),
        ("stages", 0, "drop 4 layers", "drop 7 layers", "does not hold", "does not hold"),
        ("stages", 1, "c3", "c3", "unclear", "holds"),
        ("stages", 2, "c4", "c4", "unclear", "no evidence"),
        ("stages", 3, "span 6-11", "span 10-19", "holds", "holds"),
    ]
    claims = pd.DataFrame(
        [{"model": m, "group": g, "number": k, "claim": c, "verdict": v, "n": 256,
          "unit": "sequences", "rule": "lo > 0", "source": "paper v1"}
         for g, k, ca, cb, a, b in rows for m, c, v in (("A", ca, a), ("B", cb, b))]
        + [{"model": "A", "group": "cloze", "number": 0, "claim": "c6", "verdict": "holds",
            "n": 34, "unit": "windows", "rule": "lo > 0", "source": "paper v3"},
           {"model": "A", "group": "beyond", "number": 0, "claim": "g", "verdict": "holds",
            "n": 34, "unit": "sequences", "rule": "lo > 0", "source": "related work"},
           {"model": "B", "group": "beyond", "number": 0, "claim": "g", "verdict": "no evidence",
            "n": 34, "unit": "sequences", "rule": "lo > 0", "source": "related work"},
           {"model": "A", "group": "stages", "number": 9, "claim": "w", "verdict": "holds",
            "n": 70, "unit": "prediction neurons", "rule": "w > 0", "source": "this book"}]
    )  # fmt: skip
    text = conclusions(claims)
    paper = text.split("Of the later version's")[0]
    assert "on **A**, **3** hold, **1** does not hold, **2** are unclear (of 6)" in paper
    assert ("on **B**, **3** hold, **2** do not hold, **1** finds no evidence (of 6)" in paper)
    assert "Of the later version's (v3): on **A**, **1** holds (of 1)" in text
    assert "Of the related work's: on **A**, **1** holds (of 1); on **B**, **1** finds no " in text
    assert "Of this book's own: on **A**, **1** holds (of 1)" in text
    assert "Of the 6 claims of the paper (v1 and v3) decided for every model" in text
    assert "**2 hold on every model**: robustness (1), stages (1)" in text
    assert "**1 hold on none**: stages (1)" in text
    assert "**1 hold on one model and not on another**: robustness (1)" in text
    assert ("**2 are unclear, find no evidence, or lack data, on at least one model**: "
            "stages (2)") in text  # fmt: skip
    assert "256 sequences, 34 windows" in text and "70 prediction neurons" in text
