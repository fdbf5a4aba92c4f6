"""The figures build valid Vega-Lite specs from a sweep table, with every intervention plotted."""

from __future__ import annotations

import stages
from stages.plots import component_figure, long_metrics, robustness_figure, swap_vs_drop_zoom


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
