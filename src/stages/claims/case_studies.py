"""The case studies' claims (paper section 6): subjoiner heads and "-ing" neuron ensembles.

Both are decided on data the choice never saw. Subjoiner heads: the strongest head is chosen on
a random half of the windows (each class halved) and its effect is measured on the other half.
Probes: the best single neuron and the best ensemble size are chosen on a validation split and
compared on a test split, paired window by window (:func:`stages.probes.probe_accuracies`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from stages import stats
from stages.claims.depth import EARLY, rel_depth
from stages.probes import Probes
from stages.stats import Verdict
from stages.subjoiner import OFFSET, effect_of_heads


def selection_half(labels: np.ndarray, seed: int = 0) -> np.ndarray:
    """``[n]`` bool: a random half of each class (True: used to choose; False: to test)."""
    labels = np.asarray(labels, dtype=bool)
    rng = np.random.default_rng(seed)
    chosen = np.zeros(len(labels), dtype=bool)
    for cls in (True, False):
        members = np.flatnonzero(labels == cls)
        chosen[rng.permutation(members)[: len(members) // 2]] = True
    return chosen


def subjoiner_head_early(
    attention: pd.DataFrame, labels: np.ndarray, n_layers: int, *, seed: int = 0
) -> Verdict:
    """The strongest subjoiner head (chosen on half the windows) is early, with a held-out effect.

    Args:
        attention: per-window attention at :data:`stages.subjoiner.OFFSET` of every head
            (columns ``"layer.head.3"``; a :func:`stages.subjoiner.final_token_attention` table
            or the pack's ``subjoiner`` part).
        labels: ``[n]`` bool, True for four-token words.
        n_layers: the model's number of blocks.
        seed: the split and the bootstrap.
    """
    labels = np.asarray(labels, dtype=bool)
    pick = selection_half(labels, seed)
    best = effect_of_heads(attention[pick], labels[pick], offset=OFFSET).iloc[0]
    column = f"{int(best.layer)}.{int(best['head'])}.{OFFSET}"
    held = attention.loc[~pick, column].to_numpy()
    word, control = held[labels[~pick]], held[~labels[~pick]]
    effect, lo, hi = stats.two_sample(word, control, seed=seed)
    depth = rel_depth(int(best.layer), n_layers)
    early = depth <= EARLY
    n = int((~pick).sum())
    claim = "subjoiner heads sit in the early layers"
    if min(len(word), len(control)) < stats.MIN_UNITS // 2 or n < stats.MIN_UNITS:
        decided = "not enough data"
    elif early and lo > 0:
        decided = "holds"
    elif not early or hi < 0:
        decided = "does not hold"
    else:
        decided = "unclear"
    return Verdict(
        claim,
        "Figure 9",
        f"held-out attention of head L{int(best.layer)}H{int(best['head'])} from a word's last "
        "token to its first, four-token words minus one-token words (attention weight)",
        effect,
        lo,
        hi,
        "the head with the largest effect on a random half of the windows must lie in the first "
        "quarter of the layers (relative depth <= 0.25) and its effect on the other half must "
        "have a 95% interval above 0 (holds); a later head or an interval below 0: does not "
        f"hold; otherwise unclear; not enough data below {stats.MIN_UNITS} held-out windows or "
        f"{stats.MIN_UNITS // 2} of either class",
        n,
        "windows",
        decided,
        f"chosen head at relative depth {depth:.2f}; held out: {len(word)} four-token and "
        f"{len(control)} one-token words",
    )


def _paired(
    probes: Probes, a: pd.Series, b: pd.Series, claim: str, statistic: str, detail: str,
    seed: int,
) -> Verdict:  # fmt: skip
    diff = probes.correct_of(a).astype(float) - probes.correct_of(b).astype(float)
    estimate, lo, hi = stats.interval(diff[None], None, seed=seed)
    return stats.verdict(
        claim,
        "Figure 10a",
        statistic,
        estimate[0],
        lo[0],
        hi[0],
        threshold=0.0,
        n=len(diff),
        unit="test windows",
        detail=detail,
    )


def _name(row: pd.Series) -> str:
    if row["probe"] == "single":
        return f"neuron L{row['neuron'].replace('.', ' N')} ({row['accuracy']:.1%})"
    if row["probe"] == "top-k":
        return f"the top-{int(row['k'])} ensemble ({row['accuracy']:.1%})"
    return f"the model ({row['accuracy']:.1%})"


def probe_claims(probes: Probes, *, seed: int = 0) -> list[Verdict]:
    """Ensembles beat single neurons and the model; suppression neurons make the best singles."""
    single = probes.chosen("single", "all")
    ensemble = probes.chosen("top-k", "all")
    model = probes.chosen("model", "model")
    out = [
        _paired(
            probes, ensemble, single,
            "an ensemble of neurons predicts '-ing' better than the best single neuron",
            "test accuracy of the ensemble minus the best single neuron's (both chosen on the "
            "validation split; paired)",
            f"{_name(ensemble)} vs {_name(single)}",
            seed,
        ),
        _paired(
            probes, ensemble, model,
            "an ensemble of neurons predicts '-ing' better than the model's own top-1",
            "test accuracy of the ensemble minus the model's (paired)",
            f"{_name(ensemble)} vs {_name(model)}",
            seed,
        ),
    ]  # fmt: skip
    groups = set(probes.table["group"])
    if {"prediction", "suppression"} <= groups:
        supp = probes.chosen("single", "suppression")
        pred = probes.chosen("single", "prediction")
        out.append(
            _paired(
                probes,
                supp,
                pred,
                "suppression-neuron probes are the best single probes",
                "test accuracy of the best single suppression neuron minus the best single "
                "prediction neuron (each chosen on the validation split; paired)",
                f"{_name(supp)} vs {_name(pred)}",
                seed,
            )  # fmt: skip
        )
    else:
        missing = ({"prediction", "suppression"} - groups).pop()
        out.append(
            Verdict(
                "suppression-neuron probes are the best single probes",
                "Figure 10a",
                "best single probe per class",
                np.nan,
                np.nan,
                np.nan,
                "needs neurons of both classes",
                0,
                "test windows",
                "not enough data",
                f"no {missing} neuron among the probed ones",
            )  # fmt: skip
        )
    return out
