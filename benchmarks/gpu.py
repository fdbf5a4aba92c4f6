"""Measured on a GPU: the full sweep with Pythia-1.4B's shapes, float32 and bfloat16 autocast.

Real weights cannot reach the GPU machine (no Hugging Face hub here, and at most 64 MiB travel
with the code), and a forward pass costs the same whatever the weights' values: the model is a
``GPTNeoXForCausalLM`` built from Pythia-1.4B's config (``projection.pythia_1_4b``) with random
weights (seed 0), loaded with :func:`stages.load_model` (the paper's weight processing), and the
tokens are random ids. The sweep is the projection's: 95 interventions (every drop,
attention-only drop, MLP-only drop and swap) over sequences of 1024 tokens.

Each precision runs at two sizes, after a warm-up; the marginal time per sequence between them
is the steady-state rate (the fixed costs, such as the first kernels and the allocator's warm-up,
cancel), and the full sweep on 977 sequences (1M tokens, the projection's sample) is
extrapolated from it: ``fixed + 977 x marginal``. float32 runs with TF32 off (PyTorch's
default); "bfloat16" is ``run_sweep(..., autocast="bfloat16")`` on the float32 model. The
GPU's own matmul rates (8192^3 products) are measured first, for the utilisation figures.

Run on a machine with a CUDA GPU: ``python benchmarks/gpu.py`` (about 5 minutes on an H200);
writes ``benchmarks/results/gpu.json``. ``--layers 2 --seq-len 64 --sizes 1,2 --device cpu``
is a dry run of the same code on a CPU.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import projection  # noqa: E402

import stages  # noqa: E402
from stages.engine.performance import bridge_sweep_flops  # noqa: E402
from stages.provenance import versions  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "gpu.json"
N_SEQ_FULL = 977  # the projection's sample: 977 x 1024 = 1,000,448 tokens


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_rate(device: torch.device, dtype: torch.dtype, n: int = 8192, reps: int = 10) -> float:
    """FLOP/s of an ``n x n x n`` product in ``dtype`` (mean of ``reps`` after 3 warm-ups)."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    _sync(device)
    start = time.perf_counter()
    for _ in range(reps):
        a @ b
    _sync(device)
    return 2 * n**3 * reps / (time.perf_counter() - start)


def _tokenizer() -> Any:
    """A three-token word-level tokenizer: the bridge needs one; the ids are random anyway."""
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    vocab = {"<bos>": 0, "<eos>": 1, "<unk>": 2}
    return PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer(models.WordLevel(vocab, unk_token="<unk>")),
        bos_token="<bos>", eos_token="<eos>", unk_token="<unk>", pad_token="<eos>",
    )  # fmt: skip


def timed_sweep(model: Any, tokens: torch.Tensor, plans: list, autocast: str | None,
                batch_size: int) -> float:  # fmt: skip
    """Seconds of one uncached ``run_sweep``, the device synchronised at both ends."""
    device = torch.device(model.cfg.device)
    _sync(device)
    start = time.perf_counter()
    stages.run_sweep(model, tokens, plans, batch_size=batch_size, autocast=autocast,
                     progress=False, cache=False)  # fmt: skip
    _sync(device)
    return time.perf_counter() - start


def main() -> None:
    """Measure and write the results file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--layers", type=int, default=24)
    parser.add_argument("--seq-len", type=int, default=1024)
    parser.add_argument("--sizes", default="8,24", help="two sequence counts, float32")
    parser.add_argument("--bf16-sizes", default="16,48", help="two sequence counts, bfloat16")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--precisions", default="float32,bfloat16")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    device = torch.device(args.device)

    _, cfg = projection.pythia_1_4b()
    cfg.num_hidden_layers = args.layers
    import transformers as tf

    torch.manual_seed(0)
    with torch.device(device):
        hf = tf.GPTNeoXForCausalLM(cfg).eval()
    start = time.perf_counter()
    model = stages.load_model(hf, tokenizer=_tokenizer(), device=str(device), dtype="float32")
    load_s = time.perf_counter() - start
    n = args.layers
    plans = (
        [stages.drop(i) for i in range(n)]
        + [stages.drop_component(i, c) for c in ("attn", "mlp") for i in range(n)]
        + [stages.swap(i) for i in range(n - 1)]
    )  # fmt: skip
    generator = torch.Generator().manual_seed(0)
    biggest = max(int(x) for x in f"{args.sizes},{args.bf16_sizes}".split(","))
    tokens = torch.randint(3, cfg.vocab_size, (biggest, args.seq_len), generator=generator)
    tokens[:, 0] = 0  # BOS

    rates = {"float32": matmul_rate(device, torch.float32),
             "bfloat16": matmul_rate(device, torch.bfloat16)}  # fmt: skip
    print(f"matmul: {rates['float32'] / 1e12:.1f} TFLOP/s float32, "
          f"{rates['bfloat16'] / 1e12:.1f} bfloat16", flush=True)  # fmt: skip
    runs = {}
    for label, autocast, sizes in (("float32", None, args.sizes),
                                   ("bfloat16", "bfloat16", args.bf16_sizes)):  # fmt: skip
        if label not in args.precisions.split(","):
            continue
        small, large = (int(x) for x in sizes.split(","))
        timed_sweep(model, tokens[: args.batch_size], plans[:4], autocast, args.batch_size)
        seconds = {k: timed_sweep(model, tokens[:k], plans, autocast, args.batch_size)
                   for k in (small, large)}  # fmt: skip
        marginal = (seconds[large] - seconds[small]) / (large - small)
        fixed = max(0.0, seconds[small] - small * marginal)
        flops_per_seq = bridge_sweep_flops(model, tokens[:1], plans)
        runs[label] = {
            "sizes": [small, large],
            "seconds": [seconds[small], seconds[large]],
            "marginal_s_per_sequence": marginal,
            "fixed_s": fixed,
            "full_sweep_minutes": (fixed + N_SEQ_FULL * marginal) / 60,
            "tflop_per_s": flops_per_seq / marginal / 1e12,
            "utilisation_of_measured_matmul": flops_per_seq / marginal / rates[label],
        }
        print(label, json.dumps(runs[label]), flush=True)
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else "none (dry run)"
    result = {
        "label": f"MEASURED on one {gpu}: Pythia-1.4B shapes, random weights, full sweep",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            "gpu": gpu,
            "torch": torch.__version__,
            "cuda": torch.version.cuda,
            "tf32": torch.backends.cuda.matmul.allow_tf32,
        },  # fmt: skip
        "versions": versions(),
        "model": f"GPTNeoXForCausalLM, Pythia-1.4B config ({n} layers, d_model "
        f"{cfg.hidden_size}, vocab {cfg.vocab_size}), random init seed 0, float32 weights",
        "n_interventions": len(plans),
        "seq_len": args.seq_len,
        "batch_size": args.batch_size,
        "full_sweep_sequences": N_SEQ_FULL,
        "load_model_s": load_s,
        "matmul_tflop_per_s": {k: v / 1e12 for k, v in rates.items()},
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(args.out)


if __name__ == "__main__":
    main()
