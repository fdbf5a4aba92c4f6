"""Per-token comparison metrics between a baseline and an intervened next-token distribution.

P is the baseline distribution, Q the intervened one, at one predicted position:

- ``kl``: KL(P || Q) in nats.
- ``agree``: 1 if argmax Q == argmax P else 0; its mean is the paper's relative accuracy.
- ``entropy_delta``: H(Q) - H(P) in bits.
- ``loss``: cross-entropy of Q against the true next token, nats.

Each chunk of logits ``[n_tok, d_vocab]`` is handled in float64 when the model runs in float64
and in float32 otherwise (half-precision logits are promoted); per-token results are float64 and
are summed per sequence, so memory does not grow with the number of tokens.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

LN2 = math.log(2.0)
METRICS: tuple[str, ...] = ("kl", "rel_acc", "entropy_delta", "loss")


@dataclass
class Distribution:
    """What the comparisons need of the next-token distributions of one chunk of positions.

    Built in five passes over the vocabulary (max, exp, sum, two dot products); the
    ``[n_tok, d_vocab]`` tensors are dropped with the object, after the chunk.

    Attributes:
        logits: ``[n_tok, d_vocab]`` logits in the working dtype.
        lse: ``[n_tok]`` log-sum-exp of the logits.
        unnormalised: ``[n_tok, d_vocab]`` ``exp(logits - max)``.
        total: ``[n_tok]`` its sum; ``probs = unnormalised / total``.
        entropy: ``[n_tok]`` entropy in nats, float64.
        top1: ``[n_tok]`` argmax token ids.
    """

    logits: torch.Tensor
    lse: torch.Tensor
    unnormalised: torch.Tensor
    total: torch.Tensor
    entropy: torch.Tensor
    top1: torch.Tensor

    @classmethod
    def from_logits(cls, logits: torch.Tensor) -> Distribution:
        """Build from logits ``[n_tok, d_vocab]`` (float64 stays float64, others use float32)."""
        work = torch.float64 if logits.dtype == torch.float64 else torch.float32
        z = logits.to(work)
        peak, top1 = z.max(-1)
        e = torch.exp(z - peak[:, None])
        total = e.sum(-1)
        lse = peak + total.log()
        entropy = (lse - torch.linalg.vecdot(e, z) / total).double()
        return cls(logits=z, lse=lse, unnormalised=e, total=total, entropy=entropy, top1=top1)

    @property
    def probs(self) -> torch.Tensor:
        """``[n_tok, d_vocab]`` softmax of the logits."""
        return self.unnormalised / self.total[:, None]

    def log_prob(self, tokens: torch.Tensor) -> torch.Tensor:
        """``[n_tok]`` log-probability of one token per position, float64."""
        return (self.logits.gather(-1, tokens[:, None]).squeeze(-1) - self.lse).double()


def compare(
    base: Distribution, new: Distribution, targets: torch.Tensor
) -> dict[str, torch.Tensor]:
    """Per-token metrics of ``new`` (Q) against ``base`` (P); see the module docstring.

    KL(P || Q) is computed as the cross-entropy minus the entropy,
    ``lse_Q - sum_v p_v z_Q,v - H(P)``: one pass over the vocabulary, exactly 0 when Q is P.

    Args:
        base: baseline chunk, ``n_tok`` positions.
        new: intervened chunk, same positions.
        targets: ``[n_tok]`` true next-token ids.

    Returns:
        ``kl`` (nats, >= 0 up to rounding), ``rel_acc`` (0 or 1), ``entropy_delta`` (bits),
        ``loss`` (nats): each a float64 tensor ``[n_tok]``.
    """
    # the same arithmetic as base.entropy, so that Q = P gives exactly 0
    cross = (new.lse - torch.linalg.vecdot(base.unnormalised, new.logits) / base.total).double()
    return {
        "kl": cross - base.entropy,
        "rel_acc": (new.top1 == base.top1).double(),
        "entropy_delta": (new.entropy - base.entropy) / LN2,
        "loss": -new.log_prob(targets),
    }


def bootstrap_interval(
    sums: np.ndarray, counts: np.ndarray, *, n_boot: int = 1000, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap interval of a token-weighted mean, resampling whole sequences.

    Args:
        sums: ``[n_seq]`` per-sequence sums of a per-token metric.
        counts: ``[n_seq]`` tokens per sequence.
        n_boot: resamples.
        seed: the resampling seed (the same seed gives the same interval).
        level: coverage, 0.95 for a 95% interval.

    Returns:
        ``(lo, hi)``; both equal the point estimate when there is one sequence.
    """
    sums = np.asarray(sums, dtype=np.float64)
    counts = np.asarray(counts, dtype=np.float64)
    if len(sums) < 2:
        value = float(sums.sum() / counts.sum())
        return value, value
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(sums), size=(n_boot, len(sums)))
    means = sums[idx].sum(1) / counts[idx].sum(1)
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(means, [alpha, 1.0 - alpha])
    return float(lo), float(hi)
