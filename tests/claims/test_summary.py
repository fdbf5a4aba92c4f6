"""A page's Summary and the book's conclusions: computed from the verdicts, nothing else."""

from __future__ import annotations

import math

import pandas as pd

from stages.claims import agreement, conclusions, verdict_summary, verdict_text
from stages.stats import Verdict


def _verdict(claim: str, verdict: str, value: float = 0.5, rule: str = "lo > 0") -> Verdict:
    return Verdict(claim=claim, figure="Fig. 3", statistic="KL ratio", value=value,
                   lo=value - 0.1, hi=value + 0.2, rule=rule, n=64, unit="sequences",
                   verdict=verdict)  # fmt: skip


def test_summary_counts_verdicts_and_states_each_with_interval_and_n():
    verdicts = [_verdict("swaps hurt less", "holds"), _verdict("first layer worst", "holds"),
                _verdict("last layer worst.", "unclear", -0.25),
                _verdict("weights", "does not hold", 0.125,
                         rule="weights only: x < 1")]  # fmt: skip
    text = verdict_summary(verdicts, findings=("A finding (1 to 2).",))
    lines = text.splitlines()
    assert lines[0] == ("Of the **4** claims tested here, **2** hold, **1** does not hold, "
                        "**1** is unclear:")  # fmt: skip
    assert lines[2] == ("- swaps hurt less: **holds**; KL ratio 0.5 (95% interval 0.4 to 0.7), "
                        "n = 64 sequences.")  # fmt: skip
    assert lines[4].startswith("- last layer worst: **unclear**; KL ratio -0.25 (95% interval")
    assert "KL ratio 0.125 (exact)" in lines[5]
    assert lines[-1] == "- A finding (1 to 2)."
    assert verdict_text(verdicts[:1]) == (
        "*swaps hurt less*: **holds**: 0.5 (0.4 to 0.7), n = 64 sequences.")  # fmt: skip


def test_summary_without_a_value_says_the_verdict_only():
    missing = _verdict("too few", "not enough data", math.nan)
    assert verdict_summary([missing]).splitlines()[-1] == "- too few: **not enough data**."
    assert verdict_summary([], findings=("Only this.",)) == "- Only this."


def test_agreement_across_models():
    assert agreement(pd.Series(["holds", "holds"])) == "hold"
    assert agreement(pd.Series(["does not hold"] * 3)) == "fail"
    assert agreement(pd.Series(["holds", "unclear", "does not hold"])) == "differ"
    assert agreement(pd.Series(["unclear", "unclear"])) == "undecided"
    assert agreement(pd.Series(["holds", "not enough data"])) == "undecided"


def test_conclusions_match_claims_by_number_not_wording_and_keep_unclear_apart():
    rows = [  # (group, number, claim on A, claim on B, verdict on A, verdict on B)
        ("robustness", 0, "c0", "c0", "holds", "holds"),
        ("robustness", 1, "c1", "c1", "holds", "does not hold"),
        ("stages", 0, "drop 4 layers", "drop 7 layers", "does not hold", "does not hold"),
        ("stages", 1, "c3", "c3", "unclear", "holds"),
        ("stages", 2, "c4", "c4", "unclear", "unclear"),
        ("stages", 3, "span 6-11", "span 10-19", "holds", "holds"),
    ]
    claims = pd.DataFrame(
        [{"model": m, "group": g, "number": k, "claim": c, "verdict": v, "n": 256,
          "unit": "sequences", "rule": "lo > 0"}
         for g, k, ca, cb, a, b in rows for m, c, v in (("A", ca, a), ("B", cb, b))]
        + [{"model": "A", "group": "cloze", "number": 0, "claim": "c6", "verdict": "holds",
            "n": 34, "unit": "windows", "rule": "lo > 0"},
           {"model": "A", "group": "stages", "number": 9, "claim": "w", "verdict": "holds",
            "n": 0, "unit": "neurons", "rule": "weights only: w > 0"}]
    )  # fmt: skip
    text = conclusions(claims)
    assert "on **A**, **5** hold, **1** does not hold, **2** are unclear (of 8)" in text
    assert "on **B**, **3** hold, **2** do not hold, **1** is unclear (of 6)" in text
    assert "Of the 6 claims decided for every model" in text
    assert "**2 hold on every model**: robustness (1), stages (1)" in text
    assert "**1 hold on none**: stages (1)" in text
    assert "**1 hold on one model and not on another**: robustness (1)" in text
    assert "**2 are unclear, or lack data, on at least one model**: stages (2)" in text
    assert "256 sequences, 34 windows (the claims about the weights alone are exact)" in text
