"""Where a corpus's text comes from and how it becomes one token stream; its fingerprints.

The shipped file, a local file (.txt, .jsonl, .json, .parquet, optionally compressed) or a
Hugging Face dataset; documents are tokenized without special tokens and joined by
:data:`SEPARATOR` (see :mod:`stages.text.corpus`, which caches the stream and cuts it into
windows).
"""

from __future__ import annotations

import json
import logging
import os
import weakref
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from stages.shapes import Model
from stages.store import cache_dir, data_dir, sha256_bytes, sha256_file

logger = logging.getLogger("stages.text.corpus")

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


def _get_tokenizer(model: Model) -> Any:
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
