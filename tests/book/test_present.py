"""How pages show numbers: significant digits, intervals, verdicts at a glance, folded tables."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from stages.book import present
from stages.stats import Verdict


@pytest.mark.parametrize(
    ("x", "kw", "want"),
    [(0.123456, {}, "0.123"), (12345.6, {}, "12346"), (-0.000123456, {}, "−0.000123"),
     (1.98e-18, {"scale": 0.02}, "0"), (1.98e-18, {}, "1.98e−18"), (math.inf, {}, "∞"),
     (-math.inf, {}, "−∞"), (float("nan"), {}, ""), (2e7, {}, "2e+07")],
)  # fmt: skip
def test_numbers_have_three_significant_digits(x, kw, want):
    assert present.number(x, **kw) == want


def test_an_interval_never_looks_narrower_than_it_is():
    # three digits would print -0.245 (-0.245 to -0.245): more digits until the ends differ
    assert present.estimate(-0.244925, -0.245278, -0.244549) == "−0.2449 (−0.2453 to −0.2445)"
    assert present.estimate(0.5, 0.4, 0.7) == "0.5 (0.4 to 0.7)"
    assert present.estimate(0.3, -math.inf, math.inf) == "0.3 (−∞ to ∞)"
    assert present.estimate(1.98e-18, -0.021, 0.023) == "0 (−0.021 to 0.023)"
    assert present.estimate(float("nan"), float("nan"), float("nan")) == ""


def _verdict(claim: str, verdict: str = "holds") -> Verdict:
    return Verdict(claim, "Figure 5", "the ratio", 1.6, 1.59, 1.61, "holds if > 1", 256,
                   "sequences", verdict, "layers 0-4", "paper v1")  # fmt: skip


def test_a_verdict_table_has_four_columns_and_folds_the_rule():
    html = present.verdict_table([_verdict("|attention out| / |MLP out| is large <early>")],
                                 caption="Stage 1's claims.")  # fmt: skip
    assert html.count("<th>") == 4 and "<caption>Stage 1&#x27;s claims.</caption>" in html
    assert "|attention out| / |MLP out| is large &lt;early&gt;" in html  # escaped, not a table
    assert '<details class="how">' in html and "holds if &gt; 1" in html
    assert "1.6 (1.59 to 1.61)" in html and "256 sequences" in html
    assert 'class="verdict verdict-holds"' in html


def test_the_matrix_groups_claims_by_page_and_shows_each_model():
    rows = []
    for model, verdict in (("a", "holds"), ("b", "no evidence")):
        for number, text in enumerate(("c0", "c1")):
            v = _verdict(text, verdict).__dict__ | {"model": model, "group": "robustness",
                                                    "number": number}  # fmt: skip
            rows.append(v)
    html = present.verdict_matrix(pd.DataFrame(rows), ["a", "b"],
                                  pages={"robustness": "01_robustness"})  # fmt: skip
    assert html.count('<tr class="group">') == 1 and 'href="01_robustness.html"' in html
    assert html.count("verdict-noevidence") == 2 and html.count("verdict-holds") == 2


def test_a_data_table_merges_bounds_and_folds_when_long():
    kl = np.linspace(0, 1, 20)
    frame = pd.DataFrame({"layer": np.arange(20), "kl": kl, "kl_lo": kl - 0.1, "kl_hi": kl + 0.1})
    html = present.data_table(frame, caption="KL per layer (nats).")
    assert html.startswith('<details class="stages-fold">') and "(20 rows)" in html
    assert "kl_lo" not in html and "0.0526 (−0.0474 to 0.153)" in html
    short = present.data_table(frame.head(3), caption="c", columns={"layer": "layer", "kl": "KL"})
    assert not short.startswith("<details") and "<th>KL</th>" in short


def test_a_neuron_table_names_the_class_and_the_cosine_range():
    strongest = pd.DataFrame({
        "layer": [5, 7], "neuron": [12, 3], "kurtosis": [41.0, 22.5], "skew": [3.1, 2.0],
        "tokens": ["' the' ' a' ', and'", "'x' 'y' 'z'"],
        "cosines": ["+0.31 +0.29 +0.20", "+0.12 +0.11 +0.10"],
    })  # fmt: skip
    html = present.neuron_table(strongest, "suppression", "gemma")
    assert "suppression neurons of gemma" in html and "most opposed to" in html
    assert "the 3 tokens" in html and "+0.31 to +0.20" in html and "skew" not in html
    assert "most aligned with" in present.neuron_table(strongest, "prediction", "gemma")
