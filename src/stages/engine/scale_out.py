"""Scale-out on Ray: batches of an analysis computed by workers that each load the model once.

:class:`RayBatches` plugs into :func:`stages.engine.runs.batched_analysis` (``map_batches=``): it
starts one Ray actor per worker, each of which loads the model with the arguments the driver
used (``model.stages_info["reload"]``) and checks that its weights hash matches; it cuts every
pending batch into (batch x chunk of parts) tasks, spreads them over the actors, and yields a
batch's merged per-sequence sums once all its chunks are back. The driver checkpoints each
batch in the result cache as usual, so a Ray run resumes from a local one and vice versa.

Each worker runs the same operations on the same batch as the local run does, with the
driver's number of threads per worker, so the partial float64 sums merge into the same table.

The workers outlive the call: the next run on the same model (same weights, device, threads,
number of workers and analysis code) reuses them, after checking they are alive, instead of
loading the model again in each (tens of seconds for a billion-parameter model). One set is
kept: a run with another model or layout stops it first, so kept workers never hold the CPUs
or GPUs a new set needs. They hold the model and one CPU (or GPU, its cache emptied after each
run) each until :func:`release_workers`, ``ray.shutdown()`` or the end of the process; a run
that fails or is abandoned releases them.

Pointing it at a cluster: start Ray on the machines (``ray start --head`` on one, ``ray start
--address=HEAD:6379`` on the others, each with ``stages[ray]`` installed and the model's
weights reachable), then set ``RAY_ADDRESS=HEAD:6379`` before ``run_sweep(...,
executor="ray")``. A CUDA model gets one GPU per worker.
"""

from __future__ import annotations

import json
import math
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch

from stages.engine.runs import BatchSums, code_fingerprint
from stages.models import load_model, model_info
from stages.shapes import Model

# Task(model, batch, parts, *, first, **kwargs) -> per-sequence sums of one chunk of parts.
Task = Callable[..., BatchSums]


def _ray() -> Any:
    try:
        import ray
    except ImportError as err:
        raise ImportError(
            "executor='ray' needs Ray: pip install 'stages[ray]' (or pip install ray)"
        ) from err
    return ray


_KEPT: tuple[tuple[str, ...], list[Any]] | None = None
"""The kept actors, with their key: (Ray job, model reload, weights, device, threads, workers,
analysis code)."""
_LOCK = threading.Lock()
_ALIVE_TIMEOUT_S = 60.0


def release_workers() -> int:
    """Stop the Ray workers kept for later runs (freeing their memory); returns how many."""
    with _LOCK:
        return _release()


def _release() -> int:
    global _KEPT
    actors = _KEPT[1] if _KEPT else []
    if actors and (ray := _ray()).is_initialized():
        for a in actors:
            ray.kill(a)
    _KEPT = None
    return len(actors)


class _Worker:
    """A Ray actor: loads the model once, then computes tasks on it."""

    def __init__(self, reload: dict[str, Any], device: str, threads: int, weights: str) -> None:
        torch.set_num_threads(threads)
        kwargs = dict(reload)
        tokenizer = kwargs.pop("tokenizer")
        if tokenizer is not None:
            from transformers import AutoTokenizer

            kwargs["tokenizer"] = AutoTokenizer.from_pretrained(tokenizer)
        self.model = load_model(kwargs.pop("source"), device=device, **kwargs)
        got = model_info(self.model)["weights_hash"]
        if got != weights:
            raise RuntimeError(
                f"a Ray worker loaded weights {got}, the driver has {weights}: every worker "
                "must see the same model files"
            )

    def run(self, task: Task, k: int, c: int, batch: torch.Tensor, parts: Sequence[Any],
            first: bool, kwargs: dict[str, Any]) -> tuple[int, int, BatchSums]:  # fmt: skip
        with torch.no_grad():
            batch = batch.to(self.model.cfg.device)
            return k, c, task(self.model, batch, parts, first=first, **kwargs)

    def done(self) -> bool:
        """End of a run: give the GPU memory the run cached back (the model stays)."""
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        return True


class RayBatches:
    """Compute an analysis's pending batches on Ray workers.

    A ``map_batches`` for :func:`stages.engine.runs.batched_analysis`.

    Args:
        model: the driver's bridge, loaded with :func:`stages.load_model` from a name or a
            folder (workers reload it; an in-memory model cannot be sent).
        task: ``task(model, batch, parts, *, first, **kwargs)`` returning ``{column: [b]}``
            float64 sums for ``parts``; ``first`` marks a batch's first chunk, which also
            returns the columns that do not depend on the parts. A module-level function.
        parts: the units of work a batch is cut into (e.g. the sweep's start-layer groups).
        kwargs: more keyword arguments for ``task``.
        workers: number of actors (default: one per GPU for a CUDA model, else the cluster's
            CPUs over this process's torch threads); each runs with those threads.

    Raises:
        ValueError: the model cannot be reloaded by a worker, or ``workers`` is not positive.
        ImportError: Ray is not installed.
    """

    def __init__(
        self,
        model: Model,
        task: Task,
        parts: Sequence[Any],
        kwargs: dict[str, Any],
        *,
        workers: int | None = None,
    ) -> None:
        info = model_info(model)
        if info.get("reload") is None:
            raise ValueError(
                "executor='ray' needs a model loaded from a name or a folder (each worker loads "
                "it again); an in-memory model cannot be sent: save_pretrained it to a folder "
                "and load_model that folder"
            )
        if workers is not None and (not isinstance(workers, int) or workers < 1):
            raise ValueError(f"workers must be a positive integer, got {workers!r}")
        self.info = info
        self.task, self.parts, self.kwargs, self.workers = task, list(parts), kwargs, workers
        self.device = torch.device(model.cfg.device)
        self.threads = torch.get_num_threads()

    def __call__(self, pending: list[tuple[int, torch.Tensor]]) -> Iterator[tuple[int, BatchSums]]:
        """Yield ``(k, sums)`` for every pending batch ``(k, tokens)``, as batches complete."""
        if not pending:
            return
        ray = _ray()
        if not ray.is_initialized():
            ray.init(include_dashboard=False, log_to_driver=False)
        gpu = self.device.type == "cuda"
        if self.workers is not None:
            n_workers = self.workers
        elif gpu:
            n_workers = max(1, int(ray.cluster_resources().get("GPU", 1)))
        else:
            n_workers = max(1, int(ray.cluster_resources().get("CPU", 2)) // self.threads)
        device = "cuda" if gpu else "cpu"
        actors = self._actors(ray, device, n_workers)
        # Enough chunks per batch to keep every worker busy; each chunk repeats the baseline.
        chunks: list[list[Any]] = [[]]  # no parts (a baseline-only sweep): one empty chunk
        if self.parts:
            n_chunks = min(len(self.parts), math.ceil(2 * n_workers / len(pending)))
            size = math.ceil(len(self.parts) / n_chunks)
            chunks = [self.parts[i : i + size] for i in range(0, len(self.parts), size)]
        tasks = [(k, c, batch) for k, batch in pending for c in range(len(chunks))]
        received: dict[int, dict[str, Any]] = {}
        left = {k: len(chunks) for k, _ in pending}
        pool = ray.util.ActorPool(actors)
        try:
            results = pool.map_unordered(
                lambda a, t: a.run.remote(
                    self.task, t[0], t[1], t[2], chunks[t[1]], t[1] == 0, self.kwargs
                ),
                tasks,
            )
            for k, _c, sums in results:
                received.setdefault(k, {}).update(sums)
                left[k] -= 1
                if left[k] == 0:
                    yield k, received.pop(k)
            ray.get([a.done.remote() for a in actors])
        except BaseException:  # a failed worker or an abandoned run: start afresh next time
            release_workers()
            raise

    def _actors(self, ray: Any, device: str, n_workers: int) -> list[Any]:
        """The kept workers for this model and layout if they are alive, else new ones."""
        key = (
            ray.get_runtime_context().get_job_id(),
            json.dumps(self.info["reload"], sort_keys=True, default=str),
            str(self.info["weights_hash"]), device, str(self.threads), str(n_workers),
            code_fingerprint(sys.modules[self.task.__module__]),
        )  # fmt: skip
        global _KEPT
        with _LOCK:
            if _KEPT is not None and _KEPT[0] == key:
                try:  # dead after ray.shutdown() or a lost node: start a new set
                    ray.get([a.done.remote() for a in _KEPT[1]], timeout=_ALIVE_TIMEOUT_S)
                    return _KEPT[1]
                except Exception:
                    pass
            _release()  # kept workers of another model would hold the CPUs or GPUs
            actor = ray.remote(num_cpus=1, num_gpus=1 if device == "cuda" else 0)(_Worker)
            reload, weights = self.info["reload"], self.info["weights_hash"]
            actors = [actor.remote(reload, device, self.threads, weights) for _ in range(n_workers)]
            _KEPT = (key, actors)
            return actors
