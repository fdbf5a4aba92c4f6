"""The result cache: checksums, resumption after SIGKILL, concurrent runs, bad inputs, the CLI."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

import stages
import stages.engine.sweep
from stages import cache
from stages.cache import Entry
from stages.cli import main as cli_main

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("STAGES_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "results"


def test_entry_round_trip_and_corruption(fresh_cache):
    entry = Entry.for_run("demo", {"model": {"name": "m"}, "x": 1})
    table = pd.DataFrame({"a": [1.0, 2.5], "b": ["x", "y"]})
    entry.write("t", table, meta={"note": "hi"})
    got, meta = entry.read("t")
    pd.testing.assert_frame_equal(got, table)
    assert meta == {"note": "hi"}
    (data,) = entry.path.glob("t.*.parquet")
    data.write_bytes(data.read_bytes()[:-7])  # truncated by a crash or a full disk
    assert entry.read("t") is None  # detected, never read
    entry.write("t", table)  # a recomputation replaces it
    assert entry.read("t") is not None
    (entry.path / "t.json").unlink()  # killed between the two renames
    assert entry.read("t") is None
    assert Entry.for_run("demo", {"x": 1, "model": {"name": "m"}}).key == entry.key  # key order


def _sweep(bridge, tokens, **kw):
    return stages.run_sweep(
        bridge, tokens, stages.drops(bridge), batch_size=2, progress=False, **kw
    )


def test_a_finished_table_is_reused_and_equal(fresh_cache, tiny_models, tiny_tokens, monkeypatch):
    bridge, _ = tiny_models("gpt2")
    first = _sweep(bridge, tiny_tokens)
    assert first.attrs["provenance"]["weights_hash"] == bridge.stages_info["weights_hash"]

    def fail(*a, **k):
        raise AssertionError("recomputed a cached batch")

    monkeypatch.setattr(stages.engine.sweep, "score_residuals", fail)
    again = _sweep(bridge, tiny_tokens)
    pd.testing.assert_frame_equal(first, again, check_exact=True)
    assert again.attrs["provenance"]["from_cache"] and not first.attrs["provenance"]["from_cache"]
    assert again.attrs["provenance"]["tokens_sha256"] == first.attrs["provenance"]["tokens_sha256"]


def test_a_corrupt_checkpoint_is_recomputed(fresh_cache, tiny_models, tiny_tokens, monkeypatch):
    bridge, _ = tiny_models("neox")
    want = _sweep(bridge, tiny_tokens, cache=False)
    _sweep(bridge, tiny_tokens)
    (entry,) = fresh_cache.glob("sweep/*")
    for table in entry.glob("sums*"):
        table.unlink()  # as if killed before the end
    (victim,) = entry.glob("batch-00001.*.parquet")
    victim.write_bytes(victim.read_bytes()[:100])
    calls = []
    original = stages.engine.sweep.score_residuals
    monkeypatch.setattr(
        stages.engine.sweep, "score_residuals", lambda *a: calls.append(1) or original(*a)
    )
    got = _sweep(bridge, tiny_tokens)
    assert len(calls) == 1  # only the damaged batch
    pd.testing.assert_frame_equal(got, want, check_exact=True)


def test_changed_inputs_miss_the_cache(fresh_cache, tiny_models, tiny_tokens):
    bridge, _ = tiny_models("gpt2")
    _sweep(bridge, tiny_tokens)
    _sweep(bridge, tiny_tokens[:, :20])
    _sweep(bridge, tiny_tokens, seed=1)  # same sums, another bootstrap: nothing new stored
    stages.run_sweep(bridge, tiny_tokens, stages.swaps(bridge), batch_size=2, progress=False)
    entries = list(fresh_cache.glob("sweep/*"))
    assert len(entries) == 3
    assert sum(len(list(e.glob("sums.*.parquet"))) for e in entries) == 3


@pytest.mark.parametrize(
    "kwargs",
    [
        {"batch_size": 0},
        {"batch_size": "8"},
        {"interventions": [stages.drop(99)]},
        {"interventions": [stages.swap(4)]},
    ],
)
def test_bad_inputs_write_nothing(kwargs, fresh_cache, tiny_models, tiny_tokens):
    bridge, _ = tiny_models("gpt2")
    with pytest.raises(ValueError):
        stages.run_sweep(bridge, tiny_tokens, progress=False, **kwargs)
    assert not fresh_cache.exists() or not any(fresh_cache.rglob("*"))


def _worker(out: Path, env: dict, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.sweep_worker", str(out), *extra],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _computed(proc: subprocess.Popen) -> int:
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-2000:]
    return int(out.strip().splitlines()[-1].split()[-1])


@pytest.mark.processes
def test_sigkill_then_resume_gives_the_uninterrupted_table(tmp_path):
    env = dict(os.environ, STAGES_CACHE_DIR=str(tmp_path / "cache"))
    reference = _worker(
        tmp_path / "reference.parquet",
        dict(env, STAGES_CACHE_DIR=str(tmp_path / "other")),
        "--no-cache",
    )
    proc = _worker(tmp_path / "killed.parquet", env, "--slow", "1.5")
    checkpoints = tmp_path / "cache" / "results" / "sweep"
    deadline = time.time() + 240
    while len(list(checkpoints.glob("*/batch-*.json"))) < 2:
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        assert time.time() < deadline, "the worker made no checkpoints"
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = len(list(checkpoints.glob("*/batch-*.json")))
    assert 2 <= done < 6 and not list(checkpoints.glob("*/sums*"))
    resumed = _worker(tmp_path / "resumed.parquet", env)
    assert _computed(resumed) == 6 - done
    assert _computed(reference) == 6
    pd.testing.assert_frame_equal(
        pd.read_parquet(tmp_path / "resumed.parquet"),
        pd.read_parquet(tmp_path / "reference.parquet"),
        check_exact=True,
    )


@pytest.mark.processes
def test_two_concurrent_runs_of_one_sweep(tmp_path, monkeypatch):
    monkeypatch.setenv("STAGES_CACHE_DIR", str(tmp_path / "cache"))
    env = dict(os.environ)
    runs = [_worker(tmp_path / f"run{i}.parquet", env, "--slow", "0.2") for i in range(2)]
    for proc in runs:
        _computed(proc)
    a, b = (pd.read_parquet(tmp_path / f"run{i}.parquet") for i in range(2))
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    (entry,) = (tmp_path / "cache" / "results" / "sweep").glob("*")
    stored = Entry("sweep", entry.name)
    for sidecar in entry.glob("*.json"):
        if sidecar.name != "key.json":
            assert stored.read(sidecar.stem) is not None, sidecar.name  # every file intact
    assert not list(entry.glob(".*tmp"))  # no temporary files left behind


def test_cli_lists_and_clears(fresh_cache, tiny_models, tiny_tokens, capsys):
    bridge, _ = tiny_models("gpt2")
    _sweep(bridge, tiny_tokens)
    assert cli_main(["cache", "ls"]) == 0
    out = capsys.readouterr().out
    assert "sweep" in out and bridge.stages_info["name"] in out
    assert len(cache.list_entries()) == 1
    assert cli_main(["cache", "clear"]) == 0
    assert cache.list_entries().empty


def test_an_edited_engine_misses_the_cache(fresh_cache, tiny_models, tiny_tokens, monkeypatch):
    bridge, _ = tiny_models("gpt2")
    _sweep(bridge, tiny_tokens)
    monkeypatch.setattr(stages.engine.runs, "code_fingerprint", lambda module: "edited")
    _sweep(bridge, tiny_tokens)
    assert len(list(fresh_cache.glob("sweep/*"))) == 2


def test_the_code_in_a_cache_key_is_found_from_the_imports():
    import stages.analyses.lens
    import stages.engine.sweep

    names = {m.__name__ for m in stages.engine.runs.code_modules(stages.engine.sweep)}
    assert {"stages.engine.sweep", "stages.engine.forward", "stages.engine.plans",
            "stages.engine.metrics",
            "stages.engine.runs", "stages.cache"} <= names  # fmt: skip
    assert "stages.plots" not in names and "stages.book" not in names
    lens = {m.__name__ for m in stages.engine.runs.code_modules(stages.analyses.lens)}
    assert "stages.engine.sweep" in lens  # the lens scores residuals with the sweep's scorer
