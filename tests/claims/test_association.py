"""Layer-level association: the block bootstrap, the nulls and the two per-layer verdicts.

The curves are planted: a common shape with small independent wiggles per layer (so a
bootstrap over layers has something to resample), its mirror, or an unrelated shape; the KL
falls either with the prediction neurons beyond depth or with depth alone.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from stages import stats
from stages.claims import association as assoc
from stages.claims import beyond
from stages.claims import neurons as neuron_claims
from tests import synthetic as syn

L = syn.N_LAYERS  # 12: blocks 1-10 for the KL fall, layers 1-11 for the drop scores


def _wiggle(m: int, seed: int, sd: float = 0.05) -> np.ndarray:
    return sd * np.random.default_rng(seed).standard_normal(m)


# --------------------------------------------------------------------------- resampling


@pytest.mark.parametrize(("m", "block"), [(1, 1), (8, 2), (14, 3), (27, 3), (28, 4), (64, 4)])
def test_block_length_is_the_cube_root_rounded_up(m, block):
    assert assoc.block_length(m) == block == max(1, math.ceil(round(m ** (1 / 3), 9)))


def test_circular_blocks_are_runs_of_adjacent_layers_that_wrap():
    m, b = 14, 3
    idx = assoc.circular_block_indices(m, 500, seed=3)
    assert idx.shape == (500, m) and idx.min() >= 0 and idx.max() < m
    runs = idx[:, : (m // b) * b].reshape(500, -1, b)  # whole blocks
    assert ((np.diff(runs, axis=-1) % m) == 1).all()  # consecutive, wrapping past the last
    assert (np.diff(idx, axis=-1) % m != 1).any()  # blocks start anywhere
    assert (runs[..., 0] > m - b).any()  # some block wraps around
    np.testing.assert_array_equal(idx, assoc.circular_block_indices(m, 500, seed=3))


def test_the_shift_null_holds_every_shift_and_every_reversed_shift():
    y = np.arange(7.0) ** 2  # distinct values: every arrangement is distinct
    null = assoc.shifts_and_reversals(y)
    expected = {tuple(np.roll(y, s)) for s in range(7)} | {
        tuple(np.roll(y[::-1], s)) for s in range(7)
    }
    assert null.shape == (14, 7) and {tuple(row) for row in null} == expected
    np.testing.assert_array_equal(null[0], y)  # the observed arrangement is one of them
    assert (np.sort(null, axis=1) == np.sort(y)).all()  # only rearranged


# --------------------------------------------------------------------------- statistics


def test_pearson_and_spearman_match_scipy_and_flat_curves_are_undefined():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((2, 20))
    assert assoc.pearson(x, y) == pytest.approx(np.corrcoef(x, y)[0, 1])
    from scipy import stats as sps

    assert assoc.spearman(x, y) == pytest.approx(sps.spearmanr(x, y).statistic)
    assert np.isnan(assoc.pearson(np.full(5, 0.3), np.arange(5.0)))
    flat = (np.zeros(5) - 0.7071067811865476) * 3  # rounding must not make an r of it
    assert np.isnan(assoc.pearson(np.arange(5.0), flat))


def test_partial_spearman_is_the_partial_correlation_of_the_ranks():
    rng = np.random.default_rng(1)
    z = np.arange(15.0)
    x, y = z + 4 * rng.standard_normal(15), z + 4 * rng.standard_normal(15)
    r = np.corrcoef([np.argsort(np.argsort(v)) for v in (x, y, z)])
    rxy, rxz, ryz = r[0, 1], r[0, 2], r[1, 2]
    want = (rxy - rxz * ryz) / np.sqrt((1 - rxz**2) * (1 - ryz**2))
    assert assoc.partial_spearman(x, y, z) == pytest.approx(want)
    assert rxy > 0.5 and abs(want) < rxy  # depth explains much of the plain correlation


def test_freedman_lane_keeps_depth_and_shuffles_the_rest():
    rng = np.random.default_rng(2)
    z = np.arange(16.0)
    x, y = z + 3 * rng.standard_normal(16), z + 3 * rng.standard_normal(16)
    null = assoc.freedman_lane(x, y, z, n_perm=999, seed=0)
    assert null.shape == (1000,) and null[0] == pytest.approx(assoc.partial_spearman(x, y, z))
    assert abs(np.median(null)) < 0.1  # beyond depth, nothing is left to correlate
    # the plain rank correlation of x and y is far outside this null: depth made it
    assert assoc.spearman(x, y) > np.quantile(null, 0.99)


# --------------------------------------------------------------------------- shapes


def _shape_verdict(x: np.ndarray, y: np.ndarray, n_seq: int | None = 256) -> stats.Verdict:
    a = assoc.shape_correlation(x, y, seed=0)
    return assoc.layer_verdict("same shape", "-", "r", a, unit="layers", n_seq=n_seq, detail="")


GRID = np.linspace(0.1, 0.9, 14)
BASE = np.sin(2 * np.pi * GRID) + 0.6 * np.cos(5 * np.pi * GRID)


@pytest.mark.parametrize(
    ("y", "expected"),
    [(BASE + _wiggle(14, 2), {"holds"}), (-BASE + _wiggle(14, 2), {"does not hold"}),
     (np.cos(np.pi * GRID) + _wiggle(14, 2), {"no evidence", "unclear"})],
    ids=["same", "opposite", "unrelated"],
)  # fmt: skip
def test_shape_correlation_decides_from_layers_against_the_shift_null(y, expected):
    v = _shape_verdict(BASE + _wiggle(14, 1), y)
    assert v.verdict in expected, v
    assert v.n == 14 and v.lo < v.value < v.hi and v.lo < v.hi
    assert "whole 95% interval" in v.rule and "entirely below 0" in v.rule


def test_a_shape_needs_ten_layers_and_thirty_sequences_behind_it():
    x, y = BASE + _wiggle(14, 1), BASE + _wiggle(14, 2)
    assert _shape_verdict(x, y).verdict == "holds"
    assert _shape_verdict(x, y, n_seq=29).verdict == "not enough data"
    assert _shape_verdict(x, y, n_seq=None).verdict == "holds"  # weights: no sequences
    assert _shape_verdict(x[:9], y[:9]).verdict == "not enough data"


# --------------------------------------------------------------------------- the KL fall


def _fall(falls: np.ndarray, neurons: list[int], n: int = 64) -> stats.Verdict:
    """The verdict on a lens whose log KL falls by ``falls[l]`` entering block ``l``."""
    log_kl = 5.0 - np.cumsum(np.r_[0.0, falls])  # [L]: log KL after blocks 0..L-1
    sums = syn.lens(n, kl=lambda layer: float(np.exp(log_kl[layer])), sd=0.02)
    return neuron_claims.fall_tracks_neurons(sums, syn.classes(neurons, [0] * L), L)


BLOCKS = np.arange(1, L - 1)  # 1..10
PATTERN = np.array([0, 1, 0, 0, 1, 1, 0, 1, 0, 1])  # where neurons are, unrelated to depth


def test_a_fall_that_tracks_neurons_beyond_depth_holds():
    neurons = [0] + [int(10 * p + x) for p, x in zip(PATTERN, BLOCKS, strict=True)] + [0]
    falls = 0.02 * BLOCKS + 0.25 * PATTERN + _wiggle(10, 7, 0.03)
    v = _fall(np.r_[falls, 0.1], neurons)
    assert v.verdict == "holds", v
    assert v.n == 10 and v.unit == "blocks" and v.lo < v.hi
    assert "partial Spearman" in v.statistic and "controlling for depth" in v.statistic
    assert "Freedman–Lane" in v.detail and "with depth" in v.detail


def test_a_fall_that_tracks_depth_only_does_not_hold_up():
    neurons = [0] + [int(2 * x + 3 * p) for p, x in zip(PATTERN, BLOCKS, strict=True)] + [0]
    falls = 0.05 * BLOCKS + 0.06 * np.random.default_rng(4).standard_normal(10)
    v = _fall(np.r_[falls, 0.1], neurons)
    plain = assoc.spearman(falls, np.array(neurons[1:-1], dtype=float))
    assert plain > 0.7  # without the control the fall would seem to track the neurons
    assert abs(v.value) < 0.3  # with depth controlled, nothing is left
    assert v.verdict in ("no evidence", "unclear"), v
    assert v.lo < v.hi


def test_the_fall_needs_thirty_sequences_and_some_neurons():
    neurons = [0] + [int(10 * p) for p in PATTERN] + [0]
    falls = np.r_[0.25 * PATTERN + _wiggle(10, 3, 0.01), 0.1]
    assert _fall(falls, neurons, n=6).verdict == "not enough data"
    assert _fall(falls, [0] * L).verdict == "not enough data"


# --------------------------------------------------------------------------- drop scores


def _frames(n_seq: int, kl_of_score) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Similarity and sweep sums whose layer scores wiggle and whose drop KL is f(score)."""
    rng = np.random.default_rng(5)
    scores = 0.3 + 0.2 * np.sin(np.arange(L)) + _wiggle(L, 6, 0.02)
    sim, sweep = {}, {}
    for layer, score in enumerate(scores):
        for name in (f"bi:{layer}", f"angular:{layer}+1"):
            sim[name] = syn._noisy(rng, score, n_seq, 0.02, syn.SEQ_LEN - 1)
        kl = kl_of_score(score) + 0.06 * rng.standard_normal()
        sweep[f"drop {layer}:kl"] = syn._noisy(rng, kl, n_seq, 0.02, syn.SEQ_LEN - 2)
    frames = pd.DataFrame(sim), pd.DataFrame(sweep)
    for frame in frames:
        frame["seq_len"] = syn.SEQ_LEN
    return frames


@pytest.mark.parametrize("score", ["block_influence", "angular"])
@pytest.mark.parametrize(
    ("kl_of_score", "n_seq", "expected"),
    [(lambda s: 2 * s, 60, {"holds"}), (lambda s: 2 - 2 * s, 60, {"does not hold"}),
     (lambda s: 1.0, 60, {"no evidence", "unclear"}), (lambda s: 2 * s, 6, {"not enough data"})],
    ids=["tracks", "opposite", "unrelated", "few"],
)  # fmt: skip
def test_a_score_tracks_the_drop_across_layers(score, kl_of_score, n_seq, expected):
    v = beyond.score_tracks_drop(*_frames(n_seq, kl_of_score), score)
    assert v.verdict in expected, v
    assert v.n == L - 1 and v.unit == "layers" and v.source == "related work"
    assert v.lo < v.hi and "safe to drop" in v.claim and "layers exchangeable" in v.detail
