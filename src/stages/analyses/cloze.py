r"""A downstream task under layer interventions: accuracy on a LAMBADA-style cloze.

On a :func:`stages.text.cloze.cloze_set`, a window counts as *correct* when the model, given the
window without its target word, produces the whole word by greedy decoding. This is computed
exactly with one teacher-forced pass per window. Let the target be the last ``k`` tokens
``w_1..w_k`` of a row, at positions ``t_1..t_k``. Greedy decoding emits ``w_1`` iff ``w_1`` is
the argmax of the logits at ``t_1 - 1``; having emitted ``w_1``, its input is exactly the
teacher-forced prefix up to ``t_1``, so it emits ``w_2`` iff ``w_2`` is the argmax at ``t_1``;
and so on. Hence greedy decoding produces the word iff, for every ``j``, ``argmax(logits[t_j -
1]) == w_j`` in the one forward pass over the whole row, and once a token differs the decoded
text has left the word (the tokenization is fixed, so this is token identity). A tie at the
top counts as wrong: a position is a *hit* only when its target's logit is larger than every
other logit (the unique argmax), since greedy decoding's choice among tied tokens is arbitrary.
Whether decoding would go on after the word (with a space or punctuation) is not asked.

Under an intervention (:mod:`stages.engine.plans`) the same holds for the intervened model. For
each batch the baseline runs once (:func:`stages.engine.forward.capture_baseline`) and the plans
that start at the same block run together (:func:`stages.engine.forward.run_group`); from each
final residual only the :data:`~stages.text.cloze.MAX_TOKENS` positions before the last token
are read (``[batch, 4, d_model]``) and put through the final norm and unembedding
(:func:`stages.engine.forward.head`), never the whole sequence.

Those last four positions are scored for every row, whatever its target's length, and the
row's ``n_target`` picks the ones that count after the pass, so the cached per-position scores
depend on the tokens, the model and the plans only. Besides correctness, the log-probability of
the target word (the sum of its tokens' log-probabilities, nats) is recorded. The window is the
independent unit: accuracies are means over windows with 95% percentile bootstrap intervals, and
each intervention's change from the baseline is *paired* (the same resampled windows).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Unpack

import numpy as np
import pandas as pd
import torch

from stages import stats
from stages.engine.analysis import analysis
from stages.engine.forward import (
    capture_baseline,
    head,
    run_group,
    start_groups,
    validate_interventions,
)
from stages.engine.plans import BASELINE, Plan, drops, label_columns, swaps
from stages.engine.runs import (
    RunOptions,
    check_tokens,
    forward_bytes_per_seq,
    per_sequence,
    with_provenance,
)
from stages.shapes import Model
from stages.text.cloze import MAX_TOKENS, ClozeSet

SCORES = ("correct", "logprob")
"""Per-window quantities of :func:`cloze_sums`, each ``"<label>:<score>"``."""


def score_positions(
    logits: torch.Tensor, targets: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Whether each target is the unique argmax, and its log-probability.

    Args:
        logits: ``[batch, k, d_vocab]`` logits predicting ``targets``.
        targets: ``[batch, k]`` token ids.

    Returns:
        ``(hit, logprob)``, each ``[batch, k]``: bool, True where the target's logit exceeds
        every other logit; float64 log-probability of the target (nats), computed in at least
        float32.
    """
    logits = logits.to(torch.promote_types(logits.dtype, torch.float32))
    index = targets[..., None]
    target = logits.gather(-1, index).squeeze(-1)
    rival = logits.scatter(-1, index, -torch.inf).amax(-1)
    logprob = target - logits.logsumexp(-1)
    return target > rival, logprob.double()


def _columns(label: str, hit: torch.Tensor, logprob: torch.Tensor) -> dict[str, np.ndarray]:
    """``"<label>:hit<j>"`` and ``"<label>:logprob<j>"`` for ``j`` tokens before the end."""
    k = hit.shape[1]
    hit, logprob = hit.double().cpu().numpy(), logprob.cpu().numpy()
    return {f"{label}:hit{k - c}": hit[:, c] for c in range(k)} | {
        f"{label}:logprob{k - c}": logprob[:, c] for c in range(k)
    }


def cloze_sums(
    model: Model,
    cloze: ClozeSet,
    interventions: Sequence[Plan] | None = None,
    **run: Unpack[RunOptions],
) -> pd.DataFrame:
    """Per-window correctness and target log-probability, unperturbed and under each plan.

    Args:
        model: a ``TransformerBridge`` from :func:`stages.load_model`.
        cloze: the windows (:func:`stages.text.cloze.cloze_set`); their tokenizer must be the
            model's.
        interventions: plans to measure; default every :func:`~stages.engine.plans.drops` and
            :func:`~stages.engine.plans.swaps` of the model. The baseline is always measured;
            repeated plans are measured once.
        run: ``batch_size`` (windows per forward pass), ``progress``, ``cache`` (the
            per-position scores, keyed by the model, the tokens and the plans); see
            :class:`stages.engine.runs.RunOptions`.

    Returns:
        One row per window, in the order of ``cloze.tokens``: ``"<label>:correct"`` (1.0 when
        the target is produced whole by greedy decoding, else 0.0) and ``"<label>:logprob"``
        (the target word's log-probability, nats) for ``none`` and every plan, labelled as
        :attr:`~stages.engine.plans.Plan.label`; ``n_target`` (target tokens) and
        ``seq_len``.
    """
    n_target = np.asarray(cloze.n_target, dtype=np.int64)
    tokens = check_tokens(model, cloze.tokens, min_len=MAX_TOKENS + 2)
    if n_target.shape != (len(tokens),) or n_target.min() < 1 or n_target.max() > MAX_TOKENS:
        raise ValueError(f"n_target must be [{len(tokens)}] ints in 1..{MAX_TOKENS}")
    if interventions is None:
        interventions = drops(model) + swaps(model)
    plans = list(dict.fromkeys(
        iv for iv in validate_interventions(model, interventions) if iv.kind != "none"
    ))  # fmt: skip
    labels = [iv.label for iv in [BASELINE, *plans]]
    groups = start_groups(plans)

    def compute(batch: torch.Tensor) -> dict[str, np.ndarray]:
        base = capture_baseline(model, batch)
        targets = batch[:, -MAX_TOKENS:]

        def score(label: str, resid: torch.Tensor) -> dict[str, np.ndarray]:
            logits = head(model, resid[:, -MAX_TOKENS - 1 : -1])  # [b, MAX_TOKENS, d_vocab]
            return _columns(label, *score_positions(logits, targets))

        columns = score(BASELINE.label, base.final_resid)
        for group in groups:
            for plan, resid in zip(group, run_group(model, base, group), strict=True):
                columns |= score(plan.label, resid)
        return columns

    positions = per_sequence(
        "cloze",
        model,
        tokens,
        compute=compute,
        params={"interventions": labels, "positions": MAX_TOKENS},
        bytes_per_seq=partial(forward_bytes_per_seq, model, copies=5),
        desc="cloze: interventions x windows",
        units_per_seq=len(labels),
        min_len=MAX_TOKENS + 2,
        **run,
    )
    return _by_window(positions, labels, n_target)


def _by_window(positions: pd.DataFrame, labels: list[str], n_target: np.ndarray) -> pd.DataFrame:
    """Reduce the per-position scores to the target positions of each window."""
    counts = np.arange(1, MAX_TOKENS + 1)[None, :] <= n_target[:, None]  # [n, j]
    columns: dict[str, np.ndarray] = {}
    for label in labels:
        hit = positions[[f"{label}:hit{j}" for j in range(1, MAX_TOKENS + 1)]].to_numpy() > 0
        logprob = positions[[f"{label}:logprob{j}" for j in range(1, MAX_TOKENS + 1)]].to_numpy()
        columns[f"{label}:correct"] = (hit | ~counts).all(1).astype(np.float64)
        columns[f"{label}:logprob"] = np.where(counts, logprob, 0.0).sum(1)
    sums = pd.DataFrame(columns)
    sums["n_target"] = n_target
    sums["seq_len"] = positions["seq_len"].to_numpy()
    sums.attrs["provenance"] = dict(positions.attrs.get("provenance", {})) | {
        "n_target": {t: int((n_target == t).sum()) for t in range(1, MAX_TOKENS + 1)}
    }
    return sums


def cloze_labels(sums: pd.DataFrame) -> list[str]:
    """The plan labels of a :func:`cloze_sums` frame, in column order (``none`` first)."""
    return [c.removesuffix(":correct") for c in sums.columns if c.endswith(":correct")]


def cloze_table(
    sums: pd.DataFrame, n_layers: int, *, n_boot: int = stats.N_BOOT, seed: int = 0
) -> pd.DataFrame:
    """Reduce :func:`cloze_sums` to one row per plan: accuracy and its change, with intervals.

    Args:
        sums: a :func:`cloze_sums` frame (computed now or read from a results pack).
        n_layers: the model's number of blocks (for ``rel_depth``).
        n_boot: bootstrap resamples (over windows).
        seed: bootstrap seed.

    Returns:
        One row per plan, the baseline (``kind == "none"``) first: ``kind``, ``layer`` (first
        block; -1 for the baseline), ``layers`` (e.g. ``"3-4"``), ``rel_depth`` (``layer /
        (n_layers - 1)``, NaN for the baseline), ``accuracy`` (share of windows whose target is
        produced whole, 0..1), ``delta`` (accuracy minus the baseline's, on the same windows),
        ``logprob`` (mean log-probability of the target word, nats), each with ``_lo`` /
        ``_hi`` 95% percentile bootstrap bounds over windows (one paired resampling for all),
        ``n_windows`` and ``label``.
    """
    labels = cloze_labels(sums)
    k = len(labels)
    values = np.stack(
        [sums[f"{label}:{score}"].to_numpy(np.float64) for score in SCORES for label in labels]
    )  # [2k, n]: correct of every plan, then logprob of every plan

    def statistic(m: np.ndarray) -> np.ndarray:
        return np.concatenate([m[:k], m[:k] - m[:1], m[k:]])

    estimate, lo, hi = stats.interval(values, statistic=statistic, n_boot=n_boot, seed=seed)
    records = []
    for i, label in enumerate(labels):
        rec = label_columns(label, n_layers)
        for name, row in (("accuracy", i), ("delta", k + i), ("logprob", 2 * k + i)):
            rec |= {name: estimate[row], f"{name}_lo": lo[row], f"{name}_hi": hi[row]}
        rec |= {"n_windows": len(sums), "label": label}
        records.append(rec)
    return with_provenance(pd.DataFrame.from_records(records), sums, n_boot=n_boot, seed=seed)


cloze_accuracy = analysis(
    'cloze_accuracy', cloze_sums, cloze_table,
    'Cloze accuracy, unperturbed and under each plan (whole-word greedy decoding).',
)
