"""The shipped results packs: intact, usable, the notebooks' defaults, and equal to today's code.

The live slice check recomputes the first rows of every part of each pack with the code under
test; a change of code that changes any result fails here until the pack is rebuilt
(``stages pack build MODEL``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from stages import book
from stages.models import EMBEDDED_MODELS, load_model
from stages.results.check import slice_check
from stages.results.pack import Pack, Recipe, shipped_pack
from stages.stats import MIN_UNITS

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("model", list(EMBEDDED_MODELS))
def test_each_shipped_model_has_an_intact_pack_that_can_decide(model):
    pack = Pack.open(shipped_pack(model))  # every file against its sha256
    # complete, or still being built in rounds with enough sequences for a verdict (the pages
    # then say how many they use)
    assert pack.usable and pack.sequences_done >= MIN_UNITS, (
        f"{model}: {pack.describe()}; continue it: stages pack build {model}"
    )
    recipe = pack.recipe
    assert recipe.n_seq >= 256 and recipe.seq_len == 128 and recipe.model == model
    assert "+dirty" not in pack.manifest["git_commit"]
    sizes = sum((pack.path / name).stat().st_size for name in pack.manifest["files"])
    # a guard on the repository's size: smollm2-135m-instruct's pack is the larger, about 26 MB
    # once every extension part holds its 256 sequences (21 MB with them at 34 to 256)
    assert sizes < 40e6, f"{model}: {sizes / 1e6:.1f} MB"


def test_the_notebooks_defaults_are_the_packs():
    recipe = Recipe(model="gemma-3-270m")
    want = {"model": recipe.model, "n_tokens": recipe.n_tokens, "seq_len": recipe.seq_len,
            "seed": recipe.seed, "corpus": recipe.corpus, "dtype": recipe.dtype,
            "n_per_class": recipe.n_per_class, "n_neurons": recipe.n_neurons,
            "pack": "default"}  # fmt: skip
    for section in book.discover_sections(ROOT):
        params = book.read_parameters(section, ROOT)
        if "pack" not in params:
            continue
        for name, value in want.items():
            if name in params:
                assert params[name].default == value, (section.name, name, params[name].default)


@pytest.mark.real
@pytest.mark.parametrize("model", list(EMBEDDED_MODELS))
def test_the_live_slice_of_every_part_equals_the_pack(model, user_result_cache):
    # a slice the book computed with this very code (the cache key holds its source hash) is
    # read back; any other is recomputed, so a change of code that changes results fails here
    pack = Pack.open(shipped_pack(model))
    lm = load_model(model, device="cpu", dtype=pack.recipe.dtype)
    check = slice_check(pack, lm)
    assert set(pack.manifest["parts"]) < set(check["part"])  # and the choices made once
    assert check["ok"].all(), check.to_string()
