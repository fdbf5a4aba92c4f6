"""Results packs: every analysis the book shows, per sequence, computed once at a size that decides.

A pack is a folder (the shipped ones: ``data/results/<model>/``) with a ``manifest.json`` and
parquet files of per-row sums, one row per sequence (or per case-study window): exactly the
frames the analyses' ``*_sums`` functions return, so every table, figure and verdict of the book
is a function of them (:mod:`stages.runs`). Nothing is pickled.

Layout::

    manifest.json                       recipe, versions, commit, machine, times, sha256 of files
    neurons.parquet                     the neuron moments (weights only), one row per neuron
    <part>/rows-00000-00002.parquet     rows 0..1 of a per-row part (the live slice, see below)
    <part>/rows-00002-00034.parquet     then chunks of CHUNK rows
    ...

A chunk is stored long (:func:`to_long`: ``row``, ``column``, ``value``, all float64);
:meth:`Pack.frame` gives it back wide, exactly as the ``*_sums`` function returned it (labels
and positions of windows as floats).

Parts: ``sweep`` (every drop, swap, attention-only and MLP-only drop), ``attention``, ``norms``,
``lens``, ``swap_similarity`` (rows: the sequences of :func:`stages.load_corpus`), ``subjoiner``
and ``subjoiner_profile`` (rows: the windows of :func:`stages.words.subjoiner_dataset`), ``ing``
(rows: the windows of :func:`stages.words.ing_dataset`).

**Building** (:func:`build_pack`, ``stages pack build MODEL``) writes each chunk as it finishes
(atomically, with its checksum in the manifest), so a build can stop at any point and continue
later, and finished chunks can be committed meanwhile. The first chunk of every part is its
first ``SLICE`` rows, computed exactly as a page recomputes them. A build can also go in rounds
(``up_to``): the neuron moments and the case studies first, then the same first sequences of
every sequence part, so that a pack still being built already serves a page (with its first
:attr:`Pack.sequences_done` sequences, said on the page).

**Reading** (:meth:`Pack.open`) checks the sha256 of every file against the manifest before
anything is read. **The live slice** (:func:`slice_check`) recomputes the first ``SLICE`` rows
of each part with today's code and compares them with the pack's: a change of code that changes
a result makes the check fail, and whoever made it rebuilds the pack.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import platform
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from stages.provenance import versions
from stages.store import atomic_write, data_dir, repo_root, sha256_bytes

SLICE = 2
"""Rows of every part recomputed live by :func:`slice_check` (and the pack's first chunk)."""

CHUNK = 32
"""Sequences per chunk after the slice (windows: ``WINDOW_CHUNK``)."""

WINDOW_CHUNK = 256
RTOL = 1e-6
"""Relative tolerance of the slice check (see :func:`compare_rows`)."""

SEQUENCE_PARTS = ("sweep", "attention", "norms", "lens", "swap_similarity")
WINDOW_PARTS = ("subjoiner", "subjoiner_profile", "ing")
NEURON_COLUMNS = ["layer", "neuron", "cls", "skew", "kurtosis", "variance", "contrast"]
"""The columns of :func:`stages.probes.ing_neurons`."""
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
        n_neurons: "-ing" neurons per selection (:func:`stages.probes.ing_neurons`).
        window_batch: windows per forward pass.
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
        sequences of every sequence part (as :func:`build_pack` with ``up_to`` leaves it).
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

    def describe(self) -> str:
        """One sentence for a page: the pack's size, date and commit."""
        m = self.manifest
        r = m["recipe"]
        seconds = sum(part.get("seconds", 0.0) for part in m["parts"].values())
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


def matches(pack: Pack, model: Any, tokens: torch.Tensor) -> bool:
    """Whether ``pack`` holds results for exactly this model (weights, dtype) and these tokens."""
    from stages.models import model_info
    from stages.runs import tokens_sha256

    info = model_info(model)
    m = pack.manifest
    return (
        info.get("weights_hash") == m["model"]["weights_hash"]
        and str(info.get("dtype")) == m["model"]["dtype"]
        and tokens_sha256(tokens) == m["tokens"]["sha256"]
    )


# --------------------------------------------------------------------------- what each part is


def interleaved(labels: np.ndarray) -> np.ndarray:
    """An order of the rows alternating the two classes while both last (positive first).

    The pack's first chunk (the live slice) then holds one window of each class.
    """
    labels = np.asarray(labels, dtype=bool)
    pos, neg = np.flatnonzero(labels), np.flatnonzero(~labels)
    n = min(len(pos), len(neg))
    pairs = np.stack([pos[:n], neg[:n]], axis=1).reshape(-1)
    return np.concatenate([pairs, pos[n:], neg[n:]])


def _datasets(model: Any, recipe: Recipe) -> dict[str, Any]:
    """The case-study windows of ``recipe``, classes interleaved (:func:`interleaved`).

    Returns:
        ``{"subjoiner": WordDataset, "ing": WordDataset}``.
    """
    from stages.words import WordDataset, ing_dataset, subjoiner_dataset

    kw = {"corpus": recipe.corpus, "n_per_class": recipe.n_per_class, "seed": recipe.seed}
    out = {}
    for name, data in (("subjoiner", subjoiner_dataset(model, up_to=True, **kw)),
                       ("ing", ing_dataset(model, **kw))):  # fmt: skip
        order = interleaved(data.labels)
        out[name] = WordDataset(
            data.tokens[torch.as_tensor(order)], data.labels[order],
            [data.words[i] for i in order], data.position[order],
        )  # fmt: skip
    return out


def ing_neuron_sets(model: Any, classes: pd.DataFrame, recipe: Recipe) -> dict[str, pd.DataFrame]:
    """The "-ing" neurons of each selection rule (:func:`stages.probes.ing_neurons`)."""
    from stages.probes import SELECTIONS, ing_neurons
    from stages.words import Vocabulary

    ing = Vocabulary.of(model.tokenizer, model.cfg.d_vocab).ing()
    return {
        rule: ing_neurons(model, classes, ing, k=recipe.n_neurons, selection=rule)
        for rule in SELECTIONS
    }


def _neuron_union(sets: dict[str, pd.DataFrame]) -> pd.DataFrame:
    both = pd.concat(list(sets.values()), ignore_index=True)
    return both.drop_duplicates(["layer", "neuron"]).reset_index(drop=True)


def profile_heads(subjoiner: pd.DataFrame, labels: np.ndarray, k: int = PROFILE_HEADS) -> list[str]:
    """The ``k`` heads (``"layer.head"``) with the largest subjoiner effect over all windows."""
    from stages.subjoiner import OFFSET, effect_of_heads

    effects = effect_of_heads(subjoiner, labels, offset=OFFSET)
    return [f"{int(r.layer)}.{int(r.head)}" for r in effects.head(k).itertuples()]


class _Computer:
    """Computes any part's rows for a model and recipe (shared by the builder and the slice)."""

    def __init__(self, model: Any, recipe: Recipe, pack: Pack | None = None) -> None:
        from stages.corpus import load_corpus

        self.model, self.recipe, self.pack = model, recipe, pack
        self.tokens = load_corpus(
            model, corpus=recipe.corpus, n_tokens=recipe.n_tokens, seq_len=recipe.seq_len,
            seed=recipe.seed,
        )  # fmt: skip
        self._datasets: dict[str, Any] | None = None
        self._classes: pd.DataFrame | None = None
        self._profile: list[str] | None = None
        self._ing_neurons: dict[str, pd.DataFrame] | None = None

    @property
    def datasets(self) -> dict[str, Any]:
        if self._datasets is None:
            self._datasets = _datasets(self.model, self.recipe)
        return self._datasets

    def classes(self) -> pd.DataFrame:
        """Neuron classes from the pack when it has them, else computed (and cached)."""
        from stages.neurons import classify_table, neuron_classes

        if self._classes is None:
            if self.pack is not None and self.pack.has("neurons"):
                self._classes = classify_table(self.pack.frame("neurons"), len(self.model.blocks))
            else:
                self._classes = neuron_classes(self.model)
        return self._classes

    def n_rows(self, part: str) -> int:
        if part in SEQUENCE_PARTS:
            return len(self.tokens)
        return len(self.datasets["ing" if part == "ing" else "subjoiner"].labels)

    def rows(self, part: str, a: int, b: int, *, cache: bool, progress: bool) -> pd.DataFrame:
        """Rows ``a..b-1`` of ``part`` computed now."""
        from stages.probes import neuron_activations
        from stages.subjoiner import final_token_attention
        from stages.words import Vocabulary

        kw = {"progress": progress, "cache": cache}
        if part in SEQUENCE_PARTS:
            batch = min(self.recipe.batch_size, b - a)
            return self.live_sums(part, self.tokens[a:b], batch_size=batch, **kw)
        wkw = kw | {"batch_size": min(self.recipe.window_batch, b - a)}
        if part == "ing":
            data = self.datasets["ing"]
            ing = Vocabulary.of(self.model.tokenizer, self.model.cfg.d_vocab).ing()
            neurons = _neuron_union(self.ing_sets())
            rows = neuron_activations(self.model, data.tokens[a:b], neurons, ing, **wkw)
            return rows.assign(label=data.labels[a:b], position=data.position[a:b])
        data = self.datasets["subjoiner"]
        attention = final_token_attention(self.model, data.tokens[a:b], **wkw)
        if part == "subjoiner":
            from stages.subjoiner import OFFSET

            keep = [c for c in attention.columns if c.endswith(f".{OFFSET}")]
        else:
            heads = self.profile_heads()
            keep = [c for c in attention.columns if c.rsplit(".", 1)[0] in heads]
        out = attention[[*keep, "seq_len"]]
        return out.assign(label=data.labels[a:b], position=data.position[a:b])

    def ing_sets(self) -> dict[str, pd.DataFrame]:
        """The "-ing" neurons of each selection rule (from the pack's manifest when it has them)."""
        if self._ing_neurons is None:
            if self.pack is not None and "ing_neurons" in self.pack.manifest:
                stored = self.pack.manifest["ing_neurons"]
                self._ing_neurons = {
                    rule: pd.DataFrame(rows, columns=NEURON_COLUMNS)
                    for rule, rows in stored.items()
                }
            else:
                self._ing_neurons = ing_neuron_sets(self.model, self.classes(), self.recipe)
        return self._ing_neurons

    def live_sums(
        self, part: str, tokens: torch.Tensor, *, batch_size: int | None, progress: bool,
        cache: bool,
    ) -> pd.DataFrame:  # fmt: skip
        """A sequence part's per-sequence sums of ``tokens``, computed now."""
        from stages.attention import attention_sums
        from stages.lens import lens_sums
        from stages.norms import norms_sums
        from stages.swap_similarity import swap_similarity_sums
        from stages.sweep import sweep_sums

        f: Callable[..., pd.DataFrame] = {
            "sweep": sweep_sums,
            "attention": attention_sums,
            "norms": norms_sums,
            "lens": lens_sums,
            "swap_similarity": swap_similarity_sums,
        }[part]
        return f(self.model, tokens, batch_size=batch_size, progress=progress, cache=cache)

    def profile_heads(self) -> list[str]:
        """The heads whose whole attention profile is kept (the pack's, or chosen now)."""
        if self._profile is None:
            if self.pack is not None and "profile_heads" in self.pack.manifest:
                self._profile = list(self.pack.manifest["profile_heads"])
            else:
                n = self.n_rows("subjoiner")
                sub = self.rows("subjoiner", 0, n, cache=True, progress=False)
                self._profile = profile_heads(sub, sub["label"].to_numpy(bool))
        return self._profile


# --------------------------------------------------------------------------- building


def _new_manifest(model: Any, recipe: Recipe, computer: _Computer) -> dict[str, Any]:
    from stages.corpus import corpus_fingerprint
    from stages.models import model_info
    from stages.runs import tokens_sha256

    info = model_info(model)
    return {
        "format": 1,
        "recipe": recipe.__dict__,
        "model": {
            "name": info.get("name"),
            "source": info.get("source"),
            "weights_hash": info.get("weights_hash"),
            "dtype": str(info.get("dtype")),
            "device": str(info.get("device")),
            "n_layers": len(model.blocks),
        },
        "corpus_sha256": corpus_fingerprint(recipe.corpus),
        "tokens": {
            "shape": list(computer.tokens.shape),
            "sha256": tokens_sha256(computer.tokens),
            "recipe": f"stages.load_corpus(model, corpus={recipe.corpus!r}, n_tokens="
            f"{recipe.n_tokens}, seq_len={recipe.seq_len}, seed={recipe.seed})",
        },
        "versions": versions(),
        "git_commit": git_commit(),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"{platform.system()}, torch threads {torch.get_num_threads()}",
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "finished": None,
        "wall_time_s": 0.0,
        "complete": False,
        "parts": {},
        "files": {},
    }


def _save_manifest(path: Path, manifest: dict[str, Any]) -> None:
    atomic_write(path / "manifest.json", json.dumps(manifest, indent=1, default=str).encode())


def build_pack(
    recipe: Recipe,
    out: str | os.PathLike[str] | None = None,
    *,
    parts: tuple[str, ...] | None = None,
    up_to: int | None = None,
    device: str = "cpu",
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> Pack:
    """Build (or continue building) the results pack of ``recipe`` in ``out``.

    Every finished chunk is written at once with its checksum, so an interrupted build
    continues where it stopped. A build continues only a pack of the same recipe, model
    weights and tokens; a chunk written by other code is kept only when the live slice of its
    part still matches (:func:`slice_check`), otherwise the part is rebuilt.

    Args:
        recipe: what to compute.
        out: the pack's folder (default: :func:`shipped_pack` of the model).
        parts: only these parts (default: all; the neurons, then the case studies, then the
            sequence parts).
        up_to: compute only the chunks of the sequence parts that end at or before this row (a
            build in rounds: with the case-study parts and the neurons done first, every round
            leaves a pack whose first ``up_to`` sequences a page can use, see
            :attr:`Pack.usable`).
        device: where to run the model.
        progress: progress bars.
        log: where progress lines go.

    Returns:
        The opened pack.

    Raises:
        PackError: ``out`` holds a pack of another recipe, model or tokens.
    """
    from stages.models import load_model
    from stages.neurons import neuron_classes

    out = Path(out) if out is not None else shipped_pack(recipe.model)
    started = time.time()
    model = load_model(recipe.model, device=device, dtype=recipe.dtype)
    existing = Pack.open(out) if (out / "manifest.json").exists() else None
    computer = _Computer(model, recipe, existing)
    manifest = _new_manifest(model, recipe, computer)
    if existing is not None:
        old = existing.manifest
        same = (
            old["recipe"] == manifest["recipe"]
            and old["model"]["weights_hash"] == manifest["model"]["weights_hash"]
            and old["tokens"]["sha256"] == manifest["tokens"]["sha256"]
        )
        if not same:
            raise PackError(
                f"{out} holds a pack of another recipe, model or token sample; choose another "
                "folder or delete it"
            )
        manifest = old | {"versions": manifest["versions"], "git_commit": manifest["git_commit"]}
        manifest["complete"] = False
    out.mkdir(parents=True, exist_ok=True)
    wanted = parts or ("neurons", *WINDOW_PARTS, *SEQUENCE_PARTS)

    def finish_part(part: str, files: list[str], seconds: float) -> None:
        entry = manifest["parts"].setdefault(part, {"files": [], "seconds": 0.0})
        entry.update(
            files=files,
            complete=True,
            finished=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            seconds=round(entry.get("seconds", 0.0) + seconds, 1),
        )

    for part in wanted:
        t0 = time.time()
        if part == "neurons":
            if manifest["parts"].get("neurons", {}).get("complete"):
                continue
            log("neurons: moments of every neuron's cosines with W_U (weights only)")
            moments = neuron_classes(model, progress=progress)
            table = moments[["layer", "neuron", "skew", "kurtosis", "variance"]]
            data = _to_parquet(table)
            atomic_write(out / "neurons.parquet", data)
            manifest["files"]["neurons.parquet"] = sha256_bytes(data)
            finish_part("neurons", ["neurons.parquet"], time.time() - t0)
            computer._classes = None  # read back through the manifest next time
            computer.pack = Pack(out, manifest)
            _save_manifest(out, manifest)
            continue
        if part == "subjoiner_profile" and "profile_heads" not in manifest:
            sub = Pack(out, manifest).frame("subjoiner")
            manifest["profile_heads"] = profile_heads(sub, sub["label"].to_numpy(bool))
            computer.pack = Pack(out, manifest)
        if part == "ing" and "ing_neurons" not in manifest:
            sets = computer.ing_sets()
            manifest["ing_neurons"] = {rule: t.to_dict("records") for rule, t in sets.items()}
        entry = manifest["parts"].setdefault(part, {"files": [], "seconds": 0.0})
        if entry.get("complete"):
            continue
        size = CHUNK if part in SEQUENCE_PARTS else WINDOW_CHUNK
        n_rows = computer.n_rows(part)
        done = set(entry["files"])
        if done and entry.get("git_commit") != manifest["git_commit"]:
            log(f"{part}: chunks from commit {entry.get('git_commit')}; checking the slice")
            first = sorted(done)[0]
            stored = to_wide(pd.read_parquet(out / first))
            live = computer.rows(part, 0, len(stored), cache=False, progress=False)
            if not compare_rows(live, stored)["ok"].all():
                log(f"{part}: today's code gives other numbers; rebuilding this part")
                done = set()
        entry["git_commit"] = manifest["git_commit"]
        files = []
        every_chunk = chunks(n_rows, size)
        for a, b in every_chunk:
            if up_to is not None and part in SEQUENCE_PARTS and b > up_to:
                break
            name = _chunk_file(part, a, b)
            files.append(name)
            if name in done:
                continue
            t1 = time.time()
            rows = computer.rows(part, a, b, cache=False, progress=progress)
            data = _to_parquet(to_long(rows, a))
            atomic_write(out / name, data)
            manifest["files"][name] = sha256_bytes(data)
            entry["files"] = sorted({*entry["files"], name})
            entry["seconds"] = round(entry.get("seconds", 0.0) + time.time() - t1, 1)
            _save_manifest(out, manifest)
            log(f"{part}: rows {a}-{b - 1} of {n_rows} done in {time.time() - t1:.0f} s")
        if len(files) == len(every_chunk):
            finish_part(part, files, 0.0)
        _save_manifest(out, manifest)
    manifest["wall_time_s"] = round(
        sum(p.get("seconds", 0.0) for p in manifest["parts"].values()), 1
    )
    every = ("neurons", *SEQUENCE_PARTS, *WINDOW_PARTS)
    manifest["complete"] = all(manifest["parts"].get(p, {}).get("complete") for p in every)
    manifest["finished"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    if "windows" not in manifest:
        manifest["windows"] = _window_counts(computer)
    _save_manifest(out, manifest)
    log(f"pack {out}: {'complete' if manifest['complete'] else 'partial'}; this run "
        f"{time.time() - started:.0f} s")  # fmt: skip
    return Pack.open(out)


def _window_counts(computer: _Computer) -> dict[str, Any]:
    from stages.runs import tokens_sha256

    out = {}
    for name, data in computer.datasets.items():
        out[name] = {
            "n": len(data.labels),
            "positive": int(data.labels.sum()),
            "negative": int((~data.labels).sum()),
            "width": int(data.tokens.shape[1]),
            "sha256": tokens_sha256(data.tokens),
        }
    return out


# --------------------------------------------------------------------------- the live slice


def compare_rows(live: pd.DataFrame, stored: pd.DataFrame, *, rtol: float = RTOL) -> pd.DataFrame:
    """Compare rows computed now with the same rows of a pack, column by column.

    A value matches when ``|live - stored| <= rtol * max(|stored|, 1e-3 * scale)``, where
    ``scale`` is the column's mean absolute value over these rows (so a sum that happens to
    lie near zero is compared at its column's scale, not at zero).

    A column that only one side has fails (the code now computes something the pack lacks,
    or no longer computes something it holds).

    Returns:
        One row per column: ``column``, ``max_rel_diff``, ``ok``.
    """
    rows = [
        {"column": column, "max_rel_diff": np.inf, "ok": False}
        for column in live.columns
        if column not in stored.columns
    ]
    for column in stored.columns:
        if column not in live.columns:
            rows.append({"column": column, "max_rel_diff": np.inf, "ok": False})
            continue
        a = live[column].to_numpy(dtype=np.float64)
        b = stored[column].to_numpy(dtype=np.float64)
        if len(a) != len(b):
            rows.append({"column": column, "max_rel_diff": np.inf, "ok": False})
            continue
        scale = np.abs(b).mean() if len(b) else 0.0
        floor = max(1e-3 * scale, np.finfo(np.float64).tiny)
        rel = np.abs(a - b) / np.maximum(np.abs(b), floor)
        worst = float(rel.max()) if len(rel) else 0.0
        rows.append({"column": column, "max_rel_diff": worst, "ok": worst <= rtol})
    return pd.DataFrame(rows)


def slice_check(pack: Pack, model: Any, parts: tuple[str, ...] | None = None) -> pd.DataFrame:
    """Recompute the first ``SLICE`` rows of each part with today's code; compare with the pack.

    The rows are computed exactly as the pack's first chunk was (same rows, same batch). They
    are kept in the result cache, whose keys hold a hash of the source of the code that
    computes them, so a book computes each part's slice once and any change of that code
    computes it again. For the neuron moments, the first 64 neurons of layer 0 are recomputed.
    For the case studies, today's windows must have the manifest's sha256, and the choices the
    pack made once (the "-ing" neurons of each selection rule, the heads whose whole profile is
    kept) must be those today's code makes.

    Args:
        pack: an opened pack.
        model: the pack's model (weights checked).
        parts: the parts to check (default: every part in the pack).

    Returns:
        One row per check: ``part``, ``rows`` (how many rows were recomputed), ``columns``
        (values per row compared), ``max_rel_diff`` (over every value), ``ok``.

    Raises:
        PackError: the model is not the pack's.
    """
    from stages.models import model_info
    from stages.neurons import vocab_moments_rows
    from stages.runs import tokens_sha256

    if model_info(model).get("weights_hash") != pack.manifest["model"]["weights_hash"]:
        raise PackError("this model's weights are not those the pack was computed with")
    computer = _Computer(model, pack.recipe, pack)
    out = []

    def add(part: str, rows: int, columns: int, diff: float, ok: bool) -> None:
        out.append({"part": part, "rows": rows, "columns": columns, "max_rel_diff": diff,
                    "ok": bool(ok)})  # fmt: skip

    chosen = parts or tuple(p for p in pack.manifest["parts"] if pack.rows_done(p) or pack.has(p))
    for part in chosen:
        if part == "neurons":
            stored_all = pack.frame(part)
            stored = stored_all[stored_all["layer"] == 0].head(64)
            live = vocab_moments_rows(model, 0, stored["neuron"].tolist())
        else:
            stored = pack.frame(part, min(SLICE, pack.rows_done(part))).reset_index(drop=True)
            live = computer.rows(part, 0, len(stored), cache=True, progress=False)
        cmp = compare_rows(live.reset_index(drop=True), stored)
        add(part, len(stored), len(cmp), float(cmp["max_rel_diff"].max()), cmp["ok"].all())
    windows = {"ing" if p == "ing" else "subjoiner" for p in chosen if p in WINDOW_PARTS}
    for name in sorted(windows):
        data = computer.datasets[name]
        same = tokens_sha256(data.tokens) == pack.manifest["windows"][name]["sha256"]
        add(f"{name} windows (sha256)", len(data.labels), int(data.tokens.shape[1]),
            0.0 if same else np.inf, same)  # fmt: skip
    if "ing" in chosen:
        today = ing_neuron_sets(model, computer.classes(), pack.recipe)
        for rule, rows in pack.manifest["ing_neurons"].items():
            stored = pd.DataFrame(rows, columns=today[rule].columns)
            same = list(zip(today[rule]["layer"], today[rule]["neuron"], strict=True)) == list(
                zip(stored["layer"], stored["neuron"], strict=True)
            )
            cmp = compare_rows(today[rule][["contrast"]], stored[["contrast"]]) if same else None
            ok = same and bool(cmp["ok"].all())
            diff = float(cmp["max_rel_diff"].max()) if same else np.inf
            add(f"'-ing' neurons, {rule} selection", len(stored), 1, diff, ok)
    if "subjoiner_profile" in chosen:
        sub = pack.frame("subjoiner")
        same = profile_heads(sub, sub["label"].to_numpy(bool)) == pack.manifest["profile_heads"]
        add("subjoiner profile heads", len(sub), 1, 0.0 if same else np.inf, same)
    return pd.DataFrame(out)
