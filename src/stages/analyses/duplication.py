"""Layer duplication (the paper's later version): run each layer of a range n times in place.

The later version's code copies every block of a range ``i..j-1`` next to itself
(:func:`stages.engine.plans.duplicate`: ``i, i, i+1, i+1, ...`` for ``n = 2``) and measures the
entropy of the predictions. Here three ranges centred on the middle of the network, of 1,
``max(2, L // 6)`` and ``max(3, L // 3)`` layers, are each run ``n = 2, 3, 4, 5`` times, and
compared with the unperturbed model by the sweep's metrics (:mod:`stages.engine.sweep`): KL
(nats), share of top-1 predictions kept, entropy change (bits), loss. ``n = 1`` is the
unperturbed model.
"""

from __future__ import annotations

import pandas as pd

from stages import stats
from stages.engine.analysis import analysis
from stages.engine.plans import Plan, duplicate
from stages.engine.sweep import plan_sums, sweep_table

TIMES = (2, 3, 4, 5)


def duplication_ranges(n_layers: int) -> list[tuple[int, int]]:
    """Ranges ``(i, j)`` of 1, ``max(2, L // 6)`` and ``max(3, L // 3)`` layers about the middle."""
    lengths = sorted({1, max(2, n_layers // 6), max(3, n_layers // 3)})
    ranges = []
    for n in lengths:
        i = max(0, round((n_layers - n) / 2))
        ranges.append((i, min(n_layers, i + n)))
    return ranges


def duplication_plans(n_layers: int) -> list[Plan]:
    """Every range of :func:`duplication_ranges` run 2, 3, 4 and 5 times."""
    return [duplicate(i, j, n) for i, j in duplication_ranges(n_layers) for n in TIMES]



duplication_sums = plan_sums(
    "duplication_sums", duplication_plans, '``"duplicate <a>-<b> x<n>:<metric>"``'
)


def duplication_table(
    sums: pd.DataFrame, n_layers: int, *, n_boot: int = stats.N_BOOT, seed: int = 0
) -> pd.DataFrame:
    """One row per (range, n), with 95% bootstrap intervals over sequences.

    Returns:
        The :func:`stages.engine.sweep.sweep_table` rows (baseline left out) plus ``start``,
        ``length`` (layers in the range) and ``times`` (``n``).
    """
    table = sweep_table(sums, n_layers=n_layers, n_boot=n_boot, seed=seed)
    rows = table[table.kind == "duplicate"].copy()
    rows["start"] = rows["layer"].astype(int)
    rows["length"] = rows["layers"].str.split("-").str[-1].astype(int) - rows["start"] + 1
    rows["times"] = rows["label"].str.rsplit("x", n=1).str[-1].astype(int)
    return rows.reset_index(drop=True)


layer_duplication = analysis(
    'layer_duplication', duplication_sums, duplication_table,
    'Middle ranges with each layer run 2-5 times in place, one row each.',
)
