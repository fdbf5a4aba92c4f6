"""Building a results pack: chunk by chunk, resumable, in rounds (:func:`build_pack`)."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from stages.analyses.neurons import neuron_classes
from stages.engine.runs import tokens_sha256
from stages.models import load_model, model_info
from stages.provenance import versions
from stages.results.check import part_slice
from stages.results.computer import Computer, profile_heads
from stages.results.pack import (
    Pack,
    PackError,
    Recipe,
    _chunk_file,
    _to_parquet,
    chunks,
    git_commit,
    shipped_pack,
    to_long,
)
from stages.results.parts import EXTENSION_PARTS, PARTS, SEQUENCE_PARTS, WINDOW_PARTS
from stages.results.tolerance import kernels
from stages.shapes import Model
from stages.store import atomic_write, sha256_bytes
from stages.text.corpus import corpus_fingerprint


def _new_manifest(model: Model, recipe: Recipe, computer: Computer) -> dict[str, Any]:
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

    Every finished chunk is written at once with its checksum, and every finished batch of a
    chunk (but the first chunk, the two rows of the live slice) is checkpointed in the result
    cache (:mod:`stages.cache`), so an interrupted build continues where it stopped, losing at
    most one batch. A build continues only a pack of the same recipe, model weights and tokens;
    a chunk written by other code is kept only when the live slice of its rows still matches
    (:func:`~stages.results.check.part_slice`, the rows every book checks: the first two, and of
    a plan part a few start layers), otherwise the part is rebuilt. A chunk's ``seconds`` are
    those of the run that finished it (batches read back from the result cache count nothing).

    Args:
        recipe: what to compute.
        out: the pack's folder (default: :func:`shipped_pack` of the model).
        parts: only these parts (default: the neurons, then the case studies, then the
            sequence parts; the extension parts, :data:`EXTENSION_PARTS`, only when named).
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
        ValueError: an unknown part.
    """
    known = tuple(PARTS)
    if parts is not None and not set(parts) <= set(known):
        raise ValueError(f"unknown parts {sorted(set(parts) - set(known))}: choose from {known}")
    extension_only = parts is not None and set(parts) <= set(EXTENSION_PARTS)
    commit = git_commit()
    out = Path(out) if out is not None else shipped_pack(recipe.model)
    started = time.time()
    model = load_model(recipe.model, device=device, dtype=recipe.dtype)
    here = kernels(model_info(model).get("device", "cpu"))
    existing = Pack.open(out) if (out / "manifest.json").exists() else None
    computer = Computer(model, recipe, existing)
    manifest = _new_manifest(model, recipe, computer)
    if existing is not None:
        old = existing.manifest
        same = (
            Recipe(**old["recipe"]) == recipe
            and old["model"]["weights_hash"] == manifest["model"]["weights_hash"]
            and old["tokens"]["sha256"] == manifest["tokens"]["sha256"]
        )
        if not same:
            raise PackError(
                f"{out} holds a pack of another recipe, model or token sample; choose another "
                "folder or delete it"
            )
        # a build of extension parts only leaves the pack's own commit, date and state alone
        # (each part records its own commit)
        manifest = old | {"recipe": recipe.__dict__} | (
            {} if extension_only
            else {"versions": manifest["versions"], "git_commit": manifest["git_commit"],
                  "complete": False}
        )  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    wanted = parts or tuple(name for name, p in PARTS.items() if not p.extension)
    if not {"ing", "subjoiner"} <= set(manifest.get("windows", {})):  # before any chunk
        manifest["windows"] = manifest.get("windows", {}) | _window_counts(computer)
    if "cloze" in wanted:
        manifest.setdefault("windows", {})["cloze"] = {
            "n": len(computer.cloze), "width": int(computer.cloze.tokens.shape[1]),
            "sha256": tokens_sha256(computer.cloze.tokens),
        }  # fmt: skip

    def finish_part(part: str, files: list[str], seconds: float) -> None:
        entry = manifest["parts"].setdefault(part, {"files": [], "seconds": 0.0})
        entry.update(
            files=files,
            complete=True,
            finished=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            seconds=round(entry.get("seconds", 0.0) + seconds, 1),
            git_commit=entry.get("git_commit", commit),  # the neuron moments had none
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
            manifest["parts"]["neurons"]["chunks"] = {
                "neurons.parquet": {"git_commit": commit, "kernels": here}
            }
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
        rounds = PARTS[part].unit == "sequences" or PARTS[part].extension
        size = PARTS[part].chunk
        n_rows = computer.n_rows(part)
        done = set(entry["files"])
        if done and entry.get("git_commit") != commit:
            log(f"{part}: chunks from commit {entry.get('git_commit')}; checking the slice")
            if not part_slice(Pack(out, manifest), computer, part, here)["ok"]:
                log(f"{part}: today's code gives other numbers; rebuilding this part")
                done = set()
                entry.update(files=[], seconds=0.0, chunks={})  # the part's time is the rebuild's
        entry["git_commit"] = commit
        files = []
        every_chunk = chunks(n_rows, size)
        for a, b in every_chunk:
            if up_to is not None and rounds and b > up_to:
                break
            name = _chunk_file(part, a, b)
            files.append(name)
            if name in done:
                continue
            t1 = time.time()
            # batches checkpointed in the result cache; not the first chunk's, the live slice's
            # rows, so that the first live slice after a build recomputes them
            rows = computer.rows(part, a, b, cache=a > 0, progress=progress)
            data = _to_parquet(to_long(rows, a))
            atomic_write(out / name, data)
            manifest["files"][name] = sha256_bytes(data)
            entry["files"] = sorted({*entry["files"], name})
            seconds = round(time.time() - t1, 1)
            entry["seconds"] = round(entry.get("seconds", 0.0) + seconds, 1)
            entry["updated"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
            entry.setdefault("chunks", {})[name] = {
                "git_commit": commit, "updated": entry["updated"], "seconds": seconds,
                "kernels": here,
            }  # fmt: skip
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
    if not extension_only:
        manifest["finished"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    _save_manifest(out, manifest)
    log(f"pack {out}: {'complete' if manifest['complete'] else 'partial'}; this run "
        f"{time.time() - started:.0f} s")  # fmt: skip
    return Pack.open(out)


def _window_counts(computer: Computer) -> dict[str, Any]:
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
