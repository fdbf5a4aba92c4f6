"""Probes on planted and shuffled signals, and the authors' neuron selection against a reference."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from stages.analyses.neurons import neuron_classes, output_directions
from stages.analyses.probes import (
    ing_neurons,
    ing_probes,
    neuron_activations,
    probe_accuracies,
    split_windows,
    token_effects,
)


def _activations(
    n: int, signal: float, seed: int = 0
) -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    labels = np.r_[np.ones(n // 2, bool), np.zeros(n - n // 2, bool)]
    x = rng.normal(size=(n, 6))
    x[:, 0] += signal * labels  # only the first neuron knows the answer
    table = pd.DataFrame(x, columns=[f"3.{i}" for i in range(6)])
    table["model_yes"] = labels.astype(float)  # a perfect model
    neurons = pd.DataFrame({"layer": 3, "neuron": range(6),
                            "cls": ["suppression", "prediction"] * 3})  # fmt: skip
    return table, labels, neurons


def test_probes_find_a_planted_signal():
    table, labels, neurons = _activations(800, signal=5.0)
    t = probe_accuracies(table, labels, neurons, seed=0).table
    single = t[(t.probe == "single") & (t.group == "all")].set_index("neuron")
    assert single.loc["3.0", "accuracy_lo"] > 0.9 and single.loc["3.0", "chosen"]
    assert (single.drop("3.0")["accuracy"] < 0.65).all()
    top = t[(t.probe == "top-k") & (t.group == "all")]
    assert list(top.k) == list(range(1, 7)) and (top.accuracy_lo > 0.85).all()
    model = t[t.probe == "model"].iloc[0]
    assert model.accuracy == 1.0 and model.n_test == 200


def test_probes_sit_at_chance_on_shuffled_labels():
    table, labels, neurons = _activations(800, signal=4.0)
    shuffled = np.random.default_rng(1).permutation(labels)
    t = probe_accuracies(table, shuffled, neurons, seed=0).table
    probes = t[t.probe != "model"]
    assert (probes.accuracy_lo < 0.5).all()
    assert probes.accuracy.between(0.35, 0.65).all()


def test_the_splits_are_disjoint_stratified_and_fixed_by_the_seed():
    labels = np.r_[np.ones(300, bool), np.zeros(500, bool)]
    train, val, test = split_windows(labels, seed=3)
    assert not (set(train) & set(val) or set(train) & set(test) or set(val) & set(test))
    assert (len(train), len(val), len(test)) == (400, 200, 200)
    assert labels[test].mean() == pytest.approx(300 / 800, abs=0.01)
    again = split_windows(labels, seed=3)
    assert all((a == b).all() for a, b in zip(again, (train, val, test), strict=True))


def test_the_authors_selection_matches_a_direct_computation(tiny_models):
    bridge, _ = tiny_models("gemma3")
    classes = neuron_classes(bridge, threshold=3.0, progress=False, cache=False)
    mask = np.zeros(bridge.cfg.d_vocab, bool)
    mask[[10, 11, 12, 40]] = True
    chosen = ing_neurons(bridge, classes, mask, k=5)
    # reference: every neuron passing kurtosis > 10 or variance > 0.005, by |raw contrast|
    rows = []
    for layer in range(len(bridge.blocks)):
        raw = (output_directions(bridge, layer) @ bridge.W_U.detach()).numpy()
        for n in range(raw.shape[0]):
            c = classes[(classes.layer == layer) & (classes.neuron == n)].iloc[0]
            if c["kurtosis"] > 10 or c["variance"] > 0.005:
                rows.append((layer, n, raw[n, mask].mean() - raw[n, ~mask].mean(), c["skew"]))
    rows.sort(key=lambda r: -abs(r[2]))
    assert len(rows) >= 5
    assert [(r[0], r[1]) for r in rows[:5]] == list(zip(chosen.layer, chosen.neuron, strict=True))
    np.testing.assert_allclose(chosen.contrast, [r[2] for r in rows[:5]], rtol=1e-10)
    assert list(chosen.cls) == ["prediction" if r[3] > 0 else "suppression" for r in rows[:5]]
    cosine = ing_neurons(bridge, classes, mask, k=3, selection="cosine")
    assert list(cosine.columns) == list(chosen.columns) and len(cosine) == 3
    with pytest.raises(ValueError, match="selection"):
        ing_neurons(bridge, classes, mask, selection="best")


def test_activations_and_effects_on_a_tiny_model(tiny_models, tiny_tokens):
    bridge, _ = tiny_models("gemma3")
    classes = neuron_classes(bridge, threshold=3.0, progress=False, cache=False)
    mask = np.zeros(bridge.cfg.d_vocab, bool)
    mask[[10, 11, 12]] = True
    effects = token_effects(bridge, classes, mask)
    assert set(effects.cls) <= {"prediction", "suppression"} and len(effects)
    assert list(effects.effect.abs()) == sorted(effects.effect.abs(), reverse=True)
    chosen = effects.head(4)
    acts = neuron_activations(bridge, tiny_tokens, chosen, mask, progress=False, cache=False)
    _, cache = bridge.run_with_cache(tiny_tokens, use_cache=False)
    for row in chosen.itertuples():
        want = cache[f"blocks.{row.layer}.mlp.out.hook_in"][:, -1, row.neuron]
        np.testing.assert_allclose(acts[f"{row.layer}.{row.neuron}"], want.numpy(), rtol=1e-12)
    labels = np.array([True, False] * 6)
    tokens = torch.cat([tiny_tokens, tiny_tokens.flip(1)])
    tokens[:, 0] = tiny_tokens[0, 0]
    direct = ing_probes(bridge, tokens, labels, chosen, mask, progress=False, cache=False)
    acts2 = neuron_activations(bridge, tokens, chosen, mask, progress=False, cache=False)
    pd.testing.assert_frame_equal(direct.table, probe_accuracies(acts2, labels, chosen).table)
    top1 = bridge(tiny_tokens, use_cache=False)[:, -1].argmax(-1)
    np.testing.assert_array_equal(acts["model_yes"], mask[top1.numpy()].astype(float))
    with pytest.raises(ValueError, match="no token"):
        token_effects(bridge, classes, np.zeros(bridge.cfg.d_vocab, bool))
