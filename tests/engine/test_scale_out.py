"""executor="ray": a local two-worker Ray cluster gives the local run's table, through the cache."""

from __future__ import annotations

import pandas as pd
import pytest

import stages
from stages.engine import scale_out
from tests.conftest import make_tiny_hf

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.processes


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    scale_out.release_workers()
    ray.shutdown()


def _kept() -> list[str]:
    return [a._actor_id.hex() for a in scale_out._KEPT[1]] if scale_out._KEPT else []


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory, tiny_tokenizer):
    """A tiny Gemma 3 in a folder: Ray workers load it from there, as from a real checkpoint."""
    folder = tmp_path_factory.mktemp("tiny-gemma3")
    make_tiny_hf("gemma3", len(tiny_tokenizer)).save_pretrained(folder)
    tiny_tokenizer.save_pretrained(folder)
    return stages.load_model(folder, device="cpu", dtype="float64")


def test_ray_gives_the_local_table_and_shares_the_cache(cluster, saved_model, tiny_tokens):
    model = saved_model
    local = stages.run_sweep(model, tiny_tokens, batch_size=2, progress=False, cache=False)
    remote = stages.run_sweep(
        model, tiny_tokens, batch_size=2, progress=False, executor="ray", workers=2
    )
    assert not remote.attrs["provenance"]["from_cache"]
    pd.testing.assert_frame_equal(remote, local, check_exact=True)
    # the Ray run's checkpoints serve a local run: nothing is recomputed
    again = stages.run_sweep(model, tiny_tokens, batch_size=2, progress=False)
    assert again.attrs["provenance"]["from_cache"]
    pd.testing.assert_frame_equal(again, local, check_exact=True)


def test_ray_with_more_workers_than_batches_splits_the_groups(cluster, saved_model, tiny_tokens):
    model = saved_model
    ivs = stages.drops(model) + stages.swaps(model)
    local = stages.run_sweep(model, tiny_tokens, ivs, batch_size=6, progress=False, cache=False)
    remote = stages.run_sweep(
        model, tiny_tokens, ivs, batch_size=6, progress=False, cache=False, executor="ray",
        workers=2,
    )  # fmt: skip
    pd.testing.assert_frame_equal(remote, local, check_exact=True)
    kept = _kept()
    assert len(kept) == 2  # the two workers stay for the next run on this model
    only = {"batch_size": 3, "progress": False, "cache": False}
    pd.testing.assert_frame_equal(
        stages.run_sweep(model, tiny_tokens, [], executor="ray", workers=2, **only),
        stages.run_sweep(model, tiny_tokens, [], **only),
        check_exact=True,
    )  # the baseline alone
    assert _kept() == kept  # reused, not loaded again
    # a run abandoned half-way (an interrupted notebook cell) releases its workers
    from stages.engine.forward import start_groups
    from stages.engine.sweep import sweep_task

    groups = start_groups(ivs)
    run = scale_out.RayBatches(model, sweep_task, groups, {"half": None}, workers=2)
    batches = run([(0, tiny_tokens[:3]), (1, tiny_tokens[3:6])])
    k, sums = next(batches)
    assert k in (0, 1) and _kept() == kept
    batches.close()
    assert _kept() == [] and scale_out.release_workers() == 0


def test_ray_refuses_an_in_memory_model(tiny_models, tiny_tokens):
    bridge, _ = tiny_models("gpt2")
    with pytest.raises(ValueError, match="in-memory"):
        stages.run_sweep(bridge, tiny_tokens, progress=False, executor="ray")
