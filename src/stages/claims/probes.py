"""The second case study's claims (paper section 6.2, Figure 10a): "-ing" neuron ensembles.

The best single neuron and the best ensemble size are chosen on a validation split and compared
on a test split, paired window by window (:func:`stages.analyses.probes.probe_accuracies`), with
the model's own top-1 answer (the paper's comparison) and with a probe on the model's own
log-probability of an "-ing" token.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from stages import stats
from stages.analyses.probes import LOGP_COLUMN, LOGP_PROBE, Probes
from stages.stats import Verdict


def _paired(
    probes: Probes, a: pd.Series, b: pd.Series, claim: str, statistic: str, detail: str,
    seed: int, source: str = "paper v1",
) -> Verdict:  # fmt: skip
    """Whether ``a`` is right more often than ``b`` on the same test windows (paired bootstrap)."""
    diff = probes.correct_of(a).astype(float) - probes.correct_of(b).astype(float)
    return stats.mean_verdict(
        claim, "Figure 10a", statistic, diff, seed=seed, threshold=0.0, unit="test windows",
        detail=detail, source=source,
    )  # fmt: skip


def _name(row: pd.Series) -> str:
    if row["probe"] == "single":
        return f"neuron L{row['neuron'].replace('.', ' N')} ({row['accuracy']:.1%})"
    if row["probe"] == "top-k":
        return f"the top-{int(row['k'])} ensemble ({row['accuracy']:.1%})"
    if row["probe"] == LOGP_PROBE:
        return f"the probe on the model's log P(-ing) ({row['accuracy']:.1%})"
    return f"the model's top-1 ({row['accuracy']:.1%})"


LOGP_CLAIM = (
    "an ensemble of neurons predicts '-ing' better than a probe on the model's own log P(-ing)"
)


def _beats_logp(probes: Probes, ensemble: pd.Series, seed: int) -> Verdict:
    """The ensemble against a probe on the model's log-probability of an "-ing" token.

    ``not enough data`` (saying what to rebuild) when the probes were fitted on rows without
    ``model_logp`` (a results pack built before it).
    """
    try:
        logp = probes.chosen(LOGP_PROBE, "model")
    except KeyError:
        why = (
            f"the '-ing' rows lack the column {LOGP_COLUMN} (a results pack built before it): "
            "rebuild the pack's ing part (stages pack build MODEL --parts ing)"
        )
        return stats.missing(LOGP_CLAIM, "Figure 10a", why, "test windows", source="this book")
    return _paired(
        probes, ensemble, logp, LOGP_CLAIM,
        "test accuracy of the ensemble minus that of a one-feature logistic probe on the "
        "model's log-probability of an '-ing' next token (fitted on the same train split; "
        "paired)",
        f"{_name(ensemble)} vs {_name(logp)}",
        seed, "this book",
    )  # fmt: skip


def probe_claims(probes: Probes, *, seed: int = 0) -> list[Verdict]:
    """Case study 2's claims: ensembles beat single neurons and the model; suppression wins.

    In this order: the ensemble beats the best single neuron, the model's own top-1 (the
    paper's comparison) and a probe on the model's log P(-ing) (this book's); suppression
    neurons make the best single probes.
    """
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
            "test accuracy of the ensemble minus that of the model's own top-1 answer (the "
            "model says '-ing' when its most likely next token is an '-ing' token; paired)",
            f"{_name(ensemble)} vs {_name(model)}",
            seed,
        ),
        _beats_logp(probes, ensemble, seed),
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
