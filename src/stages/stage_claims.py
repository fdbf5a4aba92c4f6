"""The paper's four stages (section 5) as measurable claims, and the signals of its Figure 1.

Each stage's claims are tested on the tables of :mod:`stages.attention`, :mod:`stages.norms`,
:mod:`stages.lens` and :mod:`stages.neurons` and given a verdict, ``holds``, ``does not hold`` or
``unclear``, with the numbers behind it; the return shape is that of
:func:`stages.robustness.robustness_claims` (``claim``, ``paper``, ``measured``, ``verdict``).
Depth ranges are relative depth ``layer / (n_layers - 1)``: *early* is ``<= 0.25``, the *first
half* ``<= 0.5``, the *last layers* ``>= 0.85``. The paper states its stages in words and plots;
where a claim needs a threshold, the threshold is written in the claim.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

EARLY = 0.25
HALF = 0.5
LAST = 0.85
PEAK_RANGE = (0.75, 0.95)  # "peaking near 85% depth"


class _Claims(list):
    """Rows of a claims table."""

    def add(self, claim: str, paper: str, measured: str, verdict: str) -> None:
        self.append({"claim": claim, "paper": paper, "measured": measured, "verdict": verdict})


def _verdict(strong: bool, weak: bool) -> str:
    """``holds`` when the test passes with its intervals, ``unclear`` when only its means do."""
    return "holds" if strong else ("unclear" if weak else "does not hold")


def _layer_means(locality: pd.DataFrame) -> pd.DataFrame:
    return locality[locality["head"] == -1].sort_values("layer")


def detokenization_claims(locality: pd.DataFrame, norms: pd.DataFrame) -> pd.DataFrame:
    """Stage 1: local attention and attention-dominated writes in the early layers.

    Args:
        locality: a :func:`stages.attention.attention_locality` table.
        norms: a :func:`stages.norms.component_norms` table.
    """
    out = _Claims()
    rows = _layer_means(locality)
    early, later = rows[rows["rel_depth"] <= EARLY], rows[rows["rel_depth"] > EARLY]
    peak = rows.loc[rows["attn_prev5"].idxmax()]
    first = early["attn_prev5"].mean() > later["attn_prev5"].mean()
    second = peak["rel_depth"] <= EARLY
    nobos_early, nobos_later = early["prev_sum_nobos"].mean(), later["prev_sum_nobos"].mean()
    out.add(
        "attention to the previous five tokens is highest in the early layers",
        "previous-5 attention peaks in the first layers (Figure 4)",
        f"mean {early['attn_prev5'].mean():.3f} per entry in the first quarter vs "
        f"{later['attn_prev5'].mean():.3f} later; highest at layer {int(peak['layer'])} "
        f"(relative depth {peak['rel_depth']:.2f}); with BOS removed, "
        f"{nobos_early:.0%} vs {nobos_later:.0%} of attention on the previous 5 tokens",
        _verdict(first and second, first or second),
    )
    early_n = norms[norms["rel_depth"] <= EARLY]
    later_n = norms[norms["rel_depth"] > EARLY]
    ratio_early = early_n["attn_norm"].sum() / early_n["mlp_norm"].sum()
    ratio_later = later_n["attn_norm"].sum() / later_n["mlp_norm"].sum()
    above = (early_n["ratio_lo"] > 1).sum()
    out.add(
        "in the early layers attention writes more into the residual than the MLP",
        "|Attn| / |MLP| above 1 early, falling with depth (Figure 5)",
        f"|Attn| / |MLP| = {ratio_early:.2f} over the first quarter ({above} of {len(early_n)} "
        f"layers above 1 with 95% confidence) vs {ratio_later:.2f} later",
        _verdict(ratio_early > 1 and ratio_early > ratio_later, ratio_early > 1),
    )
    return pd.DataFrame(out)


def feature_engineering_claims(lens: pd.DataFrame) -> pd.DataFrame:
    """Stage 2: the logit lens makes little progress in the first half of the layers.

    Args:
        lens: a :func:`stages.lens.logit_lens` table.
    """
    out = _Claims()
    half = lens[lens["rel_depth"] <= HALF].sort_values("layer")
    mid = half.iloc[-1]
    out.add(
        "through the first half, the logit lens is far from the final prediction",
        "KL to the final distribution stays high (Figures 6, 8)",
        f"at layer {int(mid['layer'])} (relative depth {mid['rel_depth']:.2f}): KL "
        f"{mid['kl_to_final']:.2f} nats, top-1 agreement {mid['top1_agreement']:.1%} (threshold: "
        "below 20%)",
        _verdict(mid["top1_agreement_hi"] < 0.2, mid["top1_agreement"] < 0.2),
    )
    final = float(lens["final_entropy"].iloc[0])
    mean_h = half["entropy"].mean()
    high = (half["entropy_lo"] > final).sum()
    out.add(
        "through the first half, the logit-lens distributions have high entropy",
        "intermediate predictions are high-entropy (Figure 8)",
        f"mean {mean_h:.2f} bits over the first half ({high} of {len(half)} layers above the "
        f"model's own {final:.2f} bits with 95% confidence)",
        _verdict(high > len(half) / 2, mean_h > final),
    )
    return pd.DataFrame(out)


def _largest_log_drop(lens: pd.DataFrame) -> pd.Series:
    """The layer entering which the lens KL falls by the largest factor.

    Layers ``1..L-2`` only: the fall out of layer 0 (whose residual is mostly the token
    embedding) and the fall into the last layer (whose KL is 0 by definition) are left out.
    """
    rows = lens.sort_values("layer")
    kl = np.log(rows["kl_to_final"].to_numpy()[1:-1])
    drops = kl[:-1] - kl[1:]  # entering layers 2..L-2
    k = int(np.argmax(drops))
    peak = rows.iloc[k + 2].copy()
    peak["factor"] = float(np.exp(-drops[k]))
    peak["kl_before"] = float(rows.iloc[k + 1]["kl_to_final"])
    return peak


def ensembling_claims(counts: pd.DataFrame, lens: pd.DataFrame) -> pd.DataFrame:
    """Stage 3: prediction neurons after the midpoint; a phase transition of the lens KL.

    Args:
        counts: a :func:`stages.neurons.class_counts` table.
        lens: a :func:`stages.lens.logit_lens` table.
    """
    out = _Claims()
    n_layers = len(counts)
    rel = counts["layer"] / max(1, n_layers - 1)
    total = counts["prediction"].sum()
    after = counts.loc[rel > HALF, "prediction"].sum()
    share = after / total if total else float("nan")
    out.add(
        "prediction neurons appear after the midpoint",
        "prediction neurons rise after the midpoint (Figure 6)",
        f"{after} of {total} prediction neurons ({share:.0%}) lie past relative depth 0.5 "
        "(threshold: 90%)",
        "unclear" if not total else ("holds" if share >= 0.9 else "does not hold"),
    )
    peak = counts.loc[counts["prediction_frac"].idxmax()]
    peak_rel = peak["layer"] / max(1, n_layers - 1)
    out.add(
        "the prediction-neuron fraction peaks near 85% depth",
        f"peak near 85% depth (tested: {PEAK_RANGE[0]:.2f}-{PEAK_RANGE[1]:.2f})",
        f"peak at layer {int(peak['layer'])} (relative depth {peak_rel:.2f}, "
        f"{int(peak['prediction'])} neurons, {peak['prediction_frac']:.1%} of the layer)",
        "unclear"
        if not total
        else ("holds" if PEAK_RANGE[0] <= peak_rel <= PEAK_RANGE[1] else "does not hold"),
    )
    drop = _largest_log_drop(lens)
    out.add(
        "the logit-lens KL falls in a phase transition after the midpoint",
        "a sharp drop of KL in the second half (Figure 6)",
        f"largest single-layer fall: by a factor of {1 / drop['factor']:.1f}, from "
        f"{drop['kl_before']:.2f} to {drop['kl_to_final']:.2f} nats entering layer "
        f"{int(drop['layer'])} (relative depth {drop['rel_depth']:.2f})",
        "holds" if drop["rel_depth"] > HALF else "does not hold",
    )
    return pd.DataFrame(out)


def sharpening_claims(
    counts: pd.DataFrame, norms: pd.DataFrame, lens: pd.DataFrame
) -> pd.DataFrame:
    """Stage 4: suppression neurons, large MLP outputs and rising entropy in the last layers.

    Args:
        counts: a :func:`stages.neurons.class_counts` table.
        norms: a :func:`stages.norms.component_norms` table.
        lens: a :func:`stages.lens.logit_lens` table.
    """
    out = _Claims()
    n_layers = len(counts)
    last = counts[counts["layer"] / max(1, n_layers - 1) >= LAST]
    pred, supp = int(last["prediction"].sum()), int(last["suppression"].sum())
    layers = f"layers {int(last['layer'].min())}-{int(last['layer'].max())}"
    out.add(
        "suppression neurons outnumber prediction neurons in the last layers",
        "suppression neurons dominate the final layers (Figure 6)",
        f"{layers}: {supp} suppression vs {pred} prediction neurons",
        "holds" if supp > pred else ("unclear" if supp == pred else "does not hold"),
    )
    peak = norms.loc[norms["mlp_norm"].idxmax()]
    out.add(
        "the MLP output norm peaks in the last layers",
        "MLP output norm largest at the end (Figure 7)",
        f"largest at layer {int(peak['layer'])} (relative depth {peak['rel_depth']:.2f}, "
        f"{peak['mlp_norm']:.4g})",
        "holds" if peak["rel_depth"] >= LAST else "does not hold",
    )
    rows = lens.sort_values("layer")
    before, final = rows.iloc[-2], rows.iloc[-1]
    out.add(
        "the last layer raises the entropy of the prediction",
        "logit-lens entropy can rise at the end (Figure 8)",
        f"{before['entropy']:.2f} bits after layer {int(before['layer'])}, "
        f"{final['entropy']:.2f} bits after the last layer",
        _verdict(final["entropy_lo"] > before["entropy_hi"], final["entropy"] > before["entropy"]),
    )
    return pd.DataFrame(out)


SIGNALS: dict[str, str] = {
    "log_drop_kl": "drop-layer KL (log)",
    "prev_attention": "attention to previous 5 tokens",
    "prediction_frac": "prediction neurons",
    "suppression_frac": "suppression neurons",
}


def stage_signals(
    sweep: pd.DataFrame, locality: pd.DataFrame, counts: pd.DataFrame
) -> pd.DataFrame:
    """Figure 1's signals, one row per layer.

    Columns: ``layer``, ``rel_depth``, ``drop_kl`` (nats, :func:`stages.run_sweep` drops),
    ``log_drop_kl`` (its natural log: the first-layer catastrophe is orders of magnitude above
    the rest), ``prev_attention`` (the paper's previous-5 quantity, mean over heads),
    ``prediction_frac``, ``suppression_frac``.
    """
    drops = sweep[sweep["kind"] == "drop"][["layer", "kl"]].rename(columns={"kl": "drop_kl"})
    local = _layer_means(locality)[["layer", "rel_depth", "attn_prev5"]]
    local = local.rename(columns={"attn_prev5": "prev_attention"})
    table = local.merge(drops, on="layer").merge(
        counts[["layer", "prediction_frac", "suppression_frac"]], on="layer"
    )
    table["log_drop_kl"] = np.log(table["drop_kl"].clip(lower=1e-12))
    columns = ["layer", "rel_depth", "drop_kl", "log_drop_kl", "prev_attention"]
    return table[columns + ["prediction_frac", "suppression_frac"]].reset_index(drop=True)
