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
import os
import threading
import warnings
import weakref
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from stages.store import atomic_write, cache_dir, data_dir, sha256_bytes, sha256_file

__all__ = [
    "CorpusLoadError",
    "DEFAULT_CORPUS_FILENAME",
    "SEPARATOR",
    "corpus_fingerprint",
    "corpus_token_ids",
    "default_corpus_path",
    "load_corpus",
    "tokenizer_fingerprint",
]

logger = logging.getLogger(__name__)

#: File name of the shipped corpus inside the data directory.
DEFAULT_CORPUS_FILENAME = "corpus.jsonl.gz"

#: Text placed between two documents before packing (tokenized on its own).
SEPARATOR = "\n\n"

#: Bump when tokenization or packing changes, to invalidate the disk cache.
_CACHE_FORMAT = 1

#: Documents tokenized per call of the tokenizer.
_BATCH = 64

#: Number of tokenized corpora kept in memory.
_MEMORY_CACHE_SIZE = 8

_LOCAL_FORMATS = {".txt": "text", ".json": "json", ".jsonl": "json", ".parquet": "parquet"}
_COMPRESSIONS = (".gz", ".bz2", ".xz", ".zst")


class CorpusLoadError(RuntimeError):
    """A corpus could not be loaded (e.g. a Hub dataset while offline)."""


# --------------------------------------------------------------------------- paths


def default_corpus_path() -> Path:
    """Return the path of the shipped corpus file.

    The file is ``data/corpus.jsonl.gz`` at the root of the repository (the
    package is installed in editable mode, so that is
    ``Path(__file__).resolve().parents[2] / "data"``).  If the environment
    variable ``STAGES_DATA_DIR`` is set, the file is looked up there instead.

    Returns:
        Path of ``corpus.jsonl.gz`` (it is not checked that the file exists).
    """
    return data_dir() / DEFAULT_CORPUS_FILENAME


def _cache_dir() -> Path:
    return cache_dir() / "corpus"


def _local_format(path: Path) -> str | None:
    """Return the ``datasets`` builder name for a local file, or None if unknown."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in _COMPRESSIONS:
        suffixes = suffixes[:-1]
    return _LOCAL_FORMATS.get(suffixes[-1]) if suffixes else None


def _resolve(corpus: str | os.PathLike[str]) -> tuple[str, Path | str]:
    """Classify ``corpus`` as ``("local", Path)`` or ``("hub", name)``."""
    if isinstance(corpus, os.PathLike):
        corpus = os.fspath(corpus)
    if not isinstance(corpus, str) or not corpus:
        raise ValueError(f"corpus must be 'default', a file path or a dataset name, got {corpus!r}")
    if corpus == "default":
        path = default_corpus_path()
        if not path.is_file():
            raise FileNotFoundError(
                f"the shipped corpus {path} is missing; rebuild it with `python data/extract.py` "
                "or point $STAGES_DATA_DIR at the folder holding corpus.jsonl.gz"
            )
        return "local", path
    path = Path(corpus).expanduser()
    if path.is_dir():
        raise ValueError(f"corpus {corpus!r} is a directory; pass a single .txt/.jsonl/.json file")
    if path.is_file() or _local_format(path) is not None:
        if not path.is_file():
            raise FileNotFoundError(f"corpus file {corpus!r} does not exist")
        if _local_format(path) is None:
            raise ValueError(
                f"cannot read corpus file {corpus!r}: use .txt, .jsonl, .json or .parquet "
                "(optionally .gz-compressed)"
            )
        return "local", path.resolve()
    return "hub", corpus


# --------------------------------------------------------------------------- fingerprints


_file_hash_memo: dict[tuple[str, int, int], str] = {}


def _file_fingerprint(path: Path) -> str:
    stat = path.stat()
    key = (str(path), stat.st_mtime_ns, stat.st_size)
    if key not in _file_hash_memo:
        _file_hash_memo[key] = sha256_file(path)
    return _file_hash_memo[key]


def corpus_fingerprint(corpus: str = "default") -> str:
    """Identify the content of a corpus.

    Args:
        corpus: ``"default"``, a local file path, or a Hub dataset name (see
            :func:`load_corpus`).

    Returns:
        The hex sha256 of the file's bytes for ``"default"`` and local files;
        the dataset name itself for a Hub dataset (its content is not known
        without downloading it).
    """
    kind, where = _resolve(corpus)
    return _file_fingerprint(where) if kind == "local" else str(where)  # type: ignore[arg-type]


_tok_fp_memo: weakref.WeakKeyDictionary[Any, tuple[int, str]] = weakref.WeakKeyDictionary()


def tokenizer_fingerprint(tokenizer: Any) -> str:
    """Return a hex sha256 that changes whenever the tokenizer's mapping can.

    For a fast (``tokenizers``-backed) tokenizer this hashes the complete
    serialized tokenizer (``backend_tokenizer.to_str()``: vocabulary, merges,
    normalizer, pre-tokenizer and added tokens); otherwise the sorted
    vocabulary.  The class name is included too.  The result is memoized per
    tokenizer object.

    Args:
        tokenizer: A Hugging Face tokenizer.

    Returns:
        64 hex characters.
    """
    size = len(tokenizer)
    try:
        memo = _tok_fp_memo.get(tokenizer)
    except TypeError:  # not weak-referenceable
        memo = None
    if memo is not None and memo[0] == size:
        return memo[1]
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None and hasattr(backend, "to_str"):
        mapping = backend.to_str()
    else:
        mapping = json.dumps(sorted(tokenizer.get_vocab().items()), ensure_ascii=False)
    fingerprint = sha256_bytes(type(tokenizer).__name__.encode() + mapping.encode("utf-8"))
    try:
        _tok_fp_memo[tokenizer] = (size, fingerprint)
    except TypeError:
        pass
    return fingerprint


# --------------------------------------------------------------------------- loading text


def _get_tokenizer(model: Any) -> Any:
    tok = getattr(model, "tokenizer", model)
    if tok is None or not callable(tok) or not hasattr(tok, "bos_token_id"):
        raise ValueError(
            "load_corpus needs a TransformerBridge with a .tokenizer or a Hugging Face "
            f"tokenizer, got {type(model).__name__} (tokenizer={type(tok).__name__})"
        )
    return tok


def _texts_from_dataset(ds: Any, where: str) -> list[str]:
    if "text" not in (ds.column_names or []):
        raise ValueError(f"corpus {where} has no 'text' field (fields: {ds.column_names})")
    return [t for t in ds["text"] if isinstance(t, str) and t]


def _load_local_texts(path: Path, split: str) -> list[str]:
    """Read the documents of a local file through ``datasets.load_dataset``."""
    import datasets

    fmt = _local_format(path)
    kwargs: dict[str, Any] = {"sample_by": "document"} if fmt == "text" else {}
    try:
        ds = datasets.load_dataset(fmt, data_files={"train": str(path)}, split=split, **kwargs)
    except (ValueError, KeyError) as exc:
        raise ValueError(f"could not read corpus file {path} (split {split!r}): {exc}") from exc
    return _texts_from_dataset(ds, str(path))


def _separator_ids(tok: Any) -> list[int]:
    ids = list(tok(SEPARATOR, add_special_tokens=False, verbose=False)["input_ids"])
    if not ids and tok.eos_token_id is not None:
        ids = [int(tok.eos_token_id)]
    return ids


def _tokenize_stream(tok: Any, texts: Iterable[str]) -> Iterable[list[int]]:
    """Yield the token ids of each document (batched calls to the tokenizer)."""
    batch: list[str] = []
    for text in texts:
        batch.append(text)
        if len(batch) == _BATCH:
            yield from tok(batch, add_special_tokens=False, verbose=False)["input_ids"]
            batch = []
    if batch:
        yield from tok(batch, add_special_tokens=False, verbose=False)["input_ids"]


def _pack(tok: Any, texts: Iterable[str], limit: int | None = None) -> np.ndarray:
    """Tokenize and join documents with the separator; stop once ``limit`` tokens are reached."""
    sep = _separator_ids(tok)
    parts: list[list[int]] = []
    total = 0
    for ids in _tokenize_stream(tok, texts):
        if parts and sep:
            parts.append(sep)
            total += len(sep)
        parts.append(list(ids))
        total += len(ids)
        if limit is not None and total >= limit:
            break
    if not parts:
        return np.zeros(0, dtype=np.int32)
    flat = np.fromiter((i for p in parts for i in p), dtype=np.int64, count=total)
    if flat.size and (flat.min() < 0 or flat.max() >= 2**31):
        raise ValueError("token ids outside the int32 range")
    return flat.astype(np.int32)


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
    model: Any,
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
    model: Any,
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
