"""The verdict ledger: every verdict the book decides from the shipped packs, committed as CSV.

``data/results/verdicts.csv`` holds one row per claim and model (and one per claim across the
models): its group, number, source, wording, verdict, value, 95% interval and n. The What holds
page rewrites it whenever it runs on the shipped packs (:func:`write_ledger`; the bytes do not
change when no row does, a statistic counting as unchanged within :data:`RTOL`), so a change of
code or of a pack that moves a verdict or a number shows as a diff of this file, committed with
the change. :func:`verdict_moves` compares two versions, and
:func:`ledger_history` reads every committed version from git, so the changelog page can say
which verdicts moved at which commit.

A claim is the same across versions by ``(model, group, number)``: its wording may change when
its test does (the row then shows both wordings).
"""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd

from stages.results.changelog import NoHistoryError, _git
from stages.store import atomic_write

LEDGER = "verdicts.csv"
"""The ledger's file name in the folder of packs (``data/results``)."""

COLUMNS = ["model", "group", "number", "source", "claim", "verdict", "value", "lo", "hi", "n",
           "unit"]  # fmt: skip
KEY = ["model", "group", "number"]
NUMBERS = ["value", "lo", "hi"]
RTOL = 1e-4
"""Relative difference below which a statistic of the ledger counts as unchanged. A guard, not
a measured need: on this machine the ledger is byte-identical with numpy, OpenBLAS and torch
held to AVX2 kernels (``NPY_DISABLE_CPU_FEATURES``, ``OPENBLAS_CORETYPE=Haswell``,
``ATEN_CPU_CAPABILITY=avx2``), while the ledger's narrowest interval spans 3e-3 of its value
(December 2026)."""
ATOL = 1e-9
"""Absolute difference below which a statistic counts as unchanged (a bound at exactly 0, such
as a share's lower bound, against rounding noise)."""
MOVE_COLUMNS = ["date", "commit", "subject", "model", "group", "number", "claim", "before",
                "after", "interval_before", "interval_after"]  # fmt: skip


def ledger_frame(claims: pd.DataFrame) -> pd.DataFrame:
    """The ledger's rows for a What holds table (``claims`` with a ``model`` column), sorted."""
    out = claims.reindex(columns=COLUMNS).copy()
    out["number"] = out["number"].astype(int)
    out["n"] = out["n"].astype(int)
    return out.sort_values(KEY, kind="stable").reset_index(drop=True)


def _csv(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False, float_format="%.6g", lineterminator="\n").encode()


def ledger_differences(before: pd.DataFrame, after: pd.DataFrame) -> pd.DataFrame:
    """The rows of two ledgers that differ: in any column, a statistic beyond RTOL and ATOL.

    Returns:
        One row per claim (:data:`KEY`) present in only one ledger or differing, with both
        versions' columns (suffixes ``_before`` and ``_after``); empty when the ledgers agree.
    """
    both = before.merge(after, on=KEY, how="outer", suffixes=("_before", "_after"),
                        indicator=True)  # fmt: skip
    differs = both["_merge"] != "both"
    for column in (c for c in COLUMNS if c not in KEY):
        b, a = both[f"{column}_before"], both[f"{column}_after"]
        if column in NUMBERS:
            b, a = b.astype(float).to_numpy(), a.astype(float).to_numpy()
            differs |= ~np.isclose(b, a, rtol=RTOL, atol=ATOL, equal_nan=True)
        else:
            differs |= ~((b == a) | (b.isna() & a.isna()))
    return both[differs].drop(columns="_merge").reset_index(drop=True)


def write_ledger(claims: pd.DataFrame, folder: str | Path) -> bool:
    """Write the ledger of ``claims`` into ``folder`` unless it already holds the same rows.

    Rows are the same when every column is, a statistic within :data:`RTOL` or :data:`ATOL`
    (:func:`ledger_differences`): the committed bytes stay when only rounding moved a sixth
    digit.

    Returns:
        Whether the file changed.
    """
    path = Path(folder) / LEDGER
    data = _csv(ledger_frame(claims))
    if path.exists() and (
        path.read_bytes() == data
        or ledger_differences(read_ledger(path), read_ledger(data)).empty
    ):
        return False
    atomic_write(path, data)
    return True


def read_ledger(data: bytes | str | Path) -> pd.DataFrame:
    """A ledger from its bytes or its path."""
    if isinstance(data, (str, Path)):
        data = Path(data).read_bytes()
    return pd.read_csv(io.BytesIO(data))


def _interval(row: pd.Series, suffix: str) -> str:
    value, lo, hi = row[f"value{suffix}"], row[f"lo{suffix}"], row[f"hi{suffix}"]
    if pd.isna(value):
        return ""
    return f"{value:.3g} ({lo:.3g} to {hi:.3g}), n = {int(row[f'n{suffix}'])}"


def verdict_moves(before: pd.DataFrame | None, after: pd.DataFrame) -> pd.DataFrame:
    """The claims whose verdict differs between two ledgers (a claim new or gone counts too).

    Returns:
        One row per moved claim: ``model``, ``group``, ``number``, ``claim`` (both wordings
        when they differ), ``before`` and ``after`` (the verdicts; "(new)" / "(gone)"),
        ``interval_before``, ``interval_after`` (value, interval and n).
    """
    before = before if before is not None else pd.DataFrame(columns=COLUMNS)
    both = before.merge(after, on=KEY, how="outer", suffixes=("_b", "_a"), indicator=True)
    rows = []
    for _, r in both.iterrows():
        old = "(new)" if r["_merge"] == "right_only" else r["verdict_b"]
        new = "(gone)" if r["_merge"] == "left_only" else r["verdict_a"]
        if old == new:
            continue
        wordings = [w for w in dict.fromkeys([r["claim_b"], r["claim_a"]]) if isinstance(w, str)]
        rows.append({
            "model": r["model"], "group": r["group"], "number": int(r["number"]),
            "claim": " / now: ".join(wordings), "before": old, "after": new,
            "interval_before": _interval(r, "_b") if old != "(new)" else "",
            "interval_after": _interval(r, "_a") if new != "(gone)" else "",
        })  # fmt: skip
    return pd.DataFrame(rows, columns=MOVE_COLUMNS[3:])


def ledger_history(folder: str | Path) -> pd.DataFrame:
    """Every committed change of the ledger in ``folder`` that moved a verdict, oldest first.

    Returns:
        :data:`MOVE_COLUMNS`: the commit (12 hex digits), its UTC date and subject, and one
        row per moved claim (:func:`verdict_moves` against the version before).

    Raises:
        NoHistoryError: no git history of the ledger (see
            :func:`stages.results.changelog.pack_history`).
    """
    folder = Path(folder).resolve()
    top = Path(_git(folder, "rev-parse", "--show-toplevel").strip())
    if _git(top, "rev-parse", "--is-shallow-repository").strip() == "true":
        raise NoHistoryError(f"{top} is a shallow clone: its history of the verdicts is cut short")
    path = (folder / LEDGER).relative_to(top).as_posix()
    log = _git(top, "log", "--reverse", "--format=%H%x1f%cI%x1f%s", "--", path)
    frames, previous = [], None
    for line in filter(None, log.splitlines()):
        commit, date, subject = line.split("\x1f", 2)
        shown = subprocess.run(["git", "-C", str(top), "show", f"{commit}:{path}"],
                               capture_output=True)  # fmt: skip
        current = read_ledger(shown.stdout) if shown.returncode == 0 else None
        if current is None:
            previous = None
            continue
        moves = verdict_moves(previous, current)
        when = pd.Timestamp(date).tz_convert("UTC").strftime("%Y-%m-%d %H:%M")
        frames.append(moves.assign(date=when, commit=commit[:12], subject=subject))
        previous = current
    if not frames:
        raise NoHistoryError(f"git holds no commit of {path} in {top}")
    return pd.concat(frames, ignore_index=True).reindex(columns=MOVE_COLUMNS)


def pending_moves(folder: str | Path) -> pd.DataFrame | None:
    """The verdicts the ledger on disk moved against its last committed version.

    Returns:
        :func:`verdict_moves` (empty when the file equals the commit), or None without git
        history of it.
    """
    folder = Path(folder).resolve()
    try:
        top = Path(_git(folder, "rev-parse", "--show-toplevel").strip())
        path = (folder / LEDGER).relative_to(top).as_posix()
        committed = _git(top, "show", f"HEAD:{path}")
    except NoHistoryError:
        return None
    if not (folder / LEDGER).exists():
        return None
    return verdict_moves(read_ledger(committed.encode()), read_ledger(folder / LEDGER))
