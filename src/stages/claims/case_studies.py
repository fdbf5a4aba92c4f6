"""The case studies' claims (paper section 6): subjoiner heads and "-ing" neuron ensembles.

Both are decided on data the choice never saw. Subjoiner heads: the strongest head is chosen on
a random half of each class's words and its effect is measured on the other half, resampling
words (a word's windows are not independent of each other).
Probes: the best single neuron and the best ensemble size are chosen on a validation split and
compared on a test split, paired window by window (:func:`stages.analyses.probes.probe_accuracies`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from stages import stats
from stages.analyses.probes import Probes
from stages.analyses.subjoiner import OFFSET, effect_of_heads
from stages.claims.depth import EARLY, rel_depth
from stages.stats import Verdict


def selection_half(labels: np.ndarray, words: np.ndarray, seed: int = 0) -> np.ndarray:
    """``[n]`` bool: a random half of each class's words (True: used to choose; False: to test).

    Every window of a word falls on the same side, so the test half holds only words the choice
    never saw.
    """
    labels, words = np.asarray(labels, dtype=bool), np.asarray(words, dtype=object)
    rng = np.random.default_rng(seed)
    chosen = np.zeros(len(labels), dtype=bool)
    for cls in (True, False):
        kinds = sorted(set(words[labels == cls]))
        picked = set(rng.permutation(np.array(kinds, dtype=object))[: len(kinds) // 2])
        chosen |= (labels == cls) & np.isin(words, list(picked))
    return chosen


def _by_word(values: np.ndarray, words: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per distinct word: the sum of ``values`` over its windows, and their number."""
    kinds, index = np.unique(words.astype(str), return_inverse=True)
    return np.bincount(index, weights=values), np.bincount(index).astype(float)


def subjoiner_head_early(
    attention: pd.DataFrame,
    labels: np.ndarray,
    words: np.ndarray,
    n_layers: int,
    *,
    seed: int = 0,
) -> Verdict:
    """The strongest subjoiner head (chosen on half the words) is early, with a held-out effect.

    The independent unit is the *word*: the corpus repeats some words many times (in
    gemma-3-270m's windows 291 four-token words are 118 distinct words), so the windows are
    split by word and the interval resamples words, each with all its windows.

    Args:
        attention: per-window attention at :data:`stages.analyses.subjoiner.OFFSET` of every head
            (columns ``"layer.head.3"``; a :func:`stages.analyses.subjoiner.final_token_attention`
            table or the pack's ``subjoiner`` part).
        labels: ``[n]`` bool, True for four-token words.
        words: ``[n]`` the word each window ends on.
        n_layers: the model's number of blocks.
        seed: the split and the bootstrap.
    """
    labels, words = np.asarray(labels, dtype=bool), np.asarray(words, dtype=object)
    distinct = [len(set(words[labels == cls])) for cls in (True, False)]
    if min(distinct) < 2 * (stats.MIN_UNITS // 2):
        why = (
            f"{distinct[0]} distinct four-token and {distinct[1]} one-token words: halves of "
            f"fewer than {stats.MIN_UNITS // 2} words decide nothing"
        )
        claim = "subjoiner heads sit in the early layers"
        nan = float("nan")
        return Verdict(claim, "Figure 9", why, nan, nan, nan, why, min(distinct), "words",
                       "not enough data", why)  # fmt: skip
    pick = selection_half(labels, words, seed)
    best = effect_of_heads(attention[pick], labels[pick], offset=OFFSET).iloc[0]
    column = f"{int(best.layer)}.{int(best['head'])}.{OFFSET}"
    held = attention.loc[~pick, column].to_numpy()
    dists, means, kinds = [], [], []
    for k, cls in enumerate((True, False)):
        mask = labels[~pick] == cls
        sums, counts = _by_word(held[mask], words[~pick][mask])
        estimate, dist = stats.bootstrap(sums[None], counts, seed=seed + k)
        means.append(float(estimate[0]))
        dists.append(dist[0])
        kinds.append(len(counts))
    effect = means[0] - means[1]
    lo, hi = stats.percentile(dists[0] - dists[1])
    depth = rel_depth(int(best.layer), n_layers)
    early = depth <= EARLY
    n = sum(kinds)
    claim = "subjoiner heads sit in the early layers"
    if min(kinds) < stats.MIN_UNITS // 2 or n < stats.MIN_UNITS:
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
        "token to its first, four-token words minus one-token words (attention weight; "
        "resampling words)",
        effect,
        float(lo),
        float(hi),
        "the head with the largest effect on a random half of the words must lie in the first "
        "quarter of the layers (relative depth <= 0.25) and its effect on the other half must "
        "have a 95% interval above 0 (holds); a later head or an interval below 0: does not "
        f"hold; otherwise unclear; not enough data below {stats.MIN_UNITS} held-out words or "
        f"{stats.MIN_UNITS // 2} of either class",
        n,
        "held-out words",
        decided,
        f"chosen head at relative depth {depth:.2f}; held out: {kinds[0]} four-token words "
        f"({int(labels[~pick].sum())} windows) and {kinds[1]} one-token words "
        f"({int((~labels[~pick]).sum())} windows)",
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
