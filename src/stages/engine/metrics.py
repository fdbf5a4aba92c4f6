"""Per-token comparison metrics between a reference and a candidate next-token distribution.

P is the reference distribution (the unperturbed model), Q the candidate (an intervened model,
or a logit-lens read-out), at one predicted position:

- ``kl``: KL(P || Q) in nats.
- ``rel_acc``: 1 if argmax Q == argmax P else 0; its mean is the paper's relative accuracy.
- ``entropy_delta``: H(Q) - H(P) in bits.
- ``loss``: cross-entropy of Q against the true next token, nats.

Both distributions are read from the final-normed residual ``x`` as ``softmax(W x + b)`` (with a
model's final logit soft-capping where it has one). With a 262k vocabulary the unembedding is
the most expensive step of a sweep, and the softmax passes over ``[n_tok, d_vocab]`` logits cost
as much again when the logits do not fit in the cache. So the logits are never materialised:
they are made one vocabulary *tile* at a time (sized for the cache on the CPU, larger on a GPU),
and an online softmax keeps, per position, the running maximum, ``sum exp``, ``sum exp * logit``
and the argmax, rescaled as the maximum grows (the flash-attention recurrence).

The cross-entropy term of the KL, ``sum_v p_v z_Q,v``, is linear in Q's residual:
``sum_v p_v (W_v x_Q + b_v) = (sum_v p_v W_v) x_Q + sum_v p_v b_v``. The reference pass computes
the expected unembedding row ``sum_v p_v W_v`` once per position; every candidate's cross term
is then one dot product. (Soft-capped logits are not linear in ``x``: there the reference tile is
recomputed beside each candidate tile.)

Tiles are float64 when the model is, float32 otherwise (half-precision logits are promoted); the
per-position running statistics and results are float64.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from stages.shapes import Model

LN2 = math.log(2.0)
METRICS: tuple[str, ...] = ("kl", "rel_acc", "entropy_delta", "loss")

# Elements of one logit tile: 1M (4 MB in float32, fits the CPU's L2/L3); 128M on a GPU.
_TILE_ELEMENTS = {"cpu": 1 << 20, "cuda": 1 << 27}


@dataclass(frozen=True)
class Unembedding:
    """The map from final-normed residuals to logits: ``z = cap * tanh((W x + b) / cap)``.

    Attributes:
        weight: ``[d_vocab, d_model]`` (the bridge's processed unembedding, not a copy).
        bias: ``[d_vocab]`` or None.
        softcap: the final logit soft-cap, or None (no capping).
    """

    weight: torch.Tensor
    bias: torch.Tensor | None = None
    softcap: float | None = None

    @classmethod
    def of(cls, model: Model) -> Unembedding:
        """The unembedding a ``TransformerBridge`` applies after its final norm.

        Raises:
            ValueError: the bridge's unembedding is not a linear layer.
        """
        linear = getattr(model.unembed, "original_component", None)
        if not isinstance(linear, torch.nn.Linear):
            raise ValueError(
                f"expected the model's unembedding to be a torch.nn.Linear, got "
                f"{type(linear).__name__}"
            )
        cap = getattr(model.original_model.config, "final_logit_softcapping", None)
        return cls(linear.weight, linear.bias, float(cap) if cap else None)

    @property
    def d_vocab(self) -> int:
        """Vocabulary size."""
        return self.weight.shape[0]

    def logits(self, x: torch.Tensor, cols: slice = slice(None)) -> torch.Tensor:
        """Logits ``[n_tok, n_cols]`` of the vocabulary columns ``cols`` for ``x`` ``[n_tok, d]``.

        Computed in ``x``'s dtype (or autocast's), returned in the working dtype: float64 for
        float64 input, float32 otherwise.
        """
        bias = None if self.bias is None else self.bias[cols]
        z = torch.nn.functional.linear(x, self.weight[cols], bias)
        z = z.double() if x.dtype == torch.float64 else z.float()
        return self._cap(z)

    def target_logits(self, x: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """``[n_tok]`` float64 logit of one token per position (``targets`` ``[n_tok]``)."""
        work = torch.float64 if x.dtype == torch.float64 else torch.float32
        z = torch.linalg.vecdot(x.to(work), self.weight[targets].to(work)).double()
        if self.bias is not None:
            z = z + self.bias[targets].double()
        return self._cap(z)

    def _cap(self, z: torch.Tensor) -> torch.Tensor:
        return z if self.softcap is None else torch.tanh(z / self.softcap) * self.softcap

    def tiles(self, n_tok: int, device: torch.device) -> list[slice]:
        """Vocabulary slices whose ``[n_tok, cols]`` logits fill about one tile."""
        elements = _TILE_ELEMENTS.get(device.type, _TILE_ELEMENTS["cuda"])
        cols = max(256, (elements // max(1, n_tok)) // 256 * 256)
        return [slice(v0, min(v0 + cols, self.d_vocab)) for v0 in range(0, self.d_vocab, cols)]


@dataclass
class Reference:
    """What comparisons need of the reference distributions P at ``n_tok`` positions.

    Attributes:
        x: ``[n_tok, d_model]`` final-normed residual.
        lse: ``[n_tok]`` log-sum-exp of the logits, float64.
        entropy: ``[n_tok]`` entropy in nats, float64.
        top1: ``[n_tok]`` argmax token ids (the first one on ties within a tile).
        expected_row: ``[n_tok, d_model]`` ``sum_v p_v W_v`` (None when soft-capped).
        expected_bias: ``[n_tok]`` ``sum_v p_v b_v``, float64 (zeros without a bias).
    """

    x: torch.Tensor
    lse: torch.Tensor
    entropy: torch.Tensor
    top1: torch.Tensor
    expected_row: torch.Tensor | None
    expected_bias: torch.Tensor


class _OnlineSoftmax:
    """Running max, ``sum exp(z - max)``, ``sum exp(z - max) z`` and argmax over tiles."""

    def __init__(self, n_tok: int, device: torch.device) -> None:
        self.max = torch.full((n_tok,), -math.inf, dtype=torch.float64, device=device)
        self.total = torch.zeros(n_tok, dtype=torch.float64, device=device)
        self.moment = torch.zeros(n_tok, dtype=torch.float64, device=device)
        self.top1 = torch.zeros(n_tok, dtype=torch.long, device=device)

    def add(self, z: torch.Tensor, v0: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Fold in the tile ``z`` ``[n_tok, cols]`` of columns ``v0..``.

        Returns ``(e, rescale)``: ``exp(z - new max)`` and ``exp(old max - new max)``, for
        callers that accumulate more sums over the same weights.
        """
        peak, idx = z.max(-1)
        peak = peak.double()
        self.top1 = torch.where(peak > self.max, idx + v0, self.top1)
        new_max = torch.maximum(self.max, peak)
        rescale = torch.exp(self.max - new_max)
        e = torch.exp(z - new_max.to(z.dtype)[:, None])
        self.total = self.total * rescale + e.sum(-1).double()
        self.moment = self.moment * rescale + torch.linalg.vecdot(e, z).double()
        self.max = new_max
        return e, rescale

    @property
    def lse(self) -> torch.Tensor:
        return self.max + self.total.log()

    @property
    def entropy(self) -> torch.Tensor:
        """Entropy in nats: ``lse - E[z]``."""
        return self.lse - self.moment / self.total


def reference(unembedding: Unembedding, x: torch.Tensor) -> Reference:
    """Statistics of the reference distributions ``softmax(unembedding(x))``, ``x`` ``[n_tok, d]``.

    Without soft-capping this pass also accumulates ``sum_v p_v W_v`` (one more product of the
    unembedding's size), which makes every later comparison's cross term a dot product.
    """
    n_tok = len(x)
    stats = _OnlineSoftmax(n_tok, x.device)
    linear = unembedding.softcap is None
    row = torch.zeros_like(x, dtype=torch.float64 if x.dtype == torch.float64 else torch.float32)
    bias = torch.zeros(n_tok, dtype=torch.float64, device=x.device)
    for cols in unembedding.tiles(n_tok, x.device):
        z = unembedding.logits(x, cols)
        e, rescale = stats.add(z, cols.start)
        if linear:
            row = row * rescale.to(row.dtype)[:, None] + e @ unembedding.weight[cols].to(e.dtype)
            if unembedding.bias is not None:
                bias = bias * rescale + (e @ unembedding.bias[cols].to(e.dtype)).double()
    total = stats.total
    return Reference(
        x=x,
        lse=stats.lse,
        entropy=stats.entropy,
        top1=stats.top1,
        expected_row=(row / total.to(row.dtype)[:, None]) if linear else None,
        expected_bias=bias / total,
    )


def compare(
    unembedding: Unembedding, ref: Reference, x: torch.Tensor, targets: torch.Tensor
) -> dict[str, torch.Tensor]:
    """Per-token metrics of Q = ``softmax(unembedding(x))`` against the reference P.

    KL(P || Q) is the cross-entropy minus the entropy, ``lse_Q - sum_v p_v z_Q,v - H(P)``.

    Args:
        unembedding: the model's unembedding.
        ref: the reference at the same ``n_tok`` positions (:func:`reference`).
        x: ``[n_tok, d_model]`` final-normed candidate residual.
        targets: ``[n_tok]`` true next-token ids.

    Returns:
        ``kl`` (nats, >= 0 up to rounding), ``rel_acc`` (0 or 1), ``entropy_delta`` (bits),
        ``loss`` (nats): each a float64 tensor ``[n_tok]`` on ``x``'s device.
    """
    n_tok = len(x)
    stats = _OnlineSoftmax(n_tok, x.device)
    cross = torch.zeros(n_tok, dtype=torch.float64, device=x.device)
    for cols in unembedding.tiles(n_tok, x.device):
        z = unembedding.logits(x, cols)
        stats.add(z, cols.start)
        if ref.expected_row is None:  # soft-capped: p from the recomputed reference tile
            p = torch.exp(unembedding.logits(ref.x, cols) - ref.lse.to(z.dtype)[:, None])
            cross = cross + torch.linalg.vecdot(p, z).double()
    if ref.expected_row is not None:
        cross = torch.linalg.vecdot(x.to(ref.expected_row.dtype), ref.expected_row).double()
        cross = cross + ref.expected_bias
    lse = stats.lse
    return {
        "kl": lse - cross - ref.entropy,
        "rel_acc": (stats.top1 == ref.top1).double(),
        "entropy_delta": (stats.entropy - ref.entropy) / LN2,
        "loss": lse - unembedding.target_logits(x, targets),
    }


def unchanged(
    unembedding: Unembedding, ref: Reference, targets: torch.Tensor
) -> dict[str, torch.Tensor]:
    """The metrics of P against itself, exactly: ``kl`` 0, ``rel_acc`` 1, ``entropy_delta`` 0."""
    zeros = torch.zeros_like(ref.lse)
    return {
        "kl": zeros,
        "rel_acc": zeros + 1.0,
        "entropy_delta": zeros,
        "loss": ref.lse - unembedding.target_logits(ref.x, targets),
    }


