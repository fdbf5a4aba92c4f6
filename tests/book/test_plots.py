"""The figures build valid Vega-Lite specs from a sweep table, with every intervention plotted."""

from __future__ import annotations

import numpy as np
import pandas as pd

import stages
from stages.plots import long_metrics
from stages.plots.robustness import component_figure, robustness_figure, swap_vs_drop_zoom


def test_figures_from_a_real_sweep_table(tiny_models, tiny_tokens):
    bridge, _ = tiny_models("gpt2")
    table = stages.run_sweep(bridge, tiny_tokens, progress=False, n_boot=50)
    long = long_metrics(table)
    assert len(long) == 3 * (len(table) - 1)  # baseline left out, three metrics each
    assert long["value"].notna().all() and (long["lo"] <= long["value"] + 1e-12).all()
    for chart in (
        robustness_figure(table, title="Figure 3"),
        component_figure(table, title="Figures 13-15"),
        swap_vs_drop_zoom(table, (0.25, 0.75), title="zoom"),
    ):
        spec = chart.to_dict()  # validates against the Vega-Lite schema
        assert spec["title"]
    assert set(robustness_figure(table, title="t").data["kind"]) == {"drop", "swap"}


def test_case_study_and_appendix_figures(tiny_models, tiny_tokens):
    import numpy as np
    import pandas as pd

    from stages.analyses.probes import probe_accuracies
    from stages.analyses.subjoiner import attention_profile, final_token_attention, rank_heads
    from stages.analyses.swap_similarity import swap_similarity
    from stages.plots.book import swap_similarity_figure
    from stages.plots.case_studies import (
        head_effects_figure,
        ing_neuron_figure,
        probe_figure,
        subjoiner_figure,
    )
    from stages.plots.stages import overview_figure

    bridge, _ = tiny_models("gpt2")
    labels = np.array([True, False] * 3)
    attention = final_token_attention(bridge, tiny_tokens, n_keys=6, progress=False, cache=False)
    ranking = rank_heads(attention, labels, len(bridge.blocks), n_boot=20)
    profile = attention_profile(attention, labels, 0, 0)
    rng = np.random.default_rng(0)
    truth = rng.random(80) < 0.5
    acts = pd.DataFrame({"3.1": truth + rng.normal(size=80), "4.2": rng.normal(size=80),
                         "model_yes": truth.astype(float)})  # fmt: skip
    neurons = pd.DataFrame(
        {"layer": [3, 4], "neuron": [1, 2], "cls": ["prediction", "suppression"],
         "kurtosis": [12.0, 15.0], "skew": [1.0, -1.0], "variance": [1e-4, 1e-3],
         "contrast": [0.2, -0.1]}
    )  # fmt: skip
    probes = probe_accuracies(acts, truth, neurons)
    signals = pd.DataFrame({"layer": range(4), "rel_depth": np.arange(4) / 3,
                            "log_drop_kl": [3.0, 1.0, 0.5, 2.0],
                            "prev_attention": [0.3, 0.2, 0.1, 0.1]})  # fmt: skip
    fitted = pd.DataFrame({"boundary": [1], "layer": [2], "rel_depth": [0.5], "probability": [0.8],
                           "layer_lo": [1], "layer_hi": [2], "rel_depth_lo": [1 / 6],
                           "rel_depth_hi": [0.5]})  # fmt: skip
    similarity = swap_similarity(bridge, tiny_tokens, progress=False, cache=False, n_boot=20)
    for chart in (
        subjoiner_figure(profile, title="Figure 9"),
        head_effects_figure(ranking, title="heads"),
        probe_figure(probes.table, title="Figure 10a"),
        ing_neuron_figure(neurons, title="Figure 10b"),
        overview_figure(signals, {"log_drop_kl": "drop KL (log)", "prev_attention": "attention"},
                        fitted, title="Figure 1"),
        swap_similarity_figure(similarity, title="Figure 12"),
    ):
        assert chart.to_dict()["title"]


def test_the_verdict_figure_has_a_cell_per_claim_and_model():
    from stages.plots.book import VERDICT_COLORS, verdict_figure
    from stages.stats import VERDICTS

    claims = pd.DataFrame(
        {"model": ["a", "a", "b", "b"], "group": ["Robustness"] * 4, "number": [0, 1] * 2,
         "claim": ["x", "y", "x", "y on b's layers"],
         "verdict": ["holds", "unclear", "does not hold", "not enough data"],
         "statistic": ["mean"] * 4, "value": [1.0, 0.5, -1.0, np.nan],
         "lo": [0.5, -0.1, -2.0, np.nan], "hi": [1.5, 1.1, -0.5, np.nan], "n": [256, 256, 256, 6],
         "unit": ["sequences"] * 4, "rule": ["r"] * 4}
    )  # fmt: skip
    spec = verdict_figure(claims, title="verdicts").to_dict()
    data = next(iter(spec["datasets"].values()))
    assert len(data) == 4 and [d["interval"] for d in data][3] == ""
    assert spec["encoding"]["color"]["scale"]["domain"] == list(VERDICTS)
    assert list(VERDICT_COLORS) == list(VERDICTS)
    assert spec["encoding"]["y"]["sort"] == ["Robustness: x", "Robustness: y"]  # one row a claim
    assert [d["label"] for d in data] == ["Robustness: x", "Robustness: y"] * 2
