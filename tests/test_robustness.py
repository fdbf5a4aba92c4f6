"""The claim checks on hand-made tables whose verdicts are known."""

from __future__ import annotations

import numpy as np
import pandas as pd

from stages.robustness import robustness_claims


def _table(kl_drop, kl_swap, rel_acc=0.9, entropy=1.0, width=0.01) -> pd.DataFrame:
    rows = []
    n = len(kl_drop)
    for kind, kls in (
        ("drop", kl_drop),
        ("swap", kl_swap),
        ("drop_attn", kl_drop),
        ("drop_mlp", kl_drop),
    ):
        for layer, kl in enumerate(kls):
            rows.append(
                dict(
                    kind=kind,
                    layer=layer,
                    layers=str(layer),
                    rel_depth=layer / (n - 1),
                    kl=kl,
                    kl_lo=kl - width,
                    kl_hi=kl + width,
                    rel_acc=rel_acc,
                    entropy_delta=entropy,
                )
            )
    return pd.DataFrame(rows)


def _verdicts(table) -> dict[str, str]:
    claims = robustness_claims(table)
    return dict(zip(claims.claim, claims.verdict, strict=True))


def test_a_paper_like_model_passes_every_claim():
    kl_drop = np.array([5.0, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.5, 4.0])
    v = _verdicts(_table(kl_drop, kl_drop[:-1] - 0.1))
    assert all(x == "holds" for x in v.values()), v


def test_a_fragile_middle_layer_breaks_the_first_layer_claim():
    kl = np.array([1.0, 0.3, 0.3, 0.3, 6.0, 0.3, 0.3, 0.3, 0.5, 4.0])
    v = _verdicts(_table(kl, kl[:-1], rel_acc=0.5))
    assert v["a first-layer drop is catastrophic and raises entropy"] == "does not hold"
    assert v["a single middle-layer drop keeps 72-95% of top-1 predictions"] == "does not hold"


def test_overlapping_intervals_are_unclear():
    kl = np.array([1.0, 0.3, 0.3, 0.3, 0.95, 0.3, 0.3, 0.3, 0.5, 4.0])
    v = _verdicts(_table(kl, kl[:-1], width=0.1))
    assert v["a first-layer drop is catastrophic and raises entropy"] == "unclear"


def test_lower_entropy_fails_the_first_layer_claim():
    kl = np.array([5.0, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.5, 4.0])
    v = _verdicts(_table(kl, kl[:-1], entropy=-0.5))
    assert v["a first-layer drop is catastrophic and raises entropy"] == "does not hold"
