"""Probes beat chance on a planted signal and sit at chance on shuffled labels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stages.neurons import neuron_classes
from stages.probes import ing_probes, neuron_activations, probe_accuracies, token_effects


def _activations(n: int, signal: float, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.r_[np.ones(n // 2, bool), np.zeros(n - n // 2, bool)]
    x = rng.normal(size=(n, 6))
    x[:, 0] += signal * labels  # only the first neuron knows the answer
    table = pd.DataFrame(x, columns=[f"3.{i}" for i in range(6)])
    table["model_yes"] = labels.astype(float)  # a perfect model
    return table, labels


def test_probes_find_a_planted_signal():
    table, labels = _activations(600, signal=5.0)
    acc = probe_accuracies(table, labels, seed=0)
    single = acc[acc.probe == "single"].set_index("neuron")
    assert single.loc["3.0", "accuracy_lo"] > 0.9
    assert (single.drop("3.0")["accuracy"] < 0.65).all()
    top = acc[acc.probe == "top-k"]
    assert list(top.k) == list(range(1, 7)) and (top.accuracy_lo > 0.85).all()
    model = acc[acc.probe == "model"].iloc[0]
    assert model.accuracy == 1.0 and model.n_test == 180


def test_probes_sit_at_chance_on_shuffled_labels():
    table, labels = _activations(600, signal=4.0)
    shuffled = np.random.default_rng(1).permutation(labels)
    acc = probe_accuracies(table, shuffled, seed=0)
    probes = acc[acc.probe != "model"]
    assert (probes.accuracy_lo < 0.5).all() and (probes.accuracy_hi > 0.5).sum() >= len(probes) - 1
    assert probes.accuracy.between(0.35, 0.65).all()


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
    labels = np.array([True, False] * 3)
    direct = ing_probes(bridge, tiny_tokens, labels, chosen, mask, progress=False, cache=False)
    pd.testing.assert_frame_equal(direct, probe_accuracies(acts, labels, seed=0))
    top1 = bridge(tiny_tokens, use_cache=False)[:, -1].argmax(-1)
    np.testing.assert_array_equal(acts["model_yes"], mask[top1.numpy()].astype(float))
    with pytest.raises(ValueError, match="no token"):
        token_effects(bridge, classes, np.zeros(bridge.cfg.d_vocab, bool))
