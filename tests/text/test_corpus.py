"""Tests for :mod:`stages.text.corpus` (the shipped corpus and ``load_corpus``)."""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from stages.text import corpus as corpus_mod
from stages.text.corpus import (
    SEPARATOR,
    CorpusLoadError,
    corpus_fingerprint,
    corpus_token_ids,
    default_corpus_path,
    load_corpus,
)
from tests.conftest import make_tiny_tokenizer

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "data" / "corpus.jsonl.gz"


def _shipped_documents(limit: int | None = None) -> list[dict[str, str]]:
    docs = []
    with gzip.open(SHIPPED, "rt", encoding="utf-8") as fh:
        for line in fh:
            docs.append(json.loads(line))
            if limit is not None and len(docs) >= limit:
                break
    return docs


def _tokenizer(vocab_size: int = 600):
    """The shared tiny tokenizer (tests/conftest.py), trained on a bit of the shipped text."""
    return make_tiny_tokenizer(
        [d["text"][:20_000] for d in _shipped_documents(limit=12)], vocab_size
    )


@pytest.fixture(scope="module")
def tok():
    """The tiny tokenizer, built once per module."""
    return _tokenizer()


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    """Give every test its own disk caches (ours and ``datasets``') and an empty memory cache."""
    import datasets

    from stages.store import models_dir

    monkeypatch.setenv("STAGES_MODELS_DIR", str(models_dir()))  # keep the converted model
    monkeypatch.setenv("STAGES_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf_datasets")
    corpus_mod._memory_cache.clear()
    yield
    corpus_mod._memory_cache.clear()


@pytest.fixture
def jsonl_corpus(tmp_path) -> tuple[Path, list[str]]:
    """A small local .jsonl corpus (30 shipped chapters, ~80 k tiny-tokenizer tokens)."""
    texts = [d["text"] for d in _shipped_documents(limit=30)]
    path = tmp_path / "small.jsonl"
    with open(path, "w", encoding="utf-8") as fh:
        for i, text in enumerate(texts):
            fh.write(json.dumps({"text": text, "title": f"doc {i}"}) + "\n")
    return path, texts


def _expected_stream(tok, texts: list[str]) -> np.ndarray:
    sep = tok(SEPARATOR, add_special_tokens=False)["input_ids"]
    assert sep, "the tiny tokenizer must encode the separator"
    out: list[int] = []
    for i, text in enumerate(texts):
        if i:
            out += sep
        out += tok(text, add_special_tokens=False)["input_ids"]
    return np.asarray(out)


# --------------------------------------------------------------------------- shipped data


def test_shipped_corpus_file_is_there():
    """The shipped file has the documented documents and fields."""
    assert default_corpus_path() == SHIPPED
    docs = _shipped_documents()
    assert len(docs) == 261
    assert {d["source"] for d in docs} == {"moby-dick", "sotu"}
    assert all(set(d) == {"source", "title", "text"} and d["text"].strip() for d in docs)
    assert docs[2]["text"].startswith("CHAPTER 1. Loomings.\n\nCall me Ishmael.")


def test_default_corpus_path_honours_env(tmp_path, monkeypatch):
    """``$STAGES_DATA_DIR`` moves the default corpus; a missing file says how to rebuild."""
    monkeypatch.setenv("STAGES_DATA_DIR", str(tmp_path))
    assert default_corpus_path() == tmp_path / "corpus.jsonl.gz"
    with pytest.raises(FileNotFoundError, match="extract.py"):
        corpus_fingerprint("default")


def test_corpus_fingerprint(jsonl_corpus):
    """Files are fingerprinted by sha256 of their bytes, Hub sets by name."""
    path, _ = jsonl_corpus
    assert corpus_fingerprint("default") == hashlib.sha256(SHIPPED.read_bytes()).hexdigest()
    assert corpus_fingerprint(str(path)) == hashlib.sha256(path.read_bytes()).hexdigest()
    assert corpus_fingerprint("EleutherAI/the_pile_deduplicated") == (
        "EleutherAI/the_pile_deduplicated"
    )


def test_default_corpus_with_tiny_tokenizer(tok):
    """``corpus='default'`` loads the shipped data."""
    x = load_corpus(tok, n_tokens=4096, seq_len=256)
    assert x.shape == (16, 256) and x.dtype == torch.int64
    assert (x[:, 0] == tok.bos_token_id).all()
    ids = corpus_token_ids(tok)
    assert ids.size > 1_000_000  # the tiny tokenizer needs more tokens than Gemma
    text = tok.decode(x[0, 1:].tolist())
    assert len(text) > 200


# --------------------------------------------------------------------------- load_corpus


def test_shape_bos_and_rounding(tok, jsonl_corpus):
    """Shape is ``[ceil(n_tokens / seq_len), seq_len]`` and column 0 is BOS."""
    path, _ = jsonl_corpus
    for n_tokens, seq_len in [(1000, 64), (64, 64), (65, 64), (1, 2), (4096, 256), (7, 3)]:
        x = load_corpus(tok, str(path), n_tokens=n_tokens, seq_len=seq_len)
        assert isinstance(x, torch.Tensor) and x.dtype == torch.int64
        assert x.shape == (math.ceil(n_tokens / seq_len), seq_len)
        assert (x[:, 0] == tok.bos_token_id).all()
        assert (x[:, 1:] != tok.bos_token_id).all()  # no special tokens inside rows


def test_determinism_and_seeds(tok, jsonl_corpus):
    """Same arguments give the same tensor; another seed gives other rows."""
    path, _ = jsonl_corpus
    a = load_corpus(tok, str(path), n_tokens=2048, seq_len=128, seed=0)
    corpus_mod._memory_cache.clear()
    b = load_corpus(tok, str(path), n_tokens=2048, seq_len=128, seed=0, disk_cache=False)
    c = load_corpus(tok, str(path), n_tokens=2048, seq_len=128, seed=1)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert len({tuple(r) for r in a.tolist()} & {tuple(r) for r in c.tolist()}) < a.shape[0]


def test_rows_are_distinct_contiguous_windows(tok, jsonl_corpus):
    """Each row is BOS + an aligned window of the packed stream, none repeated."""
    path, texts = jsonl_corpus
    ids = corpus_token_ids(tok, str(path))
    np.testing.assert_array_equal(ids, _expected_stream(tok, texts))
    seq_len = 50
    window = seq_len - 1
    x = load_corpus(tok, str(path), n_tokens=40 * seq_len, seq_len=seq_len, seed=3).numpy()
    starts = []
    for row in x:
        # locate the row among the aligned, non-overlapping windows
        matches = [
            s
            for s in range(0, ids.size - window + 1, window)
            if np.array_equal(ids[s : s + window], row[1:])
        ]
        assert matches, "row is not a window of the packed corpus"
        starts.append(matches[0])
    assert len(set(starts)) == len(starts)  # sampled without replacement
    assert starts != sorted(starts)  # kept in random order


def test_bridge_like_model_uses_its_tokenizer(tok, jsonl_corpus):
    """An object with a ``.tokenizer`` (a TransformerBridge) works like the tokenizer."""
    path, _ = jsonl_corpus
    bridge = SimpleNamespace(tokenizer=tok, cfg=None)
    assert torch.equal(
        load_corpus(bridge, str(path), n_tokens=512, seq_len=64),
        load_corpus(tok, str(path), n_tokens=512, seq_len=64),
    )


def test_too_small_corpus(tok, tmp_path):
    """A request larger than the corpus says how large both are and what to do."""
    path = tmp_path / "tiny.txt"
    path.write_text("Call me Ishmael. Some years ago, never mind how long precisely.\n")
    n = corpus_token_ids(tok, str(path)).size
    with pytest.raises(ValueError, match=rf"too small: it has {n} tokens.*requests 10 rows"):
        load_corpus(tok, str(path), n_tokens=640, seq_len=64)
    with pytest.raises(ValueError, match="fewer tokens"):
        load_corpus(tok, str(path), n_tokens=640, seq_len=64)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"n_tokens": 0}, "n_tokens"),
        ({"n_tokens": -5}, "n_tokens"),
        ({"n_tokens": 12.5}, "n_tokens"),
        ({"n_tokens": "100"}, "n_tokens"),
        ({"n_tokens": True}, "n_tokens"),
        ({"seq_len": 1}, "seq_len"),
        ({"seq_len": 0}, "seq_len"),
        ({"seq_len": 3.0}, "seq_len"),
        ({"seed": -1}, "seed"),
        ({"seed": 0.5}, "seed"),
        ({"seed": "0"}, "seed"),
        ({"seed": None}, "seed"),
        ({"split": ""}, "split"),
    ],
)
def test_bad_parameters(tok, kwargs, name):
    """Bad arguments raise ValueError naming the argument."""
    with pytest.raises(ValueError, match=name):
        load_corpus(tok, **kwargs)


def test_numpy_integers_are_accepted(tok, jsonl_corpus):
    """NumPy integer scalars are valid integer arguments."""
    path, _ = jsonl_corpus
    a = load_corpus(tok, str(path), n_tokens=np.int64(256), seq_len=np.int32(64), seed=np.int8(2))
    b = load_corpus(tok, str(path), n_tokens=256, seq_len=64, seed=2)
    assert torch.equal(a, b)


def test_tokenizer_without_bos(tmp_path):
    """A tokenizer without BOS token is refused."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.WordLevel({"[UNK]": 0, "a": 1}, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    no_bos = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]")
    with pytest.raises(ValueError, match="BOS"):
        load_corpus(no_bos)


def test_not_a_tokenizer():
    """Something that is not a tokenizer is refused with a clear message."""
    with pytest.raises(ValueError, match="tokenizer"):
        load_corpus(object())


def test_local_txt_is_one_document(tok, tmp_path):
    """A .txt file is one document, tokenized as a whole."""
    text = "\n\n".join(d["text"] for d in _shipped_documents(limit=6))
    path = tmp_path / "book.txt"
    path.write_text(text, encoding="utf-8")
    ids = corpus_token_ids(tok, str(path))
    np.testing.assert_array_equal(ids, tok(text, add_special_tokens=False)["input_ids"])
    x = load_corpus(tok, path, n_tokens=300, seq_len=100, seed=5)  # os.PathLike works too
    assert x.shape == (3, 100)


def test_local_jsonl_gz_and_json(tok, tmp_path, jsonl_corpus):
    """Gzipped JSON Lines and a JSON array give the same stream as JSON Lines."""
    path, texts = jsonl_corpus
    gz = tmp_path / "small.jsonl.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    js = tmp_path / "small.json"
    js.write_text(json.dumps([{"text": t} for t in texts]), encoding="utf-8")
    ref = corpus_token_ids(tok, str(path))
    np.testing.assert_array_equal(corpus_token_ids(tok, str(gz)), ref)
    np.testing.assert_array_equal(corpus_token_ids(tok, str(js)), ref)
    assert torch.equal(
        load_corpus(tok, str(gz), n_tokens=1024, seq_len=128),
        load_corpus(tok, str(path), n_tokens=1024, seq_len=128),
    )


def test_local_file_errors(tok, tmp_path):
    """Missing files, missing ``text`` fields and unknown suffixes are clear errors."""
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_corpus(tok, str(tmp_path / "missing.jsonl"))
    bad = tmp_path / "notext.jsonl"
    bad.write_text('{"body": "hello"}\n')
    with pytest.raises(ValueError, match="'text'"):
        load_corpus(tok, str(bad))
    odd = tmp_path / "notes.md"
    odd.write_text("hello")
    with pytest.raises(ValueError, match=".txt, .jsonl"):
        load_corpus(tok, str(odd))


def test_disk_cache_roundtrip(tok, jsonl_corpus, tmp_path):
    """The .npy disk cache is written atomically, re-read, and keyed by tokenizer."""
    path, _ = jsonl_corpus
    cache = tmp_path / "cache" / "corpus"
    first = corpus_token_ids(tok, str(path)).copy()
    files = list(cache.glob("*.npy"))
    assert len(files) == 1 and not list(cache.glob("*.tmp"))
    np.testing.assert_array_equal(np.load(files[0], allow_pickle=False), first)
    corpus_mod._memory_cache.clear()
    np.testing.assert_array_equal(corpus_token_ids(tok, str(path)), first)
    # a different tokenizer gets its own cache entry
    other = _tokenizer(vocab_size=400)
    corpus_token_ids(other, str(path))
    assert len(list(cache.glob("*.npy"))) == 2
    # disk_cache=False writes nothing
    corpus_mod._memory_cache.clear()
    for f in cache.glob("*.npy"):
        f.unlink()
    corpus_token_ids(tok, str(path), disk_cache=False)
    assert not list(cache.glob("*.npy"))


def test_memory_cache_tracks_file_content(tok, tmp_path):
    """Editing a local file invalidates the in-memory cache."""
    path = tmp_path / "doc.txt"
    path.write_text("The whale surfaced. " * 200)
    a = corpus_token_ids(tok, str(path)).copy()
    path.write_text("The ship sailed on. " * 300)
    b = corpus_token_ids(tok, str(path))
    assert not np.array_equal(a, b)


def test_unreachable_hub_dataset_fails_fast(tok, monkeypatch):
    """Offline, a Hub name fails quickly with a message naming it and the fix."""
    import datasets
    import huggingface_hub.constants

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # the libraries read these variables at import time: patch their constants too
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True, raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True, raising=False)
    start = time.monotonic()
    with pytest.raises(CorpusLoadError) as info:
        load_corpus(tok, "EleutherAI/the_pile_deduplicated", n_tokens=512, seq_len=64)
    assert time.monotonic() - start < 15
    message = str(info.value)
    assert "EleutherAI/the_pile_deduplicated" in message
    assert "local" in message and "'default'" in message


# --------------------------------------------------------------------------- real tokenizer


@pytest.mark.real
def test_default_corpus_with_gemma_tokenizer():
    """The shipped corpus has >= 1 M Gemma 3 tokens and round-trips through it."""
    from transformers import AutoTokenizer

    from stages.models import embedded_model_dir

    gemma = AutoTokenizer.from_pretrained(embedded_model_dir())
    ids = corpus_token_ids(gemma)
    assert ids.size >= 1_000_000
    assert ids.max() < len(gemma)
    x = load_corpus(gemma, n_tokens=4096, seq_len=256)
    assert x.shape == (16, 256) and (x[:, 0] == gemma.bos_token_id).all()
    docs = _shipped_documents(limit=3)
    paragraph = docs[2]["text"].split("\n\n")[1]  # "Call me Ishmael. ..."
    assert paragraph.startswith("Call me Ishmael.")
    encoded = gemma(paragraph, add_special_tokens=False)["input_ids"]
    assert gemma.decode(encoded) == paragraph
