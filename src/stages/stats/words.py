"""Bootstrap over words: when windows repeat words, the word is the unit that varies.

A corpus repeats some words dozens of times (gemma-3-270m's held-out four-token windows of the
subjoiner case study: one word, "harpooneers", in 54 of 128), so each distinct word is weighted
once (the mean over its windows) and resampled as one unit; two classes of words are resampled
apart; and a choice made on words (which head is best) is tested on words it never saw
(:func:`selection_half`).
"""

from __future__ import annotations

import numpy as np

from stages.stats.bootstrap import bootstrap

__all__ = ["by_word", "class_effects", "selection_half", "word_means"]


def selection_half(labels: np.ndarray, words: np.ndarray, seed: int = 0) -> np.ndarray:
    """``[n]`` bool: a random half of each class's words (True: used to choose; False: to test).

    Every window of a word falls on the same side, so the test half holds only words the choice
    never saw.
    """
    labels, words = np.asarray(labels, dtype=bool), np.asarray(words, dtype=object)
    rng = np.random.default_rng(seed)
    chosen = np.zeros(len(labels), dtype=bool)
    for cls in (True, False):
        kinds = sorted(set(words[labels == cls]))
        picked = set(rng.permutation(np.array(kinds, dtype=object))[: len(kinds) // 2])
        chosen |= (labels == cls) & np.isin(words, list(picked))
    return chosen


def by_word(values: np.ndarray, words: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per distinct word: the sums of ``values`` over its windows, and their number.

    Args:
        values: ``[n, k]`` per-window values of ``k`` quantities.
        words: ``[n]`` the word of each window.

    Returns:
        ``(sums, counts)``: ``[k, n_words]`` and ``[n_words]`` (words in sorted order).
    """
    _, index = np.unique(np.asarray(words).astype(str), return_inverse=True)
    sums = np.stack([np.bincount(index, weights=column) for column in values.T])
    return sums, np.bincount(index).astype(float)


def word_means(
    values: np.ndarray, words: np.ndarray, seed: int
) -> tuple[np.ndarray, np.ndarray, int]:
    """Means over words of ``k`` quantities, each word weighted once, with their bootstrap.

    Each distinct word contributes the mean over its windows, whatever their number: the
    corpus repeats some words dozens of times (gemma-3-270m's held-out four-token windows: one
    word, "harpooneers", in 54 of 128), and weighting windows would let them decide.

    Args:
        values: ``[n, k]`` per-window values (attention weights).
        words: ``[n]`` the word of each window.
        seed: the bootstrap seed.

    Returns:
        ``(means, distribution, n_words)``: ``[k]``, ``[k, n_boot]`` (paired over the ``k``
        quantities: one resample of words serves all) and the distinct words resampled.
    """
    sums, counts = by_word(np.asarray(values, dtype=np.float64), words)
    means, dist = bootstrap(sums / counts, seed=seed)
    return means, dist, len(counts)


def class_effects(
    values: np.ndarray, labels: np.ndarray, words: np.ndarray, seed: int
) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """Class True minus class False of ``k`` word means, each class's words resampled apart.

    Args:
        values: ``[n, k]`` per-window values (attention weights).
        labels: ``[n]`` bool, the class of each window (the subjoiner claims: True for
            four-token words, False for one-token words).
        words: ``[n]`` the word of each window.
        seed: the bootstrap seed (``seed`` for class True, ``seed + 1`` for class False).

    Returns:
        ``(effects, distribution, (words_true, words_false))``: ``[k]``, ``[k, n_boot]`` and the
        distinct words of each class.
    """
    values, words = np.asarray(values, dtype=np.float64), np.asarray(words, dtype=object)
    parts = [word_means(values[labels == cls], words[labels == cls], seed + k)
             for k, cls in enumerate((True, False))]  # fmt: skip
    (m4, d4, n4), (m1, d1, n1) = parts
    return m4 - m1, d4 - d1, (n4, n1)
