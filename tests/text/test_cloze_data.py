"""The cloze windows, checked from their decoded text on both tokenizer families and on Gemma 3."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from stages.text.cloze import BOUNDARY, MAX_TOKENS, RULES, STOPWORDS, cloze_set
from stages.text.corpus import corpus_token_ids
from tests.conftest import TEXT, make_tiny_tokenizer
from tests.text.test_words import _sentencepiece_tokenizer

# Words that repeat close together, some of them not whole words ("wouldn't", "sea-port").
EXTRA = (
    "Ishmael wouldn't go. Ishmael wouldn't stay, and Ishmael wouldn't sail. The sea-port was "
    "quiet; the sea-port was dark, and the sea-port slept. Whales, whales and whales: 1851 "
    "whales! The Pequod sailed, the Pequod turned, and the Pequod sank."
)


@pytest.fixture(scope="module")
def corpus_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("cloze") / "corpus.jsonl"
    docs = [TEXT, EXTRA] * 6
    path.write_text("".join(json.dumps({"text": d}) + "\n" for d in docs))
    return str(path)


def _tokenizer(family: str):
    return make_tiny_tokenizer() if family == "byte-level BPE" else _sentencepiece_tokenizer()


def _check_windows(tok, data, corpus: str, context: int, min_letters: int = 4) -> None:
    """Every property of the module docstring, read back from the decoded text."""
    n = len(data)
    stream = corpus_token_ids(tok, corpus)
    assert data.tokens.shape == (n, context) and n == len(data.n_target) == len(data.words)
    assert (data.tokens[:, 0] == tok.bos_token_id).all()
    order = np.argsort(data.position)
    assert (np.diff(data.position[order]) >= context - 1).all(), "windows overlap"
    for row, k, word, pos in zip(
        data.tokens.numpy(), data.n_target, data.words, data.position, strict=True
    ):
        assert 1 <= k <= MAX_TOKENS
        np.testing.assert_array_equal(row[1:], stream[pos - context + 2 : pos + 1])
        target = row[-k:].tolist()
        assert tok.decode(target).strip() == word
        assert word.isascii() and word.isalpha() and len(word) >= min_letters
        assert word.lower() not in STOPWORDS
        # a whole word: its first token follows a space, and a boundary follows its last
        assert tok.convert_ids_to_tokens(target[0])[0] in "Ġ▁"
        after = tok.decode([int(stream[pos + 1])])
        first = tok.convert_ids_to_tokens(int(stream[pos + 1]))
        assert first[0] in "Ġ▁" or after[0].isspace() or after[0] in BOUNDARY, (word, after)
        # LAMBADA's property: the word occurs earlier in the window, as a word
        before = tok.decode(row[1:-k].tolist())
        assert re.search(rf"(?<![A-Za-z]){word}(?![A-Za-z])", before, re.IGNORECASE), word
    assert sum(data.rejected.values()) + data.eligible == data.candidates
    assert list(data.rejected) == list(RULES)


@pytest.mark.parametrize("family", ["byte-level BPE", "SentencePiece"])
def test_windows_end_with_a_whole_word_named_earlier(family, corpus_file):
    tok = _tokenizer(family)
    data = cloze_set(tok, corpus=corpus_file, context=32, n=500)
    assert 10 <= len(data) < 500  # every eligible window that fits, fewer than asked for
    _check_windows(tok, data, corpus_file, 32)
    assert "wouldn" not in data.words and "sea" not in data.words
    assert data.rejected["whole word"] > 0 and data.rejected["recoverable"] > 0
    assert data.rejected["stopword"] > 0 and data.rejected["length"] > 0
    assert len(set(data.n_target)) > 1 or family == "SentencePiece"
    text = data.describe()
    assert f"{len(data):,} windows" in text and f"{data.candidates:,} candidate" in text


@pytest.mark.parametrize("family", ["byte-level BPE", "SentencePiece"])
def test_the_draw_is_deterministic_and_nested(family, corpus_file):
    tok = _tokenizer(family)
    full = cloze_set(tok, corpus=corpus_file, context=32, n=500)
    again = cloze_set(tok, corpus=corpus_file, context=32, n=500)
    assert (full.tokens == again.tokens).all() and full.words == again.words
    few = cloze_set(tok, corpus=corpus_file, context=32, n=5)
    assert len(few) == 5 and (few.position == full.position[:5]).all()  # a prefix, as drawn
    assert not (np.diff(full.position) > 0).all()  # drawn order, not stream order
    other = cloze_set(tok, corpus=corpus_file, context=32, n=5, seed=1)
    assert set(other.position) != set(few.position)
    stricter = cloze_set(tok, corpus=corpus_file, context=32, n=500, min_letters=7)
    assert all(len(w) >= 7 for w in stricter.words) and stricter.eligible < full.eligible


def test_bad_arguments_are_refused(corpus_file):
    tok = make_tiny_tokenizer()
    for kwargs, name in [({"context": 5}, "context"), ({"n": 0}, "n"), ({"seed": -1}, "seed"),
                         ({"min_letters": True}, "min_letters")]:  # fmt: skip
        with pytest.raises(ValueError, match=name):
            cloze_set(tok, corpus=corpus_file, **kwargs)
    with pytest.raises(ValueError, match="no cloze window"):
        cloze_set(tok, corpus=corpus_file, context=32, min_letters=40)


@pytest.mark.real
def test_the_default_corpus_with_the_gemma_tokenizer():
    from transformers import AutoTokenizer

    from stages.models import embedded_model_dir

    gemma = AutoTokenizer.from_pretrained(embedded_model_dir())
    data = cloze_set(gemma)
    assert len(data) == 1024 and data.tokens.shape == (1024, 96)
    _check_windows(gemma, data, "default", 96)
    assert data.eligible > 10 * len(data)
    few = cloze_set(gemma, n=64)  # the first 64 drawn are the full set's first 64 rows
    assert (data.tokens[:64] == few.tokens).all() and (data.position[:64] == few.position).all()
