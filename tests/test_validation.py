"""Bad inputs: each gives one clear message naming the value and the fix, and writes nothing."""

from __future__ import annotations

import pytest

import stages
import stages.engine.sweep
from stages.cli import main as cli_main
from stages.models import ModelLoadError


@pytest.fixture
def results(tmp_path, monkeypatch):
    monkeypatch.setenv("STAGES_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "results"


def _cases(bridge, tokens):
    """(description, call, exception type, message fragment)."""
    return [
        (
            "unknown device",
            lambda: stages.load_model("gemma-3-270m", device="tpu"),
            ValueError,
            "unknown device 'tpu'",
        ),
        (
            "CUDA without a GPU",
            lambda: stages.load_model("gemma-3-270m", device="cuda"),
            ValueError,
            "no CUDA GPU",
        ),
        (
            "unknown dtype",
            lambda: stages.load_model("gemma-3-270m", dtype="float8"),
            ValueError,
            "unknown dtype 'float8'",
        ),
        ("non-model source", lambda: stages.load_model(3.5), ValueError, "source must be"),
        ("n_tokens zero", lambda: stages.load_corpus(bridge, n_tokens=0), ValueError, "n_tokens"),
        (
            "n_tokens not an integer",
            lambda: stages.load_corpus(bridge, n_tokens=2.5),
            ValueError,
            "n_tokens",
        ),
        (
            "n_tokens a string",
            lambda: stages.load_corpus(bridge, n_tokens="many"),
            ValueError,
            "n_tokens",
        ),
        ("seq_len one", lambda: stages.load_corpus(bridge, seq_len=1), ValueError, "seq_len"),
        (
            "seq_len beyond the context",
            lambda: stages.load_corpus(bridge, n_tokens=100, seq_len=65),
            ValueError,
            "context of 64",
        ),
        (
            "corpus too small",
            lambda: stages.load_corpus(bridge, n_tokens=10**9, seq_len=32),
            ValueError,
            "too small",
        ),
        (
            "missing corpus file",
            lambda: stages.load_corpus(bridge, corpus="/nonexistent/x.txt", seq_len=32),
            Exception,
            "x.txt",
        ),
        (
            "batch_size zero",
            lambda: stages.run_sweep(bridge, tokens, batch_size=0),
            ValueError,
            "batch_size",
        ),
        (
            "batch_size a float",
            lambda: stages.run_sweep(bridge, tokens, batch_size=1.5),
            ValueError,
            "batch_size",
        ),
        (
            "layer out of range",
            lambda: stages.run_sweep(bridge, tokens, [stages.drop(7)]),
            ValueError,
            "out of range",
        ),
        (
            "swap past the end",
            lambda: stages.run_sweep(bridge, tokens, [stages.swap(4)]),
            ValueError,
            "out of range",
        ),
        (
            "float tokens",
            lambda: stages.run_sweep(bridge, tokens.float()),
            ValueError,
            "LongTensor",
        ),
        (
            "tokens beyond the vocabulary",
            lambda: stages.run_sweep(bridge, tokens + 10_000),
            ValueError,
            "token ids",
        ),
    ]


def test_every_bad_input_is_refused_clearly(results, tiny_models, tiny_tokens):
    bridge, _ = tiny_models("gpt2")
    for name, call, error, fragment in _cases(bridge, tiny_tokens):
        with pytest.raises(error) as info:
            call()
        assert fragment in str(info.value), f"{name}: {info.value}"
        assert not results.exists() or not any(results.rglob("*")), f"{name} wrote to the cache"


def test_unknown_hub_model_offline(results, monkeypatch):
    import huggingface_hub.constants as hub_constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ModelLoadError, match="not-a-real/model"):
        stages.load_model("not-a-real/model", device="cpu")


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["run", "robustness", "-p", "n_tokens", "lots"], "not a valid int"),
        (["run", "robustness", "-p", "n_tokenz", "5"], "has no parameter 'n_tokenz'"),
        (["run", "robustnes"], "unknown section"),
        (["book", "-p", "seq_len", "1.5"], "not a valid int"),
    ],
)
def test_cli_refuses_bad_parameters_before_running(argv, fragment, capsys, results):
    assert cli_main(argv) == 2
    assert fragment in capsys.readouterr().err
    assert not results.exists()


def test_non_finite_metrics_name_the_intervention_and_are_not_cached(
    results, tiny_models, tiny_tokens, monkeypatch
):
    bridge, _ = tiny_models("gpt2")
    real_compare = stages.engine.sweep.compare
    calls = {"n": 0}

    def poisoned(unembedding, ref, x, targets):
        calls["n"] += 1  # the third intervention's residual turns to NaN
        return real_compare(unembedding, ref, x * float("nan") if calls["n"] == 3 else x, targets)

    monkeypatch.setattr(stages.engine.sweep, "compare", poisoned)
    with pytest.raises(FloatingPointError, match=r"drop 2: metric 'kl'"):
        stages.run_sweep(bridge, tiny_tokens, stages.drops(bridge), batch_size=6, progress=False)
    assert not list(results.rglob("*.parquet"))
