"""Results packs: every analysis the book shows, per sequence, computed once at a size that decides.

A pack is a folder (the shipped ones: ``data/results/<model>/``) with a ``manifest.json`` and
parquet files of per-row sums, one row per sequence (or per case-study window): exactly the
frames the analyses' ``*_sums`` functions return, so every table, figure and verdict of the book
is a function of them (:mod:`stages.engine.runs`). Nothing is pickled.

Layout::

    manifest.json                       recipe, versions, commit, machine, times, sha256 of files
    neurons.parquet                     the neuron moments (weights only), one row per neuron
    <part>/rows-00000-00002.parquet     rows 0..1 of a per-row part (the live slice, see below)
    <part>/rows-00002-00034.parquet     then chunks of 32 rows (the case studies: 256)
    ...

A chunk is stored long (:func:`to_long`: ``row``, ``column``, ``value``, all float64);
:meth:`Pack.frame` gives it back wide, exactly as the ``*_sums`` function returned it (labels
and positions of windows as floats).

Parts: ``sweep`` (every drop, swap, attention-only and MLP-only drop), ``attention``, ``norms``,
``lens``, ``swap_similarity`` (rows: the sequences of :func:`stages.load_corpus`), ``subjoiner``
and ``subjoiner_profile`` (rows: the windows of :func:`stages.text.words.subjoiner_dataset`),
``ing`` (rows: the windows of :func:`stages.text.words.ing_dataset`). The extension parts
(:data:`stages.results.parts.EXTENSION_PARTS`: block deletion, reorderings, duplication, layer
similarity, skip effects) have the same sequences as rows, and ``cloze`` the windows of
:func:`stages.text.cloze.cloze_set`; they are built separately and may hold fewer rows.

**Building** (:func:`stages.results.build.build_pack`, ``stages pack build MODEL``) writes each
chunk as it finishes (atomically, with its checksum in the manifest), so a build can stop at any
point and continue later, and finished chunks can be committed meanwhile. The first chunk of every
part is its first ``SLICE`` rows, computed exactly as a page recomputes them. A build can also go
in rounds (``up_to``): the neuron moments and the case studies first, then the same first sequences
of every sequence part, so that a pack still being built already serves a page (with its first
:attr:`Pack.sequences_done` sequences, said on the page).

**Reading** (:meth:`Pack.open`) checks the sha256 of every file against the manifest before
anything is read. **The live slice** (:func:`stages.results.check.slice_check`) recomputes the
first ``SLICE`` rows of each part with today's code and compares them with the pack's: a change of
code that changes a result makes the check fail, and whoever made it rebuilds the pack.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from stages.engine.runs import tokens_sha256
from stages.models import model_info
from stages.results.parts import EXTENSION_PARTS, SEQUENCE_PARTS, WINDOW_PARTS
from stages.shapes import Model, Tokens
from stages.store import data_dir, repo_root, sha256_bytes

SLICE = 2
"""Rows of every part recomputed live by the slice check (and the pack's first chunk)."""

NEURON_COLUMNS = ["layer", "neuron", "cls", "skew", "kurtosis", "variance", "contrast"]
"""The columns of :func:`stages.analyses.probes.ing_neurons`."""
PROFILE_HEADS = 4
"""Heads whose attention at every offset is kept per window (Figure 9's candidates)."""


@dataclass(frozen=True)
class Recipe:
    """What a pack is computed from; recorded in its manifest.

    Attributes:
        model: an embedded model name, a Hugging Face name or a local folder.
        n_seq: sequences (the independent unit of every interval).
        seq_len: tokens per sequence, BOS included.
        seed: which sequences and windows are drawn.
        corpus: ``"default"`` (the shipped prose) or a corpus :func:`stages.load_corpus` reads.
        dtype: the model's dtype.
        batch_size: sequences per forward pass (windows: ``window_batch``).
        n_per_class: case-study windows per class (a class the corpus has fewer of takes all).
        n_neurons: "-ing" neurons per selection (:func:`stages.analyses.probes.ing_neurons`).
        window_batch: windows per forward pass.
        n_cloze: cloze windows (:func:`stages.text.cloze.cloze_set`).
        cloze_context: tokens per cloze window, BOS included.
    """

    model: str
    n_seq: int = 256
    seq_len: int = 128
    seed: int = 0
    corpus: str = "default"
    dtype: str = "float32"
    batch_size: int = 8
    n_per_class: int = 1024
    n_neurons: int = 32
    window_batch: int = 32
    n_cloze: int = 1024
    cloze_context: int = 96

    @property
    def n_tokens(self) -> int:
        """Tokens asked of :func:`stages.load_corpus` (``n_seq * seq_len``)."""
        return self.n_seq * self.seq_len


class PackError(RuntimeError):
    """A pack is missing, incomplete, altered, or does not match what was asked of it."""


# --------------------------------------------------------------------------- where packs live


def shipped_root() -> Path:
    """``data/results`` of this checkout (``$STAGES_DATA_DIR/results`` when that is set)."""
    return data_dir() / "results"


def pack_name(model: str) -> str:
    """The folder name of a model's pack: the model name with ``/`` replaced by ``--``."""
    return model.replace("/", "--")


def shipped_pack(model: str) -> Path:
    """Where the shipped pack of ``model`` lives (it may not exist)."""
    return shipped_root() / pack_name(model)


# --------------------------------------------------------------------------- files


def _to_parquet(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False, compression="zstd")
    return buffer.getvalue()


def to_long(rows: pd.DataFrame, first: int) -> pd.DataFrame:
    """A chunk's rows as a tidy table: ``row`` (its index in the part), ``column``, ``value``.

    Wide parquet files of a few rows and hundreds of columns are mostly metadata; the long form
    stores the same float64 values in a fraction of the bytes.
    """
    wide = rows.reset_index(drop=True).astype(np.float64)
    wide.insert(0, "row", np.arange(first, first + len(wide)))
    return wide.melt(id_vars="row", var_name="column", value_name="value")


def to_wide(long: pd.DataFrame) -> pd.DataFrame:
    """Inverse of :func:`to_long`: one row per ``row``, the columns in their stored order."""
    wide = long.pivot(index="row", columns="column", values="value")
    wide = wide[pd.unique(long["column"])].reset_index(drop=True)
    wide.columns.name = None
    return wide


def chunks(n_rows: int, size: int) -> list[tuple[int, int]]:
    """Row ranges ``[(a, b)]`` of a part: the slice ``(0, SLICE)``, then ``size`` rows each."""
    first = min(SLICE, n_rows)
    edges = [0, *range(first, n_rows, size), n_rows]
    return [(a, b) for a, b in zip(edges[:-1], edges[1:], strict=True) if b > a]


def _chunk_file(part: str, a: int, b: int) -> str:
    return f"{part}/rows-{a:05d}-{b:05d}.parquet"


def _chunk_rows(name: str) -> tuple[int, int] | None:
    """The row range ``(a, b)`` of a chunk file named by :func:`_chunk_file` (else None)."""
    stem = Path(name).stem
    if not stem.startswith("rows-"):
        return None
    a, b = stem.split("-")[1:]
    return int(a), int(b)


def part_computed(manifest: dict[str, Any], part: str) -> tuple[str | None, str | None, float]:
    """``(date, commit, seconds)`` of one part of a pack's manifest.

    ``date`` is the UTC date (``YYYY-MM-DD``) the part was finished or, for a part still
    growing, its last chunk written (``"updated"``); ``commit`` is the git commit of the code
    of the part's last round (a round first checks that this code still gives the part's
    live slice: :func:`stages.results.build.build_pack`), ``+dirty`` kept; None where the
    manifest records nothing (parts built before it did). ``seconds``: the computation time.
    """
    entry = manifest["parts"][part]
    when = entry.get("finished") or entry.get("updated")
    return (when[:10] if when else None), entry.get("git_commit"), entry.get("seconds", 0.0)


def short_commit(commit: str | None) -> str:
    """A commit as a page shows it: 12 hex digits, ``+dirty`` kept; "not recorded" for None."""
    if not commit:
        return "not recorded"
    head, dirty, _ = commit.partition("+dirty")
    return head[:12] + dirty


def git_commit(root: Path | None = None) -> str:
    """The checkout's commit (``+dirty`` when ``src/`` differs from it); ``unknown`` outside git."""
    root = root or repo_root()
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--", "src"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


# --------------------------------------------------------------------------- reading


@dataclass
class Pack:
    """An opened, checked results pack.

    Attributes:
        path: the pack's folder.
        manifest: its ``manifest.json``.
    """

    path: Path
    manifest: dict[str, Any]
    _frames: dict[str, pd.DataFrame] = field(default_factory=dict, repr=False)

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> Pack:
        """Open the pack at ``path`` after checking the sha256 of every file it lists.

        Raises:
            PackError: no manifest, a listed file missing, or a checksum that differs (the
                message names the file and says how to rebuild).
        """
        path = Path(path)
        try:
            manifest = json.loads((path / "manifest.json").read_text())
        except (OSError, ValueError) as err:
            raise PackError(f"no readable results pack at {path} ({err})") from err
        for name, digest in manifest.get("files", {}).items():
            try:
                data = (path / name).read_bytes()
            except OSError as err:
                raise PackError(f"results pack {path}: {name} is missing ({err})") from err
            if sha256_bytes(data) != digest:
                raise PackError(
                    f"results pack {path}: {name} fails its checksum (altered or corrupt); "
                    f"restore it with git checkout, or rebuild: stages pack build "
                    f"{manifest.get('recipe', {}).get('model', 'MODEL')}"
                )
        return cls(path, manifest)

    @property
    def recipe(self) -> Recipe:
        """The :class:`Recipe` the pack was built from."""
        return Recipe(**self.manifest["recipe"])

    @property
    def complete(self) -> bool:
        """Every part of the recipe is in the pack."""
        return bool(self.manifest.get("complete"))

    def has(self, part: str) -> bool:
        """Whether ``part`` is complete in this pack."""
        return part in self.manifest.get("parts", {}) and self.manifest["parts"][part].get(
            "complete", False
        )

    def rows_done(self, part: str) -> int:
        """How many leading rows of ``part`` are in the pack (its finished chunks from row 0)."""
        names = self.manifest.get("parts", {}).get(part, {}).get("files", [])
        ranges = sorted(r for r in map(_chunk_rows, names) if r is not None)
        done = 0
        for a, b in ranges:
            if a != done:
                break
            done = b
        return done

    @property
    def sequences_done(self) -> int:
        """Sequences held by every sequence part (all of them in a complete pack)."""
        return min(self.rows_done(part) for part in SEQUENCE_PARTS)

    @property
    def usable(self) -> bool:
        """Whether a page can use the pack: complete, or built in rounds so far.

        In progress, it must hold the neurons, every case-study part and the same first
        sequences of every sequence part (as a build with ``up_to`` leaves it).
        """
        ready = all(self.has(p) for p in ("neurons", *WINDOW_PARTS))
        return self.complete or (ready and self.sequences_done > 0)

    def frame(self, part: str, n_rows: int | None = None) -> pd.DataFrame:
        """The rows of ``part`` (``"sweep"``, ..., ``"neurons"``) in row order: all, or the first.

        With ``n_rows``, only the first ``n_rows`` (which the pack must hold; the part may be
        unfinished).

        Raises:
            PackError: the part is not (completely) in the pack, or holds fewer rows.
        """
        if n_rows is not None and part != "neurons":
            if self.rows_done(part) < n_rows:
                raise PackError(
                    f"results pack {self.path} holds {self.rows_done(part)} rows of {part!r}, "
                    f"not {n_rows}"
                )
            if self.has(part):
                return self.frame(part).head(n_rows)
            files = [
                name for name in self.manifest["parts"][part]["files"]
                if _chunk_rows(name)[0] < n_rows
            ]  # fmt: skip
            return self._read(part, files).head(n_rows)
        if part not in self._frames:
            if not self.has(part):
                raise PackError(f"results pack {self.path} has no complete part {part!r}")
            self._frames[part] = self._read(part, self.manifest["parts"][part]["files"])
        return self._frames[part]

    def _read(self, part: str, files: list[str]) -> pd.DataFrame:
        """The rows of ``part`` in ``files``, wide and in row order, with their provenance."""
        frame = pd.concat([pd.read_parquet(self.path / name) for name in sorted(files)],
                          ignore_index=True)  # fmt: skip
        if part != "neurons":
            frame = to_wide(frame)
        frame.attrs["provenance"] = self.provenance(part)
        return frame

    def provenance(self, part: str) -> dict[str, Any]:
        """A provenance record for frames read from this pack (as the analyses attach)."""
        m = self.manifest
        return {
            "model": m["model"]["name"],
            "weights_hash": m["model"]["weights_hash"],
            "dtype": m["model"]["dtype"],
            "device": m["model"]["device"],
            "analysis": part,
            "tokens_sha256": m["tokens"]["sha256"],
            "versions": m["versions"],
            "date": m["parts"][part].get("finished", "in progress"),
            "from_cache": False,
            "from_pack": str(self.path),
            "git_commit": m["git_commit"],
        }

    def computed(self, part: str) -> tuple[str | None, str | None, float]:
        """When, by which code and in how many seconds the pack's rows of ``part`` were computed.

        Returns:
            ``(date, commit, seconds)`` as the manifest records them for the part (None where
            it records nothing; see :func:`part_computed`).
        """
        return part_computed(self.manifest, part)

    def describe(self) -> str:
        """One sentence for a page: the pack's size, date and commit."""
        m = self.manifest
        r = m["recipe"]
        seconds = sum(  # the pack's own parts; each extension part has its own time
            entry.get("seconds", 0.0) for part, entry in m["parts"].items()
            if part not in EXTENSION_PARTS
        )  # fmt: skip
        if self.complete:
            when = f"computed {m['finished'][:10]}"
        else:
            when = (
                f"in progress: {self.sequences_done} of its {r['n_seq']} sequences computed so far"
            )
        return (
            f"results pack `{self.path.name}`: {r['n_seq']} sequences x {r['seq_len']} tokens "
            f"of {'the shipped corpus' if r['corpus'] == 'default' else r['corpus']} (seed "
            f"{r['seed']}), {when} at commit `{m['git_commit'][:12]}` on {m['machine']} in "
            f"{seconds / 60:.0f} minutes of computation"
        )


def matches(pack: Pack, model: Model, tokens: Tokens) -> bool:
    """Whether ``pack`` holds results for exactly this model (weights, dtype) and these tokens."""
    info = model_info(model)
    m = pack.manifest
    return (
        info.get("weights_hash") == m["model"]["weights_hash"]
        and str(info.get("dtype")) == m["model"]["dtype"]
        and tokens_sha256(tokens) == m["tokens"]["sha256"]
    )
