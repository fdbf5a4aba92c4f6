"""The authors' sweep, re-implemented faithfully as the baseline of the speed benchmark (issue 8).

What the authors' code (github.com/vdlad/Remarkable-Robustness-of-LLMs) does per intervention,
and what this module does the same way:

- **Swaps**: the model is rebuilt from a state dict in which layers ``i`` and ``i + 1`` are
  exchanged (here: a new Hugging Face model from the config, the exchanged state dict loaded,
  then wrapped and weight-processed by :func:`stages.load_model` again). For Gemma 3 the
  per-layer attention types are exchanged with the weights, so each block keeps its own type,
  as :mod:`stages.engine` does (the authors' models had one attention type).
- **Drops**: hooks that zero the layer's attention and MLP outputs (only one of them for
  attention-only / MLP-only drops) on the unmodified model.
- **Batch size 1**, a **full forward pass from the embedding** for every sequence, the
  **unperturbed pass recomputed** for every intervention, and **per-token metrics moved to
  Python lists** (``.tolist()``) before averaging.

The metrics are those of :mod:`stages.engine.metrics`, written out plainly from full log-softmaxes,
at positions ``1..seq_len-2``. Nothing here is used by the book; it exists to be timed and to be
checked against :func:`stages.run_sweep` (``tests/engine/test_authors_method.py``).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Sequence
from typing import Any

import pandas as pd
import torch

import stages
from stages.engine.plans import Intervention


def layer_prefix(model: torch.nn.Module) -> str:
    """The state-dict prefix of the block list, e.g. ``"model.layers."``."""
    n = model.config.num_hidden_layers
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.ModuleList) and len(module) == n and name:
            return name + "."
    raise ValueError("no list of transformer blocks found in this model")


def rebuild_swapped(hf_model: torch.nn.Module, i: int) -> torch.nn.Module:
    """A new model whose blocks ``i`` and ``i + 1`` carry each other's weights."""
    prefix = layer_prefix(hf_model)
    a, b = f"{prefix}{i}.", f"{prefix}{i + 1}."
    state = {}
    for key, value in hf_model.state_dict().items():
        if key.startswith(a):
            key = b + key[len(a) :]
        elif key.startswith(b):
            key = a + key[len(b) :]
        state[key] = value
    config = copy.deepcopy(hf_model.config)
    types = getattr(config, "layer_types", None)
    if types is not None:
        types[i], types[i + 1] = types[i + 1], types[i]
    rebuilt = type(hf_model)(config).to(next(hf_model.parameters()).dtype)
    rebuilt.load_state_dict(state)
    return rebuilt.eval()


def _zero(tensor: torch.Tensor, hook: Any) -> torch.Tensor:
    return torch.zeros_like(tensor)


def _drop_hooks(iv: Intervention) -> list[tuple[str, Any]]:
    points = {"drop": ["hook_attn_out", "hook_mlp_out"], "drop_attn": ["hook_attn_out"],
              "drop_mlp": ["hook_mlp_out"]}[iv.kind]  # fmt: skip
    return [(f"blocks.{iv.layer}.{p}", _zero) for p in points]


def _token_metrics(base: torch.Tensor, new: torch.Tensor, targets: torch.Tensor) -> dict[str, list]:
    """Per-token metrics of one sequence, as Python lists (the authors' habit)."""
    logp = torch.log_softmax(base.double(), -1)
    logq = torch.log_softmax(new.double(), -1)
    p = logp.exp()
    return {
        "kl": (p * (logp - logq)).sum(-1).tolist(),
        "rel_acc": (logp.argmax(-1) == logq.argmax(-1)).double().tolist(),
        "entropy_delta": (
            (-(logq.exp() * logq).sum(-1) + (p * logp).sum(-1)) / math.log(2)
        ).tolist(),
        "loss": (-logq.gather(-1, targets[:, None]).squeeze(-1)).tolist(),
    }


def authors_sweep(
    hf_model: torch.nn.Module,
    tokenizer: Any,
    tokens: torch.Tensor,
    interventions: Sequence[Intervention],
    *,
    device: str = "cpu",
    dtype: str = "float32",
) -> pd.DataFrame:
    """Every intervention measured the authors' way; one row per intervention.

    Args:
        hf_model: the unprocessed Hugging Face model (it is copied, never modified).
        tokenizer: its tokenizer.
        tokens: ``[n_seq, seq_len]`` token ids, BOS first.
        interventions: drops, attention-only / MLP-only drops and swaps.
        device: where the models run.
        dtype: the models' dtype.

    Returns:
        ``kind``, ``layer``, ``kl`` (nats), ``rel_acc``, ``entropy_delta`` (bits), ``loss``
        (nats): token means over positions ``1..seq_len-2`` of every sequence; ``seconds``:
        the intervention's wall-clock time (a swap's includes its model rebuild).
    """

    def wrap(model: torch.nn.Module) -> Any:
        return stages.load_model(model, tokenizer=tokenizer, device=device, dtype=dtype)

    base_model = wrap(copy.deepcopy(hf_model))
    rows = []
    for iv in interventions:
        start = time.perf_counter()
        if iv.kind == "swap":
            model, hooks = wrap(rebuild_swapped(hf_model, iv.layer)), []
        else:
            model, hooks = base_model, _drop_hooks(iv)
        lists: dict[str, list] = {"kl": [], "rel_acc": [], "entropy_delta": [], "loss": []}
        for row in tokens:
            seq = row[None].to(device)
            with torch.no_grad():
                base = base_model(seq, use_cache=False)[0, 1:-1]
                with model.hooks(fwd_hooks=hooks):
                    new = model(seq, use_cache=False)[0, 1:-1]
            for name, values in _token_metrics(base, new, seq[0, 2:]).items():
                lists[name] += values
        rows.append({"kind": iv.kind, "layer": iv.layer}
                    | {name: sum(v) / len(v) for name, v in lists.items()}
                    | {"seconds": time.perf_counter() - start})  # fmt: skip
    return pd.DataFrame(rows)
