"""Result cache: content-addressed, parquet + JSON only, atomic, checksummed. Never pickle.

An entry lives in ``$STAGES_CACHE_DIR/results/<analysis>/<key>/`` where ``key`` hashes
everything that determines the result (model name and weights hash, dtype, device type, the
exact token ids, the analysis and its parameters, the package versions). A table ``name`` is
stored as ``<name>.<sha256[:16]>.parquet`` (named by its content) plus a sidecar ``<name>.json``
holding the full sha256 and the table's metadata. Each file is written to a temporary file and
renamed into place (``os.replace``), the parquet first. A reader opens the parquet the sidecar
names and checks its checksum, so a process killed mid-write leaves nothing that is ever read,
and two processes writing the same table at once never mix one's data with the other's
checksum: each sidecar points at complete, immutable data.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from stages.store import atomic_write, fingerprint, results_dir, sha256_bytes


@dataclass(frozen=True)
class Entry:
    """One cache entry: a folder of checksummed parquet tables for one analysis run."""

    analysis: str
    key: str

    @classmethod
    def for_run(cls, analysis: str, parts: dict[str, Any]) -> Entry:
        """The entry of ``analysis`` for the run described by ``parts``; records ``parts``."""
        entry = cls(analysis, fingerprint(parts))
        describe = entry.path / "key.json"
        if not describe.exists():
            text = json.dumps(parts, indent=1, sort_keys=True, default=str)
            atomic_write(describe, text.encode())
        return entry

    @property
    def path(self) -> Path:
        """The entry's folder."""
        return results_dir() / self.analysis / self.key

    def write(self, name: str, table: pd.DataFrame, meta: dict[str, Any] | None = None) -> None:
        """Store ``table`` as ``<name>.parquet`` with its checksum and ``meta``."""
        buffer = io.BytesIO()
        table.to_parquet(buffer, index=False)
        data = buffer.getvalue()
        digest = sha256_bytes(data)
        atomic_write(self.path / f"{name}.{digest[:16]}.parquet", data)
        sidecar = {
            "sha256": digest,
            "rows": len(table),
            "written": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "meta": meta or {},
        }
        atomic_write(self.path / f"{name}.json", json.dumps(sidecar, default=str).encode())

    def read(self, name: str) -> tuple[pd.DataFrame, dict[str, Any]] | None:
        """Return ``(table, meta)``, or None when missing, partial or corrupt.

        A corrupt table is never read; the caller recomputes it and :meth:`write` replaces it.
        """
        try:
            sidecar = json.loads((self.path / f"{name}.json").read_text())
            digest = str(sidecar["sha256"])
            data = (self.path / f"{name}.{digest[:16]}.parquet").read_bytes()
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if sha256_bytes(data) != digest:
            return None
        return pd.read_parquet(io.BytesIO(data)), sidecar.get("meta", {})


def list_entries() -> pd.DataFrame:
    """One row per cache entry.

    Columns: ``analysis``, ``key``, ``files``, ``bytes``, ``modified``, and ``model`` and
    ``tokens`` from the entry's recorded key.
    """
    rows = []
    root = results_dir()
    for folder in sorted(root.glob("*/*")) if root.is_dir() else []:
        files = [p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")]
        try:
            parts = json.loads((folder / "key.json").read_text())
        except (OSError, ValueError):
            parts = {}
        rows.append(
            {
                "analysis": folder.parent.name,
                "key": folder.name,
                "files": len(files),
                "bytes": sum(p.stat().st_size for p in files),
                "modified": dt.datetime.fromtimestamp(
                    max((p.stat().st_mtime for p in files), default=0), dt.UTC
                ).strftime("%Y-%m-%d %H:%M"),
                "model": parts.get("model", {}).get("name", ""),
                "tokens": parts.get("tokens", {}).get("shape", ""),
            }
        )
    columns = ["analysis", "key", "files", "bytes", "modified", "model", "tokens"]
    return pd.DataFrame(rows, columns=columns)


def clear(analysis: str | None = None) -> int:
    """Delete every entry (or those of one analysis); return how many were removed."""
    root = results_dir() if analysis is None else results_dir() / analysis
    n = len(list(root.glob("*/*" if analysis is None else "*"))) if root.is_dir() else 0
    shutil.rmtree(root, ignore_errors=True)
    return n
