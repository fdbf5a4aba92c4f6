"""FLOP counts from shapes, the benchmark results' table, and the live measurement."""

from __future__ import annotations

import json

import pytest
import torch

import stages
from stages.engine.flops import block_flops_per_token, bridge_sweep_flops, sweep_flops
from stages.engine.performance import load_speed_results, measure_sweep, speed_table


def test_block_flops_count_every_weight_matrix_twice_plus_attention():
    import transformers as tf

    cfg = tf.GPT2Config(n_embd=64, n_head=4, n_layer=2, vocab_size=100)
    with torch.device("meta"):
        block = tf.GPT2LMHeadModel(cfg).transformer.h[0]
    d = 64  # c_attn 3d^2, attn c_proj d^2, c_fc 4d^2, mlp c_proj 4d^2
    assert block_flops_per_token(block, 4, 16, context=10) == 2 * 12 * d * d + 4 * 10 * 4 * 16


def test_sweep_flops_counts_each_interventions_tail(tiny_models, tiny_tokens):
    bridge, _ = tiny_models("gpt2")  # 5 layers
    per_block = block_flops_per_token(bridge.blocks[0], 4, 8, tiny_tokens.shape[1] / 2)
    n_seq, seq_len = tiny_tokens.shape
    unembed = 2 * 32 * bridge.cfg.d_vocab * n_seq * (seq_len - 2)
    ivs = [stages.drop(4), stages.swap(0)]  # tails of 0 and 5 blocks
    want = (5 + 0 + 5) * per_block * n_seq * seq_len + 3 * unembed
    assert bridge_sweep_flops(bridge, tiny_tokens, ivs) == pytest.approx(want)
    assert sweep_flops(
        block=bridge.blocks[0], n_layers=5, n_heads=4, d_head=8, d_model=32,
        d_vocab=bridge.cfg.d_vocab, n_seq=n_seq, seq_len=seq_len, interventions=[],
    ) == pytest.approx(5 * per_block * n_seq * seq_len + unembed)  # fmt: skip


def test_speed_table_from_a_results_file(tmp_path):
    record = {
        "model": "m", "tokens": [4, 256], "n_interventions": 71,
        "authors_s_per_intervention": 30.0, "stages_s_per_intervention": 3.0,
        "authors_tokens_per_s": 10.0, "stages_tokens_per_s": 100.0,
        "speed_ratio": 10.0, "stages_mfu": 0.7,
    }  # fmt: skip
    path = tmp_path / "speed.json"
    path.write_text(json.dumps({"versus_authors": [record]}))
    table = speed_table(load_speed_results(path))
    assert list(table.method) == ["authors' method (batch 1, model rebuilt per swap)",
                                  "stages.run_sweep"]  # fmt: skip
    assert table.s_per_intervention_per_1k_tokens.tolist() == pytest.approx([30 / 1.016, 3 / 1.016])
    assert table.mfu.isna().tolist() == [True, False]
    with pytest.raises(FileNotFoundError, match="benchmarks/run.py"):
        load_speed_results(tmp_path / "missing.json")


def test_the_committed_results_hold_every_figure_the_page_shows():
    from stages.book import find_root

    results = load_speed_results(find_root() / "benchmarks/results/speed.json")
    assert {
        "machine",
        "matmul_peak_gflops",
        "versus_authors",
        "memory",
        "ray",
        "projection",
    } <= set(results)
    assert results["versus_authors"][0]["n_interventions"] == 71
    assert results["ray"]["identical_tables"]
    assert "PROJECTION" in results["projection"]["label"]


def test_measure_sweep_relates_time_to_flops(tiny_models, tiny_tokens):
    bridge, _ = tiny_models("neox")
    got = measure_sweep(bridge, tiny_tokens, stages.drops(bridge)[:2], batch_size=6)
    assert got["seconds"] > 0 and got["peak_gflops"] > 0
    assert got["tflop"] == pytest.approx(
        bridge_sweep_flops(bridge, tiny_tokens, stages.drops(bridge)[:2]) / 1e12
    )
    assert got["mfu"] == pytest.approx(
        got["tflop"] * 1e12 / got["seconds"] / (got["peak_gflops"] * 1e9)
    )
