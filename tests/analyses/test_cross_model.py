"""Signals of several models on one relative-depth axis."""

from __future__ import annotations

import pandas as pd
import pytest

from stages.analyses.attention import attention_sums
from stages.analyses.cross_model import SIGNALS, compare_models, model_signals
from stages.analyses.lens import lens_sums
from stages.analyses.neurons import neuron_classes
from stages.analyses.norms import norms_sums
from stages.claims.cross_model import Sample, cross_model_claims
from stages.engine.sweep import sweep_sums, sweep_table
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
    verdicts = cross_model_claims(result.samples)
    assert len(verdicts) == len(SIGNALS) + 2  # every curve but the drop KL, and depth
    assert {v.verdict for v in verdicts} == {"not enough data"}  # 4 sequences decide nothing
    with pytest.raises(ValueError, match="distinct"):
        compare_models([folders[0], folders[0]], n_tokens=96, seq_len=24)
