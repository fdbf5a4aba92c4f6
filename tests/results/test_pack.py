"""Results packs: built, read back, checked by the live slice, refused, resumed, matched."""

from __future__ import annotations

import copy
import json

import numpy as np
import pandas as pd
import pytest

import stages.engine.sweep
from stages.analyses.subjoiner import final_token_attention
from stages.cache import Entry
from stages.engine.sweep import sweep_sums
from stages.models import load_model
from stages.results import pack as packs
from stages.results import parts
from stages.results.build import build_pack
from stages.results.check import slice_check
from stages.results.computer import Computer
from stages.results.opening import open_results
from stages.results.pack import Pack, PackError, Recipe
from stages.results.tolerance import CROSS_KERNEL_RTOL, RTOL, first_chunk_kernels, kernels
from stages.results.verdicts import decide_all
from tests.conftest import tiny_recipe


def _quiet(_: str) -> None:
    pass


@pytest.fixture(scope="module")
def setup(tmp_path_factory, tiny_tokenizer):
    """A tiny GPT-2 in a folder, a small corpus file, a recipe, and its pack."""
    root = tmp_path_factory.mktemp("pack")
    recipe = tiny_recipe(root, "gpt2", tiny_tokenizer, n_seq=6, seq_len=24, batch_size=4,
                         n_per_class=8, n_neurons=4, window_batch=4, n_cloze=6,
                         cloze_context=32)  # fmt: skip
    built = build_pack(recipe, root / "pack", device="cpu", progress=False, log=_quiet)
    return recipe, built, root


def test_a_built_pack_holds_the_analyses_sums(setup):
    recipe, pack, _ = setup
    assert pack.complete and set(pack.manifest["parts"]) == {
        "neurons",
        *parts.SEQUENCE_PARTS,
        *parts.WINDOW_PARTS,
    }
    for name, digest in pack.manifest["files"].items():
        assert len(digest) == 64 and (pack.path / name).exists()
    assert pack.manifest["parts"]["sweep"]["files"] == [
        "sweep/rows-00000-00002.parquet", "sweep/rows-00002-00006.parquet"
    ]  # fmt: skip
    model = load_model(recipe.model, device="cpu", dtype="float64")
    from stages.text.corpus import load_corpus

    tokens = load_corpus(model, corpus=recipe.corpus, n_tokens=recipe.n_tokens,
                         seq_len=recipe.seq_len, seed=0)  # fmt: skip
    direct = sweep_sums(model, tokens, batch_size=4, progress=False, cache=False)
    got = pack.frame("sweep")
    assert list(got.columns) == list(direct.columns)
    pd.testing.assert_frame_equal(got, direct.astype(float), check_exact=False, rtol=1e-12)
    windows = Computer(model, recipe).datasets["subjoiner"]
    attention = final_token_attention(model, windows.tokens, progress=False, cache=False)
    sub = pack.frame("subjoiner")
    keep = [c for c in sub.columns if c.endswith(".3")]
    np.testing.assert_allclose(sub[keep], attention[keep], rtol=1e-12)
    np.testing.assert_array_equal(sub["label"].to_numpy(bool), windows.labels)
    assert pack.manifest["windows"]["subjoiner"]["n"] == len(windows.labels)
    assert set(pack.manifest["ing_neurons"]) == {"authors", "cosine"}


def test_the_live_slice_matches_and_catches_changed_code(setup, monkeypatch, tmp_path):
    recipe, pack, _ = setup
    model = load_model(recipe.model, device="cpu", dtype="float64")
    check = slice_check(pack, model)
    assert check["ok"].all() and set(pack.manifest["parts"]) < set(check["part"])
    assert {"subjoiner windows (sha256)", "ing windows (sha256)", "subjoiner profile heads",
            "'-ing' neurons, authors selection"} <= set(check["part"])  # fmt: skip
    monkeypatch.setenv("STAGES_CACHE_DIR", str(tmp_path))  # no slice from the cache
    original = stages.engine.sweep.score_residuals

    def drifted(*a, **k):
        sums, entropy = original(*a, **k)
        return sums * (1 + 1e-5), entropy

    monkeypatch.setattr(stages.engine.sweep, "score_residuals", drifted)
    check = slice_check(pack, model, ("sweep", "lens")).set_index("part")
    assert not check.loc["sweep", "ok"] and check.loc["sweep", "max_rel_diff"] > 1e-6
    assert check.loc["lens", "ok"]  # an unchanged analysis still matches


def test_on_other_kernels_the_slice_allows_rounding_and_still_catches_a_change(
    setup, monkeypatch, tmp_path
):
    """Rows from the kernels running now match to 1e-6; from other kernels to 2e-3, not 1e-2."""
    recipe, pack, _ = setup
    here = kernels("cpu")
    for part in pack.manifest["parts"]:
        assert first_chunk_kernels(pack.manifest, part) == here
    model = load_model(recipe.model, device="cpu", dtype="float64")
    check = slice_check(pack, model).set_index("part")
    assert (check.loc[list(pack.manifest["parts"]), "rtol"] == RTOL).all()
    elsewhere = copy.deepcopy(pack.manifest)
    for entry in elsewhere["parts"].values():
        for chunk in entry["chunks"].values():
            chunk["kernels"] = "another processor, torch AVX2, 2 threads"
    moved = Pack(pack.path, elsewhere)
    original = stages.engine.sweep.score_residuals
    for drift, ok in [(1e-5, True), (1e-2, False)]:
        monkeypatch.setenv("STAGES_CACHE_DIR", str(tmp_path / str(drift)))  # no cached slice

        def drifted(*a, drift=drift, **k):
            sums, entropy = original(*a, **k)
            return sums * (1 + drift), entropy

        monkeypatch.setattr(stages.engine.sweep, "score_residuals", drifted)
        check = slice_check(moved, model, ("sweep", "lens")).set_index("part")
        assert (check["rtol"] == CROSS_KERNEL_RTOL).all()
        assert check.loc["sweep", "ok"] == ok and check.loc["lens", "ok"]


def test_an_altered_file_is_refused(setup, tmp_path):
    _, pack, _ = setup
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(pack.path, copy)
    victim = copy / "lens" / "rows-00002-00006.parquet"
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 1
    victim.write_bytes(bytes(data))
    with pytest.raises(PackError, match="lens/rows-00002-00006.parquet fails its checksum"):
        Pack.open(copy)
    victim.unlink()
    with pytest.raises(PackError, match="missing"):
        Pack.open(copy)


def test_an_interrupted_build_resumes_where_it_stopped(setup, monkeypatch, tmp_path):
    recipe, pack, _ = setup
    calls = []
    original = Computer.rows

    def counted(self, part, a, b, **kw):
        if len(calls) == 5:
            raise KeyboardInterrupt
        calls.append((part, a, b))
        return original(self, part, a, b, **kw)

    monkeypatch.setattr(Computer, "rows", counted)
    with pytest.raises(KeyboardInterrupt):
        build_pack(recipe, tmp_path / "p", device="cpu", progress=False, log=_quiet)
    partial = json.loads((tmp_path / "p" / "manifest.json").read_text())
    assert not partial["complete"] and len(partial["files"]) == 6  # neurons + 5 chunks
    calls.clear()
    monkeypatch.setattr(Computer, "rows", original)
    resumed = build_pack(recipe, tmp_path / "p", device="cpu", progress=False, log=_quiet)
    assert resumed.complete
    for part in pack.manifest["parts"]:
        pd.testing.assert_frame_equal(resumed.frame(part), pack.frame(part))
    with pytest.raises(PackError, match="another recipe"):
        build_pack(Recipe(**{**recipe.__dict__, "seed": 1}), tmp_path / "p", device="cpu",
                   progress=False, log=_quiet)  # fmt: skip


def test_a_build_stopped_inside_a_chunk_resumes_from_its_last_finished_batch(
    setup, monkeypatch, tmp_path
):
    recipe, _, _ = setup
    recipe = Recipe(**{**recipe.__dict__, "batch_size": 2})  # the chunk of rows 2-5: 2 batches
    monkeypatch.setenv("STAGES_CACHE_DIR", str(tmp_path / "cache"))
    original = Entry.write
    written = []

    def write(self, name, table, meta=None):
        original(self, name, table, meta)
        if self.analysis == "sweep":
            written.append(name)
            if written == ["batch-00000"]:  # the first batch of the second chunk: the first
                raise KeyboardInterrupt  # is not cached (the live slice's rows)

    monkeypatch.setattr(Entry, "write", write)
    with pytest.raises(KeyboardInterrupt):
        build_pack(recipe, tmp_path / "p", parts=("sweep",), device="cpu", progress=False,
                   log=_quiet)  # fmt: skip
    assert written == ["batch-00000"]
    written.clear()
    resumed = build_pack(recipe, tmp_path / "p", parts=("sweep",), device="cpu",
                         progress=False, log=_quiet)  # fmt: skip
    assert written == ["batch-00001", "sums"]  # the finished batch was not computed again
    monkeypatch.setattr(Entry, "write", original)
    monkeypatch.setenv("STAGES_CACHE_DIR", str(tmp_path / "cache-2"))
    whole = build_pack(recipe, tmp_path / "q", parts=("sweep",), device="cpu", progress=False,
                       log=_quiet)  # fmt: skip
    pd.testing.assert_frame_equal(resumed.frame("sweep"), whole.frame("sweep"))


def test_each_chunk_records_its_commit_and_a_rebuilt_part_only_its_own_time(
    setup, monkeypatch, tmp_path
):
    import stages.results.build as build

    recipe, _, _ = setup
    out = tmp_path / "p"
    monkeypatch.setenv("STAGES_CACHE_DIR", str(tmp_path / "cache"))  # none of setup's rows
    monkeypatch.setattr(build, "git_commit", lambda: "a" * 40)
    build_pack(recipe, out, up_to=2, device="cpu", progress=False, log=_quiet)
    original = Computer.rows
    computed = []

    def changed(self, part, a, b, **kw):  # today's code adds a column to the attention rows
        computed.append((part, a, b))
        rows = original(self, part, a, b, **kw)
        return rows.assign(extra=1.0) if part == "attention" else rows

    monkeypatch.setattr(Computer, "rows", changed)
    monkeypatch.setattr(build, "git_commit", lambda: "b" * 40)
    parts = build_pack(recipe, out, device="cpu", progress=False, log=_quiet).manifest["parts"]
    sweep, attention = parts["sweep"]["chunks"], parts["attention"]["chunks"]
    assert sweep["sweep/rows-00000-00002.parquet"]["git_commit"] == "a" * 40  # kept: it matches
    assert ("sweep", 0, 2) not in computed  # checked on the live slice, not by recomputing it
    assert sweep["sweep/rows-00002-00006.parquet"]["git_commit"] == "b" * 40
    assert {c["git_commit"] for c in attention.values()} == {"b" * 40}  # rebuilt whole
    assert set(attention) == set(parts["attention"]["files"])
    seconds = sum(c["seconds"] for c in attention.values())
    assert parts["attention"]["seconds"] == pytest.approx(seconds, abs=0.2) and seconds > 0


def test_a_pack_built_in_rounds_serves_pages_meanwhile(setup, tmp_path):
    recipe, pack, _ = setup
    out = tmp_path / "rounds"
    first = build_pack(recipe, out, up_to=2, device="cpu", progress=False, log=_quiet)
    assert not first.complete and first.usable and first.sequences_done == 2
    assert all(first.has(p) for p in ("neurons", *parts.WINDOW_PARTS)) and not first.has("sweep")
    assert "in progress: 2 of its 6 sequences" in first.describe()
    res = open_results("ignored", pack=str(out), device="cpu")
    assert len(res.tokens) == 2
    pd.testing.assert_frame_equal(res.sums("lens"), pack.frame("lens").head(2))
    pd.testing.assert_frame_equal(res.window_rows("ing"), pack.frame("ing"))
    report = res.report()
    assert "still being built" in report and "Live slice check: passed" in report
    for part in ("lens", "ing"):  # when and by which code each part read was computed
        when, commit, _ = first.computed(part)
        assert len(when) == 10 and f"| {part} | {when} | `{packs.short_commit(commit)}` |" in report
    assert first.computed("neurons")[1] == first.manifest["git_commit"]  # one build so far
    assert first.manifest["parts"]["lens"]["updated"][:10] == first.computed("lens")[0]
    with pytest.raises(PackError, match="holds 2 rows"):
        first.frame("sweep", 3)
    done = build_pack(recipe, out, device="cpu", progress=False, log=_quiet)
    assert done.complete and done.sequences_done == 6
    for part in pack.manifest["parts"]:
        pd.testing.assert_frame_equal(done.frame(part), pack.frame(part))
    scattered = Pack(out, json.loads((out / "manifest.json").read_text()))
    scattered.manifest["parts"]["sweep"]["files"] = ["sweep/rows-00002-00006.parquet"]
    assert scattered.rows_done("sweep") == 0  # a chunk without the rows before it serves nothing


def test_extension_parts_are_built_on_their_own_and_sliced_by_start_groups(setup, tmp_path):
    import shutil

    recipe, pack, _ = setup
    out = tmp_path / "extended"
    shutil.copytree(pack.path, out)
    extension = parts.EXTENSION_PARTS
    with pytest.raises(ValueError, match="unknown parts"):
        build_pack(recipe, out, parts=("blocks", "cka"), device="cpu", log=_quiet)
    grown = build_pack(recipe, out, parts=extension, up_to=2, device="cpu", progress=False,
                       log=_quiet)  # fmt: skip
    assert grown.complete and all(grown.rows_done(p) == 2 for p in extension)
    model = load_model(recipe.model, device="cpu", dtype="float64")
    computer = Computer(model, recipe, grown)
    for part in extension:
        whole = computer.rows(part, 0, 2, cache=False, progress=False)
        pd.testing.assert_frame_equal(grown.frame(part, 2), whole.astype(float), check_exact=True)
        sliced = computer.slice_rows(part, 2)
        assert 0 < sliced.shape[1] <= whole.shape[1]
        pd.testing.assert_frame_equal(sliced, whole[sliced.columns], check_exact=True)
    every_block = computer.rows("blocks", 0, 2, cache=True, progress=False)
    assert computer.slice_rows("blocks", 2).shape[1] < every_block.shape[1]  # a subset of plans
    res = open_results("ignored", pack=str(out), device="cpu")
    assert len(res.tokens) == 6 and len(res.sums("blocks")) == 2
    report = res.report()
    assert "`blocks` its first 2" in report and "Live slice check: passed" in report
    assert "blocks: 2 of 6 sequences" in res.source()  # the footer agrees with the verdicts' n
    assert "cloze windows (sha256)" in set(slice_check(grown, model, ("cloze",))["part"])
    bare = open_results("ignored", pack=str(pack.path), device="cpu")
    with pytest.raises(PackError, match="--parts reorder"):
        bare.sums("reorder")
    assert "reorder" not in bare.used and "Live slice check: passed" in bare.report()
    claims = decide_all(bare)
    assert claims.attrs["missing"] == {
        "beyond single layers": ("blocks", "reorder", "duplication"),
        "layer similarity": ("similarity", "skip_effects"),
        "cloze": ("cloze",),
    }
    assert "beyond single layers" not in set(claims.group)
    for _, numbers in claims.groupby("group")["number"]:  # a claim's place in its group
        assert list(numbers) == list(range(len(numbers)))
    partial = tmp_path / "partial"  # the grown pack without its reorderings
    shutil.copytree(out, partial)
    manifest = json.loads((partial / "manifest.json").read_text())
    del manifest["parts"]["reorder"]
    (partial / "manifest.json").write_text(json.dumps(manifest))
    claims = decide_all(open_results("ignored", pack=str(partial), device="cpu"))
    assert claims.attrs["missing"] == {"beyond single layers": ("reorder",)}
    assert {"layer similarity", "cloze"} <= set(claims.group)


def test_pages_use_a_pack_only_when_it_matches(setup, monkeypatch):
    recipe, pack, root = setup
    kw = {"n_tokens": recipe.n_tokens, "seq_len": recipe.seq_len, "corpus": recipe.corpus,
          "dtype": "float64", "device": "cpu", "n_per_class": 8, "n_neurons": 4,
          "n_cloze": 6}  # fmt: skip
    named = open_results("ignored", pack=str(pack.path), device="cpu")
    assert named.pack is not None and named.recipe == recipe
    report = named.report()
    assert "Live slice check: passed" in report
    live = open_results(recipe.model, **kw)
    assert live.pack is None and "No results pack ships" in live.why_live
    data = root / "data"
    (data / "results").mkdir(parents=True)
    (data / "results" / live.name).symlink_to(pack.path)
    monkeypatch.setenv("STAGES_DATA_DIR", str(data))
    default = open_results(recipe.model, **kw)
    assert default.pack is not None
    pd.testing.assert_frame_equal(default.sums("lens"), pack.frame("lens"))
    other = open_results(recipe.model, **(kw | {"n_tokens": 48}))
    assert other.pack is None and "computed now" in other.why_live
    assert len(other.sums("lens", progress=False)) == 2  # computed now, for its own sample
    moments = other.classes()[["layer", "neuron", "skew", "kurtosis", "variance"]]
    pd.testing.assert_frame_equal(moments, pack.frame("neurons"))  # weights only: from the pack
    assert "read from the results pack of these weights" in other.report()


def test_a_page_stops_on_a_corrupt_shipped_pack_and_says_how_to_mend_it(
    setup, monkeypatch, tmp_path
):
    """The page's own entry point, on the pack it would read by default: never shown."""
    import shutil

    recipe, pack, _ = setup
    data = tmp_path / "data"
    shutil.copytree(pack.path, data / "results" / "tiny-gpt2")
    victim = data / "results" / "tiny-gpt2" / "sweep" / "rows-00002-00006.parquet"
    victim.write_bytes(victim.read_bytes()[:-7] + b"corrupt")
    monkeypatch.setenv("STAGES_DATA_DIR", str(data))
    kw = {"n_tokens": recipe.n_tokens, "seq_len": recipe.seq_len, "corpus": recipe.corpus,
          "dtype": "float64", "device": "cpu", "n_per_class": 8, "n_neurons": 4,
          "n_cloze": 6}  # fmt: skip
    with pytest.raises(PackError, match="sweep/rows-00002-00006.parquet fails its checksum") as err:
        open_results(recipe.model, **kw)
    assert "git checkout" in str(err.value) and "stages pack build" in str(err.value)


def test_every_claim_is_decided_from_a_pack(setup):
    _, pack, _ = setup
    res = open_results("ignored", pack=str(pack.path), device="cpu")
    claims = decide_all(res)
    assert len(claims) >= 25 and set(claims["page"]).issuperset(
        {"01_robustness", "06_case_studies"}
    )
    # six sequences and a handful of windows decide nothing about sampled claims
    sampled = claims[claims["unit"].isin(["sequences", "windows", "test windows"])]
    assert set(sampled["verdict"]) == {"not enough data"}


def test_the_command_line_verifies_a_pack(setup, capsys, tmp_path):
    from stages.cli import main

    _, pack, _ = setup
    assert main(["pack", "verify", "ignored", "--out", str(pack.path), "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "every checksum matches" in out and "sweep" in out
    assert main(["pack", "verify", "ignored", "--out", str(tmp_path)]) == 1
    assert "no readable results pack" in capsys.readouterr().err
