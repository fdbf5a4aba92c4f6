"""Downloads under a page: each figure's data as CSV, the pack rows a page read as parquet.

A page writes its files into ``book/_generated/downloads/<section>/`` (git-ignored) while it
runs (:func:`write_download`), and links them from where its HTML will be
(``_build/html/book/_executed/<page>.html``); :func:`publish` copies the folder into
``_build/html/downloads/`` after the HTML build, so every link resolves offline.
"""

from __future__ import annotations

import html
import io
import shutil
from pathlib import Path

import pandas as pd

from stages.store import atomic_write

DOWNLOADS = Path("book") / "_generated" / "downloads"
"""Where pages write their downloads, relative to the book's root."""

PUBLISHED = Path("_build") / "html" / "downloads"
"""Where the built book serves them, relative to the book's root."""

_FROM_PAGE = "../../downloads"
"""The downloads folder as a page of ``book/_executed/`` links it."""


def write_download(root: Path, section: str, name: str, frame: pd.DataFrame) -> str:
    """Write ``frame`` for download (``.csv`` or ``.parquet`` by ``name``); return its link.

    Args:
        root: the book's root.
        section: the page's section (its folder of downloads).
        name: the file's name, ``figure-3.csv`` or ``sweep.parquet``.
        frame: the rows.

    Returns:
        The link's ``href`` as the page's HTML sees it.
    """
    if name.endswith(".csv"):
        data = frame.to_csv(index=False, float_format="%.6g").encode()
    elif name.endswith(".parquet"):
        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False, compression="zstd")
        data = buffer.getvalue()
    else:
        raise ValueError(f"a download is .csv or .parquet, got {name!r}")
    path = Path(root) / DOWNLOADS / section / name
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, data)
    return f"{_FROM_PAGE}/{section}/{name}"


def link(href: str, label: str) -> str:
    """An HTML download link."""
    return (f'<a class="stages-download" href="{html.escape(href)}" download>'
            f"{html.escape(label)}</a>")


def publish(root: Path) -> Path | None:
    """Copy the pages' downloads into the built book; returns the folder (None without any)."""
    source = Path(root) / DOWNLOADS
    if not source.is_dir():
        return None
    target = Path(root) / PUBLISHED
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(source, target)
    return target
