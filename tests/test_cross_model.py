"""Signals of several models on one relative-depth axis."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import stages
from stages.cross_model import SIGNALS, compare_models, model_signals, shape_agreement
from tests.conftest import make_tiny_hf


def test_model_signals_gathers_every_signal_per_layer(tiny_models, tiny_tokens):
    bridge, _ = tiny_models("gpt2")
    table = model_signals(bridge, tiny_tokens, batch_size=6, progress=False)
    n = len(bridge.blocks)
    counts = table.groupby("signal").size()
    assert set(counts.index) == set(SIGNALS)
    assert counts["swap_rel_acc"] == n - 1 and counts.drop("swap_rel_acc").eq(n).all()
    assert table["rel_depth"].between(0, 1).all()
    sweep = stages.run_sweep(bridge, tiny_tokens, batch_size=6, progress=False)
    drops = sweep[sweep.kind == "drop"].set_index("layer")["rel_acc"]
    got = table[table.signal == "drop_rel_acc"].set_index("layer")["value"]
    pd.testing.assert_series_equal(got, drops, check_names=False)
    assert (table["lo"] <= table["value"] + 1e-12).all()


def test_compare_models_loads_each_model_by_name(tmp_path, tiny_tokenizer):
    folders = []
    for arch in ("gpt2", "gemma3"):
        folder = tmp_path / arch
        make_tiny_hf(arch, len(tiny_tokenizer)).save_pretrained(folder)
        tiny_tokenizer.save_pretrained(folder)
        folders.append(str(folder))
    table = compare_models(folders, n_tokens=96, seq_len=24, dtype="float64", device="cpu",
                           progress=False)  # fmt: skip
    assert list(table.attrs["models"]) == ["gpt2", "gemma3"]
    assert table.attrs["models"]["gemma3"]["n_layers"] == 6
    assert set(table["model"]) == {"gpt2", "gemma3"}
    agree = shape_agreement(table, "gpt2", "gemma3")
    assert list(agree["signal"]) == list(SIGNALS)
    with pytest.raises(ValueError, match="distinct"):
        compare_models([folders[0], folders[0]], n_tokens=96, seq_len=24)


def test_shape_agreement_on_known_curves():
    rows = []
    for model, n in (("a", 5), ("b", 9)):
        depth = np.linspace(0, 1, n)
        for signal in SIGNALS:
            value = depth**2 if model == "a" or signal != "lens_kl" else 1 - depth
            rows += [{"model": model, "signal": signal, "layer": i, "rel_depth": d, "value": v}
                     for i, (d, v) in enumerate(zip(depth, value, strict=True))]  # fmt: skip
    agree = shape_agreement(pd.DataFrame(rows), "a", "b").set_index("signal")
    assert agree.loc["drop_rel_acc", "pearson_r"] > 0.99  # same curve, other layer counts
    assert agree.loc["lens_kl", "pearson_r"] < -0.9  # opposite trends
    assert (
        agree.loc["drop_rel_acc", "peak_depth_a"] == agree.loc["drop_rel_acc", "peak_depth_b"] == 1
    )
