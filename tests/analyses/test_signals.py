"""Signal curves from per-sequence sums (stages.analyses.signals); the boundaries' uncertainty."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stages.analyses.attention import attention_sums, attention_table
from stages.analyses.boundaries import stage_boundaries
from stages.analyses.signals import (
    boundary_summary,
    curve,
    leave_one_signal_out,
    overview_signals,
    sequence_noise,
    sequence_noise_ranges,
    stage_count_evidence,
    stage_count_sensitivity,
)
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


def test_planted_steps_give_no_sequence_noise():
    rng = np.random.default_rng(0)
    n_layers, n_boot = 12, 40
    step = np.repeat([0.0, 1.0, 2.0, 3.0], 3)  # stages start at layers 3, 6, 9
    dists = {f"s{j}": step[:, None] + 0.05 * rng.standard_normal((n_layers, n_boot))
             for j in range(2)}  # fmt: skip
    noise = sequence_noise(dists, n_layers)
    best = noise.loc[noise.groupby("boundary")["share"].idxmax()]
    assert list(best["layer"]) == [3, 6, 9] and (best["share"] == 1.0).all()
    curves = pd.DataFrame({name: d[:, 0] for name, d in dists.items()}).assign(layer=range(12))
    fitted = stage_boundaries(curves, list(dists), n_stages=4, min_size=2)
    ranges = sequence_noise_ranges(fitted, noise)
    assert list(ranges["noise_lo"]) == list(ranges["noise_hi"]) == [3, 6, 9]
    assert (ranges["noise_share"] == 1.0).all()


def test_noisy_signals_spread_the_boundaries():
    rng = np.random.default_rng(1)
    dists = {"s": rng.standard_normal((12, 60))}
    noise = sequence_noise(dists, 12)
    assert noise.groupby("boundary")["share"].max().max() < 0.9
    assert np.allclose(noise.groupby("boundary")["share"].sum(), 1.0)
    fitted = stage_boundaries(pd.DataFrame({"s": dists["s"][:, 0], "layer": range(12)}), ["s"],
                              min_size=2)  # fmt: skip
    ranges = sequence_noise_ranges(fitted, noise)
    assert (ranges["noise_hi"] - ranges["noise_lo"]).max() >= 3


N = 24
STARTS = [6, 12, 18]


def planted(seed: int = 0, scale: float = 0.3) -> pd.DataFrame:
    """Curves with Gaussian noise of sd ``scale`` around steps at chosen boundaries.

    ``up`` and ``zigzag`` step at every boundary, ``early`` at the first two, ``late`` only at
    the last, ``none`` nowhere.
    """
    rng = np.random.default_rng(seed)
    stage = np.searchsorted(STARTS, np.arange(N), side="right")
    curves = {"up": stage * 1.0, "zigzag": (stage % 2) * 1.0, "early": np.minimum(stage, 2.0),
              "late": (stage == 3) * 1.0, "none": np.zeros(N)}  # fmt: skip
    table = pd.DataFrame({k: v + scale * rng.standard_normal(N) for k, v in curves.items()})
    return table.assign(layer=range(N))


def test_a_signal_without_steps_moves_no_boundary():
    signals = planted()
    names = ["up", "zigzag", "none"]
    full = stage_boundaries(signals, names, min_size=2)
    assert full["layer"].tolist() == STARTS
    loo = leave_one_signal_out(signals, names)
    assert loo["left_out"].unique().tolist() == names
    assert loo.groupby("left_out", sort=False).size().tolist() == [3, 3, 3]
    without = loo[loo["left_out"] == "none"]
    assert without["layer"].tolist() == STARTS
    assert without["boundary"].tolist() == [1, 2, 3]


def test_leaving_out_the_only_signal_with_a_step_moves_that_boundary():
    signals = planted()
    names = ["early", "late"]  # only "late" steps at the last boundary
    assert stage_boundaries(signals, names, min_size=2)["layer"].tolist() == STARTS
    loo = leave_one_signal_out(signals, names)
    without_late = loo[loo["left_out"] == "late"]["layer"].tolist()
    without_early = loo[loo["left_out"] == "early"]["layer"].tolist()
    # K stays 4, so the fit finds another third boundary; the other two stay.
    assert set(STARTS[:2]) <= set(without_late) and STARTS[-1] not in without_late
    assert without_early[-1] == STARTS[-1]


def test_stage_count_sensitivity_and_evidence():
    signals = planted()
    names = ["up", "zigzag", "late"]
    by_k = stage_count_sensitivity(signals, names, (2, 3, 4, 5, 6))
    assert by_k.groupby("n_stages").size().to_dict() == {2: 1, 3: 2, 4: 3, 5: 4, 6: 5}
    assert by_k[by_k["n_stages"] == 4]["layer"].tolist() == STARTS
    assert set(by_k[by_k["n_stages"] == 5]["layer"]) >= set(STARTS)
    evidence = stage_count_evidence(signals, names, (2, 3, 4, 5, 6))
    assert evidence["n_stages"].tolist() == [2, 3, 4, 5, 6]
    assert evidence.loc[evidence["preferred"], "n_stages"].tolist() == [4]
    assert evidence["weight"].sum() == pytest.approx(1.0)
    assert evidence.loc[evidence["preferred"], "delta_bic"].item() == 0.0
    assert (evidence["delta_bic"] >= 0).all()


def test_pure_noise_prefers_the_fewest_stages():
    rng = np.random.default_rng(3)
    signals = pd.DataFrame(rng.standard_normal((N, 3)), columns=list("abc")).assign(layer=range(N))
    evidence = stage_count_evidence(signals, list("abc"), (2, 3, 4, 5))
    assert evidence.loc[evidence["preferred"], "n_stages"].item() == 2


def test_boundary_summary_matches_every_refit():
    signals = planted()
    names = ["up", "zigzag", "none"]
    fitted = stage_boundaries(signals, names, min_size=2)
    noise = pd.DataFrame({"boundary": [1, 1, 2, 3], "layer": [5, 6, 12, 18],
                          "share": [0.5, 0.5, 1.0, 1.0]})  # fmt: skip
    by_k = pd.DataFrame({"n_stages": [3, 3, 4, 4, 4, 5, 5, 5, 5],
                         "boundary": [1, 2, 1, 2, 3, 1, 2, 3, 4],
                         "layer": [12, 19, 6, 12, 18, 6, 12, 15, 18]})  # fmt: skip
    table = boundary_summary(fitted, sequence_noise_ranges(fitted, noise),
                             leave_one_signal_out(signals, names), by_k)  # fmt: skip
    assert table.columns.tolist() == [
        "boundary", "layer", "rel_depth", "credible_lo", "credible_hi", "noise_lo", "noise_hi",
        "without_up", "without_zigzag", "without_none", "k3", "k5",
    ]  # fmt: skip
    assert table["layer"].tolist() == STARTS
    assert table["noise_lo"].tolist() == [5, 12, 18] and table["noise_hi"].tolist() == [6, 12, 18]
    assert table["without_none"].tolist() == STARTS
    assert table["k3"].tolist() == [pd.NA, 12, 19]  # layer 6 has no counterpart with K = 3
    assert table["k5"].tolist() == [6, 12, 18]  # K = 5's layer 15 is left over
    assert (table["credible_lo"] <= table["layer"]).all()
    assert (table["credible_hi"] >= table["layer"]).all()
