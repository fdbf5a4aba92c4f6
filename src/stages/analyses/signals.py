"""Per-layer signal curves from per-sequence sums, with their bootstrap distributions.

The overview (Figure 1) and the cross-model page read the paper's signals as curves over
layers. Each curve here is a statistic of per-sequence sums, so resampling sequences gives a
distribution of whole curves (:func:`stages.stats.bootstrap`; the same seed resamples the same
sequences in every analysis of one sample, so curves of one resample belong together). Curves of
the weights (neuron fractions) have no sampling variation: their "distribution" repeats them.

The fitted stage boundaries are uncertain in several ways, and each measure covers only some:
the fit's credible interval (the model and the signals fixed), the *sequence noise*
(:func:`sequence_noise`: refits on resampled sequences; the model, the signals and the weights
fixed), the choice of signals (:func:`leave_one_signal_out`) and the number of stages
(:func:`stage_count_sensitivity`, :func:`stage_count_evidence`); :func:`boundary_summary` puts
them side by side.

``frames`` is a mapping with the per-sequence sums of a sample: ``"sweep"``
(:func:`stages.engine.sweep.sweep_sums`), ``"attention"``, ``"norms"``, ``"lens"``; ``classes`` is a
:func:`stages.analyses.neurons.neuron_classes` table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment
from scipy.special import softmax

from stages import stats
from stages.analyses.attention import locality_counts
from stages.analyses.boundaries import stage_boundaries
from stages.analyses.neurons import class_counts
from stages.depth import stack

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


def sequence_noise(
    distributions: Mapping[str, np.ndarray], n_layers: int, *, n_stages: int = 4, min_size: int = 2
) -> pd.DataFrame:
    """Sequence noise of the stage boundaries: where each lands over resamples of the sequences.

    The exact change-point fit (:func:`stages.analyses.boundaries.stage_boundaries`) is refitted on
    the signals of every bootstrap resample of sequences. The spread measures how much the
    boundaries depend on which sequences were sampled, and nothing else: curves of the weights
    (neuron fractions) repeat in every resample, and the model (K piecewise-constant stages) and
    the choice of signals are the same in every refit. A narrow spread says the sample of text is
    large enough; it does not say the boundary is well determined (for that, see the fit's
    credible interval, :func:`leave_one_signal_out` and :func:`stage_count_sensitivity`).

    Args:
        distributions: signal name to ``[n_layers, n_boot]`` (from :func:`overview_signals`).
        n_layers: the model's number of blocks.
        n_stages: stages fitted.
        min_size: smallest stage, in layers.

    Returns:
        One row per (boundary, layer) with a non-zero share: ``boundary`` (1-based), ``layer``
        (first layer of the next stage), ``rel_depth`` (of the boundary, between ``layer - 1`` and
        ``layer``), ``share`` (of the resampled fits that start the stage at ``layer``).
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


def sequence_noise_ranges(
    boundaries: pd.DataFrame, noise: pd.DataFrame, *, level: float = 0.9
) -> pd.DataFrame:
    """Each fitted boundary's range under sequence noise.

    Args:
        boundaries: :func:`stages.analyses.boundaries.stage_boundaries` of the observed signals
            (each boundary at its joint-MAP layer).
        noise: :func:`sequence_noise` of the same signals.
        level: share of resamples the range covers (central).

    Returns:
        One row per boundary: ``boundary``, ``layer`` (as fitted), ``noise_share`` (share of
        resampled fits that put the boundary at that same layer), ``noise_lo``, ``noise_hi`` (the
        central ``level`` range of the resampled boundary, in layers).
    """
    tail = (1 - level) / 2
    rows = []
    for b in boundaries.itertuples():
        dist = noise[noise["boundary"] == b.boundary].sort_values("layer")
        cdf = dist["share"].cumsum().to_numpy()
        layers = dist["layer"].to_numpy()
        lo, hi = np.searchsorted(cdf, [tail - 1e-12, 1 - tail - 1e-12])
        rows.append({"boundary": b.boundary, "layer": b.layer,
                     "noise_share": float(dist.loc[dist["layer"] == b.layer, "share"].sum()),
                     "noise_lo": int(layers[min(lo, len(layers) - 1)]),
                     "noise_hi": int(layers[min(hi, len(layers) - 1)])})  # fmt: skip
    return pd.DataFrame(rows)


def leave_one_signal_out(
    signals: pd.DataFrame,
    names: Sequence[str],
    *,
    n_stages: int = 4,
    min_size: int = 2,
    level: float = 0.9,
    n_layers: int | None = None,
) -> pd.DataFrame:
    """The stage boundaries refitted with each signal left out in turn.

    Where a boundary moves when one signal is dropped, that signal places it; where it stays,
    the other signals agree on it. K stays fixed, so a boundary that no remaining signal supports
    is put elsewhere, and boundary ``j`` of a refit can stand for another change than boundary
    ``j`` of the full fit. This covers the choice of signals, which the credible interval and the
    sequence noise hold fixed. It is not a probability.

    Args:
        signals: one row per layer with a ``layer`` column and the ``names`` columns.
        names: the signals of the full fit (at least two).
        n_stages: stages fitted (K).
        min_size: smallest stage, in layers.
        level: credible-interval probability of each refit.
        n_layers: layers in the model, for relative depth; default ``max(layer) + 1``.

    Returns:
        ``left_out`` (the signal dropped) and the columns of
        :func:`stages.analyses.boundaries.boundary_table` (``boundary``, ``layer``, ``rel_depth``,
        ``probability``, ``layer_lo``, ``layer_hi``, ``rel_depth_lo``, ``rel_depth_hi``), K - 1
        rows per signal, in the order of ``names``.
    """
    if len(names) < 2:
        raise ValueError(f"leaving one out needs at least two signals, got {list(names)}")
    kw = {"n_stages": n_stages, "min_size": min_size, "level": level, "n_layers": n_layers}
    tables = [
        stage_boundaries(signals, [n for n in names if n != name], **kw).assign(left_out=name)
        for name in names
    ]
    table = pd.concat(tables, ignore_index=True)
    return table[["left_out", *tables[0].columns.drop("left_out")]]


def _fits_by_k(
    signals: pd.DataFrame, names: Sequence[str], ks: Sequence[int], **kw
) -> dict[int, pd.DataFrame]:
    """:func:`stage_boundaries` of ``names`` for each K in ``ks``."""
    return {k: stage_boundaries(signals, names, n_stages=k, **kw) for k in ks}


def stage_count_sensitivity(
    signals: pd.DataFrame,
    names: Sequence[str],
    ks: Sequence[int] = (3, 4, 5),
    *,
    min_size: int = 2,
    level: float = 0.9,
    n_layers: int | None = None,
) -> pd.DataFrame:
    """The stage boundaries fitted with each number of stages K in ``ks``.

    Args:
        signals: one row per layer with a ``layer`` column and the ``names`` columns.
        names: the signals fitted jointly.
        ks: numbers of stages to fit.
        min_size: smallest stage, in layers.
        level: credible-interval probability.
        n_layers: layers in the model, for relative depth; default ``max(layer) + 1``.

    Returns:
        ``n_stages`` (K) and the columns of :func:`stages.analyses.boundaries.boundary_table`,
        K - 1 rows per K, in the order of ``ks``.
    """
    fits = _fits_by_k(signals, names, ks, min_size=min_size, level=level, n_layers=n_layers)
    table = pd.concat([t.assign(n_stages=k) for k, t in fits.items()], ignore_index=True)
    return table[["n_stages", *table.columns.drop("n_stages")]]


def stage_count_evidence(
    signals: pd.DataFrame,
    names: Sequence[str],
    ks: Sequence[int] = (3, 4, 5),
    *,
    min_size: int = 2,
) -> pd.DataFrame:
    """How well each number of stages K is supported, by the Schwarz criterion (BIC).

    The fit's ``log_evidence`` uses flat priors on the segment means, so it is only comparable
    between fits with the same data and the same K: it is reported, not used. K is compared by
    :attr:`stages.analyses.boundaries.BoundaryFit.bic` (least-squares segmentation, one parameter
    per segment mean, per boundary and for the noise variance). The rule: the K with the lowest
    BIC among ``ks`` is preferred, and ``weight`` is ``exp(-delta_bic / 2)`` normalised over
    ``ks``, the approximate posterior probability of each K with equal prior probabilities
    (Kass and Wasserman 1995). It assumes what the fit does (iid Gaussian noise of one variance
    around piecewise-constant means) and enough values for the large-sample approximation; it
    says which K describes the curves best as steps, not that the stages exist.

    Args:
        signals: one row per layer with a ``layer`` column and the ``names`` columns.
        names: the signals fitted jointly.
        ks: numbers of stages compared.
        min_size: smallest stage, in layers.

    Returns:
        One row per K: ``n_stages``, ``log_evidence`` (the fit's; not comparable across rows),
        ``bic``, ``delta_bic`` (``bic`` minus the lowest ``bic``; 0 for the preferred K),
        ``weight`` (sums to 1) and ``preferred`` (True for the lowest BIC).
    """
    fits = _fits_by_k(signals, names, ks, min_size=min_size)
    bic = np.array([t.attrs["bic"] for t in fits.values()])
    delta = bic - bic.min()
    return pd.DataFrame(
        {
            "n_stages": list(fits),
            "log_evidence": [t.attrs["log_evidence"] for t in fits.values()],
            "bic": bic,
            "delta_bic": delta,
            "weight": softmax(-delta / 2),
            "preferred": delta == 0,
        }
    )


def _matched(reference: np.ndarray, other: np.ndarray) -> np.ndarray:
    """For each ``reference`` layer, the ``other`` layer assigned to it (-1 when none).

    A one-to-one assignment minimising the total distance in layers
    (:func:`scipy.optimize.linear_sum_assignment`); ``[n_ref]`` ints.
    """
    rows, cols = linear_sum_assignment(np.abs(reference[:, None] - other[None, :]))
    out = np.full(len(reference), -1)
    out[rows] = other[cols]
    return out


def boundary_summary(
    boundaries: pd.DataFrame,
    noise_ranges: pd.DataFrame,
    left_out: pd.DataFrame,
    by_k: pd.DataFrame,
) -> pd.DataFrame:
    """One row per fitted boundary with every kind of uncertainty side by side.

    Args:
        boundaries: :func:`stages.analyses.boundaries.stage_boundaries` of all signals (K stages).
        noise_ranges: :func:`sequence_noise_ranges` of the same fit.
        left_out: :func:`leave_one_signal_out` (same K: boundary ``j`` is matched to ``j``).
        by_k: :func:`stage_count_sensitivity`; fits with another K are matched to the fitted
            boundaries one to one by least total distance (:func:`_matched`), so with fewer stages
            some boundary has no counterpart and with more some refitted boundary is left over.

    Returns:
        ``boundary``, ``layer``, ``rel_depth`` (joint MAP), ``credible_lo``, ``credible_hi``
        (central credible interval), ``noise_lo``, ``noise_hi`` (sequence-noise range), one
        ``without_<signal>`` column per left-out signal (where the boundary lands) and one
        ``k<K>`` column per other K (the matched boundary); all in layers (the first layer of the
        next stage), nullable ints, missing where nothing matches.
    """
    table = boundaries[["boundary", "layer", "rel_depth"]].assign(
        credible_lo=boundaries["layer_lo"], credible_hi=boundaries["layer_hi"]
    )
    table = table.merge(noise_ranges[["boundary", "noise_lo", "noise_hi"]], on="boundary")
    wide = left_out.pivot(index="boundary", columns="left_out", values="layer")
    wide = wide[left_out["left_out"].unique()].add_prefix("without_")
    table = table.merge(wide.reset_index(), on="boundary")
    reference = table["layer"].to_numpy()
    for k, fit in by_k.groupby("n_stages", sort=False):
        if k != len(reference) + 1:
            matched = _matched(reference, fit.sort_values("boundary")["layer"].to_numpy())
            table[f"k{k}"] = pd.array(np.where(matched < 0, None, matched), dtype="Int64")
    return table.astype({c: "Int64" for c in table.columns if c != "rel_depth"})
