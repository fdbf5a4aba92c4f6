r"""Stage boundaries from per-layer curves by exact Bayesian change-point segmentation.

The paper draws its four stage boundaries by eye. Here they are fitted: a few per-layer curves
(drop-KL, previous-token attention, prediction/suppression-neuron fractions, ...) are modelled
jointly as piecewise constant in depth, with the same K segments for every curve, and the
posterior over where each boundary lies is computed exactly by enumerating every segmentation.

Model. Let ``x[i, c]`` be curve ``c`` at layer row ``i`` (``N`` rows in depth order, ``d``
curves). Each column is standardised over layers (z-score, ``ddof=0``); a column with zero
variance carries no information and is dropped; NaN or inf is an error. A segmentation splits
rows ``0..N-1`` into K contiguous segments of lengths ``n_1..n_K``, each at least ``min_size``,
and all such segmentations are a priori equally likely. Within segment ``s`` column ``c`` has
mean ``mu[s, c]`` (flat prior) and every value has iid Gaussian noise of a common unknown variance
``sigma^2`` (Jeffreys prior ``1/sigma``). Integrating out the means and ``sigma``:

.. math::

    p(x \mid \text{segmentation}) \propto
        \prod_{s=1}^{K} n_s^{-d/2} \; \mathrm{SSE}^{-(Nd - Kd)/2},
    \qquad
    \mathrm{SSE} = \sum_{s} \sum_{c} \sum_{i \in s} (x_{ic} - \bar x_{sc})^2,

with a constant shared by all segmentations with the same ``N``, ``d`` and K. ``SSE`` is floored
at ``1e-12`` times the total sum of squares so a noise-free step signal still gives a finite,
sharply peaked posterior. Segment sums of squares come from cumulative sums, the
segmentations from :func:`itertools.combinations` (in chunks, vectorised with numpy), and the
normalisation uses log-sum-exp. Because the priors on the means are improper, ``log_evidence``
is only comparable between fits with the same data and the same K: it carries an arbitrary
factor per segment mean, so it cannot choose K. :attr:`BoundaryFit.bic` can (see there).

Conventions. A boundary is reported as the row (or layer) at which a new segment *starts*: a
boundary at ``t`` sits between ``t - 1`` and ``t``; for consecutive layers its relative depth is
``(t - 0.5) / (n_layers - 1)``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

MAX_SEGMENTATIONS = 5_000_000
"""Largest number of segmentations :func:`fit_boundaries` will enumerate."""

_CHUNK = 200_000  # segmentations scored per vectorised step (bounds memory)
_SSE_FLOOR = 1e-12  # relative to the total sum of squares

METHOD = (
    "Boundaries are the joint MAP of an exact Bayesian change-point segmentation (piecewise-"
    "constant means shared by the z-scored curves, Gaussian noise, all segmentations enumerated);"
    " intervals are central {level:.0%} credible intervals of each boundary's marginal posterior."
)


@dataclass(frozen=True)
class BoundaryFit:
    """Result of :func:`fit_boundaries`.

    Attributes:
        starts: MAP segmentation: the row index at which each of segments 2..K starts (K-1
            strictly increasing values in ``[min_size, N - min_size]``).
        posterior: ``[K-1, N]`` marginal posterior probability that boundary ``j`` (0-based)
            starts at row ``t``; each row sums to 1.
        log_evidence: log of the marginal likelihood summed over all allowed segmentations, up to
            the constant shared by all segmentations (add ``-log(n_segmentations)`` for the
            prior-weighted average).
        columns: the columns actually used, in input order, after dropping constant ones.
        sse: the smallest within-segment sum of squares over all allowed segmentations (that of
            the least-squares segmentation, which need not be the MAP one), in standardised
            units, floored like the fit's.
    """

    starts: tuple[int, ...]
    posterior: np.ndarray
    log_evidence: float
    columns: tuple[str, ...]
    sse: float

    @property
    def n_segments(self) -> int:
        """Number of segments K."""
        return len(self.starts) + 1

    @property
    def n_rows(self) -> int:
        """Number of layer rows N the fit was made on."""
        return int(self.posterior.shape[1])

    @property
    def bic(self) -> float:
        """Schwarz criterion of the K-segment model; lower is better, comparable across K.

        ``n log(SSE / n) + p log n`` with ``n = N d`` standardised values, ``SSE`` = :attr:`sse`
        (maximum likelihood over means, noise variance and segmentation) and
        ``p = K d + (K - 1) + 1`` free parameters: the segment means, the boundaries (one each,
        as in Yao 1988) and the noise variance. ``-bic / 2`` approximates the log evidence under a
        unit-information prior on the parameters (Kass and Wasserman 1995), so differences
        between K are comparable where :attr:`log_evidence` is not. It keeps the fit's
        assumptions (iid Gaussian noise of one variance around piecewise-constant means) and
        adds a large-sample one; residuals that are correlated along depth make extra segments
        look better than they are.
        """
        n = self.n_rows * len(self.columns)
        k = self.n_segments
        n_params = k * len(self.columns) + k
        return n * math.log(self.sse / n) + n_params * math.log(n)


def _standardise(signals: pd.DataFrame) -> tuple[np.ndarray, tuple[str, ...]]:
    """Z-score each column over rows; drop constant columns. Returns ``([N, d], columns)``."""
    try:
        values = signals.to_numpy(dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"signals must be numeric: {err}") from err
    if np.isnan(values).any():
        bad = [str(c) for c in signals.columns[np.isnan(values).any(axis=0)]]
        raise ValueError(f"signals contain NaN in column(s) {bad}")
    if not np.isfinite(values).all():
        raise ValueError("signals contain infinite values")
    keep = [j for j in range(values.shape[1]) if np.ptp(values[:, j]) > 0] if len(values) else []
    if not keep:
        raise ValueError("no usable column: every column is constant (or there are no rows)")
    x = values[:, keep]
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    return x, tuple(str(signals.columns[j]) for j in keep)


def _n_segmentations(n_rows: int, n_segments: int, min_size: int) -> int:
    """Number of ways to cut ``n_rows`` rows into ``n_segments`` segments of >= ``min_size``."""
    free = n_rows - n_segments * min_size
    return math.comb(free + n_segments - 1, n_segments - 1)


def _segmentation_chunks(n_rows: int, n_segments: int, min_size: int):
    """Yield ``[n, K+1]`` int arrays of segment edges ``0 = e_0 < ... < e_K = N``, in lex order.

    Boundaries ``t_j`` (j = 1..K-1) with all gaps >= ``min_size`` are ``t_j = u_j + j(m - 1)``
    for strictly increasing ``u_j`` in ``1..N - Km + K - 1``, so plain combinations suffice.
    """
    n_b = n_segments - 1
    top = n_rows - n_segments * min_size + n_segments - 1
    shift = np.arange(1, n_b + 1) * (min_size - 1)
    combos = itertools.combinations(range(1, top + 1), n_b)
    while True:
        block = list(itertools.islice(combos, _CHUNK))
        if not block:
            return
        inner = np.array(block, dtype=np.int64).reshape(len(block), n_b) + shift
        edges = np.empty((len(block), n_segments + 1), dtype=np.int64)
        edges[:, 0] = 0
        edges[:, -1] = n_rows
        edges[:, 1:-1] = inner
        yield edges


def fit_boundaries(signals: pd.DataFrame, n_segments: int = 4, *, min_size: int = 1) -> BoundaryFit:
    """Fit K-segment piecewise-constant means to per-layer curves; exact boundary posterior.

    Args:
        signals: one row per layer in depth order, one numeric column per curve (``[N, d]``).
            Constant columns are dropped; NaN or inf raises.
        n_segments: number of segments K (stages); K-1 boundaries are fitted.
        min_size: smallest allowed segment length, in rows.

    Returns:
        The MAP boundaries (row indices where segments 2..K start), the ``[K-1, N]`` marginal
        posterior of each boundary, the log evidence and the columns used.

    Raises:
        ValueError: on NaN/inf or non-numeric data, all-constant data, ``n_segments < 1``,
            ``min_size < 1``, ``N < n_segments * min_size``, or more than
            :data:`MAX_SEGMENTATIONS` segmentations.
    """
    if n_segments < 1:
        raise ValueError(f"n_segments must be >= 1, got {n_segments}")
    if min_size < 1:
        raise ValueError(f"min_size must be >= 1, got {min_size}")
    n_rows = len(signals)
    if n_rows < n_segments * min_size:
        raise ValueError(
            f"{n_rows} layers are too few for {n_segments} segments of at least {min_size}"
        )
    count = _n_segmentations(n_rows, n_segments, min_size)
    if count > MAX_SEGMENTATIONS:
        raise ValueError(
            f"{count:,} segmentations exceed the limit of {MAX_SEGMENTATIONS:,}; use fewer "
            "segments, a larger min_size, or coarser layers"
        )
    x, columns = _standardise(signals)
    d = x.shape[1]
    # Cumulative sums with a leading zero row: sums over rows a..b-1 are S[b] - S[a].
    csum = np.vstack([np.zeros((1, d)), np.cumsum(x, axis=0)])
    csq = np.concatenate([[0.0], np.cumsum((x**2).sum(axis=1))])
    floor = _SSE_FLOOR * float(csq[-1])
    exponent = (n_rows * d - n_segments * d) / 2.0

    n_b = n_segments - 1
    acc = np.zeros((n_b, n_rows))  # sum of exp(loglik - ref) per boundary and row
    total = 0.0
    ref = -np.inf
    best_ll, best = -np.inf, ()
    least_sse = np.inf
    for edges in _segmentation_chunks(n_rows, n_segments, min_size):
        lo, hi = edges[:, :-1], edges[:, 1:]
        length = hi - lo
        means_sq = ((csum[hi] - csum[lo]) ** 2).sum(axis=-1) / length  # [n, K]
        sse = (csq[hi] - csq[lo] - means_sq).sum(axis=1)
        least_sse = min(least_sse, float(sse.min()))
        ll = -0.5 * d * np.log(length).sum(axis=1) - exponent * np.log(np.maximum(sse, floor))
        i = int(np.argmax(ll))
        if ll[i] > best_ll:
            best_ll, best = float(ll[i]), tuple(int(t) for t in edges[i, 1:-1])
        if ll[i] > ref:  # rescale what has been accumulated to the new reference
            scale = math.exp(ref - ll[i]) if np.isfinite(ref) else 0.0
            acc *= scale
            total *= scale
            ref = float(ll[i])
        w = np.exp(ll - ref)
        total += float(w.sum())
        for j in range(n_b):
            acc[j] += np.bincount(edges[:, j + 1], weights=w, minlength=n_rows)
    posterior = acc / total
    return BoundaryFit(
        starts=best,
        posterior=posterior,
        log_evidence=ref + math.log(total),
        columns=columns,
        sse=max(least_sse, floor),
    )


def _rel_depth(layer: float, n_layers: int) -> float:
    """Relative depth of a boundary at which ``layer`` starts a new stage."""
    return (layer - 0.5) / (n_layers - 1)


def boundary_table(
    fit: BoundaryFit,
    layers: Sequence[int] | np.ndarray,
    n_layers: int,
    *,
    level: float = 0.9,
) -> pd.DataFrame:
    """One row per boundary, in model layer numbers and relative depth, with credible intervals.

    Args:
        fit: result of :func:`fit_boundaries`.
        layers: ``[N]`` layer number of each row the fit was made on (row position -> layer).
        n_layers: number of layers in the model, for relative depth.
        level: probability of the central credible interval, in (0, 1).

    Returns:
        Columns ``boundary`` (1..K-1), ``layer`` (first layer of the new stage, joint MAP),
        ``rel_depth`` (``(layer - 0.5) / (n_layers - 1)``: the boundary sits between
        ``layer - 1`` and ``layer``), ``probability`` (marginal posterior probability of the MAP
        location), ``layer_lo``, ``layer_hi`` (central credible interval: where the boundary's
        marginal CDF first reaches ``(1 - level) / 2`` and ``1 - (1 - level) / 2``),
        ``rel_depth_lo`` and ``rel_depth_hi``.
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    if n_layers < 2:
        raise ValueError(f"n_layers must be >= 2, got {n_layers}")
    layers = np.asarray(layers)
    if layers.shape != (fit.n_rows,):
        raise ValueError(f"layers has shape {layers.shape}; the fit has {fit.n_rows} rows")
    tail = (1.0 - level) / 2.0
    rows = []
    for j, start in enumerate(fit.starts):
        cdf = np.cumsum(fit.posterior[j])
        i_lo, i_hi = np.searchsorted(cdf, [tail - 1e-12, 1.0 - tail - 1e-12], side="left")
        lo = int(layers[min(int(i_lo), fit.n_rows - 1)])
        hi = int(layers[min(int(i_hi), fit.n_rows - 1)])
        layer = int(layers[start])
        rows.append(
            {
                "boundary": j + 1,
                "layer": layer,
                "rel_depth": _rel_depth(layer, n_layers),
                "probability": float(fit.posterior[j, start]),
                "layer_lo": lo,
                "layer_hi": hi,
                "rel_depth_lo": _rel_depth(lo, n_layers),
                "rel_depth_hi": _rel_depth(hi, n_layers),
            }
        )
    columns = ["boundary", "layer", "rel_depth", "probability"]
    columns += ["layer_lo", "layer_hi", "rel_depth_lo", "rel_depth_hi"]
    return pd.DataFrame(rows, columns=columns)


def stage_boundaries(
    curves: pd.DataFrame,
    columns: Sequence[str],
    *,
    n_stages: int = 4,
    min_size: int = 1,
    level: float = 0.9,
    layer: str = "layer",
    n_layers: int | None = None,
) -> pd.DataFrame:
    """Fit stage boundaries to some columns of a per-layer table.

    Args:
        curves: one row per layer with a ``layer`` column (any row order; duplicates raise).
        columns: the curves to fit jointly.
        n_stages: number of stages K.
        min_size: smallest stage length, in rows.
        level: credible-interval probability.
        layer: name of the layer-number column.
        n_layers: layers in the model, for relative depth; default ``max(layer) + 1``.

    Returns:
        :func:`boundary_table` of the fit, with ``attrs['columns']`` (the curves used, constant
        ones dropped), ``attrs['starts']`` (MAP start layers), ``attrs['log_evidence']`` (only
        comparable between fits with the same K), ``attrs['bic']`` (:attr:`BoundaryFit.bic`,
        comparable across K) and ``attrs['method']`` (one sentence for captions).
    """
    if curves[layer].duplicated().any():
        raise ValueError(f"duplicate values in column {layer!r}")
    ordered = curves.sort_values(layer, kind="stable")
    layers = ordered[layer].to_numpy()
    fit = fit_boundaries(ordered[list(columns)], n_stages, min_size=min_size)
    total = int(layers.max()) + 1 if n_layers is None else n_layers
    table = boundary_table(fit, layers, total, level=level)
    table.attrs["columns"] = list(fit.columns)
    table.attrs["starts"] = [int(layers[t]) for t in fit.starts]
    table.attrs["log_evidence"] = fit.log_evidence
    table.attrs["bic"] = fit.bic
    table.attrs["method"] = METHOD.format(level=level)
    return table


def stage_of(layers: Sequence[int] | np.ndarray, starts: Sequence[int]) -> np.ndarray:
    """Stage number (1..K) of each layer, given the layers at which stages 2..K start.

    Args:
        layers: ``[n]`` layer numbers (or row indices).
        starts: K-1 strictly increasing start layers, in the same units as ``layers``.

    Returns:
        ``[n]`` int array: ``1 + number of starts <= layer``.
    """
    s = np.asarray(starts)
    if s.size > 1 and np.any(np.diff(s) <= 0):
        raise ValueError(f"starts must be strictly increasing, got {list(s)}")
    return np.searchsorted(s, np.asarray(layers), side="right") + 1
