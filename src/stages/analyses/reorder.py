"""Reordering a span of layers ("Transformer Layers as Painters", Sun et al. 2024).

Over spans of ``s = max(2, L // 4)`` consecutive layers (a quarter of the depth) placed along
the whole depth (starts every ``max(1, s // 2)`` layers, and the last span ending at the last
layer), each span is

- dropped (:func:`~stages.engine.plans.drop_range`), the reference every reordering is compared
  with;
- reversed (:func:`~stages.engine.plans.reverse`);
- shuffled three times (:func:`~stages.engine.plans.shuffle` with the first three seeds from 0 whose
  order is neither the original nor the reversed one; a span of 2 has none);
- run twice over (:func:`~stages.engine.plans.repeat`, ``x2``);
- run in parallel, every layer reading the span's input and the outputs averaged
  (:func:`~stages.engine.plans.parallel`),

and compared with the unperturbed model by the sweep's metrics (:mod:`stages.engine.sweep`). The
question is the paper's and Painters': does the order of the middle layers matter less than the
order of the layers near either end?

A span is *middle* when its first and last layers both lie at relative depth 0.25-0.75
(:data:`stages.depth.MIDDLE`), *edge* when it holds the first or the last layer.
"""

from __future__ import annotations

import pandas as pd

from stages import stats
from stages.depth import MIDDLE, rel_depth
from stages.engine.analysis import analysis
from stages.engine.plans import Plan, drop_range, parallel, repeat, reverse, shuffle
from stages.engine.sweep import plan_sums, sweep_table

N_SHUFFLES = 3
REORDERINGS = ("reverse", "shuffle")
"""Kinds that only change the order of the span's layers (each runs once)."""


def span_length(n_layers: int) -> int:
    """Layers per span: a quarter of the depth, at least 2."""
    return max(2, n_layers // 4)


def span_starts(n_layers: int) -> list[int]:
    """First layers of the spans: every ``max(1, s // 2)`` layers, and ``n_layers - s``."""
    s = span_length(n_layers)
    return sorted({*range(0, n_layers - s + 1, max(1, s // 2)), n_layers - s})


def shuffles(i: int, j: int, k: int = N_SHUFFLES) -> list[Plan]:
    """The first ``k`` shuffles of ``i..j-1`` (seeds from 0) that are not the identity or reverse.

    Fewer when the span has fewer such orders (none for 2 layers, 4 for 3).
    """
    plain, backwards = tuple(range(i, j)), tuple(range(j - 1, i - 1, -1))
    found: dict[tuple[int, ...], Plan] = {}
    for seed in range(1000):
        plan = shuffle(i, j, seed)
        if plan.order not in (plain, backwards):
            found.setdefault(plan.order, plan)
        if len(found) == k:
            break
    return list(found.values())


def reorder_plans(n_layers: int) -> list[Plan]:
    """For every span (:func:`span_starts`): drop, reverse, shuffles, repeat x2, parallel."""
    s = span_length(n_layers)
    plans = []
    for i in span_starts(n_layers):
        j = i + s
        plans += [drop_range(i, j), reverse(i, j), *shuffles(i, j)]
        plans += [repeat(i, j, 2), parallel(i, j)]
    return plans



reorder_sums = plan_sums('reorder_sums', reorder_plans, '``"<kind> <a>-<b>:<metric>"``')


def where(start: int, stop: int, n_layers: int) -> str:
    """``"edge"``, ``"middle"`` or ``"between"`` for the span ``start..stop-1``."""
    if start == 0 or stop == n_layers:
        return "edge"
    lo, hi = MIDDLE
    if lo <= rel_depth(start, n_layers) and rel_depth(stop - 1, n_layers) <= hi:
        return "middle"
    return "between"


def reorder_table(
    sums: pd.DataFrame, n_layers: int, *, n_boot: int = stats.N_BOOT, seed: int = 0
) -> pd.DataFrame:
    """One row per plan, with 95% bootstrap intervals over sequences.

    Returns:
        The :func:`stages.engine.sweep.sweep_table` rows (baseline left out), plus ``start``,
        ``stop`` (one past the span's last layer), ``mid_depth`` (relative depth of the span's
        centre), ``where`` (:func:`where`) and ``kl_vs_drop``: the plan's KL divided by the KL
        of dropping the same span (below 1: gentler than deleting the layers).
    """
    table = sweep_table(sums, n_layers=n_layers, n_boot=n_boot, seed=seed)
    rows = table[table.kind != "none"].copy()
    rows["start"] = rows["layer"].astype(int)
    rows["stop"] = rows["layers"].str.split("-").str[-1].astype(int) + 1
    rows["mid_depth"] = rel_depth((rows["start"] + rows["stop"] - 1) / 2, n_layers)
    rows["where"] = [where(a, b, n_layers) for a, b in zip(rows.start, rows.stop, strict=True)]
    dropped = rows[rows.kind == "drop_range"].set_index("start")["kl"]
    rows["kl_vs_drop"] = rows["kl"] / rows["start"].map(dropped)
    return rows.reset_index(drop=True)


reorderings = analysis(
    'reorderings', reorder_sums, reorder_table,
    'Every span dropped, reversed, shuffled, repeated and run in parallel, one row each.',
)
