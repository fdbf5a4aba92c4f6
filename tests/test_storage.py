"""Faults where stages keeps its files: a full disk, a read-only cache, a cache that is a file.

Each ends in one clear message (stages.store.StorageError), leaves nothing partial that is
ever read, and the next run resumes.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys

import pandas as pd
import pytest

import stages
import stages.store
from stages.cache import Entry
from stages.cli import main
from stages.results.build import build_pack
from stages.store import StorageError, results_dir
from tests.conftest import make_tiny_hf, tiny_recipe


def _disk_full_for(monkeypatch, fragment: str) -> list[str]:
    """Make ``fsync`` fail with ENOSPC for files whose name holds ``fragment``; returns the hits.

    The bytes are already written when fsync fails, as with a disk that fills at flush time,
    so the temporary file on disk is partial.
    """
    real_fsync, hits = os.fsync, []

    def fsync(fd: int) -> None:
        name = os.readlink(f"/proc/self/fd/{fd}")
        if fragment in os.path.basename(name):
            hits.append(name)
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(stages.store.os, "fsync", fsync)
    return hits


def _leftovers(folder) -> list:
    return [p for p in folder.rglob("*") if p.name.endswith(".tmp")]


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="reads file names from /proc")
def test_a_full_disk_during_a_checkpoint_loses_nothing_and_the_run_resumes(
    tiny_models, tiny_tokens, monkeypatch
):
    bridge, _ = tiny_models("gpt2")
    plans = stages.default_interventions(bridge)[:4]
    hits = _disk_full_for(monkeypatch, ".batch-00001.")
    with pytest.raises(StorageError, match="no space left on the disk .* run again to resume"):
        stages.run_sweep(bridge, tiny_tokens, plans, batch_size=2, progress=False)
    assert hits and _leftovers(results_dir()) == []
    monkeypatch.undo()

    writes = []
    real_write = Entry.write

    def counted(self, name, *args, **kwargs):
        writes.append(name)
        return real_write(self, name, *args, **kwargs)

    monkeypatch.setattr(Entry, "write", counted)
    resumed = stages.run_sweep(bridge, tiny_tokens, plans, batch_size=2, progress=False)
    assert writes == ["batch-00001", "batch-00002", "sums"]  # batch 0 came from its checkpoint
    fresh = stages.run_sweep(bridge, tiny_tokens, plans, batch_size=2, progress=False, cache=False)
    pd.testing.assert_frame_equal(resumed, fresh)


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="reads file names from /proc")
def test_a_full_disk_while_a_pack_is_written_keeps_the_last_manifest(
    tmp_path, tiny_tokenizer, monkeypatch
):
    recipe = tiny_recipe(tmp_path, "gemma3", tiny_tokenizer, n_seq=4, seq_len=24, batch_size=2,
                         n_per_class=8, n_neurons=4, window_batch=4)  # fmt: skip
    hits = _disk_full_for(monkeypatch, ".rows-00002-00004.parquet.")
    with pytest.raises(StorageError, match="no space left"):
        build_pack(recipe, tmp_path / "pack", up_to=4, device="cpu", progress=False, log=len)
    assert hits and _leftovers(tmp_path / "pack") == []
    partial = json.loads((tmp_path / "pack" / "manifest.json").read_text())
    assert not partial["complete"] and all(
        (tmp_path / "pack" / f).is_file() for f in partial["files"]
    )
    monkeypatch.undo()
    pack = build_pack(recipe, tmp_path / "pack", up_to=4, device="cpu", progress=False, log=len)
    assert pack.sequences_done == 4


def test_a_cache_dir_that_is_a_file_is_refused_before_any_work(
    tmp_path, monkeypatch, tiny_tokenizer, capsys
):
    not_a_folder = tmp_path / "cache"
    not_a_folder.write_text("")
    monkeypatch.setenv("STAGES_CACHE_DIR", str(not_a_folder))
    with pytest.raises(StorageError, match="STAGES_CACHE_DIR points at .*a file"):
        stages.load_model(make_tiny_hf("gpt2", len(tiny_tokenizer)), tokenizer=tiny_tokenizer)
    assert main(["run", "overview"]) == 1
    assert "is a file, not a folder" in capsys.readouterr().err


@pytest.mark.processes
def test_a_read_only_cache_dir_is_refused_before_any_work(tmp_path):
    """In a child process that cannot write there.

    Root writes through permissions, so as root the folder is bind-mounted read-only onto itself
    in a private mount namespace (``unshare``); otherwise it is made read-only with chmod.
    """
    read_only = tmp_path / "cache"
    read_only.mkdir()
    code = "import stages; stages.load_model('gemma-3-270m', device='cpu')"
    command = [sys.executable, "-c", code]
    if os.getuid() == 0:
        probe = ["unshare", "-rm", "sh", "-c", 'mount --bind -o ro "$0" "$0"', str(read_only)]
        if shutil.which("unshare") is None or subprocess.run(probe).returncode != 0:
            pytest.skip("as root this needs unshare (util-linux) and user namespaces")
        mount = 'mount --bind -o ro "$0" "$0" && exec "$@"'
        command = ["unshare", "-rm", "sh", "-c", mount, str(read_only), *command]
    else:
        read_only.chmod(0o555)
    env = os.environ | {"STAGES_CACHE_DIR": str(read_only)}
    child = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    read_only.chmod(0o755)
    assert child.returncode != 0
    last = child.stderr.strip().splitlines()[-1]
    assert last.startswith("stages.store.StorageError") and "cannot write to" in last, last
    assert "STAGES_CACHE_DIR" in last and "Loading" not in child.stderr


@pytest.mark.processes
def test_work_made_once_waits_for_the_process_making_it(tmp_path):
    """Two processes needing one conversion or cache entry: the second waits, then reuses it."""
    target = tmp_path / "made"
    code = (
        "import sys, time; from pathlib import Path; from stages.store import one_at_a_time\n"
        "target = Path(sys.argv[1])\n"
        "with one_at_a_time(target):\n"
        "    print('in', flush=True)\n"
        "    if not target.exists():\n"
        "        time.sleep(1.5); target.write_text(sys.argv[2])\n"
    )
    first = subprocess.Popen([sys.executable, "-c", code, str(target), "first"],
                             stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert first.stdout.readline() == "in\n"  # the first holds the lock
    second = subprocess.run([sys.executable, "-c", code, str(target), "second"],
                            capture_output=True, text=True, check=True)  # fmt: skip
    assert first.wait() == 0 and second.stdout == "in\n"
    assert target.read_text() == "first"  # the second found it made, and made nothing
