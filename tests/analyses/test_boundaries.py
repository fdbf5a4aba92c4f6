"""Exact Bayesian change-point segmentation of per-layer curves (stages.analyses.boundaries)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest

from stages.analyses import boundaries
from stages.analyses.boundaries import boundary_table, fit_boundaries, stage_boundaries, stage_of

N = 24
STARTS = (5, 12, 19)
# Segment means (in noise sd units) of three curves; every boundary is a 3-sigma step in each.
LEVELS = np.array([[0.0, 3.0, 6.0, 9.0], [0.0, 3.0, 0.0, 3.0], [3.0, 0.0, 3.0, 0.0]])


def steps(n: int = N, starts: tuple[int, ...] = STARTS, levels: np.ndarray = LEVELS) -> np.ndarray:
    """``[n, d]`` noise-free piecewise-constant curves."""
    segment = np.searchsorted(starts, np.arange(n), side="right")
    return levels[:, segment].T


def planted(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = steps() + rng.standard_normal((N, LEVELS.shape[0]))
    return pd.DataFrame(x, columns=[f"c{i}" for i in range(x.shape[1])])


def naive_log_marginal(x: np.ndarray, starts: tuple[int, ...]) -> float:
    """Log marginal likelihood of one segmentation of already standardised ``x``, by a loop."""
    n, d = x.shape
    edges = (0, *starts, n)
    sse, log_len = 0.0, 0.0
    for a, b in itertools.pairwise(edges):
        seg = x[a:b]
        sse += float(((seg - seg.mean(axis=0)) ** 2).sum())
        log_len += math.log(b - a)
    sse = max(sse, 1e-12 * float((x**2).sum()))
    k = len(edges) - 1
    return -d / 2 * log_len - (n * d - k * d) / 2 * math.log(sse)


def naive_sse(x: np.ndarray, starts: tuple[int, ...]) -> float:
    """Within-segment sum of squares of one segmentation, by a loop."""
    edges = (0, *starts, len(x))
    pairs = itertools.pairwise(edges)
    return sum(float(((x[a:b] - x[a:b].mean(axis=0)) ** 2).sum()) for a, b in pairs)


def naive_fit(df: pd.DataFrame, k: int, min_size: int) -> tuple[tuple, np.ndarray, float, float]:
    """``(MAP starts, posterior, log evidence, least-squares SSE)`` by enumerating every cut."""
    x = df.to_numpy(float)
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    n = len(x)
    segs, lls = [], []
    for cut in itertools.combinations(range(1, n), k - 1):
        if min(np.diff((0, *cut, n))) >= min_size:
            segs.append(cut)
            lls.append(naive_log_marginal(x, cut))
    lls = np.array(lls)
    weights = np.exp(lls - lls.max())
    post = np.zeros((k - 1, n))
    for cut, w in zip(segs, weights, strict=True):
        for j, t in enumerate(cut):
            post[j, t] += w
    least = min(naive_sse(x, cut) for cut in segs)
    return (segs[int(np.argmax(lls))], post / weights.sum(),
            lls.max() + math.log(weights.sum()), least)  # fmt: skip


@pytest.mark.parametrize("seed", range(5))
def test_planted_boundaries_found_with_narrow_intervals(seed: int) -> None:
    fit = fit_boundaries(planted(seed))
    assert fit.starts == STARTS
    table = boundary_table(fit, np.arange(N), N, level=0.9)
    truth = np.array(STARTS)
    assert (table["layer"].to_numpy() == truth).all()
    assert ((table["layer_lo"] <= truth) & (truth <= table["layer_hi"])).all()
    assert ((table["layer_hi"] - table["layer_lo"]) <= 2).all()
    assert (table["probability"] > 0.5).all()


def test_noise_free_steps_give_certain_posterior() -> None:
    df = pd.DataFrame(steps(), columns=["a", "b", "c"])
    fit = fit_boundaries(df)
    assert fit.starts == STARTS
    assert np.isfinite(fit.log_evidence)
    for j, t in enumerate(STARTS):
        assert fit.posterior[j, t] > 1 - 1e-9
    # One column alone, and a non-default number of segments, also work.
    single = fit_boundaries(pd.DataFrame({"b": steps()[:, 1]}), 2)
    assert single.starts in {(5,), (12,), (19,)}
    assert single.posterior.max() < 1


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize(("k", "min_size"), [(3, 1), (3, 2), (4, 1), (2, 3)])
def test_matches_brute_force(seed: int, k: int, min_size: int) -> None:
    rng = np.random.default_rng(seed)
    n = 11
    x = steps(n, (3, 7), np.array([[0.0, 2.0, -1.0], [1.0, 0.0, 2.0]])) + rng.normal(size=(n, 2))
    df = pd.DataFrame(x, columns=["u", "v"])
    fit = fit_boundaries(df, k, min_size=min_size)
    starts, post, log_ev, least = naive_fit(df, k, min_size)
    assert fit.starts == starts
    np.testing.assert_allclose(fit.posterior, post, atol=1e-10)
    assert fit.log_evidence == pytest.approx(log_ev, abs=1e-9)
    assert fit.sse == pytest.approx(least, rel=1e-9)
    n_values = n * 2
    assert fit.bic == pytest.approx(
        n_values * math.log(least / n_values) + (2 * k + k) * math.log(n_values), rel=1e-9
    )
    assert fit.posterior.shape == (k - 1, n)
    assert (fit.posterior >= 0).all()
    np.testing.assert_allclose(fit.posterior.sum(axis=1), 1.0, atol=1e-12)
    assert all(b - a >= min_size for a, b in itertools.pairwise((0, *fit.starts, n)))


def test_chunked_enumeration_matches_single_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    df = planted(0)
    whole = fit_boundaries(df)
    monkeypatch.setattr(boundaries, "_CHUNK", 7)  # forces many rescalings of the accumulators
    chunked = fit_boundaries(df)
    assert chunked.starts == whole.starts
    np.testing.assert_allclose(chunked.posterior, whole.posterior, atol=1e-12)
    assert chunked.log_evidence == pytest.approx(whole.log_evidence, abs=1e-9)


def test_posterior_is_a_distribution_and_boundaries_increase() -> None:
    for seed in range(5):
        fit = fit_boundaries(planted(seed).iloc[:, :2], 5, min_size=2)
        assert fit.posterior.shape == (4, N)
        assert (fit.posterior >= 0).all()
        np.testing.assert_allclose(fit.posterior.sum(axis=1), 1.0, atol=1e-12)
        assert all(b > a for a, b in itertools.pairwise(fit.starts))


def test_pure_noise_posterior_is_spread_out() -> None:
    maxima, widths = [], []
    for seed in range(5):
        rng = np.random.default_rng(seed)
        fit = fit_boundaries(pd.DataFrame(rng.standard_normal((N, 3)), columns=list("abc")))
        table = boundary_table(fit, np.arange(N), N)
        maxima.append(fit.posterior.max(axis=1))
        widths.append((table["layer_hi"] - table["layer_lo"]).to_numpy())
    assert np.max(maxima) < 0.9
    assert np.mean(maxima) < 0.6
    assert np.mean(widths) >= 8  # against <= 2 layers for the planted steps


def test_credible_interval_holds_the_truth_and_widens_with_noise() -> None:
    """Clean steps: every 90% interval holds its planted boundary and is narrow.

    As the noise grows (same steps, same draws, scaled) the intervals widen.
    """
    widths = []
    for scale in (0.1, 1.0, 2.0, 4.0):
        per_seed = []
        for seed in range(4):
            noise = np.random.default_rng(seed).standard_normal((N, LEVELS.shape[0]))
            fit = fit_boundaries(pd.DataFrame(steps() + scale * noise, columns=list("abc")))
            table = boundary_table(fit, np.arange(N), N, level=0.9)
            if scale == 0.1:
                assert table["layer_lo"].le(STARTS).all() and table["layer_hi"].ge(STARTS).all()
            per_seed.append((table["layer_hi"] - table["layer_lo"]).mean())
        widths.append(np.mean(per_seed))
    assert widths[0] <= 0.5
    assert all(b > a for a, b in itertools.pairwise(widths)), widths
    assert widths[-1] >= 5


@pytest.mark.parametrize("seed", range(4))
def test_bic_prefers_the_planted_number_of_stages(seed: int) -> None:
    df = pd.DataFrame(steps() + 0.5 * np.random.default_rng(seed).standard_normal((N, 3)))
    bic = {k: fit_boundaries(df, k, min_size=2).bic for k in (2, 3, 4, 5, 6)}
    assert min(bic, key=bic.get) == 4, bic
    # The fit's own evidence (flat priors on the means) keeps rising with K: it cannot choose K.
    evidence = [fit_boundaries(df, k, min_size=2).log_evidence for k in (4, 5, 6)]
    assert evidence[0] < evidence[1] < evidence[2]


def test_scale_and_offset_invariance() -> None:
    df = planted(3)
    base = fit_boundaries(df)
    moved = df.assign(c0=df["c0"] * 7.5 + 100.0, c1=df["c1"] * -0.01 - 3.0, c2=df["c2"] * 1e6)
    fit = fit_boundaries(moved)
    assert fit.starts == base.starts
    np.testing.assert_allclose(fit.posterior, base.posterior, atol=1e-9)
    assert fit.log_evidence == pytest.approx(base.log_evidence, abs=1e-8)


def test_constant_column_dropped() -> None:
    df = planted(1)
    base = fit_boundaries(df)
    fit = fit_boundaries(df.assign(flat=2.5, zero=0.0))
    assert fit.columns == ("c0", "c1", "c2")
    assert fit.starts == base.starts
    np.testing.assert_allclose(fit.posterior, base.posterior, atol=1e-12)
    with pytest.raises(ValueError, match="constant"):
        fit_boundaries(pd.DataFrame({"flat": np.ones(N)}))


def test_invalid_input_raises() -> None:
    df = planted(0)
    with pytest.raises(ValueError, match="NaN"):
        fit_boundaries(df.assign(c1=df["c1"].where(df.index != 4)))
    with pytest.raises(ValueError, match="infinite"):
        fit_boundaries(df.assign(c1=df["c1"].where(df.index != 4, np.inf)))
    with pytest.raises(ValueError, match="too few"):
        fit_boundaries(df.iloc[:7], 4, min_size=2)
    with pytest.raises(ValueError, match="too few"):
        fit_boundaries(df.iloc[:3], 4)
    with pytest.raises(ValueError, match="exceed the limit"):
        fit_boundaries(pd.DataFrame({"x": np.arange(200.0)}), 6)
    with pytest.raises(ValueError, match="n_segments"):
        fit_boundaries(df, 0)


def test_min_size_respected() -> None:
    # A 2-layer stage cannot be reproduced with min_size=3; every allowed boundary keeps gaps >= 3.
    x = steps(N, (5, 7, 19)) + np.random.default_rng(0).normal(scale=0.1, size=(N, 3))
    df = pd.DataFrame(x, columns=["a", "b", "c"])
    assert fit_boundaries(df).starts == (5, 7, 19)
    fit = fit_boundaries(df, min_size=3)
    assert all(b - a >= 3 for a, b in itertools.pairwise((0, *fit.starts, N)))
    # Boundary j (0-based) can only start in [3 (j + 1), N - 3 (K - 1 - j)].
    for j in range(3):
        support = np.flatnonzero(fit.posterior[j] > 0)
        assert support.min() >= 3 * (j + 1)
        assert support.max() <= N - 3 * (3 - j)
    assert fit_boundaries(df.iloc[:12], min_size=3).starts == (3, 6, 9)  # the only option


def test_boundary_table_rel_depth_convention() -> None:
    fit = fit_boundaries(pd.DataFrame(steps(), columns=["a", "b", "c"]))
    table = boundary_table(fit, np.arange(N), N)
    assert table["boundary"].tolist() == [1, 2, 3]
    assert table["layer"].tolist() == list(STARTS)
    np.testing.assert_allclose(table["rel_depth"], (np.array(STARTS) - 0.5) / (N - 1))
    assert (table["layer_lo"] == table["layer"]).all()
    assert (table["layer_hi"] == table["layer"]).all()
    np.testing.assert_allclose(table["rel_depth_lo"], table["rel_depth"])
    # Rows map to layer numbers through `layers` (here the fit covers layers 10..33 of 40).
    shifted = boundary_table(fit, np.arange(10, 10 + N), 40)
    assert shifted["layer"].tolist() == [15, 22, 29]
    np.testing.assert_allclose(shifted["rel_depth"], (np.array([15, 22, 29]) - 0.5) / 39)
    with pytest.raises(ValueError, match="rows"):
        boundary_table(fit, np.arange(N - 1), N)
    with pytest.raises(ValueError, match="level"):
        boundary_table(fit, np.arange(N), N, level=1.0)


def test_stage_boundaries_sorts_and_annotates() -> None:
    df = planted(2).assign(layer=np.arange(N), flat=1.0)
    shuffled = df.sample(frac=1.0, random_state=0)
    table = stage_boundaries(shuffled, ["c0", "c1", "c2", "flat"], level=0.8)
    expected = boundary_table(fit_boundaries(df[["c0", "c1", "c2"]]), np.arange(N), N, level=0.8)
    pd.testing.assert_frame_equal(table, expected)
    assert table.attrs["columns"] == ["c0", "c1", "c2"]
    assert table.attrs["starts"] == table["layer"].tolist()
    assert "80%" in table.attrs["method"]
    with pytest.raises(ValueError, match="duplicate"):
        stage_boundaries(pd.concat([df, df.iloc[:1]]), ["c0"])


def test_stage_of() -> None:
    stages = stage_of(np.arange(N), STARTS)
    assert stages.tolist() == [1] * 5 + [2] * 7 + [3] * 7 + [4] * 5
    assert stage_of([0, 3, 4], []).tolist() == [1, 1, 1]
    with pytest.raises(ValueError, match="increasing"):
        stage_of(np.arange(N), (5, 5, 19))
