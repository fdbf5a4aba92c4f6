"""Cloze accuracy against greedy top-1 read from full logits of surgically edited HF copies."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from stages.analyses.cloze import cloze_sums, cloze_table, score_positions
from stages.engine.plans import drop, swap
from stages.text.cloze import MAX_TOKENS, RULES, ClozeSet
from tests.reference import reference_logits, surgery

SEQ_LEN = 16
N_TARGET = np.array([1, 2, 3, 4, 2, 3, 1, 4, 3, 2])


def _greedy(model, rows: torch.Tensor, n_target: np.ndarray) -> torch.Tensor:
    """``rows`` with their last ``n_target`` tokens greedily decoded by the HF ``model``."""
    rows = rows.clone()
    with torch.no_grad():
        for t in range(SEQ_LEN - MAX_TOKENS, SEQ_LEN):
            logits = model(rows, use_cache=False).logits
            decoded = torch.from_numpy(SEQ_LEN - n_target <= t)  # rows whose target holds t
            rows[decoded, t] = logits[decoded, t - 1].argmax(-1)
    return rows


def _cloze(hf, bos: int, vocab: int) -> ClozeSet:
    """Windows with targets of 1-4 tokens that the reference model does and does not produce.

    Random tokens; rows 0-3 end with the unperturbed model's own greedy continuation, rows 4-5
    with that of the model without block 1; the others' random targets are almost never produced.
    """
    n = len(N_TARGET)
    tokens = torch.randint(3, vocab, (n, SEQ_LEN), generator=torch.Generator().manual_seed(0))
    tokens[:, 0] = bos
    tokens[:4] = _greedy(hf, tokens[:4], N_TARGET[:4])
    tokens[4:6] = _greedy(surgery(hf, ("drop", 1)), tokens[4:6], N_TARGET[4:6])
    return ClozeSet(
        tokens=tokens, n_target=N_TARGET, words=[""] * n, position=np.arange(n),
        candidates=n, rejected=dict.fromkeys(RULES, 0), eligible=n, corpus="test",
        stream_tokens=0, min_letters=1, seed=0, requested=n,
    )  # fmt: skip


@pytest.fixture(scope="module")
def windows(tiny_models):
    """``windows(arch) -> (bridge, hf, cloze)``, the windows built once per architecture."""
    built = {}

    def get(arch: str):
        if arch not in built:
            bridge, hf = tiny_models(arch)
            built[arch] = bridge, hf, _cloze(hf, bridge.tokenizer.bos_token_id, bridge.cfg.d_vocab)
        return built[arch]

    return get


def _expected(hf, cloze: ClozeSet, spec: tuple) -> tuple[np.ndarray, np.ndarray]:
    """Per window: the target is the unique top-1 at each of its positions; its log-probability."""
    logits = reference_logits(hf, cloze.tokens, spec)
    logprobs = torch.log_softmax(logits, -1)
    correct, total = [], []
    for row, k, lp, lg in zip(cloze.tokens, cloze.n_target, logprobs, logits, strict=True):
        hits, value = [], 0.0
        for t in range(SEQ_LEN - k, SEQ_LEN):
            top = lg[t - 1].topk(2)
            hits.append(top.indices[0] == row[t] and top.values[0] > top.values[1])
            value += lp[t - 1, row[t]].item()
        correct.append(float(all(hits)))
        total.append(value)
    return np.array(correct), np.array(total)


@pytest.mark.parametrize("arch", ["gpt2", "gemma3"])
def test_correctness_is_greedy_top1_of_a_surgically_edited_copy(arch, windows):
    bridge, hf, cloze = windows(arch)
    sums = cloze_sums(bridge, cloze, batch_size=4, progress=False, cache=False)
    n = len(bridge.blocks)
    specs = [("none",)] + [("drop", i) for i in range(n)] + [("swap", i) for i in range(n - 1)]
    labels = ["none"] + [drop(i).label for i in range(n)] + [swap(i).label for i in range(n - 1)]
    assert list(sums.columns) == [f"{x}:{s}" for x in labels for s in ("correct", "logprob")] + [
        "n_target", "seq_len"]  # fmt: skip
    expected = {}
    for spec, label in zip(specs, labels, strict=True):
        correct, logprob = _expected(hf, cloze, spec)
        expected[label] = correct
        np.testing.assert_array_equal(sums[f"{label}:correct"], correct, err_msg=label)
        np.testing.assert_allclose(sums[f"{label}:logprob"], logprob, rtol=1e-6, err_msg=label)
    # the comparison can fail: both outcomes occur, and a plan changes some windows' outcome
    assert list(expected["none"][:4]) == [1, 1, 1, 1] and expected["none"][6:].sum() == 0
    assert expected["drop 1"][4:6].all() and not expected["none"][4:6].all()
    assert (sums["n_target"] == N_TARGET).all() and (sums["seq_len"] == SEQ_LEN).all()


def test_the_table_reduces_the_sums(windows):
    bridge, _, cloze = windows("gpt2")
    sums = cloze_sums(bridge, cloze, [drop(1), swap(2), drop(1)], progress=False, cache=False)
    table = cloze_table(sums, len(bridge.blocks), n_boot=200)
    assert list(table.label) == ["none", "drop 1", "swap 2-3"]
    assert list(table.kind) == ["none", "drop", "swap"] and list(table.layer) == [-1, 1, 2]
    assert np.isnan(table.rel_depth[0]) and table.rel_depth[2] == pytest.approx(0.5)
    base = sums["none:correct"].mean()
    for row in table.itertuples():
        assert row.accuracy == pytest.approx(sums[f"{row.label}:correct"].mean())
        assert row.delta == pytest.approx(row.accuracy - base)
        assert row.logprob == pytest.approx(sums[f"{row.label}:logprob"].mean())
        for name in ("accuracy", "delta", "logprob"):
            assert getattr(row, f"{name}_lo") <= getattr(row, name) <= getattr(row, f"{name}_hi")
        assert row.n_windows == len(cloze)
    assert table.delta[0] == table.delta_lo[0] == table.delta_hi[0] == 0
    assert table.accuracy_lo[1] < table.accuracy_hi[1]  # not a degenerate interval


def test_a_cached_run_applies_the_new_target_lengths(windows):
    """The cache holds per-position scores; each set's ``n_target`` is applied afterwards."""
    bridge, _, cloze = windows("gpt2")
    first = cloze_sums(bridge, cloze, [drop(0)], progress=False)
    longer = dataclasses.replace(cloze, n_target=np.full(len(cloze), 4))
    second = cloze_sums(bridge, longer, [drop(0)], progress=False)
    assert second.attrs["provenance"]["from_cache"]
    fresh = cloze_sums(bridge, longer, [drop(0)], progress=False, cache=False)
    pd.testing.assert_frame_equal(second, fresh)
    assert not first["none:logprob"].equals(second["none:logprob"])


def test_a_tie_at_the_top_is_not_a_hit():
    logits = torch.tensor([[[1.0, 3.0, 3.0], [0.0, 2.0, 1.0]]])
    hit, logprob = score_positions(logits, torch.tensor([[1, 1]]))
    assert hit.tolist() == [[False, True]]
    want = torch.log_softmax(logits.double(), -1)[0, [0, 1], [1, 1]]
    torch.testing.assert_close(logprob, want[None], rtol=1e-6, atol=1e-6)
