"""The verdict ledger: rewritten only when a verdict or a number moves; its moves read from git."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pandas as pd
import pytest

from stages.results.changelog import NoHistoryError
from stages.results.ledger import (
    LEDGER,
    ledger_differences,
    ledger_frame,
    ledger_history,
    pending_moves,
    read_ledger,
    verdict_moves,
    write_ledger,
)


def _claims(verdicts: dict[tuple[str, int], str], claim: str = "c") -> pd.DataFrame:
    return pd.DataFrame([
        {"model": m, "group": "robustness", "number": k, "source": "paper v1",
         "claim": f"{claim}{k}", "verdict": v, "value": 0.5, "lo": 0.4, "hi": 0.6, "n": 256,
         "unit": "sequences", "rule": "not kept", "statistic": "not kept"}
        for (m, k), v in verdicts.items()
    ])  # fmt: skip


def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)


def _commit(root: Path, message: str) -> None:
    _git(root, "add", "-A")
    _git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", message)


def test_the_ledger_is_rewritten_only_when_it_changes(tmp_path):
    claims = _claims({("a", 0): "holds", ("a", 1): "unclear"})
    assert write_ledger(claims, tmp_path)
    before = (tmp_path / LEDGER).stat().st_mtime_ns
    assert not write_ledger(claims.iloc[::-1], tmp_path)  # same verdicts, other order
    assert (tmp_path / LEDGER).stat().st_mtime_ns == before
    back = read_ledger(tmp_path / LEDGER)
    assert list(back.columns)[:6] == ["model", "group", "number", "source", "claim", "verdict"]
    assert "rule" not in back.columns


def test_a_sixth_digit_of_rounding_keeps_the_ledger_and_a_real_change_rewrites_it(tmp_path):
    claims = _claims({("a", 0): "holds", ("a", 1): "unclear"})
    write_ledger(claims, tmp_path)
    committed = (tmp_path / LEDGER).read_bytes()
    noise = claims.assign(value=claims["value"] * (1 + 3e-6), lo=claims["lo"] - 1e-7)
    assert not write_ledger(noise, tmp_path)
    assert (tmp_path / LEDGER).read_bytes() == committed
    assert ledger_differences(read_ledger(tmp_path / LEDGER), ledger_frame(noise)).empty
    grown = claims.assign(n=[256, 512])
    (row,) = ledger_differences(read_ledger(tmp_path / LEDGER), ledger_frame(grown)).itertuples()
    assert (row.number, row.n_before, row.n_after) == (1, 256, 512)
    moved = claims.assign(hi=[0.6, 0.6002])  # 3.3e-4 relative: a real change
    assert write_ledger(moved, tmp_path)
    assert read_ledger(tmp_path / LEDGER)["hi"].tolist() == [0.6, 0.6002]
    zero = ledger_frame(moved.assign(lo=[0.0, 0.4]))
    assert ledger_differences(zero, zero.assign(lo=[1e-12, 0.4])).empty  # ATOL
    assert len(ledger_differences(zero, zero.assign(lo=[1e-6, 0.4]))) == 1
    reworded = moved.assign(claim=["another wording", "c1"])
    (row,) = ledger_differences(read_ledger(tmp_path / LEDGER), ledger_frame(reworded)).itertuples()
    assert (row.number, row.claim_before, row.claim_after) == (0, "c0", "another wording")


def test_moves_name_the_claim_and_both_verdicts():
    old = _claims({("a", 0): "holds", ("a", 1): "does not hold", ("a", 2): "holds"})
    new = _claims({("a", 0): "holds", ("a", 1): "no evidence", ("a", 3): "unclear"}, "d")
    moves = verdict_moves(old, new).set_index("number")
    assert list(moves.index) == [1, 2, 3]
    assert (moves.loc[1, "before"], moves.loc[1, "after"]) == ("does not hold", "no evidence")
    assert moves.loc[1, "claim"] == "c1 / now: d1"  # the wording changed with the test
    assert moves.loc[2, "after"] == "(gone)" and moves.loc[3, "before"] == "(new)"
    assert moves.loc[1, "interval_after"] == "0.5 (0.4 to 0.6), n = 256"


def test_history_and_pending_moves_from_a_real_repository(tmp_path):
    _git(tmp_path, "init", "-q")
    packs = tmp_path / "data" / "results"
    packs.mkdir(parents=True)
    with pytest.raises(NoHistoryError):
        ledger_history(packs)
    write_ledger(_claims({("a", 0): "holds", ("b", 0): "unclear"}), packs)
    _commit(tmp_path, "first ledger")
    write_ledger(_claims({("a", 0): "holds", ("b", 0): "does not hold"}), packs)
    _commit(tmp_path, "b grew")
    history = ledger_history(packs)
    first, grown = history[history.subject == "first ledger"], history[history.subject == "b grew"]
    assert set(first["before"]) == {"(new)"} and len(first) == 2
    assert grown[["model", "before", "after"]].values.tolist() == [["b", "unclear",
                                                                    "does not hold"]]
    assert pending_moves(packs).empty
    write_ledger(_claims({("a", 0): "no evidence", ("b", 0): "does not hold"}), packs)
    (move,) = pending_moves(packs).itertuples()
    assert (move.model, move.before, move.after) == ("a", "holds", "no evidence")
