"""Layer-level association between per-layer curves.

A claim about the *shape* of curves across layers ("the two models' curves have the same
shape", "the KL falls where prediction neurons are", "a score ranks the layers as dropping them
does") is a claim about layers, so the unit that varies is a layer, not a sequence: resampling
sequences leaves the ranks of a handful of per-layer means where they are (a zero-width
interval), and it counts sequences where the claim has only a few layers to rest on. Here:

- the interval of a layer-level statistic is a **circular block bootstrap over layers**
  (:func:`circular_block_indices`, Politis and Romano 1992): runs of ``b = ceil(m ** (1/3))``
  adjacent layers, so that neighbouring layers, which resemble each other, stay together;
- its null keeps each curve's autocorrelation where the claim compares two curves
  (:func:`shifts_and_reversals`: every circular shift and reversed shift of one curve), and
  controls for depth where depth alone could explain the association (:func:`partial_spearman`
  with :func:`freedman_lane` permutations);
- the verdict (:func:`layer_verdict`) is :func:`stages.stats.verdict` with ``null=True`` and the
  margin ``against=0``: *holds* above the null's 95th percentile, *does not hold* only when the
  whole interval is below 0 (the association runs the other way), *no evidence* when it is at or
  below chance.

Every null here contains the observed arrangement (the identity shift, the identity
permutation), so its one-sided p ``mean(null >= observed)`` is never below ``1 / len(null)``.

:func:`fall_tracks_neurons` and :func:`score_tracks_drop` decide two of the book's per-layer
claims this way; :mod:`stages.claims.cross_model` decides the cross-model shapes with the same
helpers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
from scipy import stats as sps

from stages import stats
from stages.stats import Verdict

MIN_LAYERS = 10
"""Fewest layers (grid points, blocks) a layer-level verdict needs; below it: not enough data.

With ``m`` layers the shift null has ``2 m`` arrangements, the observed one among them, so a
one-sided p below 0.05 needs ``m >= 10``; and a bootstrap over fewer layers says little."""

N_PERMUTATIONS = 9999
"""Random permutations of a permutation null (the identity is added: ``N_PERMUTATIONS + 1``)."""

FREEDMAN_LANE = "Freedman–Lane permutations of the neuron ranks' residuals on the depth ranks"


# --------------------------------------------------------------------------- resampling


def block_length(m: int) -> int:
    """The circular block bootstrap's block length over ``m`` layers: ``ceil(m ** (1/3))``."""
    return max(1, math.ceil(m ** (1 / 3) - 1e-9))


def circular_block_indices(
    m: int, n_boot: int = stats.N_BOOT, *, block: int | None = None, seed: int = 0
) -> np.ndarray:
    """Layer indices of a circular block bootstrap.

    Each resample joins ``ceil(m / b)`` blocks of ``b`` consecutive layers, each starting at a
    uniformly drawn layer and wrapping past the last layer to the first, cut to ``m`` layers.

    Args:
        m: layers (points) of the curve.
        n_boot: resamples.
        block: block length ``b``; None: :func:`block_length`.
        seed: the resampling seed.

    Returns:
        ``[n_boot, m]`` integer indices into the layers.
    """
    b = block_length(m) if block is None else block
    starts = np.random.default_rng(seed).integers(0, m, size=(n_boot, -(-m // b)))
    runs = (starts[:, :, None] + np.arange(b)) % m  # [n_boot, n_blocks, b]
    return runs.reshape(n_boot, -1)[:, :m]


def shifts_and_reversals(y: np.ndarray) -> np.ndarray:
    """Every circular shift of ``y`` and of ``y`` reversed: the null arrangements of a curve.

    Shifting (and reversing) a curve keeps its autocorrelation (how smooth it is) and breaks
    only its alignment with another curve, which shuffling layers would break too but at the
    cost of making a smooth curve rough.

    Args:
        y: ``[m]`` a curve over layers.

    Returns:
        ``[2 m, m]``: row ``s < m`` is ``np.roll(y, s)`` (row 0: ``y`` itself), row ``m + s``
        is ``np.roll(y[::-1], s)``.
    """
    y = np.asarray(y)
    m = len(y)
    rolled = (np.arange(m)[None, :] - np.arange(m)[:, None]) % m  # row s: np.roll by s
    return np.concatenate([y[rolled], y[::-1][rolled]])


# --------------------------------------------------------------------------- statistics


def _flat(x: np.ndarray) -> np.ndarray:
    """``[...]`` bool: the values along the last axis span less than ``1e-9`` of their scale."""
    return np.ptp(x, axis=-1) <= 1e-9 * (1 + np.abs(x).max(axis=-1))


def pearson(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson's r along the last axis (``[..., m]`` each, broadcast).

    NaN where ``x`` or ``y`` is flat (:func:`_flat`: a resample of layers that all hold the same
    value, whose r rounding error would otherwise decide).
    """
    x, y = np.broadcast_arrays(np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64))
    xc = x - x.mean(axis=-1, keepdims=True)
    yc = y - y.mean(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (xc * yc).sum(axis=-1) / np.sqrt((xc**2).sum(axis=-1) * (yc**2).sum(axis=-1))
    return np.where(_flat(x) | _flat(y), np.nan, r)


def spearman(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Spearman's rho along the last axis (ties get average ranks); NaN where one is flat."""
    return pearson(sps.rankdata(x, axis=-1), sps.rankdata(y, axis=-1))


def _residuals(y: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Residuals of ``y`` regressed on ``z`` with an intercept, along the last axis."""
    yc = y - y.mean(axis=-1, keepdims=True)
    zc = z - z.mean(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        beta = (yc * zc).sum(axis=-1, keepdims=True) / (zc**2).sum(axis=-1, keepdims=True)
    return yc - np.nan_to_num(beta) * zc


def partial_spearman(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Spearman's rho of ``x`` and ``y`` controlling for ``z``, along the last axis.

    The Pearson correlation of the ranks of ``x`` and of ``y``, each with the linear trend on
    the ranks of ``z`` removed: how far ``y`` tracks ``x`` beyond what ``z`` explains in both.

    Args:
        x: ``[..., k]`` (broadcast with ``y`` and ``z``), e.g. a per-block fall.
        y: ``[..., k]``, e.g. the blocks' neuron counts.
        z: ``[..., k]``, the control, e.g. depth.

    Returns:
        ``[...]``; NaN where a residual is flat.
    """
    rx, ry, rz = (sps.rankdata(v, axis=-1) for v in np.broadcast_arrays(x, y, z))
    return pearson(_residuals(rx, rz), _residuals(ry, rz))


def freedman_lane(
    x: np.ndarray, y: np.ndarray, z: np.ndarray, *, n_perm: int = N_PERMUTATIONS, seed: int = 0
) -> np.ndarray:
    """The Freedman–Lane permutation null of :func:`partial_spearman` ``(x, y | z)``.

    Under the null ``y`` depends on ``z`` alone. The ranks of ``y`` are regressed on the ranks
    of ``z``; each arrangement adds a permutation of the residuals back to the fitted values
    and recomputes the partial correlation with ``x`` (Freedman and Lane 1983; Anderson and
    Legendre 1999). Whatever depth explains stays in place, only the rest is shuffled.

    Args:
        x: ``[k]`` the first variable (its ranks' residuals on ``z`` stay in place).
        y: ``[k]`` the variable whose residuals are permuted.
        z: ``[k]`` the control.
        n_perm: random permutations; the identity is added first.
        seed: the permutations' seed.

    Returns:
        ``[n_perm + 1]``: element 0 is the observed statistic (the identity permutation).
    """
    rx, ry, rz = (sps.rankdata(v) for v in (x, y, z))
    resid_x, resid_y = _residuals(rx, rz), _residuals(ry, rz)
    k = len(ry)
    shuffled = np.random.default_rng(seed).permuted(np.tile(np.arange(k), (n_perm, 1)), axis=1)
    order = np.vstack([np.arange(k), shuffled])  # [n_perm + 1, k]
    y_star = (ry - resid_y) + resid_y[order]  # [n_perm + 1, k]
    return pearson(resid_x, _residuals(y_star, rz))


# --------------------------------------------------------------------------- verdicts


@dataclass(frozen=True)
class Association:
    """A layer-level statistic, its bootstrap distribution over layers and its null.

    Attributes:
        estimate: the statistic on the observed layers.
        distribution: ``[n_boot]`` over circular block resamples of the layers (NaN where a
            resample leaves it undefined).
        null: ``[n_null]`` the statistic under the null's arrangements, the observed one among
            them.
        n: layers (points) resampled.
        block: the block length of the bootstrap.
    """

    estimate: float
    distribution: np.ndarray
    null: np.ndarray
    n: int
    block: int

    @property
    def critical(self) -> float:
        """The null's 95th percentile: what the statistic reaches by chance."""
        return float(np.quantile(self.null, 0.95))

    @property
    def pvalue(self) -> float:
        """One-sided p: the share of the null's arrangements at or above the estimate."""
        return float(np.mean(self.null >= self.estimate - 1e-12))

    def interval(self) -> tuple[float, float]:
        """The 95% percentile interval (undefined resamples count against the claim)."""
        lo, hi, _ = stats.defined_percentile(self.distribution)
        return lo, hi

    def describe(self, null: str, points: str = "layers") -> str:
        """The interval's resampling and the null, in a sentence.

        Args:
            null: the null's arrangements, in words.
            points: what the resampled points are (``layers``, ``blocks``, ``grid points``).
        """
        undefined = int(np.isnan(self.distribution).sum())
        return (
            f"95% interval from {len(self.distribution)} circular block resamples of the "
            f"{self.n} {points} (blocks of {self.block})"
            + (f", {undefined} of them undefined (a flat resample; counted against the claim "
               "at both ends)" if undefined else "")
            + f"; null: {null} ({len(self.null)} arrangements, the observed one among them): "
            f"95% at or below {self.critical:.2f}, one-sided p = {self.pvalue:.3f}"
        )  # fmt: skip


def shape_correlation(
    x: np.ndarray, y: np.ndarray, *, n_boot: int = stats.N_BOOT, seed: int = 0
) -> Association:
    """Pearson's r of two z-scored curves on the same layers, with its layer bootstrap and null.

    Args:
        x: ``[m]`` a curve at ``m`` points (e.g. a common relative-depth grid).
        y: ``[m]`` the other curve at the same points (its shifts make the null).
        n_boot: circular block resamples of the points (pairs ``(x_i, y_i)`` move together).
        seed: the resampling seed.

    Returns:
        An :class:`Association` whose null is r with every :func:`shifts_and_reversals` of
        ``y`` (``2 m`` arrangements).
    """
    zx, zy = sps.zscore(x), sps.zscore(y)
    m = len(zx)
    idx = circular_block_indices(m, n_boot, seed=seed)
    return Association(
        float(pearson(zx, zy)), pearson(zx[idx], zy[idx]), pearson(zx, shifts_and_reversals(zy)),
        m, block_length(m),
    )  # fmt: skip


def layer_verdict(
    claim: str, figure: str, statistic: str, association: Association, *, unit: str,
    n_seq: int | None, detail: str, source: str = "paper v1",
) -> Verdict:  # fmt: skip
    """A verdict on a layer-level association: :func:`stages.stats.verdict` against its null.

    ``null=True, against=0``: holds if the whole 95% interval is above the null's 95th
    percentile; does not hold if it is entirely below 0; no evidence if it lies at or below the
    95th percentile; unclear otherwise. Not enough data below :data:`MIN_LAYERS` layers, or
    below :data:`stages.stats.MIN_UNITS` sequences behind the curves' means (``n_seq``; None
    for curves of the weights alone).
    """
    lo, hi = association.interval()
    v = stats.verdict(
        claim, figure, statistic, association.estimate, lo, hi,
        threshold=association.critical, n=association.n, unit=unit, min_units=MIN_LAYERS,
        null=True, against=0.0, detail=detail, source=source,
    )  # fmt: skip
    if n_seq is None:
        return v
    few = n_seq < stats.MIN_UNITS
    return replace(
        v,
        rule=f"{v.rule}, or below {stats.MIN_UNITS} sequences behind the curves",
        verdict="not enough data" if few else v.verdict,
    )


