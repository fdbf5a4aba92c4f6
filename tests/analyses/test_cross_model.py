"""Signals of several models on one relative-depth axis, and the claims across models.

The claims run on planted curves (no model): a shape shared by a 18-layer and a 30-layer model,
its mirror or an unrelated one; features at the same or at distant relative depths.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stages.analyses.attention import attention_sums
from stages.analyses.cross_model import SIGNALS, Sample, model_signals
from stages.analyses.lens import lens_sums
from stages.analyses.neurons import neuron_classes
from stages.analyses.norms import norms_sums
from stages.analyses.signals import CURVES
from stages.claims.cross_model import (
    EQUIVALENCE,
    LOCATIONS,
    common_grid,
    cross_model_claims,
    deeper_is_more_robust,
    half_fall_depth,
    peak_depth,
    same_depth,
    shape_agreement,
)  # fmt: skip
from stages.engine.sweep import sweep_sums, sweep_table
from stages.results.cross_model import compare_models
from tests import synthetic as syn
from tests.conftest import make_tiny_hf


def test_model_signals_gathers_every_signal_per_layer(tiny_models, tiny_tokens):
    bridge, _ = tiny_models("gpt2")
    kw = {"batch_size": 6, "progress": False, "cache": False}
    frames = {"sweep": sweep_sums(bridge, tiny_tokens, **kw),
              "attention": attention_sums(bridge, tiny_tokens, **kw),
              "norms": norms_sums(bridge, tiny_tokens, **kw),
              "lens": lens_sums(bridge, tiny_tokens, **kw)}  # fmt: skip
    n = len(bridge.blocks)
    sample = Sample("tiny", frames, neuron_classes(bridge, progress=False, cache=False), n)
    table = model_signals(sample)
    counts = table.groupby("signal").size()
    assert set(counts.index) == set(SIGNALS)
    assert counts["swap_rel_acc"] == n - 1 and counts.drop("swap_rel_acc").eq(n).all()
    assert table["rel_depth"].between(0, 1).all()
    sweep = sweep_table(frames["sweep"], n_layers=n)
    drops = sweep[sweep.kind == "drop"].set_index("layer")["rel_acc"]
    got = table[table.signal == "drop_rel_acc"].set_index("layer")["value"]
    pd.testing.assert_series_equal(got, drops, check_names=False, rtol=1e-12)
    assert (table["lo"] <= table["value"] + 1e-12).all()


def test_compare_models_loads_each_model_by_name(tmp_path, tiny_tokenizer):
    folders = []
    for arch in ("gpt2", "gemma3"):
        folder = tmp_path / arch
        make_tiny_hf(arch, len(tiny_tokenizer)).save_pretrained(folder)
        tiny_tokenizer.save_pretrained(folder)
        folders.append(str(folder))
    result = compare_models(folders, n_tokens=96, seq_len=24, dtype="float64", device="cpu")
    assert [s.name for s in result.samples] == ["gpt2", "gemma3"]
    assert result.samples[1].n_layers == 6 and result.provenance["gemma3"]["n_layers"] == 6
    assert set(result.table["model"]) == {"gpt2", "gemma3"}
    assert all("Computed now" in r for r in result.reports.values())
    assert list(result.headlines) == ["gpt2", "gemma3"]  # one line a model, under the title
    assert all(h.startswith("Numbers computed now") for h in result.headlines.values())
    verdicts = cross_model_claims(result.samples)
    assert len(verdicts) == len(CURVES) - 1 + len(LOCATIONS) + 1  # shapes, places, depth
    assert {v.verdict for v in verdicts} == {"not enough data"}  # 4 sequences decide nothing
    with pytest.raises(ValueError, match="distinct"):
        compare_models([folders[0], folders[0]], n_tokens=96, seq_len=24)


# --------------------------------------------------------------------------- planted curves

DEPTHS = (18, 30)  # the shipped models' blocks: a common grid of 14 relative depths


def _base(d: np.ndarray) -> np.ndarray:
    return np.sin(2 * np.pi * d) + 0.6 * np.cos(5 * np.pi * d)


def _classes(prediction: list[int], d_mlp: int = 100) -> pd.DataFrame:
    """A neuron-class table with ``prediction[l]`` prediction neurons in layer ``l``."""
    cls = [["prediction"] * k + ["other"] * (d_mlp - k) for k in prediction]
    return pd.DataFrame({"layer": np.repeat(np.arange(len(prediction)), d_mlp),
                         "cls": np.concatenate(cls)})  # fmt: skip


def _sample(
    name: str, n_layers: int, shape, *, n_seq: int = 64, seed: int = 0, wiggle: float = 0.01
) -> Sample:
    """A model whose drops keep ``0.6 + 0.1 shape(relative depth)`` plus a wiggle per layer."""
    wiggle = wiggle * np.random.default_rng(seed + 10).standard_normal(n_layers)
    acc = 0.6 + 0.1 * shape(np.arange(n_layers) / (n_layers - 1)) + wiggle
    sums = syn.sweep(n_seq, rel_acc=lambda kind, layer: float(acc[layer]), n_layers=n_layers,
                     seed=seed, sd=0.02)  # fmt: skip
    return Sample(name, {"sweep": sums}, _classes([0] * n_layers), n_layers)


@pytest.mark.parametrize(
    ("shape", "expected"),
    [(_base, {"holds"}), (lambda d: -_base(d), {"does not hold"}),
     (lambda d: np.cos(2 * np.pi * d), {"no evidence", "unclear"})],  # r = 0 on the grid
    ids=["same", "opposite", "unrelated"],
)  # fmt: skip
def test_shapes_are_compared_on_a_common_depth_grid_over_layers(shape, expected):
    a, b = _sample("a", DEPTHS[0], _base), _sample("b", DEPTHS[1], shape, seed=1)
    v = shape_agreement(a, b, "drop_rel_acc")
    assert v.verdict in expected, v
    assert v.n == 14 and v.unit == "layers (common depth grid)" and v.source == "paper v1"
    assert v.lo < v.hi and "Pearson" in v.statistic and "blocks of 3" in v.detail
    assert "28 arrangements" in v.detail and "one-sided p" in v.detail
    assert v.claim == "drop: relative accuracy (Fig. 3): the same shape in both models"


def test_the_grid_has_as_many_points_as_the_shallower_model_has_layers_in_it():
    np.testing.assert_allclose(common_grid(18, 30), np.linspace(0.1, 0.9, 14))
    assert len(common_grid(30, 12)) == 8  # layers 2-9 of 12 lie in 0.1-0.9
    assert len(common_grid(18, 30, (0.1, 1.0))) == 16  # layers 2-17 of 18


def test_a_shape_from_too_few_sequences_is_not_enough_data():
    a, b = _sample("a", DEPTHS[0], _base, n_seq=20), _sample("b", DEPTHS[1], _base, seed=1)
    assert shape_agreement(a, b, "drop_rel_acc").verdict == "not enough data"


def test_neuron_fractions_get_an_interval_over_layers():
    def counts(n_layers):
        d = np.arange(n_layers) / (n_layers - 1)
        return [int(20 + 15 * x) for x in _base(d)]

    a, b = (_sample(name, n, _base, n_seq=6) for name, n in zip("ab", DEPTHS, strict=True))
    a, b = (Sample(s.name, s.frames, _classes(counts(s.n_layers)), s.n_layers) for s in (a, b))
    v = shape_agreement(a, b, "prediction_frac")
    assert v.verdict == "holds" and v.lo < v.hi < 1, v  # weights: no sequences needed
    # over 0.1-1.0: the neurons sit in the last layers, which the other curves leave out
    assert "weights only" in v.detail and v.n == 16 and "0.1-1.0" in v.statistic


def test_sub_layer_locations_move_continuously():
    layers = np.arange(12.0)
    np.testing.assert_allclose(peak_depth(-((layers - 4.3) ** 2), 12), 4.3 / 11)
    assert peak_depth(-layers, 12) == 0.0 and peak_depth(layers, 12) == 1.0  # an end layer
    # half of its value at layer 2 (the first at relative depth >= 0.1), 10 (1 - 2 / 11.4),
    # is reached at layer 6.7; layer 0's value is not the reference (the lens reads the
    # embedding there)
    kl = 10 * (1 - layers / 11.4)
    np.testing.assert_allclose(half_fall_depth(kl, 12), 6.7 / 11)
    kl[0] = 1000.0
    np.testing.assert_allclose(half_fall_depth(kl, 12), 6.7 / 11)
    assert np.isnan(half_fall_depth(np.full(12, 3.0), 12))


def _located(name: str, peak: float, half: float, *, n_seq: int = 64, seed: int = 0) -> Sample:
    """A 12-layer model: its previous-token attention peaks at ``peak``.

    Its lens KL falls to half its value at layer 2 at layer ``half + 1``.
    """
    n = syn.N_LAYERS
    frames = {
        "sweep": syn.sweep(n_seq, seed=seed),
        "attention": syn.attention(n_seq, lambda x: 0.1 + 0.3 * np.exp(-((x - peak) ** 2) / 2),
                                   seed=seed),
        "lens": syn.lens(n_seq, kl=lambda x: 10.0 * max(0.05, 1 - x / (2 * half)), seed=seed),
    }  # fmt: skip
    return Sample(name, frames, _classes([0] * n), n)


@pytest.mark.parametrize("signal", list(LOCATIONS))
@pytest.mark.parametrize(
    ("where_b", "n_seq", "expected"),
    [(4.0, 64, "holds"), (9.0, 64, "does not hold"), (4.0, 20, "not enough data")],
)  # fmt: skip
def test_a_feature_at_the_same_relative_depth(signal, where_b, n_seq, expected):
    a = _located("a", 4.0, 4.0, n_seq=n_seq)
    b = _located("b", where_b, where_b, n_seq=n_seq, seed=1)
    v = same_depth(a, b, signal)
    assert v.verdict == expected, v
    assert v.lo < v.value < v.hi and v.n == n_seq and v.unit == "sequences per model"
    assert v.value == pytest.approx((4.0 - where_b) / 11, abs=0.02)
    assert "lies at the same relative depth in both models" in v.claim
    assert "between -0.1 and 0.1" in v.rule


def test_a_difference_at_the_margin_is_unclear():
    a, b = _located("a", 4.0, 4.0), _located("b", 4.0, 4.0 + 1.1, seed=1)  # 0.1 apart
    v = same_depth(a, b, "lens_kl")
    assert v.verdict == "unclear" and v.lo < -EQUIVALENCE < v.hi, v


def test_two_models_are_not_enough_to_tie_robustness_to_depth():
    deep = _sample("deep", 30, lambda d: 0 * d + 1)
    shallow = _sample("shallow", 18, lambda d: 0 * d, seed=1)
    v = deeper_is_more_robust([shallow, deep])
    # the interval resamples each model's sequences: n is theirs, the gate the models
    assert v.verdict == "not enough data" and v.unit == "sequences per model"
    assert v.n == min(shallow.n_seq, deep.n_seq) and "3 models" in v.rule
    assert v.value == pytest.approx(0.1, abs=0.01) and v.lo < v.value < v.hi
    assert "deep (30 layers) 69" in v.detail and "shallow (18 layers) 60" in v.detail


@pytest.mark.parametrize(("sign", "expected"), [(1, "holds"), (-1, "does not hold")])
def test_more_models_decide_robustness_from_depth_ranks(sign, expected):
    kept = {12: 0.0, 18: 0.5, 24: 0.5, 30: 1.0}  # two alike: resamples order them either way
    samples = [_sample(f"m{n}", n, lambda d, k=k: 0 * d + sign * k, seed=n, wiggle=0.0)
               for n, k in kept.items()]  # fmt: skip
    v = deeper_is_more_robust(samples)
    assert v.verdict == expected and v.n == 4 and v.unit == "models", v
    assert v.lo < v.hi and "Spearman" in v.statistic
    few = [_sample(s.name, s.n_layers, _base, n_seq=20) for s in samples]
    assert deeper_is_more_robust(few).verdict == "not enough data"
