"""Interventions as plans: what runs in place of a span of blocks, and the families of plans.

Conventions: layers are 0-based block indices. ``resid_pre[i]`` is the residual stream entering
block ``i`` (TransformerLens ``blocks.{i}.hook_resid_pre``).

A plan replaces the blocks ``start..stop-1`` of an ``L``-block model by running ``order`` (block
indices, repeats allowed, each in ``start..stop-1``) from ``resid_pre[start]``, with the hook
points in ``zeroed`` set to zero while they run; the blocks ``stop..L-1`` then run as usual.
With ``combine="mean"`` every block of ``order`` reads the same input, ``resid_pre[start]``, and
the residual after them is the mean of their outputs ("Transformer Layers as Painters").

Every block runs with its own weights *and its own arguments*: for Gemma 3, whose layers
alternate sliding-window and global attention with different RoPE bases, a moved or repeated
block keeps its own attention type and RoPE table, both properties of the weights it was
trained with.

A new family is one factory below plus one line in :data:`FAMILIES`. Labels read
``"<kind> <first>[-<last>][ <detail>]"`` (``first..last`` the blocks the plan spans,
inclusive): ``"drop 3"``, ``"swap 3-4"``, ``"shuffle 2-5 seed 1"``; a sweep's table derives its
``kind``, ``layer`` and ``layers`` columns from them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from stages.shapes import Model


@dataclass(frozen=True)
class Family:
    """How plots and benchmarks show one family of plans: a readable title and a colour."""

    title: str
    color: str


FAMILIES: dict[str, Family] = {
    "none": Family("baseline", "#525252"),
    "drop": Family("drop layer", "#1f78b4"),
    "drop_attn": Family("drop attention only", "#e6550d"),
    "drop_mlp": Family("drop MLP only", "#31a354"),
    "swap": Family("swap layers i, i+1", "#6a3d9a"),
    "drop_range": Family("drop layers i..j-1", "#a6cee3"),
    "reverse": Family("reverse layers i..j-1", "#b15928"),
    "shuffle": Family("shuffle layers i..j-1", "#fb9a99"),
    "repeat": Family("repeat layers i..j-1", "#ff7f00"),
    "parallel": Family("run layers i..j-1 in parallel", "#cab2d6"),
    "duplicate": Family("run each of layers i..j-1 n times", "#8c6d31"),
}

_ZEROABLE = re.compile(r"blocks\.(\d+)\.hook_(attn_out|mlp_out)")


@dataclass(frozen=True)
class Plan:
    """A plan: run ``order`` in place of blocks ``start..stop-1`` (see the module docstring).

    Build plans with the factories (:func:`drop`, :func:`swap`, ...), not by hand.

    Attributes:
        kind: the family, a key of :data:`FAMILIES` (the table's ``kind`` column).
        start: the block whose input the plan starts from.
        stop: the first block after the span the plan replaces (``start`` for the baseline).
        order: the blocks run in place of ``start..stop-1``, in order (repeats allowed).
        zeroed: TransformerLens hook names set to zero while ``order`` runs, each in a block of
            ``order`` (``"blocks.4.hook_attn_out"``).
        combine: None (the blocks run one after another) or ``"mean"`` (each reads the
            residual entering ``start``; the result is the mean of their outputs).
        detail: what tells apart plans of one kind over one span (``"seed 1"``, ``"x3"``).
    """

    kind: str
    start: int
    stop: int
    order: tuple[int, ...] = ()
    zeroed: tuple[str, ...] = ()
    combine: Literal["mean"] | None = None
    detail: str = ""

    def __post_init__(self) -> None:
        if self.kind not in FAMILIES:
            raise ValueError(f"unknown intervention kind {self.kind!r}: one of {tuple(FAMILIES)}")
        object.__setattr__(self, "order", tuple(int(j) for j in self.order))
        object.__setattr__(self, "zeroed", tuple(self.zeroed))
        if self.start < 0:
            raise ValueError(f"layer indices are non-negative, got {self.start}")
        if self.stop <= self.start and self.kind != "none":
            raise ValueError(f"{self.kind}: an empty span {self.start}..{self.stop - 1}")
        if any(not self.start <= j < self.stop for j in self.order):
            raise ValueError(f"{self.label}: order {self.order} leaves the span")
        for name in self.zeroed:
            found = _ZEROABLE.fullmatch(name)
            if found is None or int(found[1]) not in self.order:
                raise ValueError(f"{self.label}: cannot zero {name!r} (a hook_attn_out or "
                                 "hook_mlp_out of a block the plan runs)")  # fmt: skip
        if self.combine not in (None, "mean") or (self.combine and not self.order):
            raise ValueError(f"{self.label}: combine must be None or 'mean' over some blocks")
        if ":" in self.detail:
            raise ValueError("a plan's detail may not contain ':' (it separates sum columns)")

    @property
    def layer(self) -> int:
        """The first block the plan touches (-1 for the baseline)."""
        return self.start if self.stop > self.start else -1

    @property
    def layers(self) -> str:
        """The span as text: ``"3"``, ``"3-4"``, ``""`` for the baseline."""
        if self.stop <= self.start:
            return ""
        last = self.stop - 1
        return str(self.start) if last == self.start else f"{self.start}-{last}"

    @property
    def label(self) -> str:
        """``"<kind> <layers>[ <detail>]"``: ``"drop 3"``, ``"swap 3-4"``, ``"none"``."""
        return " ".join(x for x in (self.kind, self.layers, self.detail) if x)

    def validate(self, n_layers: int) -> None:
        """Raise ValueError if the span leaves a model with ``n_layers`` blocks."""
        if self.stop > n_layers:
            raise ValueError(
                f"{self.label}: layer index out of range for a model with {n_layers} layers "
                f"(valid: 0..{n_layers - 1})"
            )

    def blocks_run(self, n_layers: int) -> int:
        """Blocks this plan runs on its own, from ``start`` to the end of the model."""
        return len(self.order) + n_layers - self.stop


def label_columns(label: str, n_layers: int) -> dict[str, Any]:
    """A table row's plan columns from the plan's label.

    ``"swap 3-4"`` gives ``kind="swap"``, ``layer=3`` (where the plan starts), ``layers="3-4"``
    and ``rel_depth = layer / (n_layers - 1)``; the baseline ``"none"`` gives ``layer=-1``,
    ``layers=""`` and a NaN depth.
    """
    kind, _, rest = label.partition(" ")
    layers = rest.split(" ")[0]
    if kind not in FAMILIES or (kind != "none" and not re.fullmatch(r"\d+(-\d+)?", layers)):
        raise ValueError(f"not an intervention label: {label!r}")
    layer = int(layers.split("-")[0]) if layers else -1
    rel_depth = layer / max(1, n_layers - 1) if layers else float("nan")
    return {"kind": kind, "layer": layer, "layers": layers, "rel_depth": rel_depth}


Intervention = Plan
"""The former name of :class:`Plan` (0.2.0 and earlier), kept for code written against it."""

BASELINE = Plan("none", 0, 0)


def _span(i: int, j: int, least: int) -> None:
    if j - i < least:
        raise ValueError(f"a span i..j-1 of at least {least} blocks, got i={i}, j={j}")


def drop(i: int) -> Plan:
    """Skip block ``i``: ``resid_post[i] = resid_pre[i]``."""
    return Plan("drop", i, i + 1)


def drop_range(i: int, j: int) -> Plan:
    """Skip blocks ``i..j-1``: ``resid_pre[j]`` becomes ``resid_pre[i]``."""
    _span(i, j, 1)
    return Plan("drop_range", i, j)


def drop_component(i: int, component: Literal["attn", "mlp"]) -> Plan:
    """Run block ``i`` with its attention or MLP output (``hook_attn_out`` / ``hook_mlp_out``) zero.

    Exactly what that component adds to the residual stream: after Gemma's post-norms; for
    parallel blocks (GPT-NeoX, Phi) the one term of the sum.
    """
    if component not in ("attn", "mlp"):
        raise ValueError(f"component must be 'attn' or 'mlp', got {component!r}")
    return Plan(f"drop_{component}", i, i + 1, (i,), (f"blocks.{i}.hook_{component}_out",))


def swap(i: int) -> Plan:
    """Run block ``i + 1`` then block ``i``."""
    return Plan("swap", i, i + 2, (i + 1, i))


def reverse(i: int, j: int) -> Plan:
    """Run blocks ``j-1, j-2, ..., i``."""
    _span(i, j, 2)
    return Plan("reverse", i, j, tuple(range(j - 1, i - 1, -1)))


def shuffle(i: int, j: int, seed: int) -> Plan:
    """Run blocks ``i..j-1`` in the order ``numpy.random.default_rng(seed).permutation``."""
    _span(i, j, 2)
    order = np.random.default_rng(seed).permutation(np.arange(i, j))
    return Plan("shuffle", i, j, tuple(order.tolist()), detail=f"seed {int(seed)}")


def repeat(i: int, j: int, times: int) -> Plan:
    """Run blocks ``i..j-1`` ``times`` times over (``times = 1`` is the unperturbed model)."""
    _span(i, j, 1)
    if times < 1:
        raise ValueError(f"times must be >= 1, got {times}")
    return Plan("repeat", i, j, tuple(range(i, j)) * times, detail=f"x{int(times)}")


def duplicate(i: int, j: int, times: int) -> Plan:
    """Run each block of ``i..j-1`` ``times`` times in place: ``i, i, i+1, i+1, ...`` for 2.

    The layer duplication of the paper's later version (its code copies every block of the
    range ``times - 1`` times, next to itself); :func:`repeat` runs the whole range again.
    """
    _span(i, j, 1)
    if times < 1:
        raise ValueError(f"times must be >= 1, got {times}")
    order = tuple(k for k in range(i, j) for _ in range(times))
    return Plan("duplicate", i, j, order, detail=f"x{int(times)}")


def parallel(i: int, j: int) -> Plan:
    """Every block of ``i..j-1`` reads ``resid_pre[i]``; ``resid_pre[j]`` is their outputs' mean."""
    _span(i, j, 2)
    return Plan("parallel", i, j, tuple(range(i, j)), combine="mean")


def drops(model: Model, component: Literal["block", "attn", "mlp"] = "block") -> list[Plan]:
    """All single-layer drops of ``model``: whole blocks, or only their attention or MLP."""
    if component not in ("block", "attn", "mlp"):
        raise ValueError(f"component must be 'block', 'attn' or 'mlp', got {component!r}")
    n = len(model.blocks)
    if component == "block":
        return [drop(i) for i in range(n)]
    return [drop_component(i, component) for i in range(n)]


def swaps(model: Model) -> list[Plan]:
    """All adjacent swaps ``(i, i + 1)`` of ``model``, ``i`` in ``0..L-2``."""
    return [swap(i) for i in range(len(model.blocks) - 1)]
