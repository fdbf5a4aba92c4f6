"""Block deletion, reorderings and duplication: their plans, tables and statistics.

The engine runs every plan exactly as surgery does (tests/engine/test_plans.py); here
each analysis's table is checked against the reference's metrics for its plans, and the
statistics against a direct recomputation.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stages.analyses.blocks import block_plans, block_sums, block_table, longest_kept
from stages.analyses.duplication import (
    duplication_plans,
    duplication_ranges,
    duplication_sums,
    duplication_table,
)
from stages.analyses.reorder import reorder_plans, reorder_sums, reorder_table, span_starts, where
from tests.reference import reference_logits, reference_metrics


def test_block_plans_cover_every_start_and_length_up_to_half_the_depth():
    for n in (5, 18, 30):
        spans = {(p.start, p.stop - p.start) for p in block_plans(n)}
        want = {(s, k) for k in range(1, n // 2 + 1) for s in range(n - k + 1)}
        assert spans == want
    assert len(block_plans(18)) == 126 and len(block_plans(30)) == 345


def test_reorder_spans_reach_both_ends():
    for n in (5, 18, 30):
        plans = reorder_plans(n)
        assert min(p.start for p in plans) == 0 and max(p.stop for p in plans) == n
        assert len(plans) == (4 if n < 8 else 7) * len(span_starts(n))
        for plan in plans:
            if plan.kind == "shuffle":
                assert plan.order not in (
                    tuple(range(plan.start, plan.stop)),
                    tuple(range(plan.stop - 1, plan.start - 1, -1)),
                )
    assert where(0, 4, 18) == "edge" and where(14, 18, 18) == "edge"
    assert where(6, 10, 18) == "middle" and where(2, 6, 18) == "between"


def test_duplication_ranges_are_centred_and_distinct():
    for n in (5, 18, 30):
        ranges = duplication_ranges(n)
        assert len(set(ranges)) == len(ranges) == 3
        for i, j in ranges:
            assert 0 <= i < j <= n and abs((i + j) / 2 - n / 2) <= 1
    assert {p.order.count(p.start) for p in duplication_plans(18)} == {2, 3, 4, 5}


def _spec(row) -> tuple:
    kind, start = row.kind, int(row.layer)
    stop = int(row.layers.split("-")[-1]) + 1
    if kind in ("drop_range", "reverse", "parallel"):
        return (kind, start, stop)
    if kind == "shuffle":
        return (kind, start, stop, int(row.label.split("seed ")[1]))
    return (kind, start, stop, int(row.label.rsplit("x", 1)[1]))


@pytest.mark.parametrize(
    ("compute", "reduce"),
    [
        (block_sums, block_table),
        (reorder_sums, reorder_table),
        (duplication_sums, duplication_table),
    ],
)
def test_tables_match_the_reference_metrics(compute, reduce, tiny_models, tiny_tokens):
    bridge, hf = tiny_models("gemma3")
    sums = compute(bridge, tiny_tokens, batch_size=3, progress=False, cache=False)
    table = reduce(sums, len(bridge.blocks))
    base = reference_logits(hf, tiny_tokens, ("none",))
    # every kind, at the first and the last start; every block of the first two starts
    last = table.start.max()
    rows = table[table.start.isin([0, 1, last]) & ~table.label.str.contains("x3|x4")]
    assert len(rows) > 5 and set(rows.kind) == set(table.kind)
    for row in rows.itertuples():
        want = reference_metrics(base, reference_logits(hf, tiny_tokens, _spec(row)), tiny_tokens)
        assert want["kl"] > 1e-6  # every plan changes the model
        for name in ("kl", "rel_acc", "entropy_delta", "loss"):
            got = getattr(row, name)
            assert got == pytest.approx(want[name], rel=1e-6, abs=1e-9), (row.label, name)


def _synthetic_blocks(kept: dict[tuple[int, int], float], n_seq: int = 40) -> pd.DataFrame:
    """Sums with ``rel_acc`` of each block ``(start, length)`` at the given share, plus noise."""
    rng = np.random.default_rng(0)
    columns = {}
    for (start, length), share in kept.items():
        label = f"drop_range {start}" + (f"-{start + length - 1}" if length > 1 else "")
        columns[f"{label}:kl"] = np.ones(n_seq)
        columns[f"{label}:rel_acc"] = 10 * np.clip(share + rng.normal(0, 0.01, n_seq), 0, 1)
    return pd.DataFrame(columns | {"seq_len": np.full(n_seq, 12.0)})


def test_longest_kept_finds_the_longest_length_whose_best_block_keeps_the_share():
    kept = {(0, 1): 0.2, (1, 1): 0.95, (2, 1): 0.9, (0, 2): 0.1, (1, 2): 0.6, (0, 3): 0.3}
    sums = _synthetic_blocks(kept)
    length, lo, hi, best = longest_kept(sums, 0.5)
    assert (length, lo, hi) == (2, 2, 2)
    assert best.set_index("length").loc[2, "start"] == 1
    assert longest_kept(sums, 0.8)[:3] == (1, 1, 1)
    assert longest_kept(sums, 0.99)[:3] == (0, 0, 0)


def test_longest_kept_is_unsure_when_the_best_block_straddles_the_share():
    sums = _synthetic_blocks({(0, 1): 0.9, (0, 2): 0.5})
    length, lo, hi, _ = longest_kept(sums, 0.5)
    assert lo == 1 and hi == 2
