"""Word boundaries on both tokenizer families, and the two case-study datasets."""

from __future__ import annotations

import numpy as np
import pytest

from stages.text.words import Vocabulary, ing_dataset, subjoiner_dataset, word_spans
from tests.conftest import TEXT, make_tiny_tokenizer


def _sentencepiece_tokenizer():
    """A tiny BPE with SentencePiece's ``▁`` marker (Metaspace), trained in memory."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    trainer = trainers.BpeTrainer(
        vocab_size=200, special_tokens=["<pad>", "<bos>", "<eos>", "<unk>"], show_progress=False
    )
    tok.train_from_iterator([TEXT] * 4, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>",
        unk_token="<unk>",
    )  # fmt: skip


@pytest.mark.parametrize("family", ["byte-level BPE", "SentencePiece"])
def test_word_spans_follow_the_space_marker(family):
    tok = make_tiny_tokenizer() if family == "byte-level BPE" else _sentencepiece_tokenizer()
    vocab = Vocabulary.of(tok)
    assert vocab.marker == ("Ġ" if family == "byte-level BPE" else "▁")
    text = " whenever the mouth, precisely 42 philosophical"
    ids = np.array(tok(text, add_special_tokens=False)["input_ids"])
    strings = tok.convert_ids_to_tokens(ids.tolist())
    start, length = word_spans(vocab, ids)
    # rebuild every word from its tokens: the spans give back the words of the text
    words, k = [], 0
    while k < len(ids):
        if length[k]:
            assert start[k] == k and (length[k : k + length[k]] == length[k]).all()
            words.append("".join(s.removeprefix(vocab.marker) for s in strings[k : k + length[k]]))
            k += length[k]
        else:
            k += 1
    assert words == ["whenever", "the", "mouth", "precisely", "philosophical"]
    assert (length > 1).any(), "the tiny vocabulary should split some words"


def test_a_tokenizer_without_a_space_marker_is_refused():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel({"a": 0, "<unk>": 1}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    with pytest.raises(ValueError, match="space marker"):
        Vocabulary.of(PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>"))


@pytest.fixture(scope="module")
def corpus_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("corpus") / "text.txt"
    path.write_text((TEXT + "\n\n") * 6)
    return str(path)


def test_subjoiner_windows_end_on_whole_words(tiny_models, corpus_file):
    bridge, _ = tiny_models("gpt2")
    vocab = Vocabulary.of(bridge.tokenizer, bridge.cfg.d_vocab)
    data = subjoiner_dataset(bridge, corpus=corpus_file, n_per_class=5, width=8, word_tokens=3)
    assert data.tokens.shape == (10, 9) and list(data.labels) == [True] * 5 + [False] * 5
    assert (data.tokens[:, 0] == bridge.tokenizer.bos_token_id).all()
    for row, label, word in zip(data.tokens.numpy(), data.labels, data.words, strict=True):
        start, length = word_spans(vocab, row[1:])
        size = 3 if label else 1
        assert length[-1] == size and start[-1] == len(row) - 1 - size
        assert vocab.marked[row[-size]] and word.islower() and word.isalpha()
    with pytest.raises(ValueError, match="only"):
        subjoiner_dataset(bridge, corpus=corpus_file, n_per_class=10_000, width=8)


def test_ing_windows_are_labelled_by_the_next_token(tiny_models, corpus_file):
    bridge, _ = tiny_models("gpt2")
    data = ing_dataset(bridge, corpus=corpus_file, n_per_class=4, width=10)
    assert data.tokens.shape == (8, 11)
    assert all(w.endswith("ing") for w in data.words[:4])
    assert not any(w.endswith("ing") and w.isalpha() and w.islower() for w in data.words[4:])
