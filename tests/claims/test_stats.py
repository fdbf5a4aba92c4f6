"""The book's inference (stages.stats): coverage, pairing, simultaneity, and the decision rule."""

from __future__ import annotations

import numpy as np
import pytest

from stages import stats


def test_interval_of_a_mean_covers_the_truth_about_95_percent_of_the_time():
    rng = np.random.default_rng(1)
    hits = 0
    for rep in range(200):
        x = rng.normal(2.0, 1.0, 60)
        _, lo, hi = stats.interval(x[None], None, n_boot=400, seed=rep)
        hits += lo[0] <= 2.0 <= hi[0]
    assert 0.88 <= hits / 200 <= 0.99


def test_token_weighted_means_match_a_direct_computation():
    rng = np.random.default_rng(0)
    sums, counts = rng.normal(size=(3, 40)), rng.integers(5, 20, 40).astype(float)
    est, dist = stats.bootstrap(sums, counts, n_boot=50)
    np.testing.assert_allclose(est, sums.sum(1) / counts.sum())
    assert dist.shape == (3, 50)


def test_separate_calls_with_one_seed_resample_the_same_sequences():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(1, 80)), rng.normal(size=(1, 80))
    _, da = stats.bootstrap(a, n_boot=300, seed=4)
    _, dab = stats.bootstrap(np.vstack([a, b]), n_boot=300, seed=4)
    np.testing.assert_allclose(da[0], dab[0])


def test_a_paired_difference_is_narrower_than_an_unpaired_one():
    rng = np.random.default_rng(2)
    shared = rng.normal(0, 3, 100)  # sequences differ a lot; interventions by a little
    a, b = shared + rng.normal(0, 0.1, 100), shared + 0.2 + rng.normal(0, 0.1, 100)
    _, lo, hi = stats.interval(np.vstack([a, b]), None, lambda m: m[1] - m[0])
    _, ulo, uhi = stats.two_sample(b, a)
    assert lo > 0 and (hi - lo) < (uhi - ulo) / 5


def test_a_simultaneous_band_covers_every_mean_at_once():
    rng = np.random.default_rng(3)
    joint = pointwise = 0
    for rep in range(100):
        x = rng.normal(0.0, 1.0, (12, 50))
        est, dist = stats.bootstrap(x, n_boot=400, seed=rep)
        lo, hi = stats.simultaneous(est, dist)
        plo, phi = stats.percentile(dist)
        joint += bool(((lo <= 0) & (0 <= hi)).all())
        pointwise += bool(((plo <= 0) & (0 <= phi)).all())
        assert ((hi - lo) >= (phi - plo) - 1e-12).all()
    assert joint >= 88 and pointwise < joint  # twelve 95% intervals rarely all hold at once


def _ratio(m: np.ndarray) -> np.ndarray:
    return m[1] / np.where(m[0] > 0, m[0], np.nan)  # undefined without a denominator hit


@pytest.mark.parametrize("hits", [5, 2])
def test_undefined_resamples_count_against_the_claim_at_both_ends(hits):
    n, n_boot = 34, 4000
    base = np.zeros(n)
    base[:hits] = 1.0
    other = np.r_[np.ones(hits - 1), np.zeros(n - hits + 1)]  # one hit fewer, on the same units
    sums = np.vstack([base, other])
    est, dist = stats.bootstrap(sums, statistic=_ratio, n_boot=n_boot, seed=1)
    lo, hi, undefined = stats.defined_percentile(dist)
    assert est == pytest.approx((hits - 1) / hits)
    # a resample misses every baseline hit with probability (1 - hits/n)^n
    p_undefined = (1 - hits / n) ** n
    sd = np.sqrt(p_undefined * (1 - p_undefined) / n_boot)
    assert abs(undefined / n_boot - p_undefined) < 4 * sd + 1 / n_boot
    # independently: the undefined resamples at -inf (lower end) and +inf (upper end)
    want_lo = np.quantile(np.where(np.isnan(dist), -np.inf, dist), 0.025, method="inverted_cdf")
    want_hi = np.quantile(np.where(np.isnan(dist), np.inf, dist), 0.975, method="inverted_cdf")
    if hits == 5:  # 0.45% undefined, within the 2.5% tails: a finite interval, a bit wider
        assert 0 < undefined < 0.025 * n_boot and 0 <= lo < est < hi <= 1
        finite = dist[np.isfinite(dist)]
        assert lo <= np.quantile(finite, 0.025) and abs(lo - want_lo) < 0.05
        assert hi == pytest.approx(want_hi, abs=0.05)
    else:  # 12.7% undefined: the lower end is -inf, the upper +inf, the verdict unclear
        assert lo == want_lo == -np.inf and hi == want_hi == np.inf
        assert stats.decide(lo, hi, 0.5) == "unclear"


def test_a_defined_percentile_equals_the_plain_one_when_always_defined():
    x = np.random.default_rng(5).normal(1.0, 1.0, (2, 50))
    _, dist = stats.bootstrap(x, statistic=lambda m: m[1] - m[0], seed=3)
    lo, hi, undefined = stats.defined_percentile(dist)
    plo, phi = stats.percentile(dist)
    assert undefined == 0 and (lo, hi) == (float(plo), float(phi))
    with pytest.raises(ValueError, match="scalar"):
        stats.defined_percentile(np.ones((2, 10)))


def test_two_sample_intervals_cover_the_true_difference():
    """Samples of unequal size and spread: the 95% interval holds the true difference (1.0)."""
    rng = np.random.default_rng(5)
    hits = 0
    for r in range(200):
        a, b = rng.normal(1, 1, 40), rng.normal(0, 2, 70)
        est, lo, hi = stats.two_sample(a, b, n_boot=400, seed=r)
        assert est == pytest.approx(a.mean() - b.mean()) and lo < est < hi
        hits += lo <= 1.0 <= hi
    assert 0.88 <= hits / 200 <= 0.99


@pytest.mark.parametrize(
    ("lo", "hi", "above", "want"),
    [
        (0.2, 0.5, True, "holds"),
        (-0.5, -0.2, True, "does not hold"),
        (-0.1, 0.3, True, "unclear"),
        (-0.5, -0.2, False, "holds"),
        (0.2, 0.5, False, "does not hold"),
    ],
)
def test_decide(lo, hi, above, want):
    assert stats.decide(lo, hi, 0.0, above=above) == want


def test_a_verdict_needs_enough_units():
    kw = {"threshold": 0.0, "detail": ""}
    assert stats.verdict("c", "f", "s", 1.0, 0.5, 1.5, n=29, **kw).verdict == "not enough data"
    v = stats.verdict("c", "f", "s", 1.0, 0.5, 1.5, n=30, **kw)
    assert v.verdict == "holds" and "30 sequences" in v.rule and "> 0" in v.rule
    with pytest.raises(ValueError, match="verdict"):
        stats.Verdict("c", "f", "s", 1, 1, 1, "r", 1, "u", "maybe")


@pytest.mark.parametrize(
    ("lo", "hi", "against", "want"),
    [
        (0.6, 0.9, None, "holds"),  # above the null's 95th percentile (0.5)
        (0.1, 0.4, None, "no evidence"),  # below it: no more than chance, not evidence against
        (0.1, 0.4, 0.0, "no evidence"),
        (-0.6, -0.2, 0.0, "does not hold"),  # below the margin against the claim
        (-0.6, -0.2, None, "no evidence"),  # no margin: never "does not hold"
        (0.3, 0.7, 0.0, "unclear"),
    ],
)
def test_a_null_test_never_calls_no_evidence_a_refutation(lo, hi, against, want):
    assert stats.decide_against_null(lo, hi, 0.5, against=against) == want
    v = stats.verdict("c", "f", "s", (lo + hi) / 2, lo, hi, threshold=0.5, null=True,
                      against=against, n=40)  # fmt: skip
    assert v.verdict == want and "no evidence if" in v.rule


@pytest.mark.parametrize(
    ("lo", "hi", "want"),
    [(-0.05, 0.05, "holds"), (0.15, 0.3, "does not hold"), (-0.3, -0.12, "does not hold"),
     (0.05, 0.2, "unclear")],
)  # fmt: skip
def test_decide_within_a_margin(lo, hi, want):
    assert stats.decide_within(lo, hi, -0.1, 0.1) == want


def _layers(means: list[float], n: int = 200, sd: float = 1.0, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = np.array(means)[:, None] + rng.normal(0, sd, (len(means), n))
    return stats.bootstrap(x, n_boot=1000, seed=seed)


def test_a_gap_is_decided_pair_by_pair():
    est, dist = _layers([1.0, 0.0, 0.0, 0.0])
    value, lo, hi = stats.gap(est, dist, [0], [1, 2, 3])
    assert lo > 0 and lo <= value <= hi
    # two groups with equal peaks: the gap's interval contains 0
    est, dist = _layers([1.0, 0.0, 1.0, 0.0])
    value, lo, hi = stats.gap(est, dist, [0, 1], [2, 3])
    assert lo < 0 < hi
    # the band is simultaneous: wider than the percentile interval of the one best pair
    diff = dist[0] - dist[2]
    plo, phi = stats.percentile(diff)
    assert hi - lo > phi - plo


def test_lowest_and_highest_bound_every_item_at_once():
    est, dist = _layers([0.5, 0.5, 0.05])
    least, lo, hi, band_lo, band_hi = stats.lowest(est, dist)
    assert least == est.min() and lo == band_lo.min() and hi == band_hi.min()
    assert lo < 0.05 < hi  # the weakest item decides "every item above ..."
    most, lo, hi, _, _ = stats.highest(est, dist)
    assert most == est.max() and lo > 0


def test_clopper_pearson_is_exact_and_never_of_zero_width():
    lo, hi = stats.clopper_pearson(0, 100)
    assert lo == 0.0 and hi == pytest.approx(1 - 0.025 ** (1 / 100))
    lo, hi = stats.clopper_pearson(100, 100)
    assert hi == 1.0 and lo == pytest.approx(0.025 ** (1 / 100))


def test_mcnemar_uses_the_discordant_pairs_only():
    a = np.array([1] * 50 + [1] * 10 + [0] * 40, bool)
    b = np.array([1] * 50 + [0] * 10 + [0] * 40, bool)
    p, a_only, b_only = stats.mcnemar(a, b)
    assert (a_only, b_only) == (10, 0) and p == pytest.approx(2 * 0.5**10)
    assert stats.mcnemar(a, a)[0] == 1.0


def test_holm_controls_the_family():
    p = np.array([0.01, 0.04, 0.03, 0.5])
    np.testing.assert_allclose(stats.holm(p), [0.04, 0.09, 0.09, 0.5])


def test_every_verdict_names_a_known_source():
    with pytest.raises(ValueError, match="source"):
        stats.Verdict("c", "f", "s", 1.0, 0.0, 2.0, "r", 40, "sequences", "holds", "", "a blog")


def test_mean_intervals_are_interval_for_many_rows_at_once():
    rng = np.random.default_rng(0)
    values, counts = rng.random((7, 40)), rng.integers(5, 30, 40).astype(float)
    got = stats.mean_intervals(values, counts, n_boot=300, seed=4)
    want = stats.interval(values, counts, n_boot=300, seed=4)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    assert (want[2] - want[1] > 0).all()  # the intervals are not degenerate
    per_row = rng.integers(5, 30, (7, 40)).astype(float)  # a count per row and unit (a ratio)
    got = stats.mean_intervals(values, per_row, n_boot=300, seed=4)
    want = stats.interval(values, per_row, n_boot=300, seed=4)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_a_verdict_on_one_mean_weights_units_by_their_counts():
    rng = np.random.default_rng(3)
    counts = rng.integers(50, 120, size=40).astype(float)
    sums = counts * rng.normal(0.2, 0.05, size=40)
    v = stats.mean_verdict("c", "Figure 1", "s", sums, counts, threshold=0.0, seed=1)
    assert v.n == 40 and v.verdict == "holds"
    assert v.value == pytest.approx(sums.sum() / counts.sum())
    assert v.lo < v.value < v.hi
    against = stats.mean_verdict("c", "Figure 1", "s", -sums, counts, threshold=0.0, seed=1)
    assert against.verdict == "does not hold" and against.hi == pytest.approx(-v.lo)
    few = stats.mean_verdict("c", "Figure 1", "s", sums[:3], counts[:3], threshold=0.0)
    assert few.verdict == "not enough data"
