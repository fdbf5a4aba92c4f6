"""Check the paper's robustness claims (section 4, Figure 3, appendix B) against a sweep table.

Each claim is turned into a measurable test on a :func:`stages.run_sweep` table and given a
verdict: ``holds``, ``does not hold`` or ``unclear`` (when the 95% intervals straddle the line).
"Middle layers" are those with relative depth ``layer / (n_layers - 1)`` in ``[0.25, 0.75]``.
"""

from __future__ import annotations

import pandas as pd

MIDDLE = (0.25, 0.75)
PAPER_RANGE = (0.72, 0.95)


def _rows(table: pd.DataFrame, kind: str) -> pd.DataFrame:
    return table[table["kind"] == kind].sort_values("layer")


def _middle(table: pd.DataFrame, kind: str) -> pd.DataFrame:
    rows = _rows(table, kind)
    return rows[rows["rel_depth"].between(*MIDDLE)]


def _versus_middle(row: pd.Series, mid: pd.DataFrame) -> tuple[str, str]:
    """Verdict and evidence for "``row`` hurts more than every middle-layer intervention".

    ``holds`` when the lower end of its KL interval lies above the upper end of every middle
    layer's, ``unclear`` when only the means are ordered that way, ``does not hold`` otherwise.
    """
    worst = mid.loc[mid["kl"].idxmax()]
    if row["kl_lo"] > mid["kl_hi"].max():
        verdict = "holds"
    elif row["kl"] > worst["kl"]:
        verdict = "unclear"
    else:
        verdict = "does not hold"
    measured = (
        f"KL {row['kl']:.2f} nats vs at most {worst['kl']:.2f} in the middle "
        f"(layer {worst['layers']})"
    )
    return verdict, measured


def robustness_claims(table: pd.DataFrame) -> pd.DataFrame:
    """One row per claim: ``claim``, ``paper`` (what the paper reports), ``measured``, ``verdict``.

    Args:
        table: a :func:`stages.run_sweep` table with drops, swaps, attention-only and MLP-only
            drops (missing kinds give ``unclear``).
    """
    out = []

    def add(claim: str, paper: str, measured: str, verdict: str) -> None:
        out.append({"claim": claim, "paper": paper, "measured": measured, "verdict": verdict})

    # 1. Middle-layer drops and swaps keep 72-95% of top-1 predictions.
    for kind in ("drop", "swap"):
        mid = _middle(table, kind)
        if mid.empty:
            add(f"middle-layer {kind}s keep most top-1 predictions", "72-95%", "no data", "unclear")
            continue
        lo, med, hi = mid["rel_acc"].min(), mid["rel_acc"].median(), mid["rel_acc"].max()
        if lo >= PAPER_RANGE[0]:
            verdict = "holds"
        elif med >= PAPER_RANGE[0]:
            verdict = "holds for most middle layers"
        else:
            verdict = "does not hold"
        add(
            f"a single middle-layer {kind} keeps 72-95% of top-1 predictions",
            "72-95% of predictions kept",
            f"{lo:.0%} to {hi:.0%} (median {med:.0%}) over {len(mid)} middle layers",
            verdict,
        )

    # 2. First-layer interventions are catastrophic and raise entropy.
    # 3. Last-layer interventions are often catastrophic (Pythia yes, GPT-2 mostly no).
    for kind in ("drop", "swap"):
        rows, mid = _rows(table, kind), _middle(table, kind)
        if rows.empty or mid.empty:
            continue
        first, last = rows.iloc[0], rows.iloc[-1]
        verdict, measured = _versus_middle(first, mid)
        if first["entropy_delta"] <= 0:
            verdict = "does not hold"
        add(
            f"a first-layer {kind} is catastrophic and raises entropy",
            "very high KL, higher-entropy predictions",
            f"{measured}; entropy {first['entropy_delta']:+.2f} bits; top-1 kept "
            f"{first['rel_acc']:.0%}",
            verdict,
        )
        verdict, measured = _versus_middle(last, mid)
        add(
            f"the last {kind} ({last['layers']}) hurts more than any middle-layer {kind}",
            "catastrophic for Pythia, mild for GPT-2",
            measured,
            verdict,
        )

    # 4. In the middle, adjacent swaps hurt less than drops.
    drop, swap = _middle(table, "drop"), _middle(table, "swap")
    both = drop.merge(swap, on="layer", suffixes=("_drop", "_swap"))
    if not both.empty:
        fewer = (both["kl_swap"] < both["kl_drop"]).mean()
        mean_drop, mean_swap = both["kl_drop"].mean(), both["kl_swap"].mean()
        verdict = (
            "holds"
            if fewer > 0.5 and mean_swap < mean_drop
            else ("does not hold" if fewer < 0.5 and mean_swap > mean_drop else "unclear")
        )
        add(
            "in the middle layers, swapping layers i, i+1 hurts less than dropping layer i",
            "swap KL below drop KL (Figure 3, zoom)",
            f"swap KL < drop KL at {fewer:.0%} of {len(both)} middle layers; mean KL "
            f"{mean_swap:.3f} (swap) vs {mean_drop:.3f} (drop) nats",
            verdict,
        )

    # 5. Appendix B: MLP-only ablation raises KL most in the final layers.
    mlp, attn = _rows(table, "drop_mlp"), _rows(table, "drop_attn")
    if not mlp.empty:
        # the first layer is excluded: it is catastrophic for every kind of intervention
        later = mlp[mlp["layer"] > 0]
        peak = later.loc[later["kl"].idxmax()]
        final_mlp = later[later["rel_depth"] >= 0.75]["kl"].mean()
        final_attn = (
            attn[attn["rel_depth"] >= 0.75]["kl"].mean() if not attn.empty else float("nan")
        )
        verdict = "holds" if peak["rel_depth"] >= 0.75 else "does not hold"
        add(
            "dropping an MLP raises KL most in the final layers (first layer aside)",
            "MLP-only drops peak in the last layers (Figures 13-15)",
            f"largest MLP-only KL after layer 0 at layer {int(peak['layer'])} (relative depth "
            f"{peak['rel_depth']:.2f}, {peak['kl']:.2f} nats); mean KL in the last quarter: "
            f"MLP {final_mlp:.2f}, attention {final_attn:.2f} nats",
            verdict,
        )
    return pd.DataFrame(out)


def most_damaging(table: pd.DataFrame, kind: str, k: int = 3) -> pd.DataFrame:
    """The ``k`` interventions of one kind with the largest KL, largest first."""
    return _rows(table, kind).nlargest(k, "kl")
