r"""Text corpora for the experiments: tokenized, packed and sampled into rows.

The paper measures every intervention on batches of natural text.  This module
turns a text corpus into a ``[n_seq, seq_len]`` tensor of token ids that starts
each row with the tokenizer's BOS token, exactly as a language model sees the
beginning of a document.

Corpora
    ``"default"``
        The shipped public-domain corpus ``data/corpus.jsonl.gz`` (Melville's
        *Moby-Dick* plus the US State of the Union addresses 1900-2021, about
        1.33 M tokens of the Gemma 3 tokenizer; see ``data/README.md``).
    a local file
        ``.jsonl`` / ``.json`` (a field ``text`` per record), ``.parquet`` (a
        column ``text``), or ``.txt`` -- a ``.txt`` file is **one document**
        (its whole content).  Each may be gzip-compressed (``.jsonl.gz``, ...).
    anything else
        A Hugging Face Hub dataset name such as
        ``"EleutherAI/the_pile_deduplicated"``.  It is streamed
        (``streaming=True``) with the given ``split``; documents are taken in
        stream order until the token pool holds twice as many windows as were
        requested.  Needs network access; offline this raises
        :class:`CorpusLoadError`.

Packing conventions (shared by all corpora)
    * Every document is tokenized on its own **without** special tokens
      (``add_special_tokens=False``).
    * Documents are joined, in corpus order, with the token ids of the
      separator ``"\n\n"`` (a paragraph break) tokenized on its own, so the
      model never sees a special token except the leading BOS.  If a tokenizer
      maps ``"\n\n"`` to nothing, its EOS id is used instead (if it has one).
    * The resulting token stream is cut into consecutive, non-overlapping
      windows of ``seq_len - 1`` tokens (a trailing partial window is dropped).
    * ``n_seq = ceil(n_tokens / seq_len)`` distinct windows are drawn with
      ``numpy.random.default_rng(seed).choice(..., replace=False)`` and kept in
      that (random) order; each becomes ``[BOS] + window``.

Caching
    Tokenizing the default corpus with the Gemma 3 tokenizer takes a few
    seconds, so the token stream of a local corpus is cached in memory (keyed
    by the tokenizer's fingerprint, the corpus file's sha256 and the split) and
    on disk as ``$STAGES_CACHE_DIR/corpus/<key>.npy`` (default
    ``~/.cache/stages``), written atomically.  Pass ``disk_cache=False`` to skip
    the disk.  Hub corpora are not cached by this module.
"""

from __future__ import annotations

import io
import json
import logging
import math
import numbers
import threading
import warnings
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from stages.shapes import Model
from stages.store import atomic_write, sha256_bytes
from stages.text.sources import (
    _CACHE_FORMAT,
    _MEMORY_CACHE_SIZE,
    SEPARATOR,
    CorpusLoadError,
    _cache_dir,
    _file_fingerprint,
    _get_tokenizer,
    _load_local_texts,
    _pack,
    _resolve,
    corpus_fingerprint,
    default_corpus_path,
    tokenizer_fingerprint,
)

__all__ = [
    "CorpusLoadError",
    "SEPARATOR",
    "corpus_fingerprint",
    "corpus_token_ids",
    "default_corpus_path",
    "load_corpus",
    "tokenizer_fingerprint",
]

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------- caches

_memory_cache: OrderedDict[str, np.ndarray] = OrderedDict()
_memory_lock = threading.Lock()


def _memory_get(key: str) -> np.ndarray | None:
    with _memory_lock:
        arr = _memory_cache.get(key)
        if arr is not None:
            _memory_cache.move_to_end(key)
        return arr


def _memory_put(key: str, arr: np.ndarray) -> None:
    arr.flags.writeable = False
    with _memory_lock:
        _memory_cache[key] = arr
        _memory_cache.move_to_end(key)
        while len(_memory_cache) > _MEMORY_CACHE_SIZE:
            _memory_cache.popitem(last=False)


def _disk_get(path: Path) -> np.ndarray | None:
    try:
        arr = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        logger.warning("ignoring unreadable corpus cache %s: %s", path, exc)
        return None
    if arr.ndim != 1 or arr.dtype != np.int32:
        logger.warning(
            "ignoring corpus cache %s with shape %s dtype %s", path, arr.shape, arr.dtype
        )
        return None
    return arr


def _disk_put(path: Path, arr: np.ndarray) -> None:
    """Write ``arr`` to ``path`` atomically (:func:`stages.store.atomic_write`); warn on failure."""
    buffer = io.BytesIO()
    np.save(buffer, arr, allow_pickle=False)
    try:
        atomic_write(path, buffer.getvalue())
    except OSError as exc:
        warnings.warn(f"could not write the corpus cache {path}: {exc}", stacklevel=3)


def corpus_token_ids(
    model: Model,
    corpus: str = "default",
    *,
    split: str = "train",
    disk_cache: bool = True,
) -> np.ndarray:
    """Return the whole packed token stream of a local corpus.

    This is the stream that :func:`load_corpus` cuts into windows: every
    document tokenized without special tokens, joined with the token ids of
    :data:`SEPARATOR`.  No BOS token is included.

    Args:
        model: A TransformerLens ``TransformerBridge`` (its ``.tokenizer`` is
            used) or a Hugging Face tokenizer.
        corpus: ``"default"`` or a local file path (Hub datasets are not
            supported here: they are streamed only as far as needed).
        split: ``datasets`` split expression (``"train"`` is the whole file).
        disk_cache: Read/write the ``.npy`` cache under ``$STAGES_CACHE_DIR``.

    Returns:
        Read-only ``int32`` array of shape ``[n_corpus_tokens]``.

    Raises:
        ValueError: ``corpus`` names a Hub dataset, or the file has no ``text``.
        FileNotFoundError: The file does not exist.
    """
    tok = _get_tokenizer(model)
    kind, where = _resolve(corpus)
    if kind != "local":
        raise ValueError(f"corpus_token_ids needs 'default' or a local file, got {corpus!r}")
    path = Path(where)
    key_material = "|".join(
        [
            f"v{_CACHE_FORMAT}",
            _file_fingerprint(path),
            split,
            tokenizer_fingerprint(tok),
            json.dumps(SEPARATOR),
        ]
    )
    key = sha256_bytes(key_material.encode())[:40]
    arr = _memory_get(key)
    if arr is not None:
        return arr
    cache_file = _cache_dir() / f"{key}.npy"
    arr = _disk_get(cache_file) if disk_cache else None
    if arr is None:
        logger.info("tokenizing corpus %s", path)
        arr = _pack(tok, _load_local_texts(path, split))
        if disk_cache:
            _disk_put(cache_file, arr)
    else:
        logger.debug("corpus tokens read from %s", cache_file)
    _memory_put(key, arr)
    return arr


def _hub_token_ids(tok: Any, name: str, split: str, n_tokens_wanted: int) -> np.ndarray:
    import datasets

    hint = (
        f"could not load the dataset {name!r} (split {split!r}) from the Hugging Face Hub. "
        "Without network access pass a local .txt/.jsonl/.json/.parquet file or "
        "corpus='default' (the shipped public-domain corpus)."
    )
    try:
        ds = datasets.load_dataset(name, split=split, streaming=True)
    except Exception as exc:  # any failure (offline, unknown name, bad split) means the same
        raise CorpusLoadError(f"{hint} Cause: {type(exc).__name__}: {exc}") from exc

    def texts() -> Iterable[str]:
        for record in ds:
            if "text" not in record:
                raise ValueError(f"dataset {name!r} has no 'text' field (fields: {list(record)})")
            if isinstance(record["text"], str) and record["text"]:
                yield record["text"]

    try:
        return _pack(tok, texts(), limit=n_tokens_wanted)
    except ValueError:
        raise
    except Exception as exc:
        raise CorpusLoadError(f"{hint} Cause: {type(exc).__name__}: {exc}") from exc


# --------------------------------------------------------------------------- public API


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if int(value) < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def load_corpus(
    model: Model,
    corpus: str = "default",
    n_tokens: int = 4096,
    seq_len: int = 256,
    seed: int = 0,
    *,
    split: str = "train",
    disk_cache: bool = True,
) -> torch.LongTensor:
    """Sample BOS-prefixed rows of consecutive corpus tokens.

    The corpus is tokenized and packed as described in the module docstring,
    cut into non-overlapping windows of ``seq_len - 1`` tokens, and
    ``n_seq = ceil(n_tokens / seq_len)`` distinct windows are drawn with
    ``numpy.random.default_rng(seed)`` (without replacement, kept in the drawn
    order, so row order is random).  Each row is ``[BOS] + window``.  The same
    arguments always give the identical tensor; a different ``seed`` gives
    different rows.

    Args:
        model: A TransformerLens ``TransformerBridge`` (``model.tokenizer`` is
            used) or a Hugging Face tokenizer.  It must have a BOS token.
        corpus: ``"default"`` for the shipped corpus, a path to a local
            ``.txt`` (one document per file), ``.jsonl``/``.json`` (field
            ``text``) or ``.parquet`` file (each optionally ``.gz``), or a Hub
            dataset name (streamed; needs network access).
        n_tokens: Number of tokens wanted, *including* the BOS tokens.  It is
            rounded **up** to whole rows: ``n_seq = ceil(n_tokens / seq_len)``.
        seq_len: Row length including the leading BOS token (>= 2).
        seed: Seed (>= 0) for ``numpy.random.default_rng`` picking the windows.
        split: ``datasets`` split; for local files ``"train"`` is the whole file
            (slices such as ``"train[:50%]"`` also work).
        disk_cache: Cache the token stream of a local corpus as ``.npy`` under
            ``$STAGES_CACHE_DIR/corpus`` (default ``~/.cache/stages/corpus``).

    Returns:
        ``torch.int64`` tensor of shape ``[n_seq, seq_len]``; column 0 is
        ``tokenizer.bos_token_id`` and ``row[1:]`` is a contiguous slice of the
        packed corpus token stream (see :func:`corpus_token_ids`).

    Raises:
        ValueError: A bad argument (the message names it), a tokenizer without
            BOS token, or a corpus too small for the request.
        FileNotFoundError: A local corpus file does not exist.
        CorpusLoadError: A Hub dataset could not be loaded (e.g. offline).
    """
    n_tokens = _check_int("n_tokens", n_tokens, 1)
    seq_len = _check_int("seq_len", seq_len, 2)
    seed = _check_int("seed", seed, 0)
    n_ctx = getattr(getattr(model, "cfg", None), "n_ctx", None)
    if isinstance(n_ctx, int) and seq_len > n_ctx:
        raise ValueError(
            f"seq_len={seq_len} exceeds the model's context of {n_ctx} tokens; "
            f"use seq_len <= {n_ctx}"
        )
    if not isinstance(split, str) or not split:
        raise ValueError(f"split must be a non-empty string, got {split!r}")
    tok = _get_tokenizer(model)
    bos = tok.bos_token_id
    if bos is None:
        raise ValueError(
            f"the tokenizer {getattr(tok, 'name_or_path', '') or type(tok).__name__!r} has no "
            "BOS token (bos_token_id is None); load_corpus starts every row with BOS"
        )

    n_seq = math.ceil(n_tokens / seq_len)
    window = seq_len - 1
    kind, where = _resolve(corpus)
    if kind == "local":
        ids = corpus_token_ids(tok, corpus, split=split, disk_cache=disk_cache)
    else:
        ids = _hub_token_ids(tok, str(where), split, n_tokens_wanted=2 * n_seq * window)

    n_windows = ids.size // window
    if n_windows < n_seq:
        raise ValueError(
            f"corpus {corpus!r} is too small: it has {ids.size} tokens, i.e. {n_windows} "
            f"windows of seq_len-1={window} tokens, but n_tokens={n_tokens} with "
            f"seq_len={seq_len} requests {n_seq} rows ({n_seq * window} corpus tokens). "
            "Request fewer tokens, a shorter seq_len, or use a larger corpus."
        )
    rng = np.random.default_rng(seed)
    starts = rng.choice(n_windows, size=n_seq, replace=False).astype(np.int64) * window
    out = np.empty((n_seq, seq_len), dtype=np.int64)
    out[:, 0] = int(bos)
    out[:, 1:] = ids[starts[:, None] + np.arange(window)]
    return torch.from_numpy(out)
