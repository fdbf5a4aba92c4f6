"""The paper's robustness claims (section 4, Figure 3; appendix B, Figures 13-15), decided.

Every claim is a function of :func:`stages.engine.sweep.sweep_sums` (per-sequence metric sums of
every intervention), so its interval resamples sequences and compares interventions *paired*, on the
same resampled sequences (:mod:`stages.stats`). Relative accuracy is the share of top-1
predictions kept; KL is in nats; entropy change in bits.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from stages import stats
from stages.depth import MIDDLE, layers_where, rel_depth, scored, span, stack
from stages.stats import Verdict

PAPER_KEPT = 0.72
"""The lower end of the paper's "72-95% of top-1 predictions kept" by middle-layer interventions."""
PAPER_KEPT_HIGH = 0.95
"""Its upper end."""

FIGURE = "Figure 3"


def _label(kind: str, layer: int) -> str:
    return f"swap {layer}-{layer + 1}" if kind == "swap" else f"{kind} {layer}"


def _layers(sums: pd.DataFrame, kind: str, n_layers: int) -> list[int]:
    """Layers of ``kind`` present in the sums, in order."""
    top = n_layers - 1 if kind == "swap" else n_layers
    return [layer for layer in range(top) if f"{_label(kind, layer)}:kl" in sums.columns]


def _values(sums: pd.DataFrame, kind: str, layers: list[int], metric: str) -> np.ndarray:
    return stack(sums, [f"{_label(kind, layer)}:{metric}" for layer in layers])


def kept_in_every_middle_layer(
    sums: pd.DataFrame, n_layers: int, kind: str, *, seed: int = 0
) -> Verdict:
    """Every middle-layer ``kind`` keeps at least 72% of top-1 predictions, decided per layer.

    The share kept at each middle layer gets a simultaneous 95% band over those layers
    (:func:`stages.stats.lowest`): the claim holds when every layer's band is above 72%, does
    not hold when some layer's band is entirely below it.
    """
    middle = [x for x in _layers(sums, kind, n_layers) if x in layers_where(n_layers, *MIDDLE)]
    claim = f"every single middle-layer {kind} keeps at least 72% of top-1 predictions"
    if not middle:
        return stats.missing(claim, FIGURE, f"no middle-layer {kind} in the sweep")
    values = _values(sums, kind, middle, "rel_acc")
    estimate, dist = stats.bootstrap(values, scored(sums), seed=seed)
    least, lo, hi, band_lo, band_hi = stats.lowest(estimate, dist)
    worst = int(np.argmin(estimate))
    above, below = int((band_lo > PAPER_KEPT).sum()), int((band_hi < PAPER_KEPT).sum())
    return stats.verdict(
        claim,
        FIGURE,
        "the smallest share of top-1 predictions kept over the middle layers (simultaneous "
        "95% band over those layers)",
        least,
        lo,
        hi,
        threshold=PAPER_KEPT,
        n=len(sums),
        detail=f"over {span(middle)} the share kept ranges from {estimate.min():.1%} "
        f"({_label(kind, middle[worst])}) to {estimate.max():.1%}; with simultaneous 95% "
        f"confidence {above} of {len(middle)} layers keep more than 72% and {below} keep less; "
        "the paper reports 72-95%",
    )


def kept_on_average(sums: pd.DataFrame, n_layers: int, kind: str, *, seed: int = 0) -> Verdict:
    """The mean share kept over the middle-layer ``kind`` interventions lies in 72-95%.

    The paper's range read as a statement about the middle layers together rather than each
    one: holds when the whole 95% interval lies inside 72-95%, does not hold when it lies
    entirely outside, unclear otherwise.
    """
    middle = [x for x in _layers(sums, kind, n_layers) if x in layers_where(n_layers, *MIDDLE)]
    claim = f"middle-layer {kind}s keep 72-95% of top-1 predictions on average"
    if not middle:
        return stats.missing(claim, FIGURE, f"no middle-layer {kind} in the sweep")
    values = _values(sums, kind, middle, "rel_acc")
    estimate, lo, hi = stats.interval(values, scored(sums), lambda m: m.mean(axis=0), seed=seed)
    low, high = PAPER_KEPT, PAPER_KEPT_HIGH
    decided = (
        "not enough data" if len(sums) < stats.MIN_UNITS else stats.decide_within(lo, hi, low, high)
    )  # fmt: skip
    return Verdict(
        claim,
        FIGURE,
        f"the mean share of top-1 predictions kept over the middle-layer {kind}s "
        f"({span(middle)})",
        float(estimate),
        float(lo),
        float(hi),
        f"holds if the whole 95% interval lies inside {low:.0%}-{high:.0%}; does not hold if it "
        f"lies entirely below {low:.0%} or entirely above {high:.0%}; unclear otherwise; not "
        f"enough data below {stats.MIN_UNITS} sequences",
        len(sums),
        "sequences",
        decided,
        "the paper's range over its models and layers, asked of this model's middle layers "
        "together",
    )


def first_or_last_hurts_most(
    sums: pd.DataFrame, n_layers: int, kind: str, where: str, *, seed: int = 0
) -> Verdict:
    """The first (or last) ``kind`` raises KL more than every middle-layer ``kind`` (paired).

    Decided layer by layer: the differences KL(edge) - KL(l) for every middle layer ``l`` get a
    simultaneous band (:func:`stages.stats.lowest`); the claim holds when every difference is
    above 0, does not hold when some middle layer hurts more than the edge.
    """
    layers = _layers(sums, kind, n_layers)
    middle = [x for x in layers if x in layers_where(n_layers, *MIDDLE)]
    claim = f"the {where} {kind} hurts more than any middle-layer {kind}"
    if not layers or not middle:
        return stats.missing(claim, FIGURE, f"no {kind} in the sweep")
    edge = layers[0] if where == "first" else layers[-1]
    values = _values(sums, kind, [edge, *middle], "kl")
    estimate, dist = stats.bootstrap(values, scored(sums), lambda m: m[0] - m[1:], seed=seed)
    least, lo, hi, band_lo, band_hi = stats.lowest(estimate, dist)
    kl = stats.means(values, scored(sums))
    worse = [middle[k] for k in np.flatnonzero(band_hi < 0)]
    return stats.verdict(
        claim,
        FIGURE + (" (catastrophic first layer)" if where == "first" else " (last layer)"),
        f"KL of the {where} {kind} minus the KL of each middle-layer {kind}, the smallest "
        "(nats, paired; simultaneous 95% band over the middle layers)",
        least,
        lo,
        hi,
        threshold=0.0,
        n=len(sums),
        threshold_unit=" nats",
        detail=f"{_label(kind, edge)}: KL {kl[0]:.3g} nats; middle layers at most "
        f"{kl[1:].max():.3g} ({_label(kind, middle[int(np.argmax(kl[1:]))])})"
        + (f"; hurting more than the {where} with simultaneous confidence: "
           + ", ".join(_label(kind, x) for x in worse) if worse else ""),
    )  # fmt: skip


def first_raises_entropy(sums: pd.DataFrame, n_layers: int, kind: str, *, seed: int = 0) -> Verdict:
    """The first-layer ``kind`` raises the entropy of the predictions."""
    return _raises_entropy(
        sums, n_layers, kind, "first", f"the first-layer {kind} raises the entropy of the "
        "predictions", seed=seed,
        detail=f"baseline entropy {sums['entropy'].sum() / scored(sums).sum():.2f} bits",
    )  # fmt: skip


def swaps_gentler_than_drops(sums: pd.DataFrame, n_layers: int, *, seed: int = 0) -> Verdict:
    """At every middle layer, swapping ``i, i+1`` hurts less than dropping ``i`` (paired).

    The paper's "adjacent swaps hurt less than drops in the middle" read layer by layer: the
    differences KL(swap i, i+1) - KL(drop i) get a simultaneous band over the middle layers
    (:func:`stages.stats.highest`); the claim holds when every layer's band is below 0, does
    not hold when some layer's swap is harsher than its drop.
    """
    middle = [
        x
        for x in layers_where(n_layers, *MIDDLE)
        if x in _layers(sums, "drop", n_layers) and x in _layers(sums, "swap", n_layers)
    ]
    claim = "in the middle layers, swapping layers i, i+1 hurts less than dropping layer i"
    figure = FIGURE + " (zoom)"
    if not middle:
        return stats.missing(claim, figure, "no middle-layer drops and swaps in the sweep")
    diff = _values(sums, "swap", middle, "kl") - _values(sums, "drop", middle, "kl")
    estimate, dist = stats.bootstrap(diff, scored(sums), seed=seed)
    most, lo, hi, band_lo, band_hi = stats.highest(estimate, dist)
    below, above = int((band_hi < 0).sum()), int((band_lo > 0).sum())
    harsher = [middle[k] for k in np.flatnonzero(band_lo > 0)]
    return stats.verdict(
        claim,
        figure,
        "KL(swap i, i+1) - KL(drop i), the largest over the middle layers (nats, paired; "
        "simultaneous 95% band over those layers)",
        most,
        lo,
        hi,
        threshold=0.0,
        above=False,
        n=len(sums),
        threshold_unit=" nats",
        detail=f"over {span(middle)}: the swap is gentler at {below} and harsher at {above} of "
        f"{len(middle)} layers with simultaneous 95% confidence"
        + (f" (harsher: layers {', '.join(map(str, harsher))})" if harsher else "")
        + f"; averaged over the layers the difference is {estimate.mean():.3g} nats",
    )  # fmt: skip


def mlp_drops_peak_late(sums: pd.DataFrame, n_layers: int, *, seed: int = 0) -> Verdict:
    """Dropping only an MLP hurts more in the final layers than in the middle (appendix B).

    The paper: "ablating the MLP ... increases the KL divergence ... in the final layers". Read
    layer by layer against the typical middle layer: for each layer of the last quarter
    (relative depth > 0.75), its MLP-only KL minus the median MLP-only KL of the middle layers
    (0.25-0.75; the median, so that one odd middle layer does not decide), with a simultaneous
    band over the last-quarter layers (:func:`stages.stats.highest`). Holds when some final
    layer is above the middle's median, does not hold when every final layer is below it.
    """
    layers = _layers(sums, "drop_mlp", n_layers)
    late = [x for x in layers if rel_depth(x, n_layers) > MIDDLE[1]]
    middle = [x for x in layers if x in layers_where(n_layers, *MIDDLE)]
    claim = "dropping only an MLP hurts more in the final layers than in the middle layers"
    figure = "Figures 13-15"
    if not late or not middle:
        return stats.missing(claim, figure, "no MLP-only drops in the sweep")
    values = _values(sums, "drop_mlp", late + middle, "kl")
    k = len(late)

    def excess(m: np.ndarray) -> np.ndarray:
        return m[:k] - np.median(m[k:], axis=0)

    estimate, dist = stats.bootstrap(values, scored(sums), excess, seed=seed)
    most, lo, hi, band_lo, band_hi = stats.highest(estimate, dist)
    kl = stats.means(values, scored(sums))
    above = [late[j] for j in np.flatnonzero(band_lo > 0)]
    return stats.verdict(
        claim,
        figure,
        f"MLP-only KL of each layer of {span(late)} minus the median over {span(middle)}, the "
        "largest (nats, paired; simultaneous 95% band over the final layers)",
        most,
        lo,
        hi,
        threshold=0.0,
        n=len(sums),
        threshold_unit=" nats",
        detail=f"middle median {np.median(kl[k:]):.3g} nats; final layers "
        + ", ".join(f"{x}: {v:.3g}" for x, v in zip(late, kl[:k], strict=True))
        + "; above the median with simultaneous confidence: "
        + (", ".join(f"layer {x}" for x in above) if above else "none"),
    )  # fmt: skip


def last_swap_raises_entropy(sums: pd.DataFrame, n_layers: int, *, seed: int = 0) -> Verdict:
    """Swapping the last two layers raises the entropy of the predictions."""
    return _raises_entropy(
        sums, n_layers, "swap", "last", "swapping the last two layers raises the entropy of the "
        "predictions", seed=seed,
        detail="the paper: first and often last layer interventions are catastrophic and raise "
        "entropy",
    )  # fmt: skip


def _raises_entropy(
    sums: pd.DataFrame, n_layers: int, kind: str, end: str, claim: str, *, seed: int, detail: str
) -> Verdict:
    """The ``end`` (``"first"`` or ``"last"``) ``kind`` of the sweep raises the entropy.

    The rule: the mean entropy change H(Q) - H(P) is above 0 bits, 95% interval over sequences.
    """
    layers = _layers(sums, kind, n_layers)
    if not layers:
        return stats.missing(claim, FIGURE, f"no {kind} in the sweep")
    layer = layers[0] if end == "first" else layers[-1]
    values = _values(sums, kind, [layer], "entropy_delta")
    return stats.mean_verdict(
        claim,
        FIGURE + " (entropy change)",
        f"mean entropy change H(Q) - H(P) under {_label(kind, layer)} (bits)",
        values,
        scored(sums),
        seed=seed,
        threshold=0.0,
        threshold_unit=" bits",
        detail=detail,
    )


def robustness_claims(sums: pd.DataFrame, n_layers: int, *, seed: int = 0) -> list[Verdict]:
    """Every robustness claim decided from a sweep's per-sequence sums.

    Args:
        sums: :func:`stages.engine.sweep.sweep_sums` with drops, swaps, attention-only and MLP-only
            drops (a claim whose interventions are missing is ``not enough data``).
        n_layers: the model's number of blocks.
        seed: the bootstrap seed.
    """
    out = []
    for kind in ("drop", "swap"):
        out.append(kept_in_every_middle_layer(sums, n_layers, kind, seed=seed))
    for kind in ("drop", "swap"):
        out.append(first_or_last_hurts_most(sums, n_layers, kind, "first", seed=seed))
        out.append(first_raises_entropy(sums, n_layers, kind, seed=seed))
    for kind in ("drop", "swap"):
        out.append(first_or_last_hurts_most(sums, n_layers, kind, "last", seed=seed))
    out.append(swaps_gentler_than_drops(sums, n_layers, seed=seed))
    out.append(mlp_drops_peak_late(sums, n_layers, seed=seed))
    for kind in ("drop", "swap"):
        out.append(kept_on_average(sums, n_layers, kind, seed=seed))
    out.append(last_swap_raises_entropy(sums, n_layers, seed=seed))
    return out


def most_damaging(table: pd.DataFrame, kind: str, k: int = 3) -> pd.DataFrame:
    """The ``k`` rows of one kind of a sweep table with the largest KL."""
    return table[table["kind"] == kind].nlargest(k, "kl")
