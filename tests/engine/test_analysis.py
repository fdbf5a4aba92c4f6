"""The one-call analyses: their help documents each argument, the run options as each says."""

from __future__ import annotations

import pytest

import stages


@pytest.mark.parametrize(
    ("name", "says"),
    [("cloze_accuracy", "windows per forward pass"), ("run_sweep", "four plans"),
     ("logit_lens", "sequences per forward pass")],
)  # fmt: skip
def test_the_help_of_a_one_call_analysis_keeps_its_steps_words(name, says):
    doc = getattr(stages, name).__doc__
    args = doc.split("Args:\n", 1)[1].split("\n\nReturns:", 1)[0]
    entries = [line.split(":", 1)[0].strip() for line in args.splitlines()]
    assert {"model", "batch_size", "progress", "cache"} <= set(entries)
    assert len(entries) == len(set(entries))  # each argument once
    batch = next(line for line in args.splitlines() if line.strip().startswith("batch_size:"))
    assert says in batch, batch
