"""Signal curves from per-sequence sums (stages.analyses.signals), and the boundaries' stability."""

from __future__ import annotations

import numpy as np
import pandas as pd

from stages.analyses.attention import attention_sums, attention_table
from stages.analyses.boundaries import stage_boundaries
from stages.analyses.signals import boundary_ranges, boundary_stability, curve, overview_signals
from stages.engine.sweep import sweep_sums, sweep_table
from tests import synthetic as syn


def test_curves_equal_the_reduced_tables(tiny_models, tiny_tokens):
    bridge, _ = tiny_models("gpt2")
    frames = {
        "sweep": sweep_sums(bridge, tiny_tokens, batch_size=3, progress=False, cache=False),
        "attention": attention_sums(bridge, tiny_tokens, batch_size=3, progress=False, cache=False),
    }
    n = len(bridge.blocks)
    classes = syn.classes([1] * syn.N_LAYERS, [2] * syn.N_LAYERS).query(f"layer < {n}")
    table, dists = overview_signals(frames, classes, n, n_boot=50)
    sweep = sweep_table(frames["sweep"], n_layers=n)
    drops = sweep[sweep.kind == "drop"].sort_values("layer")
    np.testing.assert_allclose(table["drop_kl"], drops["kl"], rtol=1e-12)
    att = attention_table(frames["attention"])
    np.testing.assert_allclose(
        table["prev_attention"],
        att[att["head"] == -1].sort_values("layer")["attn_prev5"],
        rtol=1e-12,
    )
    per_layer = classes.groupby("layer")["cls"]
    planted = per_layer.apply(lambda c: (c == "suppression").mean()).sort_index()
    np.testing.assert_allclose(table["suppression_frac"], planted.to_numpy())
    assert (planted > 0).all()
    assert set(dists) == {"log_drop_kl", "prev_attention", "prediction_frac", "suppression_frac"}
    assert all(d.shape == (n, 50) for d in dists.values())
    swap_est, swap_dist = curve(frames, classes, n, "swap_rel_acc", n_boot=20)
    assert swap_est.shape == (n - 1,) and swap_dist.shape == (n - 1, 20)


def test_planted_steps_give_stable_boundaries():
    rng = np.random.default_rng(0)
    n_layers, n_boot = 12, 40
    step = np.repeat([0.0, 1.0, 2.0, 3.0], 3)  # stages start at layers 3, 6, 9
    dists = {f"s{j}": step[:, None] + 0.05 * rng.standard_normal((n_layers, n_boot))
             for j in range(2)}  # fmt: skip
    stability = boundary_stability(dists, n_layers)
    best = stability.loc[stability.groupby("boundary")["share"].idxmax()]
    assert list(best["layer"]) == [3, 6, 9] and (best["share"] == 1.0).all()
    curves = pd.DataFrame({name: d[:, 0] for name, d in dists.items()}).assign(layer=range(12))
    fitted = stage_boundaries(curves, list(dists), n_stages=4, min_size=2)
    ranges = boundary_ranges(fitted, stability, n_layers)
    assert list(ranges["layer_lo"]) == list(ranges["layer_hi"]) == [3, 6, 9]


def test_noisy_signals_spread_the_boundaries():
    rng = np.random.default_rng(1)
    dists = {"s": rng.standard_normal((12, 60))}
    stability = boundary_stability(dists, 12)
    assert stability.groupby("boundary")["share"].max().max() < 0.9
    assert np.allclose(stability.groupby("boundary")["share"].sum(), 1.0)
