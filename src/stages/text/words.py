"""Words in token streams, and the two case-study datasets built from them (paper section 6).

**Word boundaries.** Both tokenizer families the book meets mark a token that follows a space
with a prefix in its vocabulary string: SentencePiece (Gemma, Llama 2) with ``▁`` and byte-level
BPE (GPT-2, Pythia, Llama 3, SmolLM2) with ``Ġ``. The marker is found by tokenizing ``" a"``.
A token is *alphabetic* when its string, marker removed, is non-empty letters only. A *word* is
a maximal run of alphabetic tokens in which every token after the first has no marker; so
``"Ġw", "henever"`` is one two-token word, and punctuation, digits, newlines and a following
marked token all end a word. A word is *spaced* when its first token carries the marker (it
followed a space, as the authors' prompts ``" " + word`` do).

**Subjoiner dataset** (case study 1, Figure 9). Windows of the corpus token stream that end
on the last token of a spaced, lower-case word: the *word* class where that word is exactly
four tokens, the *control* class where it is exactly one token. Each example is BOS plus the 16
tokens ending there, so in the word class the word's first token sits 3 positions before the
last. The authors built prompts from whitespace-split words with digits, punctuation and
all-caps words removed; here the context is the natural text before the word.

**"-ing" dataset** (case study 2, Figure 10). Positions of the stream whose *next* token ends
in ``ing`` (alphabetic, lower case), and as many positions whose next token does not; each
example is BOS plus the 23 tokens ending at the position (24 tokens).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from stages.shapes import Model, Tokens
from stages.text.corpus import corpus_token_ids

MARKERS = ("▁", "Ġ")


@dataclass(frozen=True)
class Vocabulary:
    """Per-token-id string properties of a tokenizer's vocabulary (arrays of ``[d_vocab]``).

    Attributes:
        marker: the space marker of this tokenizer (``"▁"`` or ``"Ġ"``).
        text: each token's string with the marker removed.
        alpha: the string is non-empty and letters only.
        marked: the token's string starts with the marker.
        lower: alphabetic and lower case.
    """

    marker: str
    text: np.ndarray
    alpha: np.ndarray
    marked: np.ndarray
    lower: np.ndarray

    @classmethod
    def of(cls, tokenizer: Any, size: int | None = None) -> Vocabulary:
        """Read the vocabulary of a Hugging Face tokenizer (``size``: the model's ``d_vocab``)."""
        probe = tokenizer.convert_ids_to_tokens(
            tokenizer(" a", add_special_tokens=False)["input_ids"]
        )
        marker = next((m for m in MARKERS if probe and probe[0].startswith(m)), None)
        if marker is None:
            raise ValueError(
                f"cannot find the space marker of this tokenizer (' a' -> {probe}); word "
                f"boundaries are defined for SentencePiece (▁) and byte-level BPE (Ġ) tokenizers"
            )
        n = size if size is not None else len(tokenizer)
        strings = tokenizer.convert_ids_to_tokens(list(range(min(n, len(tokenizer)))))
        strings += [""] * (n - len(strings))  # padded embedding rows beyond the tokenizer
        marked = np.array([bool(s) and s.startswith(marker) for s in strings])
        text = np.array([(s or "").removeprefix(marker) for s in strings], dtype=object)
        alpha = np.array([t.isalpha() and t.isascii() for t in text])
        lower = alpha & np.array([t.islower() for t in text])
        return cls(marker=marker, text=text, alpha=alpha, marked=marked, lower=lower)

    def ing(self) -> np.ndarray:
        """``[d_vocab]`` bool: lower-case alphabetic tokens ending in ``ing``."""
        return self.lower & np.array([t.endswith("ing") for t in self.text])


def word_spans(vocab: Vocabulary, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Word membership of every token of a stream.

    Args:
        vocab: the tokenizer's :class:`Vocabulary`.
        ids: ``[n]`` token ids.

    Returns:
        ``(start, length)``, each ``[n]`` int: for a token inside a word, the index of the word's
        first token and the word's length in tokens; ``-1`` and ``0`` for tokens outside words.
    """
    ids = np.asarray(ids)
    alpha, marked = vocab.alpha[ids], vocab.marked[ids]
    cont = np.zeros(len(ids), dtype=bool)
    cont[1:] = alpha[1:] & ~marked[1:] & alpha[:-1]
    first = alpha & ~cont
    if not first.any():
        return np.full(len(ids), -1), np.zeros(len(ids), dtype=int)
    word = np.maximum(np.cumsum(first) - 1, 0)  # the word each token belongs to, if any
    starts = np.flatnonzero(first)
    lengths = np.bincount(word[alpha], minlength=len(starts))  # a word's tokens are contiguous
    return np.where(alpha, starts[word], -1), np.where(alpha, lengths[word], 0)


def _windows(stream: np.ndarray, ends: np.ndarray, width: int, bos: int) -> torch.Tensor:
    """``[len(ends), width + 1]``: BOS, then the ``width`` tokens ending at each end."""
    rows = np.stack([stream[e - width + 1 : e + 1] for e in ends])
    return torch.tensor(np.c_[np.full(len(ends), bos), rows], dtype=torch.long)


def _sample(
    candidates: np.ndarray, n: int, rng: np.random.Generator, what: str, up_to: bool = False
) -> np.ndarray:
    if len(candidates) < n and not up_to:
        raise ValueError(
            f"the corpus has only {len(candidates)} {what}; ask for at most that many per class"
            " (or pass up_to=True to take them all)"
        )
    return np.sort(rng.choice(candidates, size=min(n, len(candidates)), replace=False))


@dataclass(frozen=True)
class WordDataset:
    """A two-class dataset of token windows.

    Attributes:
        tokens: ``[n, width + 1]`` token ids, BOS first.
        labels: ``[n]`` bool: the word class (subjoiner) or "next token ends in -ing".
        words: ``[n]`` the word ending each window (subjoiner) or the next token (``-ing``).
        position: ``[n]`` index in the corpus stream of each window's last token.
    """

    tokens: Tokens
    labels: np.ndarray
    words: list[str]
    position: np.ndarray


def subjoiner_dataset(
    model: Model,
    *,
    corpus: str = "default",
    n_per_class: int = 256,
    width: int = 16,
    word_tokens: int = 4,
    seed: int = 0,
    up_to: bool = False,
) -> WordDataset:
    """Windows ending on a spaced lower-case word of ``word_tokens`` tokens, or of one token.

    Args:
        model: the bridge (its tokenizer and ``d_vocab`` are used).
        corpus: ``"default"`` or a local corpus file (see :func:`stages.load_corpus`).
        n_per_class: examples per class (word class first, then control).
        width: tokens per window before BOS (the paper: 16).
        word_tokens: tokens in the words of the word class (the paper: 4).
        seed: which windows are drawn.
        up_to: a class with fewer candidates than ``n_per_class`` takes all of them (else
            ValueError); the classes may then differ in size.

    Returns:
        A :class:`WordDataset`; ``labels`` is True for the word class.
    """
    if word_tokens < 2 or width < word_tokens:
        raise ValueError(f"need 2 <= word_tokens <= width, got {word_tokens} and {width}")
    tok = model.tokenizer
    vocab = Vocabulary.of(tok, model.cfg.d_vocab)
    stream = np.asarray(corpus_token_ids(model, corpus), dtype=np.int64)
    start, length = word_spans(vocab, stream)
    idx = np.arange(len(stream))
    last = (length > 0) & (start + length - 1 == idx) & (idx >= width - 1)
    spaced = np.zeros(len(stream), dtype=bool)
    spaced[last] = vocab.marked[stream[start[last]]]
    low = vocab.lower[stream]
    candidates = {}
    for label, size in ((True, word_tokens), (False, 1)):
        ends = idx[last & spaced & (length == size)]
        candidates[label] = np.array(
            [e for e in ends if low[e - size + 1 : e + 1].all()], dtype=int
        )
    rng = np.random.default_rng(seed)
    picks = [
        _sample(candidates[True], n_per_class, rng, f"{word_tokens}-token words", up_to),
        _sample(candidates[False], n_per_class, rng, "one-token words", up_to),
    ]
    ends = np.r_[picks[0], picks[1]]
    labels = np.r_[np.ones(len(picks[0]), bool), np.zeros(len(picks[1]), bool)]
    words = [tok.decode(stream[start[e] : e + 1].tolist()).strip() for e in ends]
    return WordDataset(_windows(stream, ends, width, tok.bos_token_id), labels, words, ends)


def ing_dataset(
    model: Model,
    *,
    corpus: str = "default",
    n_per_class: int = 512,
    width: int = 23,
    seed: int = 0,
) -> WordDataset:
    """Windows whose next token ends in ``ing``, and as many whose next token does not.

    Args:
        model: the bridge (its tokenizer and ``d_vocab`` are used).
        corpus: ``"default"`` or a local corpus file.
        n_per_class: examples per class (``-ing`` first).
        width: tokens per window before BOS (the paper's 24-token contexts: 23).
        seed: which windows are drawn.

    Returns:
        A :class:`WordDataset` whose ``words`` are the next tokens' strings.
    """
    tok = model.tokenizer
    vocab = Vocabulary.of(tok, model.cfg.d_vocab)
    ing = vocab.ing()
    stream = np.asarray(corpus_token_ids(model, corpus), dtype=np.int64)
    idx = np.arange(width - 1, len(stream) - 1)
    nxt = ing[stream[idx + 1]]
    rng = np.random.default_rng(seed)
    picks = [
        _sample(idx[nxt], n_per_class, rng, "positions before an -ing token"),
        _sample(idx[~nxt], n_per_class, rng, "other positions"),
    ]
    ends = np.r_[picks[0], picks[1]]
    labels = np.r_[np.ones(n_per_class, bool), np.zeros(n_per_class, bool)]
    words = [str(vocab.text[stream[e + 1]]) for e in ends]
    return WordDataset(_windows(stream, ends, width, tok.bos_token_id), labels, words, ends)
