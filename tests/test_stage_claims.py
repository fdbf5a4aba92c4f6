"""Stage claims on hand-made tables whose verdicts are known, and Figure 1's signals."""

from __future__ import annotations

import numpy as np
import pandas as pd

from stages.stage_claims import (
    detokenization_claims,
    ensembling_claims,
    feature_engineering_claims,
    sharpening_claims,
    stage_signals,
)

N = 12
DEPTH = np.arange(N) / (N - 1)


def _with_bounds(table: pd.DataFrame, columns: list[str], width: float = 0.01) -> pd.DataFrame:
    for c in columns:
        table[f"{c}_lo"], table[f"{c}_hi"] = table[c] - width, table[c] + width
    return table


def _locality(prev: np.ndarray) -> pd.DataFrame:
    table = pd.DataFrame(
        {"layer": range(N), "head": -1, "rel_depth": DEPTH, "attn_prev5": prev,
         "prev_sum_nobos": 5 * prev}
    )  # fmt: skip
    return _with_bounds(table, ["attn_prev5", "prev_sum_nobos"])


def _norms(attn: np.ndarray, mlp: np.ndarray) -> pd.DataFrame:
    table = pd.DataFrame(
        {"layer": range(N), "rel_depth": DEPTH, "attn_norm": attn, "mlp_norm": mlp,
         "ratio": attn / mlp}
    )  # fmt: skip
    return _with_bounds(table, ["attn_norm", "mlp_norm", "ratio"])


def _lens(kl: np.ndarray, agreement: np.ndarray, entropy: np.ndarray) -> pd.DataFrame:
    table = pd.DataFrame(
        {"layer": range(N), "rel_depth": DEPTH, "kl_to_final": kl, "top1_agreement": agreement,
         "entropy": entropy, "final_entropy": entropy[-1]}
    )  # fmt: skip
    return _with_bounds(table, ["kl_to_final", "top1_agreement", "entropy"])


def _counts(prediction: list[int], suppression: list[int]) -> pd.DataFrame:
    table = pd.DataFrame({"layer": range(N), "prediction": prediction, "suppression": suppression})
    table["d_mlp"] = 100
    table["prediction_frac"] = table["prediction"] / 100
    table["suppression_frac"] = table["suppression"] / 100
    return table


def _verdicts(claims: pd.DataFrame) -> list[str]:
    assert list(claims.columns) == ["claim", "paper", "measured", "verdict"]
    return list(claims["verdict"])


def test_detokenization_holds_and_fails():
    early = np.where(DEPTH <= 0.25, 0.2, 0.05)
    assert _verdicts(
        detokenization_claims(_locality(early), _norms(3 - 2 * DEPTH, np.ones(N)))
    ) == [
        "holds",
        "holds",
    ]
    late = np.where(DEPTH <= 0.25, 0.05, 0.2)
    assert _verdicts(detokenization_claims(_locality(late), _norms(0.5 + DEPTH, np.ones(N)))) == [
        "does not hold",
        "does not hold",
    ]


def test_feature_engineering_holds_and_fails():
    far = _lens(
        np.linspace(10, 0, N), np.where(DEPTH <= 0.5, 0.02, 0.9), np.full(N, 8.0) - DEPTH * 4
    )
    assert _verdicts(feature_engineering_claims(far)) == ["holds", "holds"]
    near = _lens(np.linspace(1, 0, N), np.full(N, 0.8), np.full(N, 1.0) + DEPTH)
    assert _verdicts(feature_engineering_claims(near)) == ["does not hold", "does not hold"]


def test_ensembling_holds_and_fails():
    prediction = [0] * 6 + [5, 10, 20, 40, 25, 10]  # peak at layer 9, relative depth 0.82
    kl = np.array([50, 20, 18, 17, 16, 15, 14, 13, 2, 1, 0.5, 0.0])  # big fall entering layer 8
    lens = _lens(kl, np.linspace(0, 1, N), np.ones(N))
    assert _verdicts(ensembling_claims(_counts(prediction, [0] * N), lens)) == ["holds"] * 3
    early = [40, 20, 10] + [0] * 9
    kl = np.array([50, 20, 2, 1.8, 1.6, 1.4, 1.2, 1.0, 0.8, 0.6, 0.4, 0.0])
    lens = _lens(kl, np.linspace(0, 1, N), np.ones(N))
    assert _verdicts(ensembling_claims(_counts(early, [0] * N), lens)) == ["does not hold"] * 3


def test_sharpening_holds_and_fails():
    suppression = [0] * 10 + [30, 50]
    prediction = [0] * 10 + [10, 5]
    lens = _lens(np.linspace(5, 0, N), np.linspace(0, 1, N), np.r_[np.full(N - 1, 2.0), 3.0])
    norms = _norms(np.ones(N), 1 + DEPTH)
    assert (
        _verdicts(sharpening_claims(_counts(prediction, suppression), norms, lens)) == ["holds"] * 3
    )
    lens = _lens(np.linspace(5, 0, N), np.linspace(0, 1, N), np.r_[np.full(N - 1, 3.0), 2.0])
    norms = _norms(np.ones(N), 2 - DEPTH)
    assert (
        _verdicts(sharpening_claims(_counts(suppression, prediction), norms, lens))
        == ["does not hold"] * 3
    )


def test_stage_signals_join_the_tables_by_layer():
    sweep = pd.DataFrame(
        {"kind": ["none"] + ["drop"] * N + ["swap"] * (N - 1),
         "layer": [-1, *range(N), *range(N - 1)],
         "kl": [0.0, *np.geomspace(10, 0.01, N), *np.ones(N - 1)]}
    )  # fmt: skip
    heads = _locality(np.linspace(0.2, 0.0, N)).assign(head=0)
    locality = pd.concat([heads, _locality(np.linspace(0.3, 0.1, N))])
    signals = stage_signals(sweep, locality, _counts([1] * N, [2] * N))
    assert list(signals["layer"]) == list(range(N))
    np.testing.assert_allclose(signals["drop_kl"], np.geomspace(10, 0.01, N))
    np.testing.assert_allclose(signals["log_drop_kl"], np.log(np.geomspace(10, 0.01, N)))
    np.testing.assert_allclose(signals["prev_attention"], np.linspace(0.3, 0.1, N))
    assert (signals["suppression_frac"] == 0.02).all()
