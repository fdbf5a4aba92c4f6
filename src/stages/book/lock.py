"""One writer per checkout: ``stages book`` and ``stages run`` hold ``_build/.stages.lock``.

Two builds in one checkout would write the same executed notebooks and the same HTML. The lock
is an advisory ``flock`` on a file, taken without waiting: a second build refuses at once with
a message naming the holder, and the kernel releases the lock when its holder exits, even
after ``kill -9``, so a stale lock never blocks anyone.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

LOCK = Path("_build") / ".stages.lock"
"""The lock file, relative to the book's root."""


class BookBusyError(RuntimeError):
    """Another ``stages book`` or ``stages run`` is writing this checkout's book."""


@contextlib.contextmanager
def book_lock(root: Path) -> Iterator[None]:
    """Hold the checkout's book lock while the block runs.

    Raises:
        BookBusyError: another process holds it (nothing is written).
    """
    path = Path(root) / LOCK
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise BookBusyError(
                f"{holder} is building the book in {root}; wait for it to finish (or build in "
                "another clone): two builds would write the same pages"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"`stages` process {os.getpid()}")
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
