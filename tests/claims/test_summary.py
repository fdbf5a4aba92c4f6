"""A page's Summary and the book's conclusions: computed from the verdicts, nothing else."""

from __future__ import annotations

import math

import pandas as pd

from stages.claims import conclusions, verdict_summary
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
    assert lines[0] == ("Of the **4** claims this page tests, **2** hold, **1** does not hold, "
                        "**1** is unclear:")  # fmt: skip
    assert lines[2] == ("- swaps hurt less: **holds**; KL ratio 0.5 (95% interval 0.4 to 0.7), "
                        "n = 64 sequences.")  # fmt: skip
    assert lines[4].startswith("- last layer worst: **unclear**; KL ratio -0.25 (95% interval")
    assert "KL ratio 0.125 (exact)" in lines[5]
    assert lines[-1] == "- A finding (1 to 2)."


def test_summary_without_a_value_says_the_verdict_only():
    missing = _verdict("too few", "not enough data", math.nan)
    assert verdict_summary([missing]).splitlines()[-1] == "- too few: **not enough data**."
    assert verdict_summary([], findings=("Only this.",)) == "- Only this."


def test_conclusions_count_per_model_and_classify_claims_decided_for_every_model():
    rows = [  # (group, claim, verdict on A, verdict on B)
        ("robustness", "c1", "holds", "holds"),
        ("robustness", "c2", "holds", "does not hold"),
        ("stages", "c3", "does not hold", "does not hold"),
        ("stages", "c4", "unclear", "holds"),
        ("stages", "c5", "holds", "holds"),
    ]
    claims = pd.DataFrame(
        [{"model": m, "group": g, "claim": c, "verdict": v}
         for g, c, a, b in rows for m, v in (("A", a), ("B", b))]
        + [{"model": "A", "group": "cloze", "claim": "c6", "verdict": "holds"}]  # A only
    )  # fmt: skip
    text = conclusions(claims)
    assert "on **A**, 4 holds, 1 does not hold, 1 unclear (of 6)" in text
    assert "on **B**, 3 holds, 2 does not hold (of 5)" in text
    assert "Of the 5 claims decided for every model" in text
    assert "**2 hold on both**: robustness (1), stages (1)" in text
    assert "**1 hold on none**: stages (1)" in text
    assert ("**2 differ** between the models or are unclear on one: robustness (1), stages (1)"
            in text)
