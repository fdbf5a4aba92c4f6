"""Per-layer signal curves from per-sequence sums, with their bootstrap distributions.

The overview (Figure 1) and the cross-model page read the paper's signals as curves over
layers. Each curve here is a statistic of per-sequence sums, so resampling sequences gives a
distribution of whole curves (:func:`stages.stats.bootstrap`; the same seed resamples the same
sequences in every analysis of one sample, so curves of one resample belong together). Curves of
the weights (neuron fractions) have no sampling variation: their "distribution" repeats them.

``frames`` is a mapping with the per-sequence sums of a sample: ``"sweep"``
(:func:`stages.engine.sweep.sweep_sums`), ``"attention"``, ``"norms"``, ``"lens"``; ``classes`` is a
:func:`stages.analyses.neurons.neuron_classes` table.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from stages import stats
from stages.analyses.attention import locality_counts
from stages.analyses.boundaries import stage_boundaries
from stages.analyses.neurons import class_counts
from stages.claims.depth import stack

CURVES: dict[str, str] = {
    "drop_kl": "drop-layer KL, nats (Fig. 3)",
    "drop_rel_acc": "drop: relative accuracy (Fig. 3)",
    "swap_rel_acc": "swap: relative accuracy (Fig. 3)",
    "prev_attention": "attention on previous 5 tokens (Fig. 4)",
    "norm_ratio": "|attention out| / |MLP out| (Fig. 5)",
    "lens_kl": "logit lens: KL to final, nats (Fig. 6)",
    "prediction_frac": "prediction neurons, fraction (Fig. 6)",
    "suppression_frac": "suppression neurons, fraction (Fig. 6)",
}
"""Every curve :func:`curve` computes, and its title."""

OVERVIEW: dict[str, str] = {
    "log_drop_kl": "drop-layer KL (log)",
    "prev_attention": "attention to previous 5 tokens",
    "prediction_frac": "prediction neurons",
    "suppression_frac": "suppression neurons",
}
"""Figure 1's signals (the drop KL on a log scale: layer 0's is orders above the rest)."""


def _sweep(frames: Mapping[str, pd.DataFrame], kind: str, metric: str, n_layers: int):
    sums = frames["sweep"]
    top = n_layers - 1 if kind == "swap" else n_layers
    labels = [f"swap {i}-{i + 1}" if kind == "swap" else f"{kind} {i}" for i in range(top)]
    return stack(sums, [f"{x}:{metric}" for x in labels]), (sums["seq_len"] - 2).to_numpy(float)


def curve(
    frames: Mapping[str, pd.DataFrame],
    classes: pd.DataFrame | None,
    n_layers: int,
    name: str,
    *,
    n_boot: int = stats.N_BOOT,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """One curve of :data:`CURVES` and its bootstrap distribution over sequences.

    Returns:
        ``(estimate, distribution)``: ``[k]`` and ``[k, n_boot]``, one value per layer
        (per swap for ``swap_rel_acc``: ``k = n_layers - 1``).
    """
    if name in ("prediction_frac", "suppression_frac"):
        values = class_counts(classes).sort_values("layer")[name].to_numpy(dtype=np.float64)
        return values, np.repeat(values[:, None], n_boot, axis=1)
    kw = {"n_boot": n_boot, "seed": seed}
    if name in ("drop_kl", "drop_rel_acc", "swap_rel_acc"):
        kind, metric = {"drop_kl": ("drop", "kl"), "drop_rel_acc": ("drop", "rel_acc"),
                        "swap_rel_acc": ("swap", "rel_acc")}[name]  # fmt: skip
        values, counts = _sweep(frames, kind, metric, n_layers)
        return stats.bootstrap(values, counts, **kw)
    if name == "prev_attention":
        sums = frames["attention"]
        heads = sorted({c.split(":")[0].split(".")[1] for c in sums.columns if ":" in c}, key=int)
        values = np.stack(
            [stack(sums, [f"{x}.{h}:attn_prev5" for h in heads]).sum(0) for x in range(n_layers)]
        )
        entries = [locality_counts(int(t))["attn_prev5"] for t in sums["seq_len"]]
        return stats.bootstrap(values, np.array(entries, dtype=float) * len(heads), **kw)
    if name == "norm_ratio":
        sums = frames["norms"]
        values = stack(
            sums,
            [f"{x}:hook_attn_out" for x in range(n_layers)]
            + [f"{x}:hook_mlp_out" for x in range(n_layers)],
        )
        return stats.bootstrap(values, None, lambda m: m[:n_layers] / m[n_layers:], **kw)
    if name == "lens_kl":
        sums = frames["lens"]
        values = stack(sums, [f"{x}:kl" for x in range(n_layers)])
        return stats.bootstrap(values, (sums["seq_len"] - 2).to_numpy(float), **kw)
    raise ValueError(f"unknown curve {name!r}; use one of {list(CURVES)}")


def overview_signals(
    frames: Mapping[str, pd.DataFrame],
    classes: pd.DataFrame,
    n_layers: int,
    *,
    n_boot: int = stats.N_BOOT,
    seed: int = 0,
) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """Figure 1's signals, one row per layer, and each signal's bootstrap distribution.

    Returns:
        ``(table, distributions)``: the table has ``layer``, ``rel_depth``, ``drop_kl``
        (nats), and the :data:`OVERVIEW` columns; ``distributions`` maps each :data:`OVERVIEW`
        column to ``[n_layers, n_boot]`` (the same resampled sequences in every column).
    """
    kw = {"n_boot": n_boot, "seed": seed}
    drop_kl, drop_dist = curve(frames, classes, n_layers, "drop_kl", **kw)
    dists = {"log_drop_kl": np.log(np.clip(drop_dist, 1e-12, None))}
    for name in ("prev_attention", "prediction_frac", "suppression_frac"):
        dists[name] = curve(frames, classes, n_layers, name, **kw)[1]
    table = pd.DataFrame({"layer": range(n_layers)})
    table["rel_depth"] = table["layer"] / max(1, n_layers - 1)
    table["drop_kl"] = drop_kl
    table["log_drop_kl"] = np.log(np.clip(drop_kl, 1e-12, None))
    table["prev_attention"] = curve(frames, classes, n_layers, "prev_attention", **kw)[0]
    for name in ("prediction_frac", "suppression_frac"):
        table[name] = dists[name][:, 0]
    return table, dists


def boundary_stability(
    distributions: Mapping[str, np.ndarray], n_layers: int, *, n_stages: int = 4, min_size: int = 2
) -> pd.DataFrame:
    """How often each fitted stage boundary lands on each layer across bootstrap resamples.

    The exact change-point fit (:func:`stages.analyses.boundaries.stage_boundaries`) is refitted on
    the signals of every resample of sequences; the share of resamples in which boundary ``j``
    starts at layer ``l`` is its uncertainty *from the data* (the fit's own credible interval
    assumes independent Gaussian noise around each curve, which the neuron fractions and the
    smooth depth curves are not).

    Args:
        distributions: signal name to ``[n_layers, n_boot]`` (from :func:`overview_signals`).
        n_layers: the model's number of blocks.
        n_stages: stages fitted.
        min_size: smallest stage, in layers.

    Returns:
        One row per (boundary, layer) with a non-zero share: ``boundary`` (1-based), ``layer``,
        ``rel_depth`` (of the boundary, between ``layer - 1`` and ``layer``), ``share``.
    """
    names = list(distributions)
    n_boot = next(iter(distributions.values())).shape[1]
    counts = np.zeros((n_stages - 1, n_layers))
    for b in range(n_boot):
        curves = pd.DataFrame({name: distributions[name][:, b] for name in names})
        curves["layer"] = range(n_layers)
        fit = stage_boundaries(curves, names, n_stages=n_stages, min_size=min_size)
        for j, start in enumerate(fit.attrs["starts"]):
            counts[j, start] += 1
    rows = [
        {"boundary": j + 1, "layer": layer, "rel_depth": (layer - 0.5) / max(1, n_layers - 1),
         "share": counts[j, layer] / n_boot}
        for j in range(n_stages - 1)
        for layer in range(n_layers)
        if counts[j, layer] > 0
    ]  # fmt: skip
    return pd.DataFrame(rows)


def boundary_ranges(
    boundaries: pd.DataFrame, stability: pd.DataFrame, n_layers: int, *, level: float = 0.9
) -> pd.DataFrame:
    """The fitted boundaries with their uncertainty from resampled sequences.

    Args:
        boundaries: :func:`stages.analyses.boundaries.stage_boundaries` of the observed signals (the
            estimator: each boundary at its most probable layer).
        stability: :func:`boundary_stability` of the same signals.
        n_layers: the model's number of blocks.
        level: share of resamples the range covers (central).

    Returns:
        ``boundary``, ``layer``, ``rel_depth`` (as fitted), ``share`` (share of resamples whose
        fit puts the boundary at that same layer), ``layer_lo``, ``layer_hi`` (the central
        ``level`` range of the resampled boundary), ``rel_depth_lo``, ``rel_depth_hi``.
    """
    tail = (1 - level) / 2
    rows = []
    for b in boundaries.itertuples():
        dist = stability[stability["boundary"] == b.boundary].sort_values("layer")
        cdf = dist["share"].cumsum().to_numpy()
        layers = dist["layer"].to_numpy()
        lo = int(layers[np.searchsorted(cdf, tail - 1e-12)])
        hi = int(layers[min(len(layers) - 1, np.searchsorted(cdf, 1 - tail - 1e-12))])
        share = float(dist.loc[dist["layer"] == b.layer, "share"].sum())
        rows.append({"boundary": b.boundary, "layer": b.layer, "rel_depth": b.rel_depth,
                     "share": share, "layer_lo": lo, "layer_hi": hi,
                     "rel_depth_lo": (lo - 0.5) / max(1, n_layers - 1),
                     "rel_depth_hi": (hi - 0.5) / max(1, n_layers - 1)})  # fmt: skip
    return pd.DataFrame(rows)
