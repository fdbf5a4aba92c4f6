"""Running plans: one baseline pass per batch, then each plan from where it starts.

Shapes use TransformerLens words: ``batch pos d_model d_vocab``. The engine never copies or
rebuilds the model. One baseline pass per batch records, for every block, the residual entering
it and the exact extra arguments Hugging Face passed it (attention mask, rotary table, position
ids). A plan (:mod:`stages.engine.plans`) then starts from the baseline ``resid_pre[start]``,
runs its own blocks and calls the blocks after its span directly, each with the arguments it got
in the baseline pass. Zeroing hooks are removed on exit, also after an exception, so the model
is unchanged after any plan.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch

from stages.engine.hooks import checked_hooks
from stages.engine.plans import BASELINE, Plan
from stages.shapes import Logits, Model, Resid, Tokens


def n_layers(model: Model) -> int:
    """Number of transformer blocks of a ``TransformerBridge``."""
    return len(model.blocks)


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

    resid_pre: list[Resid]
    block_args: list[tuple[tuple[Any, ...], dict[str, Any]]]

    @property
    def final_resid(self) -> Resid:
        """Output of the last block, ``[batch, pos, d_model]``."""
        return self.resid_pre[-1]


class _StopForward(Exception):
    """Raised by the last block's hook so the baseline pass skips the (huge) unembedding."""


def _forward_until_stopped(model: Model, tokens: Tokens, handles: list[Any]) -> None:
    """One pass of ``model`` on ``tokens``, ended by a hook of ``handles`` (:class:`_StopForward`).

    The hooks are removed however the pass ends.
    """
    try:
        with torch.no_grad():
            model(tokens.to(model.cfg.device), use_cache=False, return_type=None)
    except _StopForward:
        pass
    finally:
        for h in handles:
            h.remove()


def capture_baseline(model: Model, tokens: Tokens) -> BaselineRun:
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
    _forward_until_stopped(model, tokens, handles)
    if any(r is None for r in resid):
        raise RuntimeError(
            "the baseline pass did not reach every block; is this a decoder-only model?"
        )
    return BaselineRun(resid_pre=resid, block_args=args)  # type: ignore[arg-type]


def run_to_last_block(model: Model, tokens: Tokens) -> Resid:
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
    _forward_until_stopped(model, tokens, [handle])
    if not out:
        raise RuntimeError("the forward pass did not reach the last block")
    return out[0]


def _first(out: Any) -> torch.Tensor:
    return out[0] if isinstance(out, (tuple, list)) else out


def run_block(
    model: Model, j: int, hidden: Resid, base: BaselineRun, args_of: int | None = None
) -> Resid:
    """Apply block ``j`` to ``hidden`` with the arguments block ``args_of`` (default ``j``) got."""
    rest, kw = base.block_args[j if args_of is None else args_of]
    return _first(model.blocks[j](hidden, *rest, **kw))


def _zero(tensor: torch.Tensor, hook: Any = None) -> torch.Tensor:
    return torch.zeros_like(tensor)


@contextmanager
def zeroed(model: Model, plan: Plan) -> Iterator[None]:
    """Set ``plan.zeroed``'s hook points to zero inside; the hooks are removed on exit."""
    if not plan.zeroed:
        yield
        return
    with checked_hooks(model, [(name, _zero) for name in plan.zeroed]):
        yield


def run_own(model: Model, base: BaselineRun, plan: Plan) -> Resid:
    """``[batch, pos, d_model]``: what ``plan`` puts in place of ``resid_pre[plan.stop]``.

    Runs ``plan.order`` from the baseline ``resid_pre[plan.start]``, one block after another or,
    with ``combine="mean"``, each on that residual and averaged.
    """
    hidden = base.resid_pre[plan.start]
    with torch.no_grad(), zeroed(model, plan):
        if plan.combine == "mean":
            return torch.stack([run_block(model, j, hidden, base) for j in plan.order]).mean(0)
        for j in plan.order:
            hidden = run_block(model, j, hidden, base)
    return hidden


def run_intervened(model: Model, base: BaselineRun, plan: Plan) -> Resid:
    """Final residual ``[batch, pos, d_model]`` (before the final norm) under ``plan``.

    Computes only the plan's own blocks and the blocks after its span.
    """
    plan.validate(len(base.block_args))
    with torch.no_grad():
        return _run_tail(model, base, run_own(model, base, plan), plan.stop)


def start_groups(plans: Sequence[Plan]) -> list[list[Plan]]:
    """Group plans by the block they start from, in order of first appearance.

    A sweep's drop ``i``, attention-only drop ``i``, MLP-only drop ``i`` and swap ``(i, i + 1)``
    all start from ``resid_pre[i]`` and, after one or two blocks of their own, run the same
    blocks ``i + 2..L-1``: :func:`run_group` runs that shared tail once for the whole group.
    """
    groups: dict[int, list[Plan]] = {}
    for plan in plans:
        groups.setdefault(plan.start, []).append(plan)
    return list(groups.values())


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


def run_group(model: Model, base: BaselineRun, group: Sequence[Plan]) -> list[Resid]:
    """Final residuals ``[batch, pos, d_model]`` of plans that start at the same block.

    Each plan first runs its own blocks and then, alone, the blocks up to the group's last
    ``stop``; the blocks from there on, which every plan runs in the plain order, run once, on
    the group's residuals stacked along the batch (each block's baseline arguments repeated to
    match). The result equals :func:`run_intervened` per plan, up to floating-point
    reassociation in the larger matrix products.

    Raises:
        ValueError: the plans do not all start at the same block.
    """
    n = len(base.block_args)
    if len({plan.start for plan in group}) > 1:
        raise ValueError(f"run_group takes plans with one start layer, got {group!r}")
    for plan in group:
        plan.validate(n)
    k = max(plan.stop for plan in group)
    heads = []
    with torch.no_grad():
        for plan in group:
            hidden = run_own(model, base, plan)
            for j in range(plan.stop, k):
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


def _run_tail(model: Model, base: BaselineRun, hidden: Resid, k: int) -> Resid:
    for j in range(k, len(base.block_args)):
        hidden = run_block(model, j, hidden, base)
    return hidden


def head(model: Model, resid: Resid) -> Logits:
    """Final norm and unembedding: ``[..., d_model]`` residual to ``[..., d_vocab]`` logits.

    Applies the Hugging Face config's ``final_logit_softcapping`` where a model has one (Gemma 2).
    """
    with torch.no_grad():
        logits = model.unembed(model.ln_final(resid))
    cap = getattr(model.original_model.config, "final_logit_softcapping", None)
    if cap:
        logits = torch.tanh(logits / cap) * cap
    return logits


def intervened_logits(model: Model, tokens: Tokens, iv: Plan = BASELINE) -> Logits:
    """Full logits ``[batch, pos, d_vocab]`` of ``model`` on ``tokens`` under one intervention.

    A convenience for small inputs; :func:`stages.run_sweep` streams metrics instead.
    """
    base = capture_baseline(model, tokens)
    return head(model, run_intervened(model, base, iv))


def validate_interventions(model: Model, plans: Sequence[Plan]) -> list[Plan]:
    """Check types and spans; return the list. Raises ValueError naming the bad entry."""
    n = n_layers(model)
    for plan in plans:
        if not isinstance(plan, Plan):
            raise ValueError(f"expected plans such as stages.drop(3), got {plan!r}")
        plan.validate(n)
    return list(plans)
