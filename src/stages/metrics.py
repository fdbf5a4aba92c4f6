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
class LogProbs:
    """Log-probabilities of one chunk with what every comparison needs.

    Attributes:
        logp: ``[n_tok, d_vocab]`` log-softmax of the logits.
        probs: ``[n_tok, d_vocab]`` softmax of the logits.
        entropy: ``[n_tok]`` entropy in nats, float64.
        top1: ``[n_tok]`` argmax token ids.
    """

    logp: torch.Tensor
    probs: torch.Tensor
    entropy: torch.Tensor
    top1: torch.Tensor

    @classmethod
    def from_logits(cls, logits: torch.Tensor) -> LogProbs:
        """Build from logits ``[n_tok, d_vocab]`` of any float dtype."""
        work = torch.float64 if logits.dtype == torch.float64 else torch.float32
        logp = torch.log_softmax(logits.to(work), dim=-1)
        probs = logp.exp()
        entropy = -torch.linalg.vecdot(probs, logp).double()
        return cls(logp=logp, probs=probs, entropy=entropy, top1=logits.argmax(-1))


def compare(base: LogProbs, new: LogProbs, targets: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-token metrics of ``new`` (Q) against ``base`` (P); see the module docstring.

    KL(P || Q) is computed as ``-H(P) - sum_v p_v log q_v``: one pass over the vocabulary, and
    exactly 0 when Q is P.

    Args:
        base: baseline chunk, ``n_tok`` positions.
        new: intervened chunk, same positions.
        targets: ``[n_tok]`` true next-token ids.

    Returns:
        ``kl`` (nats, >= 0 up to rounding), ``rel_acc`` (0 or 1), ``entropy_delta`` (bits),
        ``loss`` (nats): each a float64 tensor ``[n_tok]``.
    """
    cross = -torch.linalg.vecdot(base.probs, new.logp).double()
    return {
        "kl": cross - base.entropy,
        "rel_acc": (new.top1 == base.top1).double(),
        "entropy_delta": (new.entropy - base.entropy) / LN2,
        "loss": -new.logp.gather(-1, targets[:, None]).squeeze(-1).double(),
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
