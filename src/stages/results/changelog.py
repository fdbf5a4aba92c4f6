"""What changed in the committed results packs, from one pack build to the next (git history).

Every build of a pack rewrites its ``manifest.json`` (:mod:`stages.results.build`), which
lists each part's chunk files with their sha256. Comparing a manifest with its previous
committed version says what a build did to each part:

- ``added``: the part is new (its first rows);
- ``grown``: more rows, every row already held unchanged (same files, same sha256);
- ``recomputed``: a file already held has another sha256: **numbers already published
  changed** (a change of code or of the recipe);
- ``removed``: the part is gone;
- ``manifest only``: nothing of the part's files changed, but the manifest did (dates,
  recorded choices).

The history is read with ``git log`` and ``git show`` from the checkout; a copy without git
history (an sdist, a shallow clone) raises :class:`NoHistoryError`, and
:func:`current_holdings` then lists what each pack holds now, with the date and commit its
manifest records for each part.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pandas as pd

from stages.results.pack import part_computed, short_commit

MANIFESTS = "*/manifest.json"
"""The packs' manifests, relative to the folder of packs (``data/results``)."""

COLUMNS = ["date", "commit", "model", "part", "change", "rows_before", "rows_after", "detail",
           "subject"]  # fmt: skip

_ROWS = re.compile(r"rows-(\d+)-(\d+)\.parquet$")


class NoHistoryError(RuntimeError):
    """The checkout has no git history of the results packs (not a git clone, or shallow)."""


def _git(root: Path, *args: str) -> str:
    try:
        out = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True)
    except OSError as exc:  # no git installed
        raise NoHistoryError(f"git cannot run here ({exc})") from exc
    if out.returncode != 0:
        raise NoHistoryError(f"git {' '.join(args[:2])} failed in {root}: {out.stderr.strip()}")
    return out.stdout


def rows_held(entry: dict[str, Any]) -> int:
    """Rows (sequences or windows) a manifest's part entry holds: the end of its last chunk.

    A part stored in one file without a row range (the neuron moments) counts as 1.
    """
    ends = [int(m.group(2)) for f in entry.get("files", []) if (m := _ROWS.search(f))]
    return max(ends, default=1 if entry.get("files") else 0)


def compare_manifests(before: dict[str, Any] | None, after: dict[str, Any]) -> list[dict]:
    """What one build changed: one row per part that changed (see the module docstring).

    Args:
        before: the previous manifest (None: the pack is new).
        after: the manifest now.

    Returns:
        Rows with ``part``, ``change``, ``rows_before``, ``rows_after``, ``detail``.
    """
    old_parts = (before or {}).get("parts", {})
    new_parts = after.get("parts", {})
    old_files = (before or {}).get("files", {})
    new_files = after.get("files", {})
    rows = []
    for part in [*new_parts, *(p for p in old_parts if p not in new_parts)]:
        old, new = old_parts.get(part), new_parts.get(part)
        n0 = rows_held(old) if old else 0
        n1 = rows_held(new) if new else 0
        if new is None:
            change, detail = "removed", ""
        elif old is None:
            change, detail = "added", f"{len(new['files'])} files"
        else:
            kept = [f for f in old["files"] if f in new["files"]]
            altered = [f for f in kept if old_files.get(f) != new_files.get(f)]
            if altered or len(kept) < len(old["files"]):
                change = "recomputed"
                detail = f"{len(altered)} of {len(old['files'])} files held before now differ"
            elif n1 > n0:
                change, detail = "grown", f"{len(new['files']) - len(kept)} new files"
            elif old != new:
                keys = sorted(k for k in {*old, *new} if old.get(k) != new.get(k))
                change, detail = "manifest only", ", ".join(keys)
            else:
                continue
        rows.append({"part": part, "change": change, "rows_before": n0, "rows_after": n1,
                     "detail": detail})  # fmt: skip
    return rows


def pack_history(results: str | Path) -> pd.DataFrame:
    """Every change git records to the committed packs, oldest first.

    Args:
        results: the folder of packs (:func:`stages.store.data_dir` ``/ "results"``), inside a
            git checkout.

    Returns:
        One row per (commit, model, part changed): :data:`COLUMNS`. ``date`` is the commit's
        UTC date, ``commit`` its first 12 hex digits, ``subject`` its message's first line.

    Raises:
        NoHistoryError: ``results`` is not in a git checkout, or in a shallow one, or git
            holds no commit of its manifests (the packs were never committed), or no git.
    """
    results = Path(results).resolve()
    top = Path(_git(results, "rev-parse", "--show-toplevel").strip())
    if _git(top, "rev-parse", "--is-shallow-repository").strip() == "true":
        raise NoHistoryError(f"{top} is a shallow clone: its history of the packs is cut short")
    spec = f"{results.relative_to(top).as_posix()}/{MANIFESTS}"
    log = _git(top, "log", "--reverse", "--format=%H%x1f%cI%x1f%s", "--name-only", "--", spec)
    rows = []
    commit = date = subject = ""
    for line in log.splitlines():
        if "\x1f" in line:
            commit, date, subject = line.split("\x1f", 2)
            continue
        if not line.strip():
            continue
        after = _manifest_at(top, commit, line)
        if after is None:  # deleted in this commit
            continue
        before = _manifest_at(top, f"{commit}^", line)
        model = Path(line).parent.name
        for row in compare_manifests(before, after):
            rows.append({"date": pd.Timestamp(date).tz_convert("UTC").strftime("%Y-%m-%d %H:%M"),
                         "commit": commit[:12], "model": model, **row,
                         "subject": subject})  # fmt: skip
    if not rows:
        raise NoHistoryError(f"git holds no commit of {spec} in {top}")
    return pd.DataFrame(rows, columns=COLUMNS)


def uncommitted(results: str | Path) -> list[str]:
    """The packs' manifests that differ from the last commit (a build not committed yet).

    Returns:
        Their paths relative to the repository; empty without git.
    """
    results = Path(results).resolve()
    try:
        top = Path(_git(results, "rev-parse", "--show-toplevel").strip())
        spec = f"{results.relative_to(top).as_posix()}/{MANIFESTS}"
        status = _git(top, "status", "--porcelain", "--", spec)
    except NoHistoryError:
        return []
    return [line[3:] for line in status.splitlines() if line.strip()]


def current_holdings(results: str | Path) -> pd.DataFrame:
    """What each committed pack holds now, one row per part, from the manifests on disk.

    For a checkout without git history. ``results``: the folder of packs. ``change`` is
    ``"held"``; ``date`` (a day) and ``commit`` are those the manifest records for the part
    (:func:`stages.results.pack.part_computed`; "not recorded" where it has none).

    Returns:
        :data:`COLUMNS`, one row per (pack, part).
    """
    rows = []
    for path in sorted(Path(results).glob(MANIFESTS)):
        manifest = json.loads(path.read_text())
        for part, entry in manifest.get("parts", {}).items():
            when, commit, _ = part_computed(manifest, part)
            rows.append({
                "date": when or "not recorded", "commit": short_commit(commit),
                "model": path.parent.name, "part": part, "change": "held", "rows_before": 0,
                "rows_after": rows_held(entry), "detail": "",
                "subject": "(no git history here: what the pack holds now)",
            })  # fmt: skip
    return pd.DataFrame(rows, columns=COLUMNS)


def _manifest_at(root: Path, revision: str, path: str) -> dict[str, Any] | None:
    out = subprocess.run(["git", "-C", str(root), "show", f"{revision}:{path}"],
                         capture_output=True, text=True)  # fmt: skip
    return json.loads(out.stdout) if out.returncode == 0 else None
