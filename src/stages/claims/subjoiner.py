"""The first case study's claims (paper section 6.1, Figure 9): subjoiner heads.

Subjoiner heads (Figure 9) are decided on *words*: the corpus repeats some words many times (in
gemma-3-270m's windows 291 four-token words are 118 distinct words), so a word's windows are not
independent of each other. Every mean is over distinct words, each weighted once (the mean of its
windows), and every interval resamples words, each class's words on their own. Where a head is
chosen (the best head of each half of the model, the head whose attention profile is tested),
it is chosen on a random half of each class's words
(:func:`stages.stats.words.selection_half`) and measured on the other half, which the choice
never saw.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from stages import stats
from stages.analyses.subjoiner import OFFSET, effect_of_heads
from stages.depth import HALF, rel_depth
from stages.stats import Verdict
from stages.stats.words import class_effects, selection_half, word_means

FIGURE = "Figure 9"
MIN_CLASS = stats.MIN_UNITS // 2
"""Fewest distinct words of either class a subjoiner interval rests on (two classes, each
resampled on its own: together at least :data:`stages.stats.MIN_UNITS`)."""

EFFECT = (
    "effect: mean attention from a word's last token to its first (3 back), four-token words "
    "minus one-token words"
)


def _too_few(claim: str, labels: np.ndarray, words: np.ndarray, unit: str) -> Verdict | None:
    """``not enough data`` when a class has fewer than ``2 * MIN_CLASS`` distinct words."""
    distinct = [len(set(words[labels == cls])) for cls in (True, False)]
    if min(distinct) >= 2 * MIN_CLASS:
        return None
    why = (
        f"{distinct[0]} distinct four-token and {distinct[1]} one-token words: halves of fewer "
        f"than {MIN_CLASS} words decide nothing"
    )
    return stats.missing(claim, FIGURE, why, unit)


def _word_verdict(
    claim: str, statistic: str, value: float, lo: float, hi: float, kinds: tuple[int, ...], *,
    unit: str, procedure: str, detail: str,
) -> Verdict:  # fmt: skip
    """A verdict on "``value`` > 0" from its interval over words, with the word-count gates.

    The verdict is ``not enough data`` below :data:`stages.stats.MIN_UNITS` words in all, or
    (two classes) below :data:`MIN_CLASS` of either; otherwise :func:`stages.stats.decide`.

    Args:
        claim: the claim, as tested.
        statistic: what was computed (attention weight).
        value: its estimate.
        lo: lower end of its 95% interval.
        hi: upper end.
        kinds: distinct words resampled, per class (one entry when one class is used).
        unit: what the words are (``"held-out words"``, ``"words"``).
        procedure: how the statistic was computed (what was chosen on which words), the
            opening of the rule.
        detail: the numbers behind it.
    """
    n = sum(kinds)
    few = n < stats.MIN_UNITS or (len(kinds) == 2 and min(kinds) < MIN_CLASS)
    decided = "not enough data" if few else stats.decide(lo, hi, 0.0)
    gate = f"below {stats.MIN_UNITS} {unit}" + (
        f" or {MIN_CLASS} of either class" if len(kinds) == 2 else ""
    )
    gate += f" (or fewer than {2 * MIN_CLASS} distinct words of a class in all)"
    rule = f"{procedure}; " + stats.rule_text("the difference", 0.0).replace(
        f"below {stats.MIN_UNITS} units", gate
    )
    return Verdict(claim, FIGURE, statistic, float(value), float(lo), float(hi), rule, n, unit,
                   decided, detail, "paper v1")  # fmt: skip


def _head(layer: int, head: int) -> str:
    return f"L{layer}H{head}"


def _windows(labels: np.ndarray, kinds: tuple[int, int]) -> str:
    return (
        f"{kinds[0]} four-token words ({int(labels.sum())} windows) and {kinds[1]} one-token "
        f"words ({int((~labels).sum())} windows)"
    )


def _offset_columns(attention: pd.DataFrame) -> list[str]:
    """The columns ``"layer.head.3"`` of a subjoiner table (attention at :data:`OFFSET`)."""
    return [c for c in attention.columns if c.endswith(f".{OFFSET}") and c.count(".") == 2]


def _first_minus_later(
    claim: str, statistic: str, values: np.ndarray, labels: np.ndarray, words: np.ndarray,
    seed: int, *, unit: str, how: str, detail: Callable[[np.ndarray, tuple[int, ...]], str],
) -> Verdict:  # fmt: skip
    """A verdict on "the first-half effect minus the later one > 0", resampling words.

    Args:
        values: ``[n, 2]`` attention weights per window: the first-half value, the later one.
        labels: ``[n]`` bool, True for four-token words.
        words: ``[n]`` the word each window ends on.
        how: how the two values were chosen, after the rule's common opening.
        detail: the numbers behind it, from the two effects and the words per class.
        claim: the claim, as tested.
        statistic: what was computed.
        seed: the bootstrap seed.
        unit: what the words are.
    """
    effects, dist, kinds = class_effects(values, labels, words, seed)
    lo, hi = stats.percentile(dist[0] - dist[1])
    return _word_verdict(
        claim, statistic, effects[0] - effects[1], lo, hi, kinds, unit=unit,
        procedure="heads at relative depth layer / (n_layers - 1) <= 0.5 are first-half heads, "
        "the rest later heads; " + how,
        detail=detail(effects, kinds),
    )  # fmt: skip


def subjoiner_head_early(
    attention: pd.DataFrame,
    labels: np.ndarray,
    words: np.ndarray,
    n_layers: int,
    *,
    seed: int = 0,
) -> Verdict:
    """The best first-half subjoiner head beats the best later one on words neither choice saw.

    The paper: "specific heads in the early layers". Heads at relative depth
    ``layer / (n_layers - 1) <= 0.5`` are first-half heads, the rest later heads. On a random
    half of each class's words (:func:`stages.stats.words.selection_half`) the head with the
    largest effect is chosen in each group; on the other half the statistic is the first's
    effect minus the second's, with a percentile interval from a bootstrap over words (each
    class's words resampled on their own, each word with all its windows; the two heads
    paired).

    Args:
        attention: per-window attention at :data:`stages.analyses.subjoiner.OFFSET` of every head
            (columns ``"layer.head.3"``; a :func:`stages.analyses.subjoiner.final_token_attention`
            table or the pack's ``subjoiner`` part), ``[n]`` rows.
        labels: ``[n]`` bool, True for four-token words.
        words: ``[n]`` the word each window ends on.
        n_layers: the model's number of blocks.
        seed: the split and the bootstrap.

    Returns:
        A verdict on "the held-out difference > 0" (attention weight); ``n``: held-out words of
        both classes.
    """
    claim, unit = "subjoiner heads sit in the early layers", "held-out words"
    labels, words = np.asarray(labels, dtype=bool), np.asarray(words, dtype=object)
    if (few := _too_few(claim, labels, words, unit)) is not None:
        return few
    pick = selection_half(labels, words, seed)
    ranked = effect_of_heads(attention.loc[pick, _offset_columns(attention)], labels[pick])
    first = rel_depth(ranked["layer"].to_numpy(), n_layers) <= HALF
    if first.all() or not first.any():
        why = "the attention table holds heads of only one half of the layers"
        return stats.missing(claim, FIGURE, why, unit)
    best = [ranked[first].iloc[0], ranked[~first].iloc[0]]  # ranked: largest effect first
    names = [_head(int(r.layer), int(r["head"])) for r in best]
    columns = [f"{int(r.layer)}.{int(r['head'])}.{OFFSET}" for r in best]
    held = ~pick
    depths = [rel_depth(int(r.layer), n_layers) for r in best]
    return _first_minus_later(
        claim,
        f"held-out effect of the best first-half head ({names[0]}) minus that of the best later "
        f"head ({names[1]}), both chosen on the other half of the words ({EFFECT}; attention "
        "weight; resampling words)",
        attention.loc[held, columns].to_numpy(), labels[held], words[held], seed, unit=unit,
        how="on a random half of each class's words the head with the largest effect is chosen "
        "in each group; on the other half the difference of their effects gets a 95% "
        "percentile interval resampling words",
        detail=lambda effects, kinds: (
            f"first-half head {names[0]} (relative depth {depths[0]:.2f}): held-out effect "
            f"{effects[0]:.4f}; later head {names[1]} (relative depth {depths[1]:.2f}): "
            f"{effects[1]:.4f}; held out: {_windows(labels[held], kinds)}"
        ),
    )  # fmt: skip


def subjoiner_density(
    attention: pd.DataFrame,
    labels: np.ndarray,
    words: np.ndarray,
    n_layers: int,
    *,
    seed: int = 0,
) -> Verdict:
    """First-half heads have a larger mean subjoiner effect than later heads.

    The paper: subjoiner heads occur "at higher density in the first half of the models". The
    statistic is the mean effect over every first-half head (relative depth <= 0.5) minus the
    mean over every later head, with a percentile interval from a bootstrap over words (each
    class's words on their own, each word with all its windows). No head is chosen, so nothing
    needs holding out: every word is used (twice the units of a held-out half).

    Args:
        attention: as :func:`subjoiner_head_early`, ``[n]`` rows.
        labels: ``[n]`` bool, True for four-token words.
        words: ``[n]`` the word each window ends on.
        n_layers: the model's number of blocks.
        seed: the bootstrap.

    Returns:
        A verdict on "the difference > 0" (attention weight); ``n``: words of both classes.
    """
    claim, unit = "subjoiner heads occur at higher density in the first half of the layers", "words"
    labels, words = np.asarray(labels, dtype=bool), np.asarray(words, dtype=object)
    if (few := _too_few(claim, labels, words, unit)) is not None:
        return few
    columns = _offset_columns(attention)
    first = rel_depth(np.array([int(c.split(".")[0]) for c in columns]), n_layers) <= HALF
    if first.all() or not first.any():
        why = "the attention table holds heads of only one half of the layers"
        return stats.missing(claim, FIGURE, why, unit)
    values = attention[columns].to_numpy(dtype=np.float64)
    halves = np.stack([values[:, first].mean(1), values[:, ~first].mean(1)], axis=1)  # [n, 2]
    return _first_minus_later(
        claim,
        f"mean effect of the {int(first.sum())} first-half heads minus that of the "
        f"{int((~first).sum())} later heads ({EFFECT}; attention weight; all words, resampling "
        "words)",
        halves, labels, words, seed, unit=unit,
        how="no head is chosen, so every word is used; a 95% percentile interval resampling "
        "words",
        detail=lambda effects, kinds: (
            f"mean effect of the first-half heads {effects[0]:.4f}, of the later heads "
            f"{effects[1]:.4f}; {_windows(labels, kinds)}"
        ),
    )  # fmt: skip


def subjoiner_profile_peaks_first(
    profiles: pd.DataFrame, labels: np.ndarray, words: np.ndarray, *, seed: int = 0
) -> Verdict:
    """A four-token word's last token attends more to the word's first token than anywhere else.

    The paper (Figure 9): "the final token of the word attends most strongly to the first
    token". Of the profile heads (the pack's few heads whose attention is kept at every
    offset), the one with the largest effect on a random half of each class's words
    (:func:`stages.stats.words.selection_half`) is chosen. On the other half's four-token
    windows, the statistic
    is its mean attention at offset 3 (the word's first token) minus the largest mean at any
    other offset of the window's last 16 positions (offsets 0-15: the last token itself
    included; BOS, 16 back, is not among them). Its interval comes from
    :func:`stages.stats.gap`: a sup-t band over every difference between offset 3 and another
    offset, from a bootstrap over words (each word with all its windows), not a percentile
    bootstrap of a maximum.

    Args:
        profiles: per-window attention of the profile heads at every offset (columns
            ``"layer.head.offset"``: the pack's ``subjoiner_profile`` part), ``[n]`` rows in the
            order of ``labels``.
        labels: ``[n]`` bool, True for four-token words.
        words: ``[n]`` the word each window ends on.
        seed: the split and the bootstrap.

    Returns:
        A verdict on "the gap > 0" (attention weight); ``n``: held-out four-token words.
    """
    claim = "the final token of a four-token word attends most to the word's first token"
    unit = "held-out four-token words"
    labels, words = np.asarray(labels, dtype=bool), np.asarray(words, dtype=object)
    if (few := _too_few(claim, labels, words, unit)) is not None:
        return few
    pick = selection_half(labels, words, seed)
    best = effect_of_heads(profiles.loc[pick, _offset_columns(profiles)], labels[pick]).iloc[0]
    layer, head = int(best.layer), int(best["head"])
    columns = sorted(
        (c for c in profiles.columns if c.startswith(f"{layer}.{head}.") and c.count(".") == 2),
        key=lambda c: int(c.rsplit(".", 1)[1]),
    )
    offsets = [int(c.rsplit(".", 1)[1]) for c in columns]
    held = ~pick & labels
    means, dist, n4 = word_means(profiles.loc[held, columns].to_numpy(), words[held], seed)
    at = offsets.index(OFFSET)
    others = [i for i in range(len(offsets)) if i != at]
    value, lo, hi = stats.gap(means, dist, [at], others)
    runner = others[int(np.argmax(means[others]))]
    heads = sorted({c.rsplit(".", 1)[0] for c in _offset_columns(profiles)})
    return _word_verdict(
        claim,
        f"held-out mean attention of head {_head(layer, head)} from a four-token word's last "
        f"token to its first ({OFFSET} back) minus the largest mean attention at any other of "
        f"offsets {offsets[0]}-{offsets[-1]} (attention weight; resampling words)",
        value, lo, hi, (n4,),
        unit=unit,
        procedure=(
            "of the profile heads, the one with the largest effect on a random half of each "
            "class's words is chosen; on the other half's four-token windows its mean "
            f"attention at offset {OFFSET} minus the largest at any other offset gets the "
            "interval of a 95% sup-t band over every difference between offset "
            f"{OFFSET} and another offset (resampling words)"
        ),
        detail=(
            f"profile heads {', '.join(_head(*map(int, h.split('.'))) for h in heads)}: "
            "pre-selected on all windows, the held-out ones included, by their effect at "
            f"offset {OFFSET} (not by the shape of their profile); chosen on the selection "
            f"half: {_head(layer, head)}; held out: {n4} four-token words ({int(held.sum())} "
            f"windows), mean attention {means[at]:.4f} at offset {OFFSET}, next highest "
            f"{means[runner]:.4f} at offset {offsets[runner]}"
        ),
    )  # fmt: skip


def subjoiner_claims(
    attention: pd.DataFrame,
    profiles: pd.DataFrame,
    labels: np.ndarray,
    words: np.ndarray,
    n_layers: int,
    *,
    seed: int = 0,
) -> list[Verdict]:
    """Case study 1's claims, in this order: early heads, density, the attention profile.

    :func:`subjoiner_head_early`, :func:`subjoiner_density`, :func:`subjoiner_profile_peaks_first`.

    Args:
        attention: the pack's ``subjoiner`` part (attention at offset 3, every head), ``[n]``.
        profiles: the pack's ``subjoiner_profile`` part (the profile heads, every offset), the
            same ``[n]`` windows in the same order.
        labels: ``[n]`` bool, True for four-token words.
        words: ``[n]`` the word each window ends on.
        n_layers: the model's number of blocks.
        seed: the split and the bootstrap.
    """
    return [
        subjoiner_head_early(attention, labels, words, n_layers, seed=seed),
        subjoiner_density(attention, labels, words, n_layers, seed=seed),
        subjoiner_profile_peaks_first(profiles, labels, words, seed=seed),
    ]
