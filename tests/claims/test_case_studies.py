"""The case studies' claims (paper section 6) on synthetic windows whose verdict is known.

Subjoiner heads: per-window attention tables with a planted effect (four-token minus one-token
words) in chosen heads, and planted attention profiles; every word sits in several windows, so
the bootstrap resamples words. Probes: the model's log P(-ing) probe is fitted and scored on the
probes' own splits, and every paired comparison gives the planted verdict.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from stages.analyses.probes import (
    LOGP_COLUMN,
    LOGP_PROBE,
    Probes,
    neuron_activations,
    probe_accuracies,
    split_windows,
)
from stages.claims import subjoiner
from stages.claims.probes import probe_claims
from stages.stats import Verdict
from stages.stats.words import selection_half

L = 12  # first-half heads: layers 0-5 (relative depth <= 0.5), later heads: layers 6-11
EXPECTED = {1: "holds", -1: "does not hold", 0: "unclear"}
N_WORDS = 64  # distinct words per class
OFFSETS = 16


def _windows(n_words: int, per_word: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """``labels [n]``, ``words [n]``: ``n_words`` words per class, each in ``per_word`` windows."""
    names = [f"four{i}" for i in range(n_words)] + [f"one{i}" for i in range(n_words)]
    words = np.repeat(np.array(names, dtype=object), per_word)
    labels = np.repeat(np.r_[np.ones(n_words, bool), np.zeros(n_words, bool)], per_word)
    return labels, words


def _noise(words: np.ndarray, rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Window noise plus a shared offset per word (a word's windows are alike)."""
    _, index = np.unique(words.astype(str), return_inverse=True)
    per_word = rng.normal(0, 0.03, (index.max() + 1, *shape[1:]))
    return rng.normal(0, 0.05, shape) + per_word[index]


def _attention(
    labels: np.ndarray, words: np.ndarray, effects: dict[tuple[int, int], object], seed: int = 0
) -> pd.DataFrame:
    """A ``subjoiner`` part: attention 3 back of 2 heads per layer, ``[n]`` windows.

    ``effects[(layer, head)]`` (a float, or ``[n]`` per window) is added to the four-token
    windows of that head.
    """
    rng = np.random.default_rng(seed)
    columns = {}
    for layer in range(L):
        for head in range(2):
            planted = np.asarray(effects.get((layer, head), 0.0)) * labels
            columns[f"{layer}.{head}.3"] = 0.1 + planted + _noise(words, rng, (len(labels),))
    return pd.DataFrame(columns).assign(seq_len=17, label=labels)


def _early(e: int, n_words: int = N_WORDS) -> Verdict:
    labels, words = _windows(n_words)
    planted = {1: {(1, 0): 0.4, (8, 0): 0.1}, -1: {(1, 0): 0.1, (8, 0): 0.4},
               0: {(1, 0): 0.3, (8, 0): 0.3}}[e]  # fmt: skip
    return subjoiner.subjoiner_head_early(_attention(labels, words, planted), labels, words, L)


def _density(e: int, n_words: int = N_WORDS) -> Verdict:
    labels, words = _windows(n_words)
    later = {1: False, -1: True, 0: None}[e]
    planted = {(layer, head): 0.05 for layer in range(L) for head in range(2)
               if e and (layer >= L // 2) == later}  # fmt: skip
    return subjoiner.subjoiner_density(_attention(labels, words, planted), labels, words, L)


def _profile(
    labels: np.ndarray, words: np.ndarray, four: dict[str, np.ndarray], seed: int = 0
) -> pd.DataFrame:
    """A ``subjoiner_profile`` part: the heads named by ``four``'s keys, offsets 0-15.

    Args:
        labels: ``[n]`` bool, True for four-token words.
        words: ``[n]`` the word of each window.
        seed: the noise.
        four: per head, the mean attention of the four-token windows at each offset: ``[16]``,
            or ``[n, 16]`` per window; one-token windows get 0.03 everywhere.
    """
    rng = np.random.default_rng(seed)
    columns = {}
    for head, means in four.items():
        rows = np.where(labels[:, None], np.broadcast_to(means, (len(labels), OFFSETS)), 0.03)
        values = rows + _noise(words, rng, (len(labels), OFFSETS))
        columns |= {f"{head}.{k}": values[:, k] for k in range(OFFSETS)}
    return pd.DataFrame(columns).assign(seq_len=17, label=labels)


def _peaked(peaks: dict[int, float]) -> np.ndarray:
    """``[16]`` attention 0.03 at every offset but those of ``peaks``."""
    out = np.full(OFFSETS, 0.03)
    out[list(peaks)] = list(peaks.values())
    return out


def _peaks_first(e: int, n_words: int = N_WORDS) -> Verdict:
    labels, words = _windows(n_words)
    shape = {1: {3: 0.5}, -1: {3: 0.3, 1: 0.5}, 0: {3: 0.4, 1: 0.4}}[e]
    four = {"2.0": _peaked(shape), "9.1": _peaked({3: 0.1})}
    return subjoiner.subjoiner_profile_peaks_first(_profile(labels, words, four), labels, words)


SUBJOINER: dict[str, Callable[..., Verdict]] = {
    "early": _early,
    "density": _density,
    "profile": _peaks_first,
}


@pytest.mark.parametrize("effect", [1, -1, 0])
@pytest.mark.parametrize("claim", list(SUBJOINER))
def test_subjoiner_claims_give_the_planted_verdict(claim, effect):
    v = SUBJOINER[claim](effect)
    assert v.verdict == EXPECTED[effect], (v.statistic, v.value, v.lo, v.hi, v.detail)
    assert v.lo < v.value < v.hi and v.source == "paper v1" and v.figure == "Figure 9"
    assert v.n >= 30 and "resampling words" in v.statistic


@pytest.mark.parametrize("claim", list(SUBJOINER))
def test_subjoiner_claims_count_distinct_words(claim):
    v = SUBJOINER[claim](1)
    held = {"early": 2 * N_WORDS // 2, "density": 2 * N_WORDS, "profile": N_WORDS // 2}[claim]
    assert v.n == held, v  # words, not their 3 windows each
    assert v.unit == {"early": "held-out words", "density": "words",
                      "profile": "held-out four-token words"}[claim]  # fmt: skip


@pytest.mark.parametrize("claim", list(SUBJOINER))
def test_too_few_words_are_not_enough_data(claim):
    v = SUBJOINER[claim](1, n_words=20)
    assert v.verdict == "not enough data" and "20 distinct four-token" in v.detail, v


def test_a_repeated_word_counts_once():
    n = 256
    labels = np.r_[np.ones(n // 2, bool), np.zeros(n // 2, bool)]
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"1.0.3": np.where(labels, 0.5, 0.1) + 0.01 * rng.standard_normal(n),
                          "9.0.3": 0.1 + 0.01 * rng.standard_normal(n)})  # fmt: skip
    words = np.array(["harpooneer"] * (n // 2) + [f"w{i}" for i in range(n // 2)], dtype=object)
    for f in (subjoiner.subjoiner_head_early, subjoiner.subjoiner_density):
        v = f(frame, labels, words, L)
        assert v.verdict == "not enough data" and "1 distinct four-token" in v.detail, v


def test_the_heads_are_chosen_on_the_selection_half_only():
    # On the selection half the best first-half head is L0H0 and the best later one L9H0; on
    # the held-out half L1H0 is far stronger. Chosen on the selection half (as it must be),
    # L0H0 does nothing held out and L9H0 wins: does not hold. A choice that saw the held-out
    # words (all windows, or the held-out half) takes L1H0 and the claim would hold.
    labels, words = _windows(N_WORDS)
    pick = selection_half(labels, words)
    planted = {(0, 0): np.where(pick, 0.3, 0.0), (1, 0): np.where(pick, 0.0, 0.6), (9, 0): 0.2}
    frame = _attention(labels, words, planted)
    v = subjoiner.subjoiner_head_early(frame, labels, words, L)
    assert "(L0H0)" in v.statistic and "(L9H0)" in v.statistic, v.statistic
    assert v.verdict == "does not hold", v


def test_the_profile_head_is_chosen_on_the_selection_half_only():
    # L2H0 has the larger effect on the selection half, L9H1 on the held-out half; held out,
    # L2H0 peaks at offset 1 (does not hold) while L9H1 peaks at offset 3 (would hold).
    labels, words = _windows(N_WORDS)
    pick = selection_half(labels, words)[:, None]
    four = {"2.0": np.where(pick, _peaked({3: 0.6}), _peaked({3: 0.3, 1: 0.5})),
            "9.1": np.where(pick, _peaked({3: 0.2}), _peaked({3: 0.9}))}  # fmt: skip
    v = subjoiner.subjoiner_profile_peaks_first(_profile(labels, words, four), labels, words)
    assert "head L2H0" in v.statistic and "pre-selected on all windows" in v.detail, v
    assert v.verdict == "does not hold", v


def test_subjoiner_claims_come_in_order():
    labels, words = _windows(N_WORDS)
    frame = _attention(labels, words, {(1, 0): 0.4})
    profiles = _profile(labels, words, {"1.0": _peaked({3: 0.5})})
    out = subjoiner.subjoiner_claims(frame, profiles, labels, words, L)
    assert [v.claim for v in out] == [
        "subjoiner heads sit in the early layers",
        "subjoiner heads occur at higher density in the first half of the layers",
        "the final token of a four-token word attends most to the word's first token",
    ]
    assert [v.verdict for v in out] == ["holds"] * 3, [(v.value, v.lo, v.hi) for v in out]


# Probes ------------------------------------------------------------------------------------

ROWS = [("single", "all"), ("top-k", "all"), ("model", "model"), (LOGP_PROBE, "model"),
        ("single", "suppression"), ("single", "prediction")]  # fmt: skip


def _probes(accuracies: dict[str, float], n: int, seed: int = 0) -> Probes:
    """Chosen probes right on a share ``accuracies[probe/group]`` of ``n`` test windows each.

    Each probe's answers are drawn independently of the others' (0.7 unless given).
    """
    rng = np.random.default_rng(seed)
    correct = np.stack([rng.random(n) < accuracies.get(f"{p}/{g}", 0.7) for p, g in ROWS], 1)
    table = pd.DataFrame(
        [{"probe": p, "group": g, "k": 1, "neuron": "1.2", "chosen": True,
          "accuracy": correct[:, i].mean()} for i, (p, g) in enumerate(ROWS)]
    )  # fmt: skip
    return Probes(table, correct)


WINNERS = {
    0: ("top-k/all", "single/all"),
    1: ("top-k/all", "model/model"),
    2: ("top-k/all", f"{LOGP_PROBE}/model"),
    3: ("single/suppression", "single/prediction"),
}


@pytest.mark.parametrize("effect", [1, -1, 0])
@pytest.mark.parametrize("index", list(WINNERS))
def test_probe_claims_give_the_planted_verdict(index, effect):
    winner, loser = WINNERS[index]
    v = probe_claims(_probes({winner: 0.7 + 0.2 * effect, loser: 0.7}, 256))[index]
    assert v.verdict == EXPECTED[effect], (v.claim, v.value, v.lo, v.hi)
    assert v.n == 256 and v.unit == "test windows" and v.lo < v.hi
    assert probe_claims(_probes({winner: 0.9}, 6))[index].verdict == (
        "not enough data"
    )


def test_the_model_comparisons_say_whose_they_are():
    paper, book = probe_claims(_probes({}, 256))[1:3]
    assert "model's own top-1" in paper.claim and paper.source == "paper v1"
    assert "log P(-ing)" in book.claim and book.source == "this book"


def _activations(n: int, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    labels = rng.random(n) < 0.5
    names = [f"5.{j}" for j in range(6)]
    acts = pd.DataFrame({name: labels * (0.4 if j < 4 else 0.0) + rng.standard_normal(n)
                         for j, name in enumerate(names)})  # fmt: skip
    acts["model_yes"] = (rng.random(n) < 0.6).astype(float)
    acts[LOGP_COLUMN] = np.log(rng.uniform(0.01, 0.3, n)) + 1.0 * labels
    neurons = pd.DataFrame({"layer": 5, "neuron": range(6),
                            "cls": ["prediction"] * 3 + ["suppression"] * 3})  # fmt: skip
    return acts, labels, neurons


def test_probes_are_chosen_on_validation_and_scored_on_test():
    n = 2000
    acts, labels, neurons = _activations(n)
    probes = probe_accuracies(acts, labels, neurons, seed=0)
    t = probes.table
    assert set(t["group"]) == {"prediction", "suppression", "all", "model"}
    assert (t.groupby(["probe", "group"])["chosen"].sum() == 1).all()
    assert t["n_test"].eq(n // 4).all() and probes.correct.shape == (n // 4, len(t))
    ensemble = probes.chosen("top-k", "all")
    assert ensemble.k >= 2  # four weak neurons beat one
    single = probes.chosen("single", "all")
    assert single.val_accuracy == t[(t.probe == "single") & (t.group == "all")].val_accuracy.max()
    verdicts = probe_claims(probes)
    assert len(verdicts) == 4 and verdicts[0].verdict == "holds", verdicts[0]


def test_the_logp_probe_uses_the_neuron_probes_splits():
    acts, labels, neurons = _activations(2000)
    probes = probe_accuracies(acts, labels, neurons, seed=3)
    train, val, test = split_windows(labels, 3)
    x = acts[[LOGP_COLUMN]].to_numpy()
    direct = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, random_state=3))
    direct.fit(x[train], labels[train])
    row = probes.chosen(LOGP_PROBE, "model")
    np.testing.assert_array_equal(probes.correct_of(row), direct.predict(x[test]) == labels[test])
    assert row.val_accuracy == (direct.predict(x[val]) == labels[val]).mean()
    assert row.n_test == probes.chosen("top-k", "all").n_test == len(test)
    assert 0.6 < row.accuracy < 1.0  # a one-feature probe on a noisy log-probability


def test_rows_without_the_logp_column_say_what_to_rebuild():
    acts, labels, neurons = _activations(800)
    probes = probe_accuracies(acts.drop(columns=LOGP_COLUMN), labels, neurons)
    assert LOGP_PROBE not in set(probes.table["probe"])
    v = probe_claims(probes)[2]
    assert v.verdict == "not enough data" and v.source == "this book", v
    assert LOGP_COLUMN in v.detail and "--parts ing" in v.detail, v.detail


def test_model_logp_is_the_log_mass_of_the_masked_tokens(tiny_models, tiny_tokens):
    bridge, _ = tiny_models("gemma3")
    neurons = pd.DataFrame({"layer": [1], "neuron": [0]})
    mask = np.zeros(bridge.cfg.d_vocab, bool)
    mask[[10, 11, 12]] = True
    acts = neuron_activations(bridge, tiny_tokens, neurons, mask, progress=False, cache=False)
    with torch.no_grad():
        logits = bridge(tiny_tokens, use_cache=False)[:, -1].double()
    want = torch.softmax(logits, -1)[:, torch.as_tensor(mask)].sum(-1).log()
    assert acts[LOGP_COLUMN].dtype == np.float64
    np.testing.assert_allclose(acts[LOGP_COLUMN], want.numpy(), rtol=1e-10)
    yes = np.isin(logits.argmax(-1).numpy(), np.flatnonzero(mask)).astype(float)
    np.testing.assert_array_equal(acts["model_yes"], yes)
