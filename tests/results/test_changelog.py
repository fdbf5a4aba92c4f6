"""The changelog of the results packs, read from a real git history of their manifests."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from stages.results.changelog import (
    NoHistoryError,
    compare_manifests,
    current_holdings,
    pack_history,
    rows_held,
    uncommitted,
)


def _manifest(parts: dict[str, dict[str, str]], finished: str = "") -> dict:
    """A manifest whose parts hold the given ``{file: sha256}``."""
    return {
        "finished": finished,
        "parts": {p: {"files": sorted(files)} for p, files in parts.items()},
        "files": {f: sha for files in parts.values() for f, sha in files.items()},
    }


SWEEP_2 = {"sweep/rows-00000-00002.parquet": "a"}
SWEEP_34 = SWEEP_2 | {"sweep/rows-00002-00034.parquet": "b"}


def test_rows_held_is_the_end_of_the_last_chunk():
    assert rows_held({"files": ["x/rows-00002-00034.parquet", "x/rows-00000-00002.parquet"]}) == 34
    assert rows_held({"files": ["neurons.parquet"]}) == 1
    assert rows_held({"files": []}) == 0


def test_each_kind_of_change_is_told_apart():
    v1 = _manifest({"sweep": SWEEP_2, "neurons": {"neurons.parquet": "n"}})
    assert [(r["part"], r["change"], r["rows_before"], r["rows_after"])
            for r in compare_manifests(None, v1)] == [("sweep", "added", 0, 2),
                                                      ("neurons", "added", 0, 1)]  # fmt: skip
    grown = _manifest({"sweep": SWEEP_34, "neurons": {"neurons.parquet": "n"}})
    assert compare_manifests(v1, grown) == [
        {"part": "sweep", "change": "grown", "rows_before": 2, "rows_after": 34,
         "detail": "1 new files"}]  # fmt: skip
    altered = _manifest({"sweep": SWEEP_34 | {"sweep/rows-00000-00002.parquet": "a2"},
                         "neurons": {"neurons.parquet": "n"}})  # fmt: skip
    (row,) = compare_manifests(grown, altered)
    assert row["change"] == "recomputed" and row["detail"] == "1 of 2 files held before now differ"
    dated = json.loads(json.dumps(grown))
    dated["parts"]["sweep"]["updated"] = "2026-12-02T00:00:00+00:00"
    (row,) = compare_manifests(grown, dated)
    assert (row["change"], row["detail"]) == ("manifest only", "updated")
    (row,) = compare_manifests(grown, _manifest({"sweep": SWEEP_34}))
    assert (row["part"], row["change"], row["rows_before"]) == ("neurons", "removed", 1)
    assert compare_manifests(grown, grown) == []


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


def _commit(repo: Path, model: str, manifest: dict, message: str) -> None:
    path = repo / "data" / "results" / model / "manifest.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(manifest, indent=1))
    _git(repo, "add", "-A")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", message)


def test_the_history_follows_every_commit_of_every_pack(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    _commit(repo, "m1", _manifest({"sweep": SWEEP_2}), "m1: first round")
    _commit(repo, "m2", _manifest({"sweep": SWEEP_2}), "m2: first round")
    (repo / "README").write_text("unrelated")
    _git(repo, "add", "-A")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "docs")
    _commit(repo, "m1", _manifest({"sweep": SWEEP_34}), "m1: second round")
    _commit(repo, "m1", _manifest({"sweep": SWEEP_34 | {"sweep/rows-00000-00002.parquet": "z"}}),
            "m1: code changed")  # fmt: skip
    history = pack_history(repo / "data" / "results")
    assert list(zip(history["model"], history["change"], history["rows_after"],
                    history["subject"], strict=True)) == [
        ("m1", "added", 2, "m1: first round"),
        ("m2", "added", 2, "m2: first round"),
        ("m1", "grown", 34, "m1: second round"),
        ("m1", "recomputed", 34, "m1: code changed"),
    ]  # fmt: skip
    assert history["commit"].str.len().eq(12).all()
    assert uncommitted(repo / "data" / "results") == []
    (repo / "data" / "results" / "m2" / "manifest.json").write_text("{}")  # built, not committed
    assert uncommitted(repo / "data" / "results") == ["data/results/m2/manifest.json"]

    shallow = tmp_path / "shallow"
    subprocess.run(["git", "clone", "-q", "--depth", "1", f"file://{repo}", str(shallow)],
                   check=True, capture_output=True)  # fmt: skip
    with pytest.raises(NoHistoryError, match="shallow"):
        pack_history(shallow / "data" / "results")
    with pytest.raises(NoHistoryError):
        pack_history(tmp_path)  # not a git checkout
    empty = tmp_path / "empty"
    (empty / "data" / "results").mkdir(parents=True)
    _git(empty, "init", "-q")
    (empty / "x").write_text("x")
    _git(empty, "add", "-A")
    _git(empty, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "no packs")
    with pytest.raises(NoHistoryError, match="no commit"):
        pack_history(empty / "data" / "results")


def test_without_history_the_packs_are_listed_as_they_are(tmp_path):
    m = _manifest({"sweep": SWEEP_34, "neurons": {"neurons.parquet": "n"}},
                  finished="2026-11-29T15:07:11+00:00")  # fmt: skip
    m["parts"]["sweep"] |= {"updated": "2026-12-01T10:00:00+00:00", "git_commit": "c" * 40}
    m["git_commit"] = "p" * 40
    path = tmp_path / "data" / "results" / "m1" / "manifest.json"
    path.parent.mkdir(parents=True)
    m["parts"]["neurons"]["git_commit"] = "d" * 40 + "+dirty"
    path.write_text(json.dumps(m))
    held = current_holdings(tmp_path / "data" / "results").set_index("part")
    assert held.loc["sweep", ["date", "commit", "rows_after"]].tolist() == [
        "2026-12-01", "c" * 12, 34]
    assert held.loc["neurons", ["date", "commit", "change"]].tolist() == [
        "not recorded", "d" * 12 + "+dirty", "held"]
