r"""A LAMBADA-style cloze built from the corpus: windows that end on a word named earlier.

LAMBADA (Paperno et al., 2016) asks a model for the last word of a passage, chosen so that the
word can be recovered from the passage. Its data cannot be fetched offline, so this module builds
the same kind of task from the shipped corpus (or any local corpus), with the tokenizer of the
model under test. Every choice below is fixed, and :meth:`ClozeSet.describe` states them with
the counts of one build.

**Stream.** The corpus is tokenized and packed exactly as :func:`stages.load_corpus` does
(:func:`stages.text.corpus.corpus_token_ids`: documents without special tokens, joined by a
paragraph break), once. As in ``load_corpus``, a window may run across the break between two
documents.

**Words.** Words are those of :mod:`stages.text.words`: a maximal run of alphabetic (ASCII
letters) tokens in which every token after the first has no space marker (``Ġ`` for byte-level
BPE, ``▁`` for SentencePiece, found by tokenizing ``" a"``). A word's surface form is its
tokens' strings joined without the marker; two words are *the same* when their surface forms
are equal ignoring case (``Whale`` = ``whale``, ``whales`` != ``whale``).

**Target words.** Every word whose last token lies at least ``context - 2`` tokens into the
stream is a *candidate ending*. It is rejected by the first of these rules it fails:

1. *whole word*: its first token carries the space marker (it follows a space), and the next
   token of the stream either carries the marker or its decoded text starts with whitespace or
   one of ``. , ; : ! ? " ) ] } ” — –`` (so ``wouldn`` of ``wouldn't`` and ``sea`` of
   ``sea-port`` are not targets);
2. *length*: at least ``min_letters`` letters (default 4);
3. *stopword*: not in :data:`STOPWORDS` (a fixed list of English function words);
4. *tokens*: at most :data:`MAX_TOKENS` (4) tokens;
5. *recoverable*: the same word occurs earlier, wholly inside the window that ends on it
   (LAMBADA's property: the answer is in the context).

**Windows.** A window is BOS followed by the ``context - 1`` stream tokens that end on the
target's last token, so every row has ``context`` tokens, starts with BOS and ends with its
target word, whose ``n_target`` tokens are the row's last ones. The eligible endings are put in
the order of ``numpy.random.default_rng(seed).permutation`` and taken greedily, skipping any
window that would share a stream token with one already taken, until ``n`` are taken (or the
endings run out: then fewer). The set is returned in the order drawn, so its first ``k``
windows are those of ``n = k``: any prefix is a random sample (a results pack built in rounds
holds a prefix). The same arguments give the
same set, and the windows of a smaller ``n`` are among those of a larger one.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from stages.shapes import Tokens
from stages.text.corpus import corpus_token_ids
from stages.text.sources import _get_tokenizer
from stages.text.words import Vocabulary, word_spans

MAX_TOKENS = 4
"""The most tokens a target word may have (and the positions the cloze analysis scores)."""

BOUNDARY = frozenset('.,;:!?")]}”—–')
"""Characters that may follow a target word directly (whitespace may too)."""

STOPWORDS = frozenset(
    """
    a about above after again against all also am an and any are as at be because been before
    being below between both but by can could did do does doing down during each either even
    ever every few for from further had has have having he her here hers herself him himself his
    how however if in into is it its itself just may me might more most much must my myself
    neither never no nor not now of off on once only or other ought our ours ourselves out over
    own same shall she should since so some such than that the their theirs them themselves then
    there these they this those though through thus till to too under until unto up upon us very
    was we were what when where whether which while who whom whose why will with within without
    would yet you your yours yourself yourselves
    """.split()
)
"""Function words never used as targets (compared in lower case)."""

RULES = ("whole word", "length", "stopword", "tokens", "recoverable")
"""The rules a candidate ending must pass, in the order they are applied."""


@dataclass(frozen=True)
class ClozeSet:
    """Cloze windows: each row ends with a target word that occurs earlier in the row.

    Attributes:
        tokens: ``[n, context]`` token ids; column 0 is BOS.
        n_target: ``[n]`` int, tokens of each target word, ``1..MAX_TOKENS``: the target is
            ``tokens[i, -n_target[i]:]``.
        words: ``[n]`` the target words as decoded text.
        position: ``[n]`` index in the corpus stream of each window's last token.
        candidates: candidate endings (words of the stream whose window fits).
        rejected: per rule of :data:`RULES`, the candidate endings it rejected.
        eligible: candidate endings that pass every rule.
        corpus: the corpus the windows come from.
        stream_tokens: tokens in the corpus stream.
        min_letters: the length rule's minimum.
        seed: the sampling seed.
        requested: the ``n`` asked for.
    """

    tokens: Tokens
    n_target: np.ndarray
    words: list[str]
    position: np.ndarray
    candidates: int
    rejected: dict[str, int]
    eligible: int
    corpus: str
    stream_tokens: int
    min_letters: int
    seed: int
    requested: int

    def __len__(self) -> int:
        return len(self.words)

    def describe(self) -> str:
        """One paragraph: how the windows were built, and the counts of this build."""
        n, context = self.tokens.shape
        sizes = np.bincount(self.n_target, minlength=MAX_TOKENS + 1)[1:]
        shares = ", ".join(
            f"{100 * self.rejected[rule] / max(1, self.candidates):.1f}% {why}"
            for rule, why in zip(RULES, _REASONS, strict=True)
        )
        by_size = ", ".join(f"{int(k):,} of {t}" for t, k in enumerate(sizes, start=1))
        return (
            f"Cloze windows from the corpus {self.corpus!r} ({self.stream_tokens:,} tokens): "
            f"each is BOS followed by {context - 1} consecutive corpus tokens that end on a target "
            f"word which occurs earlier in the window, and the model must produce the whole word. "
            f"Of {self.candidates:,} candidate endings (the words of the corpus), {shares}; "
            f"{self.eligible:,} qualified. {n:,} windows (of {self.requested:,} asked for) were "
            f"drawn from them with seed {self.seed} so that no two share a token. Their targets "
            f"have 1 to {MAX_TOKENS} tokens: {by_size} tokens."
        )


_REASONS = (
    "were not whole words (not after a space, or followed by a letter, digit, apostrophe or "
    "hyphen)",
    "had too few letters",
    "were stopwords",
    f"had more than {MAX_TOKENS} tokens",
    "did not occur earlier in their window",
)


def _ends_at_boundary(tok: Any, vocab: Vocabulary, following: np.ndarray) -> np.ndarray:
    """``[k]`` bool: each following token starts with the space marker, whitespace or BOUNDARY."""
    ids, inverse = np.unique(following, return_inverse=True)
    texts = tok.batch_decode([[int(i)] for i in ids])
    ok = np.array([bool(t) and (t[0].isspace() or t[0] in BOUNDARY) for t in texts], dtype=bool)
    return (vocab.marked[ids] | ok)[inverse]


def _previous_same(keys: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """``[w]``: the start of the previous word with the same key, or -1 (words in stream order)."""
    order = np.lexsort((starts, keys))
    prev = np.full(len(keys), -1, dtype=np.int64)
    same = keys[order[1:]] == keys[order[:-1]]
    prev[order[1:][same]] = starts[order[:-1][same]]
    return prev


def _draw(eligible: np.ndarray, width: int, n: int, seed: int) -> np.ndarray:
    """Ends of up to ``n`` non-overlapping windows of ``width`` tokens, in the order drawn."""
    taken: list[int] = []  # sorted, to find neighbours
    drawn: list[int] = []
    for end in np.random.default_rng(seed).permutation(eligible).tolist():
        k = bisect.bisect_left(taken, end)
        clear_left = k == 0 or end - taken[k - 1] >= width
        clear_right = k == len(taken) or taken[k] - end >= width
        if clear_left and clear_right:
            taken.insert(k, end)
            drawn.append(end)
            if len(drawn) == n:
                break
    return np.array(drawn, dtype=np.int64)


def cloze_set(
    model_or_tokenizer: Any,
    *,
    corpus: str = "default",
    context: int = 96,
    n: int = 1024,
    min_letters: int = 4,
    seed: int = 0,
) -> ClozeSet:
    """Build up to ``n`` cloze windows from ``corpus`` (the construction is the module's).

    Args:
        model_or_tokenizer: a ``TransformerBridge`` (its ``.tokenizer`` is used) or a Hugging
            Face tokenizer with a BOS token and a space marker (``Ġ`` or ``▁``).
        corpus: ``"default"`` or a local corpus file (see :func:`stages.load_corpus`).
        context: tokens per window, BOS included (at least ``MAX_TOKENS + 4``).
        n: windows wanted.
        min_letters: fewest letters of a target word.
        seed: which windows are drawn.

    Returns:
        A :class:`ClozeSet` of ``min(n, non-overlapping eligible windows)`` rows.

    Raises:
        ValueError: a bad argument, a tokenizer without BOS token or space marker, or a corpus
            with no eligible window.
    """
    for name, value, least in (
        ("context", context, MAX_TOKENS + 4), ("n", n, 1), ("min_letters", min_letters, 1),
        ("seed", seed, 0),
    ):  # fmt: skip
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ValueError(f"{name} must be an integer >= {least}, got {value!r}")
    tok = _get_tokenizer(model_or_tokenizer)
    if tok.bos_token_id is None:
        raise ValueError("the tokenizer has no BOS token; every cloze window starts with BOS")
    vocab = Vocabulary.of(tok)
    stream = np.asarray(corpus_token_ids(tok, corpus), dtype=np.int64)
    width = context - 1

    start, length = word_spans(vocab, stream)
    first = np.flatnonzero((length > 0) & (start == np.arange(len(stream))))  # word starts
    sizes = length[first]
    ends = first + sizes - 1
    letters = np.r_[0, np.cumsum(_text_lengths(vocab)[stream])]
    long = letters[ends + 1] - letters[first] >= min_letters
    # only a word of the same surface (so the same length) can make a long word recoverable
    surfaces = [
        "".join(vocab.text[stream[s : e + 1]]).lower()
        for s, e in zip(first[long].tolist(), ends[long].tolist(), strict=True)
    ]
    index: dict[str, int] = {}
    keys = np.array([index.setdefault(w, len(index)) for w in surfaces], dtype=np.int64)
    stop = np.zeros(len(first), dtype=bool)
    stop[long] = [w in STOPWORDS for w in surfaces]
    prev = np.full(len(first), -1, dtype=np.int64)
    prev[long] = _previous_same(keys, first[long])

    fits = ends >= width - 1
    following = stream[np.minimum(ends + 1, len(stream) - 1)]
    whole = vocab.marked[stream[first]] & (ends + 1 < len(stream))
    whole &= _ends_at_boundary(tok, vocab, following)
    tests = {
        "whole word": whole,
        "length": long,
        "stopword": ~stop,
        "tokens": sizes <= MAX_TOKENS,
        "recoverable": prev >= ends - width + 1,
    }
    alive = fits.copy()
    rejected = {}
    for rule in RULES:
        rejected[rule] = int((alive & ~tests[rule]).sum())
        alive &= tests[rule]
    eligible = ends[alive]
    if not len(eligible):
        raise ValueError(f"corpus {corpus!r} has no cloze window of {context} tokens")
    chosen = _draw(eligible, width, n, seed)
    n_target = sizes[np.searchsorted(ends, chosen)]
    rows = stream[chosen[:, None] - width + 1 + np.arange(width)]
    tokens = torch.from_numpy(np.c_[np.full(len(chosen), tok.bos_token_id), rows])
    words = [tok.decode(r[-k:].tolist()).strip() for r, k in zip(rows, n_target, strict=True)]
    return ClozeSet(
        tokens=tokens.long(),
        n_target=n_target.astype(np.int64),
        words=words,
        position=chosen,
        candidates=int(fits.sum()),
        rejected=rejected,
        eligible=len(eligible),
        corpus=str(corpus),
        stream_tokens=len(stream),
        min_letters=min_letters,
        seed=seed,
        requested=n,
    )


def _text_lengths(vocab: Vocabulary) -> np.ndarray:
    """``[d_vocab]`` letters of each alphabetic token (0 for the others)."""
    return np.where(vocab.alpha, [len(t) for t in vocab.text], 0)
