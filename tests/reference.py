"""The slow, independent reference: plain surgery on a deep copy of a Hugging Face model.

Nothing here uses ``stages``' engine or TransformerLens: a dropped block is deleted from the
model's layer list, a dropped attention / MLP has its output projection zeroed, a swap exchanges
two entries of the layer list; then one full forward pass, and metrics recomputed from logits.
For Gemma 3 the model picks each layer's mask and RoPE table by position from
``config.layer_types``, so the list is edited alongside the layers: a block keeps its own type.
"""

from __future__ import annotations

import copy
import math

import torch

from stages.interventions import Intervention


def _get(obj: object, path: str) -> object | None:
    """``obj.a.b`` for ``path == "a.b"``, or None where an attribute is missing."""
    for part in path.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


def _layers(model: torch.nn.Module) -> torch.nn.ModuleList:
    paths = ("transformer.h", "gpt_neox.layers", "model.layers")
    (layers,) = [x for path in paths if (x := _get(model, path)) is not None]
    return layers


def _output_projections(block: torch.nn.Module, component: str) -> list[torch.nn.Module]:
    names = {
        "attn": ("attn.c_proj", "attention.dense", "self_attn.dense", "self_attn.o_proj"),
        "mlp": ("mlp.c_proj", "mlp.dense_4h_to_h", "mlp.fc2", "mlp.down_proj"),
    }[component]
    found = [x for name in names if (x := _get(block, name)) is not None]
    assert len(found) == 1, (component, names)
    return found


def surgery(model: torch.nn.Module, iv: Intervention) -> torch.nn.Module:
    """Return a deep copy of ``model`` with ``iv`` applied by editing its modules."""
    m = copy.deepcopy(model)
    layers = _layers(m)
    types = getattr(m.config, "layer_types", None)
    if iv.kind == "drop":
        del layers[iv.layer]
        if types is not None:
            del types[iv.layer]
        for attr in ("num_hidden_layers", "n_layer"):
            if hasattr(m.config, attr):
                setattr(m.config, attr, getattr(m.config, attr) - 1)
    elif iv.kind in ("drop_attn", "drop_mlp"):
        for proj in _output_projections(layers[iv.layer], iv.kind.removeprefix("drop_")):
            with torch.no_grad():
                proj.weight.zero_()
                if getattr(proj, "bias", None) is not None:
                    proj.bias.zero_()
    elif iv.kind == "swap":
        i, j = iv.layers
        a, b = layers[i], layers[j]
        layers[i], layers[j] = b, a
        if types is not None:
            types[i], types[j] = types[j], types[i]
    return m


def reference_logits(
    model: torch.nn.Module, tokens: torch.Tensor, iv: Intervention
) -> torch.Tensor:
    """Logits ``[batch, pos, d_vocab]`` of the surgically edited copy."""
    with torch.no_grad():
        return surgery(model, iv)(tokens, use_cache=False).logits


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
