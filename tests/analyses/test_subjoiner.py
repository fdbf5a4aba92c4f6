"""The subjoiner search finds a head planted by hand in a tiny random model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from stages.analyses.subjoiner import (
    attention_profile,
    final_token_attention,
    rank_heads,
    subjoiner_heads,
)
from stages.text.words import Vocabulary, subjoiner_dataset, word_spans
from tests.conftest import TEXT


@pytest.fixture(scope="module")
def data(tiny_models, tmp_path_factory):
    path = tmp_path_factory.mktemp("corpus") / "text.txt"
    path.write_text((TEXT + "\n\n") * 6)
    bridge, _ = tiny_models("gpt2")
    return subjoiner_dataset(bridge, corpus=str(path), n_per_class=12, width=10, word_tokens=3)


def test_a_planted_subjoiner_head_ranks_first(tiny_models, data):
    bridge, _ = tiny_models("gpt2")
    vocab = Vocabulary.of(bridge.tokenizer, bridge.cfg.d_vocab)
    tokens = data.tokens
    # Head 1.2 attends from every token to the first token of the word it is in (itself
    # outside words): a subjoiner by construction, set by hand on the attention pattern.
    target = torch.zeros(tokens.shape[0], tokens.shape[1], tokens.shape[1], dtype=torch.float64)
    for b, row in enumerate(tokens.numpy()):
        start, _ = word_spans(vocab, row)
        for q in range(len(row)):
            target[b, q, start[q] if start[q] >= 0 else q] = 1.0

    def plant(pattern, hook):
        pattern = pattern.clone()
        pattern[:, 2] = target.to(pattern.dtype)
        return pattern

    kw = {"n_keys": 8, "batch_size": len(tokens), "progress": False, "cache": False}
    with bridge.hooks(fwd_hooks=[("blocks.1.attn.hook_pattern", plant)]):
        attention = final_token_attention(bridge, tokens, **kw)
    ranking = rank_heads(attention, data.labels, len(bridge.blocks), offset=2, n_boot=200)
    with bridge.hooks(fwd_hooks=[("blocks.1.attn.hook_pattern", plant)]):
        direct = subjoiner_heads(bridge, tokens, data.labels, offset=2, n_boot=200, **kw)
    pd.testing.assert_frame_equal(direct, ranking)
    top = ranking.iloc[0]
    assert (top.layer, top["head"]) == (1, 2)
    assert top.word == pytest.approx(1.0) and top.control == pytest.approx(0.0)
    assert top.effect_lo > 0.9
    assert (ranking.iloc[1:].effect < 0.9).all()
    profile = attention_profile(attention, data.labels, 1, 2)
    word = profile[profile.cls == "multi-token word"].set_index("offset")["attention"]
    assert word[2] == pytest.approx(1.0) and word.drop(2).abs().max() < 1e-12


def test_attention_rows_match_the_cached_pattern(tiny_models, data):
    bridge, _ = tiny_models("gemma3")
    tokens = data.tokens[:4]
    attention = final_token_attention(bridge, tokens, n_keys=5, progress=False, cache=False)
    _, cache = bridge.run_with_cache(tokens, use_cache=False)
    pattern = cache["blocks.3.attn.hook_pattern"]
    for k in range(5):
        np.testing.assert_allclose(
            attention[f"3.1.{k}"], pattern[:, 1, -1, -1 - k].numpy(), rtol=1e-12
        )
    with pytest.raises(ValueError, match="both classes"):
        rank_heads(attention, np.ones(4, bool), len(bridge.blocks))
