"""Prediction / suppression neurons on crafted weights, against scipy, and on tiny models."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.stats
import torch

from stages.analyses.neurons import (
    class_counts,
    classify,
    neuron_classes,
    output_directions,
    top_neurons,
    vocab_moments,
)


def _crafted(seed: int = 0):
    """W_U with 4000 tokens, and neurons that promote, suppress or ignore a cluster of ten."""
    g = torch.Generator().manual_seed(seed)
    w_u = torch.randn(128, 4000, generator=g, dtype=torch.float64)
    promote = torch.randn(128, generator=g, dtype=torch.float64)
    w_u[:, :10] += 3 * promote[:, None]  # ten tokens share the neuron's direction
    random = torch.randn(3, 128, generator=g, dtype=torch.float64)
    w_out = torch.stack([promote, -promote, *random])
    return w_out, w_u


def test_moments_match_scipy():
    w_out, w_u = _crafted()
    skew, kurt, var = vocab_moments(w_out, w_u, chunk=2)
    for i, row in enumerate(w_out):
        cos = (row / row.norm()) @ (w_u / w_u.norm(dim=0))
        assert var[i].item() == pytest.approx(cos.numpy().var(), rel=1e-9)
        assert skew[i].item() == pytest.approx(scipy.stats.skew(cos.numpy()), rel=1e-9)
        assert kurt[i].item() == pytest.approx(
            scipy.stats.kurtosis(cos.numpy(), fisher=False), rel=1e-9
        )


def test_heavy_tails_are_classified_by_the_sign_of_the_skew():
    w_out, w_u = _crafted()
    skew, kurt, _ = vocab_moments(w_out, w_u)
    classes = [classify(s, k) for s, k in zip(skew.tolist(), kurt.tolist(), strict=True)]
    assert classes == ["prediction", "suppression", "other", "other", "other"]
    assert all(abs(k - 3) < 0.5 for k in kurt[2:].tolist())  # Gaussian-like: Pearson 3


def test_threshold_rule():
    assert classify(0.5, 10.5) == "prediction" and classify(-0.5, 10.5) == "suppression"
    assert classify(0.5, 9.9) == "other" and classify(0.0, 50.0) == "other"


def test_gemma_directions_include_the_post_mlp_norm_gain(tiny_models):
    bridge, hf = tiny_models("gemma3")
    layer = hf.model.layers[2]
    want = layer.mlp.down_proj.weight.T * (1 + layer.post_feedforward_layernorm.weight)
    got = output_directions(bridge, 2)
    cos = torch.nn.functional.cosine_similarity(got, want, dim=1)
    assert torch.allclose(cos, torch.ones_like(cos), atol=1e-6)


@pytest.mark.parametrize("arch", ["gpt2", "neox", "gemma3"])
def test_neuron_table_and_counts(arch, tiny_models):
    bridge, _ = tiny_models(arch)
    table = neuron_classes(bridge, progress=False)
    d_mlp = bridge.W_out.shape[1]
    assert len(table) == len(bridge.blocks) * d_mlp
    assert set(table.cls) <= {"prediction", "suppression", "other"}
    assert np.isfinite(table[["skew", "kurtosis"]].to_numpy()).all()
    counts = class_counts(table)
    assert (counts[["prediction", "suppression", "other"]].sum(axis=1) == d_mlp).all()
    with pytest.raises(ValueError, match="threshold"):
        neuron_classes(bridge, threshold=-1)


def test_classes_are_cached_and_reclassified_without_recomputing(tiny_models, monkeypatch):
    import stages.analyses.neurons

    bridge, _ = tiny_models("gpt2")
    first = neuron_classes(bridge, progress=False)
    monkeypatch.setattr(stages.analyses.neurons, "vocab_moments", lambda *a, **k: 1 / 0)
    again = neuron_classes(bridge, progress=False)
    assert again.attrs["provenance"]["from_cache"]
    pd.testing.assert_frame_equal(first, again)
    threshold = float(first["kurtosis"].median())  # half the neurons above it
    strict = neuron_classes(bridge, threshold=threshold, progress=False)
    assert list(strict.cls) == [
        "other" if k <= threshold else "prediction" if s > 0 else "suppression"
        for s, k in zip(first["skew"], first["kurtosis"], strict=True)
    ]
    assert (strict.cls != "other").any() and (first.cls == "other").all()


def test_top_neurons_list_the_tokens_they_move(tiny_models):
    bridge, _ = tiny_models("gpt2")
    classes = neuron_classes(bridge, threshold=3.0, progress=False, cache=False)
    for cls in ("prediction", "suppression"):
        top = top_neurons(bridge, classes, cls, k=3, n_tokens=4)
        assert len(top) == min(3, (classes.cls == cls).sum())
        assert list(top["kurtosis"]) == sorted(top["kurtosis"], reverse=True)
        for row in top.itertuples():
            cosines = [float(c) for c in row.cosines.split()]
            assert len(cosines) == 4
            assert cosines == sorted(cosines, reverse=cls == "prediction")
    with pytest.raises(ValueError, match="cls"):
        top_neurons(bridge, classes, "other")
