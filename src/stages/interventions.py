"""Layer interventions (drop, attention-only drop, MLP-only drop, adjacent swap) and their engine.

Conventions: layers are 0-based block indices. ``resid_pre[i]`` is the residual stream entering
block ``i`` (TransformerLens ``blocks.{i}.hook_resid_pre``); block ``i`` maps it to
``resid_pre[i + 1]`` (``blocks.{i}.hook_resid_post``). Shapes use TransformerLens words:
``batch pos d_model d_vocab``.

The engine never copies or rebuilds the model. One baseline pass per batch records, for every
block, the residual entering it and the exact extra arguments Hugging Face passed it (attention
mask, rotary table, position ids). An intervention at layer ``i`` then starts from the baseline
``resid_pre[i]`` and calls blocks ``i..L-1`` directly, in the intervened order:

- ``drop``: block ``i`` is skipped; ``resid_post[i] = resid_pre[i]``.
- ``drop_attn`` / ``drop_mlp``: block ``i`` runs with ``blocks.{i}.hook_attn_out`` /
  ``hook_mlp_out`` set to zero, i.e. exactly what that component adds to the residual stream
  (after Gemma's post-norms; for parallel blocks, GPT-NeoX and Phi, the one term of the sum).
- ``swap``: blocks ``i + 1`` then ``i`` run, each with its own weights *and its own arguments*.
  For Gemma 3, whose layers alternate sliding-window and global attention with different RoPE
  bases, a moved block keeps its own attention type and RoPE table: both are properties of the
  weights it was trained with.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import torch

Kind = Literal["none", "drop", "drop_attn", "drop_mlp", "swap"]
KINDS: tuple[str, ...] = ("none", "drop", "drop_attn", "drop_mlp", "swap")


@dataclass(frozen=True, order=True)
class Intervention:
    """One layer-wise intervention.

    Attributes:
        kind: ``"drop"`` (whole block), ``"drop_attn"``, ``"drop_mlp"``, ``"swap"`` (blocks
            ``i`` and ``i + 1`` run in exchanged order) or ``"none"`` (the baseline).
        layers: ``(i,)`` for drops, ``(i, i + 1)`` for a swap, ``()`` for ``"none"``.
    """

    kind: Kind
    layers: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown intervention kind {self.kind!r}: use one of {KINDS}")
        layers = tuple(int(x) for x in self.layers)
        object.__setattr__(self, "layers", layers)
        expected = {"none": 0, "swap": 2}.get(self.kind, 1)
        if len(layers) != expected:
            raise ValueError(f"{self.kind!r} takes {expected} layer index(es), got {layers!r}")
        if self.kind == "swap" and layers[1] != layers[0] + 1:
            raise ValueError(f"a swap exchanges adjacent layers (i, i + 1), got {layers!r}")
        if any(x < 0 for x in layers):
            raise ValueError(f"layer indices are non-negative, got {layers!r}")

    @property
    def layer(self) -> int:
        """The first layer the intervention touches (-1 for ``"none"``)."""
        return self.layers[0] if self.layers else -1

    @property
    def label(self) -> str:
        """A short label: ``drop 3``, ``swap 3-4``, ``none``."""
        if self.kind == "none":
            return "none"
        return f"{self.kind} {'-'.join(map(str, self.layers))}"

    @classmethod
    def from_label(cls, label: str) -> Intervention:
        """The intervention whose :attr:`label` is ``label`` (``"drop 3"``, ``"swap 3-4"``)."""
        if label == "none":
            return cls("none")
        kind, _, layers = label.partition(" ")
        try:
            return cls(kind, tuple(int(x) for x in layers.split("-")))  # type: ignore[arg-type]
        except ValueError as err:
            raise ValueError(f"not an intervention label: {label!r} ({err})") from err

    def validate(self, n_layers: int) -> None:
        """Raise ValueError if a layer index is outside ``0..n_layers-1``."""
        if any(x >= n_layers for x in self.layers):
            raise ValueError(
                f"{self.label}: layer index out of range for a model with {n_layers} layers "
                f"(valid: 0..{n_layers - 1})"
            )


BASELINE = Intervention("none")


def n_layers(model: Any) -> int:
    """Number of transformer blocks of a ``TransformerBridge``."""
    return len(model.blocks)


def drops(model: Any, component: Literal["block", "attn", "mlp"] = "block") -> list[Intervention]:
    """All single-layer drops: whole blocks, or only their attention or MLP (``component``)."""
    kind = {"block": "drop", "attn": "drop_attn", "mlp": "drop_mlp"}.get(component)
    if kind is None:
        raise ValueError(f"component must be 'block', 'attn' or 'mlp', got {component!r}")
    return [Intervention(kind, (i,)) for i in range(n_layers(model))]


def swaps(model: Any) -> list[Intervention]:
    """All adjacent swaps ``(i, i + 1)`` for ``i`` in ``0..L-2``."""
    return [Intervention("swap", (i, i + 1)) for i in range(n_layers(model) - 1)]


@dataclass
class BaselineRun:
    """What one unperturbed pass records for the intervention engine.

    Attributes:
        resid_pre: ``L + 1`` tensors ``[batch, pos, d_model]``: entry ``j`` is the residual
            entering block ``j``; entry ``L`` is the output of the last block (before the final
            norm).
        block_args: per block, the positional arguments after the hidden state and the keyword
            arguments Hugging Face passed it (masks, rotary tables, position ids).
    """

    resid_pre: list[torch.Tensor]
    block_args: list[tuple[tuple[Any, ...], dict[str, Any]]]

    @property
    def final_resid(self) -> torch.Tensor:
        """Output of the last block, ``[batch, pos, d_model]``."""
        return self.resid_pre[-1]


class _StopForward(Exception):
    """Raised by the last block's hook so the baseline pass skips the (huge) unembedding."""


def capture_baseline(model: Any, tokens: torch.Tensor) -> BaselineRun:
    """Run the unperturbed model on ``tokens`` ``[batch, pos]`` up to the last block.

    The final norm and unembedding are not applied (see :func:`head`), so no
    ``[batch, pos, d_vocab]`` tensor is made here.
    """
    blocks = list(model.blocks)
    resid: list[torch.Tensor | None] = [None] * (len(blocks) + 1)
    args: list[Any] = [None] * len(blocks)

    def pre_hook(j: int):
        def hook(_module: Any, a: tuple[Any, ...], kw: dict[str, Any]) -> None:
            if "hidden_states" in kw:
                kw = dict(kw)
                hidden = kw.pop("hidden_states")
                rest = a
            else:
                hidden, rest = a[0], a[1:]
            resid[j] = hidden.detach()
            args[j] = (tuple(rest), dict(kw))

        return hook

    def last_hook(_module: Any, _a: Any, _kw: Any, out: Any) -> None:
        resid[-1] = _first(out).detach()
        raise _StopForward

    handles = [
        b.register_forward_pre_hook(pre_hook(j), with_kwargs=True) for j, b in enumerate(blocks)
    ]
    handles.append(blocks[-1].register_forward_hook(last_hook, with_kwargs=True))
    try:
        with torch.no_grad():
            model(tokens.to(model.cfg.device), use_cache=False, return_type=None)
    except _StopForward:
        pass
    finally:
        for h in handles:
            h.remove()
    if any(r is None for r in resid):
        raise RuntimeError(
            "the baseline pass did not reach every block; is this a decoder-only model?"
        )
    return BaselineRun(resid_pre=resid, block_args=args)  # type: ignore[arg-type]


def run_to_last_block(model: Any, tokens: torch.Tensor) -> torch.Tensor:
    """Run ``model`` on ``tokens`` up to the output of its last block, and return that output.

    The final norm and the unembedding are skipped (with a 262k vocabulary they cost more than
    the blocks); every hook on the blocks fires as in a full pass. Returns ``[batch, pos,
    d_model]``, the residual before the final norm.
    """
    out: list[torch.Tensor] = []

    def last_hook(_module: Any, _a: Any, _kw: Any, result: Any) -> None:
        out.append(_first(result).detach())
        raise _StopForward

    handle = model.blocks[-1].register_forward_hook(last_hook, with_kwargs=True)
    try:
        with torch.no_grad():
            model(tokens.to(model.cfg.device), use_cache=False, return_type=None)
    except _StopForward:
        pass
    finally:
        handle.remove()
    if not out:
        raise RuntimeError("the forward pass did not reach the last block")
    return out[0]


def _first(out: Any) -> torch.Tensor:
    return out[0] if isinstance(out, (tuple, list)) else out


def run_block(
    model: Any, j: int, hidden: torch.Tensor, base: BaselineRun, args_of: int | None = None
) -> torch.Tensor:
    """Apply block ``j`` to ``hidden`` with the arguments block ``args_of`` (default ``j``) got."""
    rest, kw = base.block_args[j if args_of is None else args_of]
    return _first(model.blocks[j](hidden, *rest, **kw))


def _zero(tensor: torch.Tensor, hook: Any = None) -> torch.Tensor:
    return torch.zeros_like(tensor)


@contextmanager
def component_zeroed(model: Any, iv: Intervention) -> Iterator[None]:
    """Zero block ``i``'s attention or MLP output (``hook_attn_out`` / ``hook_mlp_out``) inside.

    A no-op for kinds other than ``drop_attn`` / ``drop_mlp``. The hook is removed on exit, also
    after an exception.
    """
    name = {"drop_attn": "hook_attn_out", "drop_mlp": "hook_mlp_out"}.get(iv.kind)
    if name is None:
        yield
        return
    with model.hooks(fwd_hooks=[(f"blocks.{iv.layer}.{name}", _zero)]):
        yield


def block_order(iv: Intervention, n: int) -> tuple[int, list[int]]:
    """Return ``(start, order)``: the tail starts from ``resid_pre[start]`` and runs ``order``.

    Example: with ``n = 5``, ``swap (1, 2)`` gives ``(1, [2, 1, 3, 4])`` and ``drop 3`` gives
    ``(3, [4])``.
    """
    iv.validate(n)
    if iv.kind == "none":
        return 0, list(range(n))
    i = iv.layer
    if iv.kind == "drop":
        return i, list(range(i + 1, n))
    if iv.kind == "swap":
        if i + 1 >= n:
            raise ValueError(f"{iv.label}: no layer {i + 1} in a {n}-layer model")
        return i, [i + 1, i, *range(i + 2, n)]
    return i, list(range(i, n))


def run_intervened(model: Any, base: BaselineRun, iv: Intervention) -> torch.Tensor:
    """Final residual ``[batch, pos, d_model]`` (before the final norm) under ``iv``.

    Starts from the baseline residual entering the first touched layer and computes only the
    blocks from there on; each block gets the arguments it got in the baseline pass.
    """
    start, order = block_order(iv, len(base.block_args))
    hidden = base.resid_pre[start]
    with torch.no_grad(), component_zeroed(model, iv):
        for j in order:
            hidden = run_block(model, j, hidden, base)
    return hidden


def start_groups(interventions: Sequence[Intervention]) -> list[list[Intervention]]:
    """Group interventions by the layer they start from, in order of first appearance.

    A sweep's drop ``i``, attention-only drop ``i``, MLP-only drop ``i`` and swap ``(i, i + 1)``
    all start from ``resid_pre[i]`` and, after one or two blocks of their own, run the same
    blocks ``i + 2..L-1``: :func:`run_group` runs that shared tail once for the whole group.
    """
    groups: dict[int, list[Intervention]] = {}
    for iv in interventions:
        groups.setdefault(iv.layer, []).append(iv)
    return list(groups.values())


def _tail_start(iv: Intervention, order: list[int], n: int) -> int:
    """Smallest ``k`` with ``order`` ending in blocks ``k..n-1`` run plainly (no zeroing)."""
    k = n
    while k > 0 and len(order) >= n - k + 1 and order[len(order) - (n - k + 1)] == k - 1:
        k -= 1
    if iv.kind in ("drop_attn", "drop_mlp"):  # the zeroed block runs on its own
        k = max(k, iv.layer + 1)
    return k


def _repeat_batch(value: Any, batch: int, times: int) -> Any:
    """Repeat every tensor argument whose first dimension is the batch ``times`` times."""
    if isinstance(value, torch.Tensor):
        if value.ndim >= 2 and value.shape[0] == batch:
            return value.repeat(times, *([1] * (value.ndim - 1)))
        return value
    if isinstance(value, tuple):
        return tuple(_repeat_batch(v, batch, times) for v in value)
    if isinstance(value, list):
        return [_repeat_batch(v, batch, times) for v in value]
    if isinstance(value, dict):
        return {k: _repeat_batch(v, batch, times) for k, v in value.items()}
    return value


def run_group(model: Any, base: BaselineRun, group: Sequence[Intervention]) -> list[torch.Tensor]:
    """Final residuals ``[batch, pos, d_model]`` of interventions that start at the same layer.

    Each intervention first runs the blocks it alone runs (its dropped, zeroed or swapped
    blocks); the blocks all of them then run in the plain order are run once, on the group's
    residuals stacked along the batch (each block's baseline arguments repeated to match).
    The result equals :func:`run_intervened` per intervention, up to floating-point
    reassociation in the larger matrix products.

    Raises:
        ValueError: the interventions do not all start at the same layer.
    """
    n = len(base.block_args)
    plans = [block_order(iv, n) for iv in group]
    if len({start for start, _ in plans}) > 1:
        raise ValueError(f"run_group takes interventions with one start layer, got {group!r}")
    k = max(_tail_start(iv, order, n) for iv, (_, order) in zip(group, plans, strict=True))
    heads = []
    with torch.no_grad():
        for iv, (start, order) in zip(group, plans, strict=True):
            hidden = base.resid_pre[start]
            with component_zeroed(model, iv):
                for j in order[: len(order) - (n - k)]:
                    hidden = run_block(model, j, hidden, base)
            heads.append(hidden)
        if k == n or len(heads) == 1:
            return [_run_tail(model, base, h, k) for h in heads]
        batch = heads[0].shape[0]
        hidden = torch.cat(heads)
        for j in range(k, n):
            rest, kw = _repeat_batch(base.block_args[j], batch, len(heads))
            hidden = _first(model.blocks[j](hidden, *rest, **kw))
    return list(hidden.split(batch))


def _run_tail(model: Any, base: BaselineRun, hidden: torch.Tensor, k: int) -> torch.Tensor:
    for j in range(k, len(base.block_args)):
        hidden = run_block(model, j, hidden, base)
    return hidden


def head(model: Any, resid: torch.Tensor) -> torch.Tensor:
    """Final norm and unembedding: ``[..., d_model]`` residual to ``[..., d_vocab]`` logits.

    Applies the Hugging Face config's ``final_logit_softcapping`` where a model has one (Gemma 2).
    """
    with torch.no_grad():
        logits = model.unembed(model.ln_final(resid))
    cap = getattr(model.original_model.config, "final_logit_softcapping", None)
    if cap:
        logits = torch.tanh(logits / cap) * cap
    return logits


def intervened_logits(
    model: Any, tokens: torch.Tensor, iv: Intervention = BASELINE
) -> torch.Tensor:
    """Full logits ``[batch, pos, d_vocab]`` of ``model`` on ``tokens`` under one intervention.

    A convenience for small inputs; :func:`stages.run_sweep` streams metrics instead.
    """
    base = capture_baseline(model, tokens)
    return head(model, run_intervened(model, base, iv))


def validate_interventions(model: Any, interventions: Sequence[Intervention]) -> list[Intervention]:
    """Check types and layer ranges; return the list. Raises ValueError naming the bad entry."""
    n = n_layers(model)
    out = []
    for iv in interventions:
        if not isinstance(iv, Intervention):
            raise ValueError(f"expected stages.Intervention objects, got {iv!r}")
        block_order(iv, n)  # validates the layer indices
        out.append(iv)
    return out
