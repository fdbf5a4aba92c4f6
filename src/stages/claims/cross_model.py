"""Claims across models: do two models' curves have the same shape on relative depth?

The paper overlays models on relative depth and sees the same shapes. Here, for each signal of
:data:`stages.analyses.signals.CURVES`, model B's curve is interpolated at model A's middle layers
(relative depth 0.25-0.75: the ends are left out because the first-layer catastrophe and the
last layer's KL of 0 make any two curves agree there for free) and the statistic is Spearman's
rho between the two. Its interval resamples each model's sequences independently; the null is
the same rho with model B's values shuffled over those layers (a permutation test); the curves
agree when the interval lies above the null's 95th percentile.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as sps

from stages import stats
from stages.analyses.signals import CURVES, curve
from stages.claims.depth import MIDDLE, rel_depth
from stages.stats import Verdict

N_PERMUTATIONS = 9999


@dataclass(frozen=True)
class Sample:
    """One model's per-sequence sums (``frames``: sweep, attention, norms, lens) and classes."""

    name: str
    frames: Mapping[str, pd.DataFrame]
    classes: pd.DataFrame
    n_layers: int

    @property
    def n_seq(self) -> int:
        """Sequences of the sample."""
        return len(self.frames["sweep"])


def _depths(n_points: int, n_layers: int) -> np.ndarray:
    return np.arange(n_points) / max(1, n_layers - 1)


def _spearman(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman's rho between ``a`` and ``b`` along axis 0 (``[k, ...]`` each)."""
    ra, rb = sps.rankdata(a, axis=0), sps.rankdata(b, axis=0)
    ra, rb = ra - ra.mean(axis=0), rb - rb.mean(axis=0)
    return (ra * rb).sum(axis=0) / np.sqrt((ra**2).sum(axis=0) * (rb**2).sum(axis=0))


def shape_agreement(a: Sample, b: Sample, signal: str, *, seed: int = 0) -> Verdict:
    """Whether ``a`` and ``b`` have the same shape of ``signal`` over the middle layers."""
    est_a, dist_a = curve(a.frames, a.classes, a.n_layers, signal, seed=seed)
    est_b, dist_b = curve(b.frames, b.classes, b.n_layers, signal, seed=seed + 1)
    depth_a = _depths(len(est_a), a.n_layers)
    depth_b = _depths(len(est_b), b.n_layers)
    mid = (depth_a >= MIDDLE[0]) & (depth_a <= MIDDLE[1])
    claim = f"{CURVES[signal]}: the same shape in both models"

    def on_a(values_b: np.ndarray) -> np.ndarray:  # [k_b, ...] -> [k_mid, ...]
        flat = values_b.reshape(len(values_b), -1)
        cols = [np.interp(depth_a[mid], depth_b, flat[:, j]) for j in range(flat.shape[1])]
        return np.stack(cols, axis=-1).reshape((int(mid.sum()), *values_b.shape[1:]))

    x, y = est_a[mid], on_a(est_b)
    if np.ptp(x) == 0 or np.ptp(y) == 0 or mid.sum() < 4:
        return Verdict(claim, "Figures 3-6", "Spearman's rho", np.nan, np.nan, np.nan,
                       "needs curves that vary over at least 4 middle layers",
                       min(a.n_seq, b.n_seq), "sequences per model", "not enough data",
                       "a constant curve has no shape to compare")  # fmt: skip
    estimate = float(_spearman(x, y))
    boot = _spearman(dist_a[mid], on_a(dist_b))
    lo, hi = stats.percentile(boot)
    weights_only = np.ptp(dist_a, axis=-1).max() == 0 and np.ptp(dist_b, axis=-1).max() == 0
    null = sps.permutation_test(
        (x, y),
        lambda u, v: sps.spearmanr(u, v).statistic,
        permutation_type="pairings",
        n_resamples=N_PERMUTATIONS,
        alternative="greater",
        rng=np.random.default_rng(seed),
    )
    critical = float(np.quantile(null.null_distribution, 0.95))
    statistic = (
        f"Spearman's rho between {a.name}'s curve at its {int(mid.sum())} middle layers and "
        f"{b.name}'s interpolated at the same relative depths"
    )
    detail = (
        f"null of shuffled layers: 95% of rho below {critical:.2f} (one-sided permutation "
        f"p = {null.pvalue:.3f})"
    )
    if weights_only:  # neuron fractions: no sampling error, the value is exact
        return Verdict(
            claim, "Figures 3-6", statistic, estimate, estimate, estimate,
            f"holds if rho > {critical:.3g} (the null's 95th percentile), else does not hold "
            "(weights only: exact, no interval)",
            int(mid.sum()), "middle layers (weights only)",
            "holds" if estimate > critical else "does not hold", detail,
        )  # fmt: skip
    return stats.verdict(
        claim,
        "Figures 3-6",
        statistic,
        estimate,
        float(lo),
        float(hi),
        threshold=critical,
        n=min(a.n_seq, b.n_seq),
        unit="sequences per model",
        null=True,
        detail=detail,
    )


def deeper_is_more_robust(samples: list[Sample], *, seed: int = 0) -> Verdict:
    """The model with more layers keeps more top-1 predictions under middle-layer drops."""
    deep, shallow = sorted(samples, key=lambda s: -s.n_layers)[:2]
    parts = []
    for k, s in enumerate((deep, shallow)):
        est, dist = curve(s.frames, s.classes, s.n_layers, "drop_rel_acc", seed=seed + k)
        depth = rel_depth(np.arange(len(est)), s.n_layers)
        mid = (depth >= MIDDLE[0]) & (depth <= MIDDLE[1])
        parts.append((est[mid].mean(), dist[mid].mean(axis=0)))
    estimate = parts[0][0] - parts[1][0]
    lo, hi = stats.percentile(parts[0][1] - parts[1][1])
    return stats.verdict(
        "models with more layers are more robust to dropping a middle layer",
        "abstract (v1)",
        f"mean share of top-1 predictions kept over the middle-layer drops, {deep.name} "
        f"({deep.n_layers} layers) minus {shallow.name} ({shallow.n_layers} layers)",
        estimate,
        float(lo),
        float(hi),
        threshold=0.0,
        n=min(deep.n_seq, shallow.n_seq),
        unit="sequences per model",
        detail=f"{parts[0][0]:.1%} vs {parts[1][0]:.1%}; a weak comparison: two models that "
        "differ in family, data, size and tokenizer as well as depth",
    )


def cross_model_claims(samples: list[Sample], *, seed: int = 0) -> list[Verdict]:
    """Shape agreement of every curve between the first model and each other, and depth."""
    out = []
    for other in samples[1:]:
        for signal in CURVES:
            if signal == "drop_kl":
                continue  # the KL's shape is drop_rel_acc's mirror: one of them suffices
            out.append(shape_agreement(samples[0], other, signal, seed=seed))
    if len(samples) >= 2 and len({s.n_layers for s in samples}) > 1:
        out.append(deeper_is_more_robust(samples, seed=seed))
    return out
