"""Provenance: what produced a table or a book page (model, weights, data, versions, machine)."""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.metadata as md
import platform
from pathlib import Path
from typing import Any

from stages.shapes import Model

_PACKAGES = ("stages", "torch", "transformers", "transformer-lens", "datasets", "altair", "pandas")


def package_fingerprint() -> str:
    """Hash of every source file of the ``stages`` package (names and bytes): what code ran."""
    root = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def versions() -> dict[str, str]:
    """Installed versions of the packages a result depends on, plus Python."""
    out = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            out[name] = "not installed"
    return out


def provenance(
    model: Model,
    tokens: Any,
    parameters: dict[str, Any],
    *,
    corpus: str = "default",
    seconds: float | None = None,
) -> dict[str, Any]:
    """A flat dict describing one run: model and weights hash, tokens, parameters, versions.

    Args:
        model: a bridge from :func:`stages.load_model` (its ``stages_info`` is used).
        tokens: the ``[n_seq, seq_len]`` tokens the run used.
        parameters: the notebook's or caller's parameters.
        corpus: the corpus name or path; its fingerprint is recorded.
        seconds: wall-clock run time, if known.
    """
    from stages.text.corpus import corpus_fingerprint  # torch: kept out of the light CLI path

    info = dict(getattr(model, "stages_info", {}))
    record: dict[str, Any] = {
        "model": info.get("name", "?"),
        "model source": info.get("source", "?"),
        "weights hash": info.get("weights_hash", "?"),
        "dtype": info.get("dtype", "?"),
        "device": info.get("device", "?"),
        "corpus": corpus,
        "corpus fingerprint": corpus_fingerprint(corpus)[:16],
        "tokens": f"{tokens.shape[0]} sequences x {tokens.shape[1]} tokens",
        "parameters": ", ".join(f"{k}={v!r}" for k, v in parameters.items()),
        "date (UTC)": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M"),
        "machine": f"{platform.machine()}, {platform.system()}",
    }
    if seconds is not None:
        record["run time"] = f"{seconds:.0f} s"
    record.update({f"version {k}": v for k, v in versions().items()})
    return record


def provenance_markdown(record: dict[str, Any]) -> str:
    """Render :func:`provenance` as a two-column Markdown table under a 'Provenance' heading."""
    lines = ["**Provenance** (what produced this page)", "", "| | |", "|---|---|"]
    lines += [f"| {k} | `{v}` |" for k, v in record.items()]
    return "\n".join(lines)
