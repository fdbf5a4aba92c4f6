"""The introduction's findings: each model's numbers beside the paper's, from the claims table."""

from __future__ import annotations

import pandas as pd

from stages.claims.headlines import HEADLINES, headline_findings


def _claims(models=("a", "b")) -> pd.DataFrame:
    rows = []
    for k, model in enumerate(models):
        for h in HEADLINES:
            for group, number in h.claims:
                rows.append({"model": model, "group": group, "number": number,
                             "value": 0.5 + 0.1 * k, "lo": 0.4, "hi": 0.7 + 0.1 * k,
                             "verdict": "holds"})  # fmt: skip
    return pd.DataFrame(rows).drop_duplicates(["model", "group", "number"])


def test_every_finding_states_each_models_numbers_and_the_papers():
    findings = headline_findings(_claims())
    assert len(findings) == len(HEADLINES)
    first = findings[0]
    assert first.startswith("**Dropping a single middle layer.** On a, the worst middle-layer")
    assert "50% (40% to 70%)" in first and "on b," in first and "60% (40% to 80%)" in first
    assert first.endswith("(the paper: 72-95% for single middle-layer drops and swaps).")
    assert "that it hurts more than any middle layer holds" in findings[1]


def test_a_finding_some_model_cannot_state_is_left_out():
    claims = _claims()
    claims.loc[(claims.model == "b") & (claims.group == "robustness"), "value"] = float("nan")
    assert len(headline_findings(claims)) == len(HEADLINES) - 2  # both robustness findings
