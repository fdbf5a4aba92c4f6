"""Per-sequence tables with planted effects, for the verdict tests (no model involved).

Every generator returns frames shaped exactly like the analyses' ``*_sums`` (one row per
sequence, sums over a sequence's positions, ``seq_len``), with per-token means chosen by the
caller and centred Gaussian noise between sequences, so a claim's verdict is known in advance.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

SEQ_LEN = 128
N_LAYERS = 12
KINDS = ("drop", "swap", "drop_attn", "drop_mlp")


def _noisy(rng: np.random.Generator, mean: float, n: int, sd: float, count: float) -> np.ndarray:
    """``n`` per-sequence sums whose per-token means scatter around ``mean`` and average to it.

    The noise is centred, so a claim's statistic lands exactly on its planted value and "no
    effect" sits exactly on the threshold (an interval around it then contains it).
    """
    noise = rng.standard_normal(n)
    noise = noise - noise.mean() if n > 1 else noise * 0
    return (mean + sd * noise) * count


def sweep(
    n_seq: int,
    *,
    kl: Callable[[str, int], float] = lambda kind, layer: 0.3,
    rel_acc: Callable[[str, int], float] = lambda kind, layer: 0.9,
    entropy: Callable[[str, int], float] = lambda kind, layer: 0.1,
    sd: float = 0.05,
    seed: int = 0,
    n_layers: int = N_LAYERS,
) -> pd.DataFrame:
    """A sweep sums frame: per-token means ``f(kind, layer)`` plus noise."""
    rng = np.random.default_rng(seed)
    count = SEQ_LEN - 2
    columns = {"entropy": _noisy(rng, 3.0, n_seq, sd, count)}
    for name in ("kl", "rel_acc", "entropy_delta", "loss"):
        columns[f"none:{name}"] = np.full(
            n_seq, {"rel_acc": count, "loss": 3 * count}.get(name, 0.0)
        )
    for kind in KINDS:
        for layer in range(n_layers - 1 if kind == "swap" else n_layers):
            label = f"swap {layer}-{layer + 1}" if kind == "swap" else f"{kind} {layer}"
            columns[f"{label}:kl"] = np.abs(_noisy(rng, kl(kind, layer), n_seq, sd, count))
            columns[f"{label}:rel_acc"] = _noisy(rng, rel_acc(kind, layer), n_seq, sd, count)
            columns[f"{label}:entropy_delta"] = _noisy(rng, entropy(kind, layer), n_seq, sd, count)
            columns[f"{label}:loss"] = _noisy(rng, 3.5, n_seq, sd, count)
    frame = pd.DataFrame(columns)
    frame["seq_len"] = SEQ_LEN
    return frame


def attention(
    n_seq: int, prev5: Callable[[int], float], *, n_heads: int = 2, sd: float = 0.01, seed: int = 0
) -> pd.DataFrame:
    """An attention sums frame with per-entry mean ``prev5(layer)``."""
    from stages.analyses.attention import QUANTITIES, locality_counts

    rng = np.random.default_rng(seed)
    counts = locality_counts(SEQ_LEN)
    columns = {}
    for layer in range(N_LAYERS):
        for head in range(n_heads):
            for q in QUANTITIES:
                mean = prev5(layer) if q == "attn_prev5" else 0.2
                columns[f"{layer}.{head}:{q}"] = _noisy(rng, mean, n_seq, sd, counts[q])
    frame = pd.DataFrame(columns)
    frame["seq_len"] = SEQ_LEN
    return frame


def norms(
    n_seq: int, attn: Callable[[int], float], mlp: Callable[[int], float], *, sd: float = 0.5,
    seed: int = 0,
) -> pd.DataFrame:  # fmt: skip
    """A norms sums frame with mean norms ``attn(layer)``, ``mlp(layer)``."""
    rng = np.random.default_rng(seed)
    columns = {}
    for layer in range(N_LAYERS):
        columns[f"{layer}:hook_attn_out"] = _noisy(rng, attn(layer), n_seq, sd, SEQ_LEN - 1)
        columns[f"{layer}:hook_mlp_out"] = _noisy(rng, mlp(layer), n_seq, sd, SEQ_LEN - 1)
    frame = pd.DataFrame(columns)
    frame["seq_len"] = SEQ_LEN
    return frame


def lens(
    n_seq: int,
    *,
    kl: Callable[[int], float] = lambda layer: 5.0 * (N_LAYERS - 1 - layer) + 0.1,
    agreement: Callable[[int], float] = lambda layer: layer / (N_LAYERS - 1),
    entropy: Callable[[int], float] = lambda layer: 0.0,
    sd: float = 0.05,
    seed: int = 0,
) -> pd.DataFrame:
    """A :func:`stages.analyses.lens.lens_sums` frame; ``entropy(layer)`` is H(Q_l) - H(P) in bits.

    The last layer is the model's own output: KL 0, agreement 1, entropy change 0.
    """
    rng = np.random.default_rng(seed)
    count = SEQ_LEN - 2
    columns = {"final_entropy": _noisy(rng, 3.0, n_seq, sd, count)}
    for layer in range(N_LAYERS):
        last = layer == N_LAYERS - 1
        columns[f"{layer}:kl"] = (
            np.zeros(n_seq) if last else np.abs(_noisy(rng, kl(layer), n_seq, sd, count))
        )
        columns[f"{layer}:rel_acc"] = (
            np.full(n_seq, count) if last else _noisy(rng, agreement(layer), n_seq, sd, count)
        )
        columns[f"{layer}:entropy_delta"] = (
            np.zeros(n_seq) if last else _noisy(rng, entropy(layer), n_seq, sd, count)
        )
        columns[f"{layer}:loss"] = _noisy(rng, 3.5, n_seq, sd, count)
    frame = pd.DataFrame(columns)
    frame["seq_len"] = SEQ_LEN
    return frame


def classes(prediction: list[int], suppression: list[int], d_mlp: int = 100) -> pd.DataFrame:
    """A neuron-class table with the given counts of prediction / suppression neurons per layer."""
    from stages.analyses.neurons import classify_table

    rows = []
    for layer in range(N_LAYERS):
        for neuron in range(d_mlp):
            if neuron < prediction[layer]:
                skew, kurt = 1.0, 20.0
            elif neuron < prediction[layer] + suppression[layer]:
                skew, kurt = -1.0, 20.0
            else:
                skew, kurt = 0.0, 3.0
            rows.append((layer, neuron, skew, kurt, 1e-4))
    moments = pd.DataFrame(rows, columns=["layer", "neuron", "skew", "kurtosis", "variance"])
    return classify_table(moments, N_LAYERS)


def swap_similarity(
    n_seq: int, value: Callable[[int, str, str, str], float], *, sd: float = 0.02, seed: int = 0
) -> pd.DataFrame:
    """A ``swap_similarity_sums`` frame with per-token means ``value(i, c, metric, which)``."""
    from stages.analyses.swap_similarity import COMPONENTS, ROWS, _column

    rng = np.random.default_rng(seed)
    columns = {}
    for i in range(N_LAYERS - 1):
        for c in COMPONENTS:
            for metric, which in ROWS:
                mean = value(i, c, metric, which)
                columns[_column(i, c, metric, which)] = _noisy(rng, mean, n_seq, sd, SEQ_LEN - 1)
    frame = pd.DataFrame(columns)
    frame["seq_len"] = SEQ_LEN
    return frame


def plans(
    n_seq: int,
    plans: list,
    *,
    kl: Callable[[object], float] = lambda plan: 0.3,
    entropy: Callable[[object], float] = lambda plan: 0.1,
    sd: float = 0.05,
    seed: int = 0,
) -> pd.DataFrame:
    """A ``sweep_sums`` frame of any plans: per-token means ``f(plan)`` plus noise."""
    rng = np.random.default_rng(seed)
    count = SEQ_LEN - 2
    columns = {"entropy": _noisy(rng, 3.0, n_seq, sd, count)}
    for plan in plans:
        columns[f"{plan.label}:kl"] = np.abs(_noisy(rng, kl(plan), n_seq, sd, count))
        columns[f"{plan.label}:rel_acc"] = _noisy(rng, 0.9, n_seq, sd, count)
        columns[f"{plan.label}:entropy_delta"] = _noisy(rng, entropy(plan), n_seq, sd, count)
        columns[f"{plan.label}:loss"] = _noisy(rng, 3.5, n_seq, sd, count)
    frame = pd.DataFrame(columns)
    frame["seq_len"] = SEQ_LEN
    return frame
