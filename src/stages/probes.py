"""Ensembles of prediction and suppression neurons (paper section 6.2, Figures 10 and 16).

On a :func:`stages.words.ing_dataset` (does the next token end in "ing"?):

1. **Relevant neurons.** For every prediction or suppression neuron (:mod:`stages.neurons`),
   its effect on "-ing" tokens is the mean, over the vocabulary's lower-case alphabetic tokens
   ending in "ing", of the cosine between the neuron's output direction and the token's
   unembedding column (``W_U^T w_out`` with both normalised, as the classification uses). The
   ``k`` neurons with the largest absolute effect are kept: prediction neurons that promote
   "-ing" tokens and suppression neurons that suppress them.
2. **Activations.** Each kept neuron's activation (the input of ``W_out``,
   ``blocks.{l}.mlp.out.hook_in``) at the last position of every window.
3. **Probes.** Logistic regressions (scikit-learn, standardised inputs) trained on a stratified
   70/30 split with a fixed seed: one per neuron, and one on the top ``j`` neurons for
   ``j = 1..k``. Accuracy on the held-out 30% with a 95% Wilson interval.
4. **The model itself.** On the same held-out windows, the model "says -ing" when its top-1 next
   token is an "-ing" token; its accuracy gets the same interval.
"""

from __future__ import annotations

import hashlib
import sys
from typing import Any

import numpy as np
import pandas as pd
import torch
from scipy.stats import binomtest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from stages import interventions
from stages.interventions import head as unembed
from stages.interventions import run_to_last_block
from stages.neurons import output_directions, vocab_cosines
from stages.runs import per_sequence

TEST_SIZE = 0.3


def token_effects(model: Any, classes: pd.DataFrame, token_mask: np.ndarray) -> pd.DataFrame:
    """Mean cosine of each prediction / suppression neuron's output with a set of tokens.

    Args:
        model: the bridge ``classes`` was computed on.
        classes: a :func:`stages.neurons.neuron_classes` table.
        token_mask: ``[d_vocab]`` bool, the tokens of interest.

    Returns:
        One row per prediction or suppression neuron: ``layer``, ``neuron``, ``cls``,
        ``kurtosis``, ``effect`` (mean cosine over the tokens), ``effect_rest`` (over the
        other tokens), largest ``|effect|`` first.
    """
    mask = torch.as_tensor(np.asarray(token_mask, dtype=bool))
    if not mask.any():
        raise ValueError("no token of interest in the vocabulary")
    rows = classes[classes["cls"].isin(["prediction", "suppression"])]
    records = []
    for layer, group in rows.groupby("layer"):
        cos = vocab_cosines(model, int(layer), group["neuron"].tolist())  # [n, d_vocab]
        inside = cos[:, mask].double().mean(1).cpu().numpy()
        outside = cos[:, ~mask].double().mean(1).cpu().numpy()
        for k, row in enumerate(group.itertuples()):
            records.append(
                {"layer": int(layer), "neuron": int(row.neuron), "cls": row.cls,
                 "kurtosis": float(row.kurtosis), "effect": inside[k], "effect_rest": outside[k]}
            )  # fmt: skip
    columns = ["layer", "neuron", "cls", "kurtosis", "effect", "effect_rest"]
    table = pd.DataFrame.from_records(records, columns=columns)
    order = table["effect"].abs().sort_values(ascending=False).index
    return table.loc[order].reset_index(drop=True)


KURTOSIS = 10.0
VARIANCE = 0.005
SELECTIONS = ("authors", "cosine")


def ing_neurons(
    model: Any,
    classes: pd.DataFrame,
    token_mask: np.ndarray,
    *,
    k: int = 32,
    selection: str = "authors",
) -> pd.DataFrame:
    """The ``k`` neurons most relevant to a set of tokens, as the authors chose them or by cosine.

    ``selection="authors"`` (the default; the authors' ``find_neurons`` notebook): candidates
    are the neurons whose cosines with the ``W_U`` columns have Pearson kurtosis > 10 or
    variance > 0.005 over the vocabulary (the moments of :func:`stages.neurons.neuron_classes`);
    each candidate's *raw* logit effects ``W_U^T w_out`` (not normalised) are averaged over the
    tokens of ``token_mask`` and over the rest, and the ``k`` candidates with the largest
    absolute difference (``contrast``) are kept. Each is a prediction neuron when its skew is
    positive, a suppression neuron when negative (a high-variance candidate need not pass the
    kurtosis test). ``selection="cosine"``: the ``k`` prediction or suppression neurons with the
    largest absolute mean cosine over the tokens (:func:`token_effects`).

    Args:
        model: the bridge ``classes`` was computed on.
        classes: a :func:`stages.neurons.neuron_classes` table (with ``variance``).
        token_mask: ``[d_vocab]`` bool, the tokens of interest ("-ing" tokens).
        k: how many neurons.
        selection: ``"authors"`` or ``"cosine"``.

    Returns:
        ``k`` rows, most relevant first: ``layer``, ``neuron``, ``cls`` (``prediction`` /
        ``suppression``), ``skew``, ``kurtosis``, ``variance``, ``contrast`` (authors: raw
        effect difference, logit units; cosine: mean cosine over the tokens).
    """
    if selection not in SELECTIONS:
        raise ValueError(f"selection must be one of {SELECTIONS}, got {selection!r}")
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    columns = ["layer", "neuron", "cls", "skew", "kurtosis", "variance", "contrast"]
    if selection == "cosine":
        effects = token_effects(model, classes, token_mask).head(k)
        chosen = effects.merge(classes[["layer", "neuron", "skew", "variance"]])
        return chosen.rename(columns={"effect": "contrast"})[columns]
    mask = torch.as_tensor(np.asarray(token_mask, dtype=bool))
    if not mask.any():
        raise ValueError("no token of interest in the vocabulary")
    candidates = classes[(classes["kurtosis"] > KURTOSIS) | (classes["variance"] > VARIANCE)]
    w_u = model.W_U.detach()
    parts = []
    for layer, group in candidates.groupby("layer"):
        raw = output_directions(model, int(layer))[group["neuron"].to_numpy()] @ w_u
        inside = raw[:, mask].double().mean(1).cpu().numpy()
        outside = raw[:, ~mask].double().mean(1).cpu().numpy()
        parts.append(group.assign(contrast=inside - outside))
    if not parts:
        raise ValueError("no neuron passes the authors' kurtosis or variance test")
    table = pd.concat(parts, ignore_index=True)
    table["cls"] = np.where(table["skew"] > 0, "prediction", "suppression")
    order = table["contrast"].abs().sort_values(ascending=False, kind="stable").index
    return table.loc[order[:k], columns].reset_index(drop=True)


def neuron_activations(
    model: Any,
    tokens: torch.Tensor,
    neurons: pd.DataFrame,
    token_mask: np.ndarray,
    *,
    batch_size: int | None = None,
    progress: bool = True,
    cache: bool = True,
) -> pd.DataFrame:
    """The chosen neurons' activations at each window's last position, and the model's guess.

    Args:
        model: a ``TransformerBridge``.
        tokens: ``[n, seq_len]`` windows, BOS first.
        neurons: rows with ``layer`` and ``neuron`` (e.g. the head of :func:`token_effects`).
        token_mask: ``[d_vocab]`` bool: the model "says yes" when its top-1 token is in it.
        batch_size: windows per forward pass.
        progress: show a progress bar.
        cache: read and write the result cache.

    Returns:
        One row per window: a column ``"{layer}.{neuron}"`` per neuron (float64 activations, in
        the order of ``neurons``) and ``model_yes`` (1.0 when the model's top-1 next token is in
        ``token_mask``).
    """
    pairs = [(int(r.layer), int(r.neuron)) for r in neurons.itertuples()]
    mask = torch.as_tensor(np.asarray(token_mask, dtype=bool))

    def compute(batch: torch.Tensor) -> dict[str, np.ndarray]:
        columns: dict[str, np.ndarray] = {}

        def hook(acts: torch.Tensor, hook: Any) -> None:
            layer = int(hook.name.split(".")[1])
            for la, n in pairs:
                if la == layer:
                    columns[f"{la}.{n}"] = acts[:, -1, n].double().cpu().numpy()

        layers = sorted({la for la, _ in pairs})
        hooks = [(f"blocks.{la}.mlp.out.hook_in", hook) for la in layers]
        with model.hooks(fwd_hooks=hooks):
            final = run_to_last_block(model, batch)[:, -1]
        top1 = unembed(model, final).argmax(-1).cpu()
        ordered = {f"{la}.{n}": columns[f"{la}.{n}"] for la, n in pairs}
        return ordered | {"model_yes": mask[top1].double().numpy()}

    return per_sequence(
        "neuron_activations",
        model,
        tokens,
        compute=compute,
        params={"neurons": pairs, "token_mask": int(mask.sum()), "mask_hash": _mask_hash(mask)},
        sources=[sys.modules[__name__], interventions],
        batch_size=batch_size,
        progress=progress,
        cache=cache,
        desc="neuron activations",
        min_len=2,
    )


def ing_probes(
    model: Any,
    tokens: torch.Tensor,
    labels: np.ndarray,
    neurons: pd.DataFrame,
    token_mask: np.ndarray,
    *,
    seed: int = 0,
    batch_size: int | None = None,
    progress: bool = True,
    cache: bool = True,
) -> pd.DataFrame:
    """Probes on ``neurons`` for "is the next token in ``token_mask``", and the model's answer.

    :func:`neuron_activations` then :func:`probe_accuracies`.

    Args:
        model: a ``TransformerBridge``.
        tokens: ``[n, seq_len]`` windows (:func:`stages.words.ing_dataset`).
        labels: ``[n]`` bool, the true classes.
        neurons: rows with ``layer`` and ``neuron``, in relevance order (:func:`token_effects`).
        token_mask: ``[d_vocab]`` bool, the tokens of the positive class ("-ing" tokens).
        seed: the train/test split and the solver's seed.
        batch_size: windows per forward pass.
        progress: show a progress bar.
        cache: read and write the result cache.

    Returns:
        The :func:`probe_accuracies` table.
    """
    activations = neuron_activations(
        model, tokens, neurons, token_mask, batch_size=batch_size, progress=progress, cache=cache
    )
    return probe_accuracies(activations, labels, seed=seed)


def _mask_hash(mask: torch.Tensor) -> str:
    return hashlib.sha256(mask.numpy().tobytes()).hexdigest()[:16]


def _accuracy_row(correct: np.ndarray) -> dict[str, float]:
    k, n = int(correct.sum()), len(correct)
    ci = binomtest(k, n).proportion_ci(0.95, method="wilson")
    return {"accuracy": k / n, "accuracy_lo": ci.low, "accuracy_hi": ci.high, "n_test": n}


def probe_accuracies(
    activations: pd.DataFrame,
    labels: np.ndarray,
    *,
    seed: int = 0,
    test_size: float = TEST_SIZE,
) -> pd.DataFrame:
    """Held-out accuracy of single-neuron probes, top-``j`` probes and the model itself.

    Args:
        activations: a :func:`neuron_activations` table (neuron columns in relevance order).
        labels: ``[n]`` bool, the true classes.
        seed: the train/test split and the solver's seed.
        test_size: the held-out fraction (stratified).

    Returns:
        One row per probe: ``probe`` (``"single"``, ``"top-k"`` or ``"model"``), ``k``
        (neurons used; the single probe's rank), ``neuron`` (``"layer.neuron"`` for single
        probes), ``accuracy``, ``accuracy_lo``, ``accuracy_hi`` (95% Wilson), ``n_test``.
    """
    labels = np.asarray(labels, dtype=bool)
    neurons = [c for c in activations.columns if c not in ("model_yes", "seq_len")]
    x = activations[neurons].to_numpy()
    index = np.arange(len(labels))
    train, test = train_test_split(index, test_size=test_size, random_state=seed, stratify=labels)

    def fit(columns: list[int]) -> np.ndarray:
        probe = make_pipeline(
            StandardScaler(), LogisticRegression(max_iter=2000, random_state=seed)
        )
        probe.fit(x[np.ix_(train, columns)], labels[train])
        return probe.predict(x[np.ix_(test, columns)]) == labels[test]

    rows = []
    for rank, name in enumerate(neurons, start=1):
        rows.append({"probe": "single", "k": rank, "neuron": name} | _accuracy_row(fit([rank - 1])))
    for k in range(1, len(neurons) + 1):
        rows.append({"probe": "top-k", "k": k, "neuron": ""} | _accuracy_row(fit(list(range(k)))))
    said = activations["model_yes"].to_numpy()[test] > 0.5
    rows.append({"probe": "model", "k": 0, "neuron": ""} | _accuracy_row(said == labels[test]))
    return pd.DataFrame(rows)
