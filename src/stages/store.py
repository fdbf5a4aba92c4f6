"""Where ``stages`` keeps its files, how it writes them, and how it names things by content.

Paths:

- the user cache, ``$STAGES_CACHE_DIR`` (default ``~/.cache/stages``): ``results/`` (the result
  cache, :mod:`stages.cache`), ``corpus/`` (token streams), ``tokenizers/``, and ``models/``
  (converted models; ``$STAGES_MODELS_DIR`` moves them elsewhere);
- the checkout's ``data/`` folder (the shipped corpus and the results packs;
  ``$STAGES_DATA_DIR`` moves it).

Every file is written atomically: to a temporary file in the same folder, flushed and fsynced,
then renamed into place (``os.replace``), so a reader never sees half a file and a process
killed mid-write leaves nothing that is ever read. Folders are staged the same way and renamed
into place whole.

Hashes: :func:`sha256_bytes` and :func:`sha256_file` (hex sha256), :func:`fingerprint` (a short
stable hash of JSON-serialisable parts, for cache keys). This module imports nothing heavy, so
``stages cache ls`` starts without torch.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn


class StorageError(OSError):
    """A folder where ``stages`` keeps files cannot be written; the message says what to do.

    An ``OSError`` with the original ``errno`` (``ENOSPC``, ``EROFS``, ``EACCES``, ``ENOTDIR``),
    so handlers written for those still catch it.
    """


_FULL = {errno.ENOSPC, errno.EDQUOT}
_READ_ONLY = {errno.EROFS, errno.EACCES, errno.EPERM}
_ANY_FOLDER = "STAGES_CACHE_DIR (results), STAGES_MODELS_DIR (models) or --out (a results pack)"


def _reraise(err: OSError, path: Path, what: str = "STAGES_CACHE_DIR") -> NoReturn:
    """Raise ``err`` restated with the folder and the fix, or as it is if it is not about space."""
    if err.errno in _FULL:
        raise StorageError(
            err.errno,
            f"no space left on the disk holding {path.parent} while writing {path.name}: free "
            "some space, or move this folder to a larger disk (STAGES_CACHE_DIR for results "
            "and models, STAGES_MODELS_DIR for models, --out for a results pack). Nothing "
            "partial was kept; run again to resume from the last complete checkpoint",
        ) from err
    if err.errno in _READ_ONLY:
        raise StorageError(
            err.errno,
            f"cannot write to {path.parent} ({err.strerror}): set {what} to a folder you can "
            "write to",
        ) from err
    raise err


def ensure_writable(folder: Path, what: str = "STAGES_CACHE_DIR") -> Path:
    """Create ``folder`` if needed and prove a file can be written in it; return it.

    Called before any computation, so an unusable cache fails at once rather than after the
    first batch.

    Raises:
        StorageError: ``folder`` is a file, is read-only or is on a full disk.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise StorageError(
            errno.ENOTDIR,
            f"{what} points at {folder}, which is a file, not a folder: set it to a folder",
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder, prefix=".stages-write-probe-") as handle:
            handle.write(b"x")
            handle.flush()
            os.fsync(handle.fileno())
    except NotADirectoryError as err:
        raise StorageError(
            errno.ENOTDIR, f"{what} ({folder}) lies under a file, not a folder: set it to a folder"
        ) from err
    except OSError as err:
        _reraise(err, folder / ".stages-write-probe", what)
    return folder


def repo_root() -> Path:
    """The checkout this package is installed from (editable install): ``src/stages/../..``."""
    return Path(__file__).resolve().parents[2]


def cache_dir() -> Path:
    """The user cache directory, ``$STAGES_CACHE_DIR`` or ``~/.cache/stages``."""
    return Path(os.environ.get("STAGES_CACHE_DIR", Path.home() / ".cache" / "stages")).expanduser()


def models_dir() -> Path:
    """Where converted models live: ``$STAGES_MODELS_DIR``, default ``cache_dir() / "models"``."""
    return Path(os.environ.get("STAGES_MODELS_DIR", cache_dir() / "models")).expanduser()


def results_dir() -> Path:
    """Root of the result cache: ``cache_dir() / "results"``."""
    return cache_dir() / "results"


def data_dir() -> Path:
    """The shipped data: ``$STAGES_DATA_DIR``, default the checkout's ``data/``."""
    env = os.environ.get("STAGES_DATA_DIR")
    return Path(env).expanduser() if env else repo_root() / "data"


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes, read ``chunk`` bytes at a time."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def fingerprint(parts: Any) -> str:
    """A stable 24-hex-digit hash of JSON-serialisable ``parts`` (keys sorted)."""
    text = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return sha256_bytes(text.encode())[:24]


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file renamed into place (fsynced, 0644).

    Raises:
        StorageError: the disk is full or the folder read-only (nothing is left behind).
        OSError: the folder cannot be written for another reason (nothing is left behind).
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as err:
        _reraise(err, path, _ANY_FOLDER)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; nothing here is secret
        os.replace(tmp, path)
    except OSError as err:
        Path(tmp).unlink(missing_ok=True)
        _reraise(err, path, _ANY_FOLDER)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def staged_folder(target: Path) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``target``; on success it becomes ``target``.

    If ``target`` appeared meanwhile (another process finished first) the staged copy is
    discarded and ``target`` kept. On an exception the staged folder is removed.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staged = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    try:
        yield staged
        if not target.exists():
            try:
                os.replace(staged, target)
            except OSError:  # another process renamed its copy into place first
                if not target.exists():
                    raise
    finally:
        shutil.rmtree(staged, ignore_errors=True)


@contextmanager
def one_at_a_time(target: Path) -> Iterator[None]:
    """Hold an exclusive lock named after ``target`` while the block runs; others wait for it.

    For work that makes ``target`` once (a model's conversion, a cache entry): a second process
    that needs it waits here, then finds it made instead of making it again. The lock is an
    advisory ``flock`` on ``.<name>.lock`` beside ``target``, released by the kernel when its
    holder exits, even after ``kill -9``. Where that file cannot be created (a read-only shared
    folder, where nothing will be written either) no lock is taken.
    """
    target = Path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        handle = open(target.parent / f".{target.name}.lock", "a+")  # noqa: SIM115
    except OSError:
        handle = None
    if handle is None:
        yield
        return
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def write_folder_digest(folder: Path, name: str) -> None:
    """Record the sha256 of every file of ``folder`` in ``folder/name`` (JSON, atomic).

    :func:`folder_intact` checks a folder against it, so a truncated or altered file is caught
    before anything reads it.
    """
    folder = Path(folder)
    files = {
        path.name: sha256_file(path)
        for path in sorted(folder.iterdir())
        if path.is_file() and path.name != name
    }
    atomic_write(folder / name, json.dumps(files, indent=1).encode())


def folder_intact(folder: Path, name: str) -> bool:
    """Whether every file :func:`write_folder_digest` recorded is still there with its sha256."""
    try:
        files = json.loads((Path(folder) / name).read_text())
        return bool(files) and all(
            sha256_file(Path(folder) / file) == digest for file, digest in files.items()
        )
    except (OSError, ValueError):
        return False


def discard_folder(folder: Path) -> None:
    """Remove ``folder``, first renamed aside under a hidden name.

    Another process that found the same folder damaged, or is reading it, is never left with
    half a folder, and only one of them removes it.
    """
    folder = Path(folder)
    doomed = folder.with_name(f".{folder.name}.discarded-{os.getpid()}")
    try:
        folder.rename(doomed)
    except OSError:
        return  # another process moved it first
    shutil.rmtree(doomed, ignore_errors=True)
