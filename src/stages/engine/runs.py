"""Batched, cached, resumable passes over token sequences: the frame every analysis runs in.

An analysis gives a function that maps one batch of sequences ``[b, seq_len]`` to named
per-sequence float64 sums (``{column: [b] array}``). :func:`per_sequence` does the rest: token
checks, batching, a tqdm progress bar, ``torch.no_grad``, a checkpoint of every batch in the
result cache (:mod:`stages.cache`) so an interrupted run resumes where it stopped, reuse of
finished sums, and a provenance record in ``sums.attrs["provenance"]``. Every analysis then
reduces the per-sequence sums (one row per sequence, the independent unit of every interval) to
its table with a function of the sums alone, so the same reduction serves sums computed now and
sums read from a results pack (:mod:`stages.results.pack`).

The cache key holds everything that determines the sums: the model (name, weights hash, dtype,
device type), the exact token ids, the analysis parameters, the batch size, the package versions
and a hash of the source files of the analysis and every ``stages`` module it uses
(:func:`code_fingerprint`, derived from the imports), so edited code never reuses old results.
"""

from __future__ import annotations

import ast
import contextlib
import datetime as dt
import importlib
import importlib.util
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any, TypedDict

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from stages.cache import Entry
from stages.models import model_info
from stages.provenance import versions
from stages.shapes import Model, Tokens
from stages.store import one_at_a_time, sha256_bytes

BatchSums = Mapping[str, np.ndarray]
# Computes the pending batches ``[(k, tokens)]`` somewhere; yields ``(k, sums)`` as they finish.
MapBatches = Callable[[list[tuple[int, torch.Tensor]]], Iterator[tuple[int, BatchSums]]]


class RunOptions(TypedDict, total=False):
    """How :func:`per_sequence` runs, given as keywords to every ``*_sums`` function.

    None of them changes the sums (the batch size is part of the cache key all the same).

    Attributes:
        batch_size: sequences per forward pass; None or absent: :func:`default_batch_size`,
            from the free memory of the model's device and the analysis's bytes per sequence.
        progress: show a tqdm progress bar (default True).
        cache: read and write the result cache (:mod:`stages.cache`; default True): each batch
            is checkpointed as it finishes, so an interrupted run resumes where it stopped and
            gives the same table as an uninterrupted one; finished sums are reused.
    """

    batch_size: int | None
    progress: bool
    cache: bool


def check_tokens(model: Model, tokens: Tokens, *, min_len: int = 3) -> torch.Tensor:
    """Return ``tokens`` if it is a LongTensor ``[n_seq, seq_len]`` the model can read.

    Raises:
        ValueError: wrong type or shape, ``seq_len < min_len``, longer than the model's
            context, or token ids outside the vocabulary.
    """
    if not isinstance(tokens, torch.Tensor) or tokens.ndim != 2 or tokens.dtype != torch.long:
        raise ValueError(
            "tokens must be a LongTensor [n_seq, seq_len] (stages.load_corpus returns one), got "
            f"{type(tokens).__name__} {getattr(tokens, 'shape', '')} {getattr(tokens, 'dtype', '')}"
        )
    if tokens.shape[1] < min_len:
        raise ValueError(
            f"seq_len must be at least {min_len} to score positions 1.., got {tokens.shape[1]}"
        )
    n_ctx = getattr(model.cfg, "n_ctx", None)
    if n_ctx and tokens.shape[1] > n_ctx:
        raise ValueError(f"seq_len {tokens.shape[1]} exceeds the model's context of {n_ctx} tokens")
    vocab = model.cfg.d_vocab
    if tokens.numel() and (int(tokens.min()) < 0 or int(tokens.max()) >= vocab):
        raise ValueError(f"token ids must lie in 0..{vocab - 1} for this model")
    return tokens


def check_batch_size(batch_size: Any) -> int:
    """Return ``batch_size`` if it is a positive int, else raise ValueError."""
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    return batch_size


def forward_bytes_per_seq(model: Model, seq_len: int, *, copies: int = 1) -> int:
    """Estimated peak bytes one sequence adds to a forward pass that keeps every residual.

    The residual at every layer, plus ``copies`` blocks' activations (residual, MLP hidden
    layer, attention scores) held at once, in the model's dtype, with a margin of 1.5.
    """
    cfg = model.cfg
    size = torch.empty((), dtype=next(model.parameters()).dtype).element_size()
    d_mlp = getattr(cfg, "d_mlp", None) or 4 * cfg.d_model
    residuals = (len(model.blocks) + 1) * seq_len * cfg.d_model
    block = seq_len * (4 * cfg.d_model + 3 * d_mlp + 2 * cfg.n_heads * seq_len)
    return int(1.5 * size * (residuals + copies * block))


def free_memory(device: torch.device) -> int:
    """Free bytes on ``device``: CUDA's free memory, or the host's available memory."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


# Tokens per batch beyond which a larger batch gains nothing: 8 x 128 on a CPU, 64k on a GPU.
_CPU_BATCH = 8
_GPU_TOKENS = 1 << 16


def default_batch_size(
    model: Model, seq_len: int, *, bytes_per_seq: int | None = None, free_bytes: int | None = None
) -> int:
    """Sequences per batch, sized from the free memory of the model's device.

    Half the free memory (``free_bytes``, default :func:`free_memory`) over the estimated bytes
    per sequence (``bytes_per_seq``, default :func:`forward_bytes_per_seq`), capped at 8
    sequences on a CPU (larger batches are no faster there) and 64k tokens on a GPU, rounded
    down to a power of two so that the choice (part of the cache key) is stable between runs.
    """
    device = torch.device(model.cfg.device)
    per_seq = bytes_per_seq or forward_bytes_per_seq(model, seq_len)
    free = free_memory(device) if free_bytes is None else free_bytes
    cap = _CPU_BATCH if device.type == "cpu" else max(1, _GPU_TOKENS // seq_len)
    fit = max(1, min(cap, int(free // 2 // per_seq)))
    return 1 << (fit.bit_length() - 1)


def tokens_sha256(tokens: Tokens) -> str:
    """sha256 of the token ids as int64 bytes (row-major)."""
    return sha256_bytes(tokens.cpu().numpy().astype(np.int64).tobytes())


def _imported_modules(path: Path) -> set[str]:
    """The ``stages`` modules a source file imports, at its top or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("stages.")}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("stages"):
            package = hasattr(importlib.import_module(node.module), "__path__")
            for alias in node.names:  # `from stages.engine import forward` imports a module
                child = f"{node.module}.{alias.name}"
                is_module = package and importlib.util.find_spec(child) is not None
                found.add(child if is_module else node.module)
    return {name for name in found if name != "stages"}


def code_modules(module: ModuleType) -> list[ModuleType]:
    """``module`` and every ``stages`` module its source imports, followed transitively.

    Read from the source files (:mod:`ast`), so it sees imports inside functions and does not
    depend on what a module's globals hold at run time. What a result can depend on, found
    rather than listed by hand; the ``stages`` package itself is left out.
    """
    seen: dict[str, ModuleType] = {}
    todo = [module.__name__]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen[name] = importlib.import_module(name)
        todo += sorted(_imported_modules(Path(seen[name].__file__)) - set(seen))
    return [seen[name] for name in sorted(seen)]


def code_fingerprint(module: ModuleType) -> str:
    """Hash of the source files of :func:`code_modules` of ``module``: part of every cache key."""
    return sha256_bytes(b"".join(Path(m.__file__).read_bytes() for m in code_modules(module)))[:16]


def model_key(model: Model) -> dict[str, Any]:
    """What identifies a model's results: name, weights hash, dtype, weight processing, device."""
    info = model_info(model)
    return {k: info.get(k) for k in ("name", "weights_hash", "dtype", "process_weights")} | {
        "device": torch.device(info.get("device", "cpu")).type
    }


def model_provenance(model: Model) -> dict[str, Any]:
    """The model part of a provenance record, with the versions and today's date."""
    info = model_info(model)
    return {
        "model": info.get("name"),
        "weights_hash": info.get("weights_hash"),
        "dtype": info.get("dtype"),
        "device": info.get("device"),
        "versions": versions(),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def per_sequence(
    analysis: str,
    model: Model,
    tokens: Tokens,
    *,
    compute: Callable[[torch.Tensor], BatchSums],
    params: dict[str, Any],
    desc: str,
    units_per_seq: int = 1,
    min_len: int = 3,
    bytes_per_seq: Callable[[int], int] | None = None,
    map_batches: MapBatches | None = None,
    batch_size: int | None = None,
    progress: bool = True,
    cache: bool = True,
) -> pd.DataFrame:
    """Run ``compute`` over batches of ``tokens``: the analysis's per-sequence sums.

    Args:
        analysis: the cache folder name (``"sweep"``, ``"lens"``, ...).
        model: a ``TransformerBridge`` from :func:`stages.load_model`.
        tokens: ``[n_seq, seq_len]`` token ids, each row starting with BOS.
        compute: one batch ``[b, seq_len]`` (on the model's device) to ``{column: [b]}``
            float64 per-sequence sums; called under ``torch.no_grad``.
        params: the parameters that change the per-sequence sums; JSON-serialisable.
        desc: the progress bar's label.
        units_per_seq: progress units per sequence (e.g. interventions per sequence).
        min_len: the shortest ``seq_len`` the analysis accepts.
        bytes_per_seq: the memory one sequence of a given length takes, for the default batch
            size (default :func:`forward_bytes_per_seq`).
        map_batches: where the batches not yet in the cache are computed (default: ``compute``
            in this process, one after the other); e.g. :class:`stages.engine.scale_out.RayBatches`.
            Each batch is checkpointed as it arrives, in any order.
        batch_size: see :class:`RunOptions`.
        progress: see :class:`RunOptions`.
        cache: see :class:`RunOptions`.

    Returns:
        One row per sequence, in token order: the columns ``compute`` returns and ``seq_len``
        (the row's length in tokens, from which each analysis derives its counts).
        ``attrs["provenance"]``: the model, tokens (shape and sha256), ``params``, batch size,
        versions, date, and ``from_cache``.
    """
    tokens = check_tokens(model, tokens, min_len=min_len)
    n_seq, seq_len = tokens.shape
    if batch_size is None:
        per_seq = bytes_per_seq(seq_len) if bytes_per_seq is not None else None
        batch_size = default_batch_size(model, seq_len, bytes_per_seq=per_seq)
    batch_size = check_batch_size(batch_size)
    tokens_sha = tokens_sha256(tokens)
    entry = None
    guard = contextlib.ExitStack()
    if cache:
        key = {
            "analysis": analysis,
            "model": model_key(model),
            "tokens": {"shape": list(tokens.shape), "sha256": tokens_sha},
            "params": params,
            "batch_size": batch_size,
            "versions": {k: v for k, v in versions().items() if k != "python"},
            "engine": code_fingerprint(sys.modules[compute.__module__]),
        }
        entry = Entry.for_run(analysis, key)
        guard.enter_context(one_at_a_time(entry.path / "sums"))  # one computes, others wait
    with guard:
        if entry is not None and (hit := entry.read("sums")) is not None:
            sums, meta = hit
            sums.attrs["provenance"] = meta | {"from_cache": True}
            return sums

        bar = tqdm(total=n_seq * units_per_seq, disable=not progress, desc=desc, unit="seq")
        frames: dict[int, pd.DataFrame] = {}
        pending = []
        for k, start in enumerate(range(0, n_seq, batch_size)):
            stop = min(n_seq, start + batch_size)
            stored = entry.read(f"batch-{k:05d}") if entry is not None else None
            if stored is not None:  # checkpoint of an earlier (maybe interrupted) run
                frames[k] = stored[0]
                bar.update((stop - start) * units_per_seq)
            else:
                pending.append((k, tokens[start:stop]))

        def local(batches: list[tuple[int, torch.Tensor]]) -> Iterator[tuple[int, BatchSums]]:
            for k, batch in batches:
                with torch.no_grad():
                    sums = compute(batch.to(model.cfg.device))
                yield k, sums

        for k, sums in (map_batches or local)(pending):
            part = pd.DataFrame(sums)
            expected = min(n_seq, (k + 1) * batch_size) - k * batch_size
            if len(part) != expected:
                raise RuntimeError(f"{analysis}: a batch of {expected} gave {len(part)} rows")
            if entry is not None:
                entry.write(f"batch-{k:05d}", part)
            frames[k] = part
            bar.update(expected * units_per_seq)
        bar.close()
        sums = pd.concat([frames[k] for k in sorted(frames)], ignore_index=True)
        sums["seq_len"] = seq_len
        sums.attrs["provenance"] = model_provenance(model) | {
            "analysis": analysis,
            "tokens": f"{n_seq} x {seq_len}",
            "tokens_sha256": tokens_sha,
            "batch_size": batch_size,
            **params,
            "from_cache": False,
        }
        if entry is not None:
            entry.write("sums", sums, meta=sums.attrs["provenance"])
        return sums


def with_provenance(table: pd.DataFrame, sums: pd.DataFrame, **reduce_params: Any) -> pd.DataFrame:
    """``table`` with the provenance of the ``sums`` it was reduced from, plus ``reduce_params``."""
    table.attrs["provenance"] = dict(sums.attrs.get("provenance", {})) | reduce_params
    return table


def layers_of(sums: pd.DataFrame) -> int:
    """Layers of a per-sequence frame whose columns start ``"<layer>:"`` or ``"<layer>."``."""
    first = (c.replace(".", ":").split(":")[0] for c in sums.columns)
    return 1 + max(int(x) for x in first if x.isdigit())


