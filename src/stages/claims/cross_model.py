"""Claims across models: the same shapes, the same features at the same relative depth.

The paper overlays models on relative depth ``layer / (n_layers - 1)`` and sees the same shapes.

**Same shape** (:func:`shape_agreement`): for each signal of
:data:`stages.analyses.signals.CURVES`, both models' curves are interpolated onto a common grid
of ``m`` relative depths spread evenly over 0.1-0.9 (``m``: the layers of the shallower model in
that range; the ends are left out because the first-layer catastrophe and the last layer's KL of
0 make any two curves agree there for free; the neuron fractions, of the weights alone, over
0.1-1.0: they sit in the last layers), each is z-scored over the grid, and the statistic
is Pearson's r between them. A shape is a property of layers, so the interval resamples layers
(a circular block bootstrap over the grid points, :mod:`stages.claims.association`) and ``n``
counts grid points; the null shifts and reverses model B's curve circularly (each curve keeps
its smoothness). Holds above the null's 95th percentile; does not hold only when the whole
interval is below 0 (the curves move in opposite directions); *no evidence* at or below chance.

**Same place** (:func:`same_depth`): a feature's relative depth in each model (where
previous-token attention peaks; where the logit lens's KL first falls to half its value at
relative depth 0.1), each with a bootstrap over that model's sequences; the claim is an
equivalence, decided with a margin of :data:`EQUIVALENCE` relative depth.

**Depth and robustness** (:func:`deeper_is_more_robust`): with three or more models, the rank
correlation of depth and robustness across models; with two, not enough data.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np

from stages import stats
from stages.analyses.cross_model import Sample
from stages.analyses.signals import CURVES, curve
from stages.claims.association import layer_verdict, shape_correlation, spearman
from stages.depth import MIDDLE, rel_depth
from stages.stats import Verdict

GRID = (0.1, 0.9)
"""The relative depths the shapes are compared over (closed range)."""

WEIGHT_GRID = (0.1, 1.0)
"""The range for the neuron fractions (weights only): the reasons to leave the last layers out
(the lens's KL of 0 at the output, the last-layer catastrophe of a drop) do not apply to them,
and the paper places prediction and suppression neurons in the last layers."""

WEIGHT_CURVES = ("prediction_frac", "suppression_frac")

EQUIVALENCE = 0.1
"""Margin of relative depth within which two models' features count as at the same depth."""

MIN_MODELS = 3
"""Fewest models a claim about depth across models needs."""


def _depths(n_points: int, n_layers: int) -> np.ndarray:
    """``[n_points]`` relative depths of a curve's points (a swap at its first layer)."""
    return np.arange(n_points) / max(1, n_layers - 1)


def common_grid(
    n_layers_a: int, n_layers_b: int, span: tuple[float, float] = GRID
) -> np.ndarray:  # fmt: skip
    """``[m]`` relative depths spread evenly over ``span``, ``m`` from the shallower model.

    ``m`` is the number of layers ``l`` of the model with fewer layers whose relative depth
    ``l / (n_layers - 1)`` lies in ``span``, so neither curve is compared at more points than
    it has layers there.
    """
    depth = rel_depth(np.arange(min(n_layers_a, n_layers_b)), min(n_layers_a, n_layers_b))
    m = int(((depth >= span[0] - 1e-12) & (depth <= span[1] + 1e-12)).sum())
    return np.linspace(*span, m)


def shape_agreement(a: Sample, b: Sample, signal: str, *, seed: int = 0) -> Verdict:
    """Whether ``a`` and ``b`` have the same shape of ``signal`` over relative depth 0.1-0.9.

    Pearson's r of the two z-scored curves on :func:`common_grid`, with a circular block
    bootstrap over the grid points and the null of every circular shift and reversed shift of
    ``b``'s curve (:func:`stages.claims.association.shape_correlation`), decided by
    :func:`stages.claims.association.layer_verdict`.
    """
    est_a = curve(a.frames, a.classes, a.n_layers, signal, seed=seed)[0]
    est_b = curve(b.frames, b.classes, b.n_layers, signal, seed=seed + 1)[0]
    weights = signal in WEIGHT_CURVES
    span = WEIGHT_GRID if weights else GRID
    grid = common_grid(a.n_layers, b.n_layers, span)
    x = np.interp(grid, _depths(len(est_a), a.n_layers), est_a)
    y = np.interp(grid, _depths(len(est_b), b.n_layers), est_b)
    claim = f"{CURVES[signal]}: the same shape in both models"
    if len(grid) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        why = f"needs curves that vary over at least 3 relative depths in {span[0]}-{span[1]}"
        return stats.missing(claim, "Figures 3-6", why, "layers (common depth grid)")
    association = shape_correlation(x, y, seed=seed)
    statistic = (
        f"Pearson's r between {a.name}'s and {b.name}'s curves, each interpolated onto "
        f"{len(grid)} relative depths spread evenly over {span[0]}-{span[1]} and z-scored"
    )
    null = f"every circular shift and reversed circular shift of {b.name}'s curve"
    detail = (
        association.describe(null, "grid points")
        + ("; weights only: no sampling error in the curves" if weights else
           f"; curves from {a.n_seq} and {b.n_seq} sequences")  # fmt: skip
    )
    return layer_verdict(
        claim, "Figures 3-6", statistic, association, unit="layers (common depth grid)",
        n_seq=None if weights else min(a.n_seq, b.n_seq), detail=detail,
    )  # fmt: skip


# --------------------------------------------------------------------------- locations


def peak_depth(values: np.ndarray, n_layers: int) -> np.ndarray:
    """Relative depth of a curve's peak, between layers.

    The vertex of the parabola through the top layer and its two neighbours, clipped to the
    neighbours (at the first or last layer: that layer), so the location moves continuously
    with the curve instead of jumping from layer to layer.

    Args:
        values: ``[k, ...]`` curves over ``k`` layers (e.g. ``[k, n_boot]`` resamples).
        n_layers: the model's blocks (for relative depth).

    Returns:
        ``[...]`` relative depths in ``[0, (k - 1) / (n_layers - 1)]``.
    """
    k = len(values)
    top = np.argmax(values, axis=0)
    inner = np.clip(top, 1, k - 2)
    left, mid, right = (
        np.take_along_axis(values, (inner + d)[None], axis=0)[0] for d in (-1, 0, 1)
    )
    curvature = left - 2 * mid + right
    with np.errstate(invalid="ignore", divide="ignore"):
        offset = np.where(curvature < 0, 0.5 * (left - right) / curvature, 0.0)
    offset = np.where((top == 0) | (top == k - 1), 0.0, np.clip(offset, -1.0, 1.0))
    return (top + offset) / max(1, n_layers - 1)


def half_fall_depth(values: np.ndarray, n_layers: int) -> np.ndarray:
    """Relative depth at which a curve first falls to half its value at relative depth 0.1.

    The reference is the first layer at relative depth >= :data:`GRID`'s start (0.1): the
    logit lens right after the first layers reads the embedding more than any prediction
    (gemma-3-270m: 111 nats after layer 0, 22 after layer 1), so halving from layer 0 would
    locate the end of the embedding, not the fall. Linear interpolation between the last layer
    above half and the first at or below it; NaN where the curve never falls that far.

    Args:
        values: ``[k, ...]`` curves over ``k`` layers (e.g. the logit lens's KL, ``[k, n_boot]``).
        n_layers: the model's blocks (for relative depth).

    Returns:
        ``[...]`` relative depths.
    """
    start = int(np.argmax(rel_depth(np.arange(len(values)), n_layers) >= GRID[0] - 1e-12))
    half = values[start] / 2
    below = (values <= half) & (np.arange(len(values)) >= start).reshape(
        (-1,) + (1,) * (values.ndim - 1)
    )
    first = np.argmax(below, axis=0)  # the first layer at or below half (0 if none)
    before = np.maximum(first - 1, 0)
    v0 = np.take_along_axis(values, before[None], axis=0)[0]
    v1 = np.take_along_axis(values, first[None], axis=0)[0]
    with np.errstate(invalid="ignore", divide="ignore"):
        step = np.where(first > 0, (v0 - half) / (v0 - v1), 0.0)
    where = np.where(below.any(axis=0), before + step, np.nan)
    return where / max(1, n_layers - 1)


LOCATIONS: dict[str, tuple[str, str, Callable[[np.ndarray, int], np.ndarray]]] = {
    "prev_attention": ("the peak of attention on the previous 5 tokens", "Figure 4", peak_depth),
    "lens_kl": ("the logit lens's KL first falling to half its value at relative depth 0.1",
                "Figure 6", half_fall_depth),
}  # fmt: skip
"""The features located across models: the curve, and its feature, figure and locator."""


def same_depth(a: Sample, b: Sample, signal: str, *, seed: int = 0) -> Verdict:
    """Whether a feature of ``signal`` (:data:`LOCATIONS`) lies at the same relative depth.

    The feature's relative depth in each model, from its curve of token means; the interval of
    the difference ``depth(a) - depth(b)`` resamples each model's sequences independently (the
    models read different tokenizations of the text). An equivalence with a margin of
    :data:`EQUIVALENCE`; not enough data below :data:`stages.stats.MIN_UNITS` sequences per
    model.
    """
    feature, figure, locate = LOCATIONS[signal]
    est_a, dist_a = curve(a.frames, a.classes, a.n_layers, signal, seed=seed)
    est_b, dist_b = curve(b.frames, b.classes, b.n_layers, signal, seed=seed + 1)
    where_a, where_b = float(locate(est_a, a.n_layers)), float(locate(est_b, b.n_layers))
    lo, hi, undefined = stats.defined_percentile(
        locate(dist_a, a.n_layers) - locate(dist_b, b.n_layers)
    )
    n = min(a.n_seq, b.n_seq)
    m = EQUIVALENCE
    verdict = "not enough data" if n < stats.MIN_UNITS else stats.decide_within(lo, hi, -m, m)
    rule = (
        f"holds if the whole 95% interval of the difference lies between -{m:g} and {m:g} of "
        f"relative depth; does not hold if it lies entirely above {m:g} or entirely below "
        f"-{m:g}; unclear otherwise; not enough data below {stats.MIN_UNITS} sequences per model"
    )
    detail = (
        f"{a.name} at relative depth {where_a:.3f}, {b.name} at {where_b:.3f}; 95% interval "
        f"from {dist_a.shape[-1]} resamples of each model's sequences, independently"
        + (f"; {undefined} resamples without the feature count against the claim" if undefined
           else "")
        + (f"; the interval is {hi - lo:.2g} wide" if hi > lo else
           "; the interval has zero width: the location did not move in any resample")
    )  # fmt: skip
    return Verdict(
        f"{feature} lies at the same relative depth in both models", figure,
        f"relative depth of {feature}, {a.name} minus {b.name}",
        where_a - where_b, lo, hi, rule, n, "sequences per model", verdict, detail, "paper v1",
    )  # fmt: skip


# --------------------------------------------------------------------------- depth


def _kept(sample: Sample, seed: int) -> tuple[float, np.ndarray]:
    """Mean share of top-1 predictions kept over the middle-layer drops, and ``[n_boot]``."""
    est, dist = curve(sample.frames, sample.classes, sample.n_layers, "drop_rel_acc", seed=seed)
    depth = rel_depth(np.arange(len(est)), sample.n_layers)
    mid = (depth >= MIDDLE[0]) & (depth <= MIDDLE[1])
    return float(est[mid].mean()), dist[mid].mean(axis=0)


def deeper_is_more_robust(samples: list[Sample], *, seed: int = 0) -> Verdict:
    """Whether models with more layers keep more top-1 predictions under middle-layer drops.

    Spearman's rho across models between the number of layers and the mean share of top-1
    predictions kept over the middle-layer drops (relative depth 0.25-0.75); its interval
    resamples every model's sequences independently. Two models differ in far more than depth
    (family, data, tokenizer, tuning), so below :data:`MIN_MODELS` models the verdict is not
    enough data: the two numbers and their difference are still given, with the interval and
    ``n`` of the sequences each model's share is resampled over.
    """
    claim = "models with more layers are more robust to dropping a middle layer"
    if len(samples) < 2:
        return stats.missing(claim, "abstract (v1)", "needs two models or more", "models")
    ordered = sorted(samples, key=lambda s: -s.n_layers)
    kept = [_kept(s, seed + k) for k, s in enumerate(ordered)]
    numbers = ", ".join(
        f"{s.name} ({s.n_layers} layers) {k[0]:.1%}" for s, k in zip(ordered, kept, strict=True)
    )
    n_seq = min(s.n_seq for s in ordered)
    rule = (
        "holds if the whole 95% interval of rho is > 0; does not hold if it is entirely < 0; "
        f"unclear if it contains 0; not enough data below {MIN_MODELS} models or "
        f"{stats.MIN_UNITS} sequences per model"
    )
    if len(ordered) < MIN_MODELS:
        (deep, shallow), (k_deep, k_shallow) = ordered[:2], kept[:2]
        lo, hi = stats.percentile(k_deep[1] - k_shallow[1])
        return Verdict(
            claim, "abstract (v1)",
            f"mean share of top-1 predictions kept over the middle-layer drops, {deep.name} "
            f"({deep.n_layers} layers) minus {shallow.name} ({shallow.n_layers} layers)",
            k_deep[0] - k_shallow[0], float(lo), float(hi), rule, n_seq, "sequences per model",
            "not enough data",
            f"{numbers}; two models differ in family, data, tokenizer and tuning as well as "
            f"depth, so their difference cannot be put down to depth; the rule asks for "
            f"{MIN_MODELS} or more models",
        )  # fmt: skip
    layers = np.array([s.n_layers for s in ordered], dtype=np.float64)
    estimate = float(spearman(layers, np.array([k[0] for k in kept])))
    dist = spearman(layers[None, :], np.stack([k[1] for k in kept], axis=-1))  # [n_boot]
    lo, hi, _ = stats.defined_percentile(dist)
    v = stats.verdict(
        claim, "abstract (v1)",
        "Spearman's rho across models between the number of layers and the mean share of "
        "top-1 predictions kept over the middle-layer drops",
        estimate, lo, hi, threshold=0.0, n=len(ordered), unit="models", min_units=MIN_MODELS,
        detail=f"{numbers}; interval from resamples of every model's sequences, independently"
        + ("; the interval has zero width: no resample reorders the models" if lo == hi else ""),
    )  # fmt: skip
    few = n_seq < stats.MIN_UNITS
    return replace(v, rule=rule, verdict="not enough data" if few else v.verdict)


def cross_model_claims(samples: list[Sample], *, seed: int = 0) -> list[Verdict]:
    """Shapes and feature depths of the first model against each other, and depth.

    Every curve's shape (the drop KL's is drop_rel_acc's mirror and is left out), then
    :func:`deeper_is_more_robust` when the models differ in depth, then the two
    :data:`LOCATIONS`.
    """
    out = [
        shape_agreement(samples[0], other, signal, seed=seed)
        for other in samples[1:] for signal in CURVES if signal != "drop_kl"
    ]  # fmt: skip
    if len(samples) >= 2 and len({s.n_layers for s in samples}) > 1:
        out.append(deeper_is_more_robust(samples, seed=seed))
    out += [same_depth(samples[0], other, signal, seed=seed)
            for other in samples[1:] for signal in LOCATIONS]  # fmt: skip
    return out
