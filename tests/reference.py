"""The slow, independent reference: plain surgery on a deep copy of a Hugging Face model.

Nothing here uses ``stages``' engine or TransformerLens. An intervention is given by the name
and arguments of its factory (``("reverse", 1, 4)`` for ``stages.reverse(1, 4)``) and done by
editing the model: the layer list is rebuilt in the new order (a dropped block deleted, a
repeated block listed twice), a dropped attention / MLP has its output projection zeroed, and
parallel blocks are wrappers that each run their block on the residual entering the first and
average the outputs at the last. Then one full forward pass, and metrics from the logits.
For Gemma 3 the model picks each layer's mask and RoPE table by position from
``config.layer_types``, so that list is rebuilt alongside the layers: a block keeps its own
type (a parallel wrapper sits at its block's own position, so it gets its block's arguments).
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch

Spec = tuple  # ("none",), ("drop", i), ("drop_component", i, "attn"), ("swap", i), ...


def _get(obj: object, path: str) -> object | None:
    """``obj.a.b`` for ``path == "a.b"``, or None where an attribute is missing."""
    for part in path.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


_LAYER_PATHS = ("transformer.h", "gpt_neox.layers", "model.layers")


def _layer_list(model: torch.nn.Module) -> tuple[torch.nn.Module, str]:
    """``(parent, attribute)`` of the model's list of decoder layers."""
    (found,) = [path for path in _LAYER_PATHS if _get(model, path) is not None]
    parent, _, name = found.rpartition(".")
    return _get(model, parent), name


def _layers(model: torch.nn.Module) -> torch.nn.ModuleList:
    parent, attr = _layer_list(model)
    return getattr(parent, attr)


def _output_projections(block: torch.nn.Module, component: str) -> list[torch.nn.Module]:
    names = {
        "attn": ("attn.c_proj", "attention.dense", "self_attn.dense", "self_attn.o_proj"),
        "mlp": ("mlp.c_proj", "mlp.dense_4h_to_h", "mlp.fc2", "mlp.down_proj"),
    }[component]
    found = [x for name in names if (x := _get(block, name)) is not None]
    assert len(found) == 1, (component, names)
    return found


class _Parallel(torch.nn.Module):
    """One of the blocks ``i..j-1`` run side by side: each reads the residual entering ``i``.

    Every wrapper but the last passes that residual on unchanged; the last returns the mean of
    the blocks' outputs. ``shared`` is one dict for the whole group.
    """

    def __init__(self, block: torch.nn.Module, shared: dict, last: bool) -> None:
        super().__init__()
        self.block, self.shared, self.last = block, shared, last

    def forward(self, hidden: torch.Tensor, *args, **kwargs):
        entering = self.shared.setdefault("input", hidden)
        out = self.block(entering, *args, **kwargs)
        self.shared.setdefault("outputs", []).append(out[0] if isinstance(out, tuple) else out)
        result = entering
        if self.last:
            result = torch.stack(self.shared.pop("outputs")).mean(0)
            del self.shared["input"]
        return (result, *out[1:]) if isinstance(out, tuple) else result


def _reorder(n: int, spec: Spec) -> list[int]:
    """The blocks the edited model runs, in order, for the specs that reorder the list."""
    name, *args = spec
    blocks = list(range(n))
    if name == "drop":
        (i,) = args
        return blocks[:i] + blocks[i + 1 :]
    if name == "drop_range":
        i, j = args
        return blocks[:i] + blocks[j:]
    if name == "swap":
        (i,) = args
        return blocks[:i] + [i + 1, i] + blocks[i + 2 :]
    if name == "reverse":
        i, j = args
        return blocks[:i] + blocks[i:j][::-1] + blocks[j:]
    if name == "shuffle":
        i, j, seed = args
        order = np.random.default_rng(seed).permutation(np.arange(i, j)).tolist()
        return blocks[:i] + order + blocks[j:]
    if name == "repeat":
        i, j, times = args
        return blocks[:i] + blocks[i:j] * times + blocks[j:]
    if name == "duplicate":
        i, j, times = args
        return blocks[:i] + [k for k in blocks[i:j] for _ in range(times)] + blocks[j:]
    return blocks  # none, drop_component, parallel keep the list


def surgery(model: torch.nn.Module, spec: Spec) -> torch.nn.Module:
    """Return a deep copy of ``model`` with the factory call ``spec`` applied to its modules."""
    m = copy.deepcopy(model)
    parent, attr = _layer_list(m)
    layers = list(getattr(parent, attr))
    types = getattr(m.config, "layer_types", None)
    name, *args = spec
    if name == "drop_component":
        i, component = args
        for proj in _output_projections(layers[i], component):
            with torch.no_grad():
                proj.weight.zero_()
                if getattr(proj, "bias", None) is not None:
                    proj.bias.zero_()
    elif name == "parallel":
        i, j = args
        shared: dict = {}
        for k in range(i, j):
            layers[k] = _Parallel(layers[k], shared, last=k == j - 1)
    order = _reorder(len(layers), spec)
    setattr(parent, attr, torch.nn.ModuleList([layers[k] for k in order]))
    if types is not None:
        m.config.layer_types = [types[k] for k in order]
    for count in ("num_hidden_layers", "n_layer"):
        if hasattr(m.config, count):
            setattr(m.config, count, len(order))
    return m


def reference_logits(model: torch.nn.Module, tokens: torch.Tensor, spec: Spec) -> torch.Tensor:
    """Logits ``[batch, pos, d_vocab]`` of the surgically edited copy."""
    with torch.no_grad():
        return surgery(model, spec)(tokens, use_cache=False).logits


def reference_metrics(
    base: torch.Tensor, new: torch.Tensor, tokens: torch.Tensor
) -> dict[str, float]:
    """Token-averaged metrics over positions 1..n-2 from full logits, written out plainly."""
    p = torch.softmax(base[:, 1:-1].double(), -1)
    q = torch.softmax(new[:, 1:-1].double(), -1)
    kl = (p * (p.log() - q.log())).sum(-1)
    agree = (p.argmax(-1) == q.argmax(-1)).double()
    h_p = -(p * p.log()).sum(-1)
    h_q = -(q * q.log()).sum(-1)
    target = tokens[:, 2:]
    loss = -q.log().gather(-1, target[..., None]).squeeze(-1)
    return {
        "kl": kl.mean().item(),
        "rel_acc": agree.mean().item(),
        "entropy_delta": ((h_q - h_p) / math.log(2)).mean().item(),
        "loss": loss.mean().item(),
    }
