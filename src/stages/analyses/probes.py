"""Ensembles of prediction and suppression neurons (paper section 6.2, Figures 10 and 16).

On a :func:`stages.text.words.ing_dataset` (does the next token end in "ing"?):

1. **Relevant neurons** (:func:`ing_neurons`). By default as the authors chose them: neurons
   whose vocabulary cosines have kurtosis > 10 or variance > 0.005, ranked by how differently
   their raw logit effects ``W_U^T w_out`` treat "-ing" tokens and the rest; the top 32, each a
   prediction or a suppression neuron by the sign of its skew. Optionally by mean cosine with
   the "-ing" tokens' unembeddings (:func:`token_effects`).
2. **Activations** (:func:`neuron_activations`). Each neuron's activation (the input of
   ``W_out``, ``blocks.{l}.mlp.out.hook_in``) at the last position of every window.
3. **Probes** (:func:`probe_accuracies`). Logistic regressions (scikit-learn, standardised
   inputs) on a stratified train / validation / test split: one per neuron, and one on the
   top ``k`` neurons (ranked by their single probes' validation accuracy) for every ``k``, in
   three groups (prediction neurons, suppression neurons, all). The best single neuron and the
   best ``k`` are chosen on the validation split; accuracies are reported on the test split
   with 95% Wilson intervals.
4. **The model itself** ("model accuracy"): on the same test windows, the model "says -ing"
   when its top-1 next-token prediction at the window's last position is an "-ing" token; its
   accuracy is the share of windows where that answer is the true class. A fairer baseline
   than that top-1 answer (which says "-ing" only when an "-ing" token is the single most likely
   one): a one-feature probe on the model's own log-probability of an "-ing" next token (the
   log of the total probability of the "-ing" tokens), fitted and scored on the same splits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Unpack

import numpy as np
import pandas as pd
import torch
from scipy.stats import binomtest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from stages.analyses.neurons import output_directions, vocab_cosines
from stages.engine.forward import head as unembed
from stages.engine.forward import run_to_last_block
from stages.engine.hooks import checked_hooks
from stages.engine.runs import RunOptions, per_sequence
from stages.shapes import Model, Tokens
from stages.store import sha256_bytes


def token_effects(model: Model, classes: pd.DataFrame, token_mask: np.ndarray) -> pd.DataFrame:
    """Mean cosine of each prediction / suppression neuron's output with a set of tokens.

    Args:
        model: the bridge ``classes`` was computed on.
        classes: a :func:`stages.analyses.neurons.neuron_classes` table.
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
    model: Model,
    classes: pd.DataFrame,
    token_mask: np.ndarray,
    *,
    k: int = 32,
    selection: str = "authors",
) -> pd.DataFrame:
    """The ``k`` neurons most relevant to a set of tokens, as the authors chose them or by cosine.

    ``selection="authors"`` (the default; the authors' ``find_neurons`` notebook): candidates
    are the neurons whose cosines with the ``W_U`` columns have Pearson kurtosis > 10 or
    variance > 0.005 over the vocabulary (the moments of
    :func:`stages.analyses.neurons.neuron_classes`); each candidate's *raw* logit effects ``W_U^T
    w_out`` (not normalised) are averaged over the tokens of ``token_mask`` and over the rest, and
    the ``k`` candidates with the largest absolute difference (``contrast``) are kept. Each is a
    prediction neuron when its skew is positive, a suppression neuron when negative (a
    high-variance candidate need not pass the kurtosis test). ``selection="cosine"``: the ``k``
    prediction or suppression neurons with the largest absolute mean cosine over the tokens
    (:func:`token_effects`).

    Args:
        model: the bridge ``classes`` was computed on.
        classes: a :func:`stages.analyses.neurons.neuron_classes` table (with ``variance``).
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
        raw = output_directions(model, int(layer))[group["neuron"].tolist()] @ w_u
        inside = raw[:, mask].double().mean(1).cpu().numpy()
        outside = raw[:, ~mask].double().mean(1).cpu().numpy()
        parts.append(group.assign(contrast=inside - outside))
    if not parts:
        raise ValueError("no neuron passes the authors' kurtosis or variance test")
    table = pd.concat(parts, ignore_index=True)
    table["cls"] = np.where(table["skew"] > 0, "prediction", "suppression")
    order = table["contrast"].abs().sort_values(ascending=False, kind="stable").index
    return table.loc[order[:k], columns].reset_index(drop=True)


LOGP_COLUMN = "model_logp"
"""The :func:`neuron_activations` column of the model's log-probability of an "-ing" token."""
LOGP_PROBE = "model logp"
"""The :class:`Probes` row (``probe``; its ``group`` is ``"model"``) of the probe on it."""


def _log_mass(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``[b]`` float64: ``log sum_{t in mask} softmax(logits)_t`` (nats) of ``[b, d_vocab]``."""
    logp = logits.double().log_softmax(-1)
    return torch.logsumexp(logp[:, mask.to(logp.device)], dim=-1)


def neuron_activations(
    model: Model,
    tokens: Tokens,
    neurons: pd.DataFrame,
    token_mask: np.ndarray,
    **run: Unpack[RunOptions],
) -> pd.DataFrame:
    """The chosen neurons' activations at each window's last position, and the model's guess.

    Args:
        model: a ``TransformerBridge``.
        tokens: ``[n, seq_len]`` windows, BOS first.
        neurons: rows with ``layer`` and ``neuron`` (e.g. the head of :func:`token_effects`).
        token_mask: ``[d_vocab]`` bool: the model "says yes" when its top-1 token is in it.
        run: ``batch_size`` (windows per forward pass), ``progress``, ``cache``
            (:class:`stages.engine.runs.RunOptions`).

    Returns:
        One row per window: a column ``"{layer}.{neuron}"`` per neuron (float64 activations, in
        the order of ``neurons``), ``model_yes`` (1.0 when the model's top-1 next token is in
        ``token_mask``) and ``model_logp`` (:data:`LOGP_COLUMN`: the natural log of the model's
        total next-token probability on ``token_mask``, nats, computed in float64 from the same
        logits).
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
        with checked_hooks(model, hooks):
            final = run_to_last_block(model, batch)[:, -1]
        logits = unembed(model, final)  # [b, d_vocab]
        top1 = logits.argmax(-1).cpu()
        ordered = {f"{la}.{n}": columns[f"{la}.{n}"] for la, n in pairs}
        return ordered | {
            "model_yes": mask[top1].double().numpy(),
            LOGP_COLUMN: _log_mass(logits, mask).cpu().numpy(),
        }

    return per_sequence(
        "neuron_activations",
        model,
        tokens,
        compute=compute,
        params={"neurons": pairs, "token_mask": int(mask.sum()), "mask_hash": _mask_hash(mask)},
        desc="neuron activations",
        min_len=2,
        **run,
    )


def ing_probes(
    model: Model,
    tokens: Tokens,
    labels: np.ndarray,
    neurons: pd.DataFrame,
    token_mask: np.ndarray,
    *,
    seed: int = 0,
    **run: Unpack[RunOptions],
) -> Probes:
    """Probes on ``neurons`` for "is the next token in ``token_mask``", and the model's answer.

    :func:`neuron_activations` then :func:`probe_accuracies`.

    Args:
        model: a ``TransformerBridge``.
        tokens: ``[n, seq_len]`` windows (:func:`stages.text.words.ing_dataset`).
        labels: ``[n]`` bool, the true classes.
        neurons: rows with ``layer``, ``neuron`` and ``cls`` (:func:`ing_neurons`).
        token_mask: ``[d_vocab]`` bool, the tokens of the positive class ("-ing" tokens).
        seed: the split and the solver's seed.
        run: ``batch_size`` (windows per forward pass), ``progress``, ``cache``
            (:class:`stages.engine.runs.RunOptions`).

    Returns:
        The :func:`probe_accuracies` result.
    """
    activations = neuron_activations(model, tokens, neurons, token_mask, **run)
    return probe_accuracies(activations, labels, neurons, seed=seed)


def _mask_hash(mask: torch.Tensor) -> str:
    return sha256_bytes(mask.numpy().tobytes())[:16]


def wilson(correct: np.ndarray) -> tuple[float, float]:
    """95% Wilson interval of the share of True in ``correct``."""
    ci = binomtest(int(np.sum(correct)), len(correct)).proportion_ci(0.95, method="wilson")
    return float(ci.low), float(ci.high)


@dataclass(frozen=True)
class Probes:
    """Held-out results of the "-ing" probes.

    Attributes:
        table: one row per probe: ``probe`` (``"single"``, ``"top-k"``, ``"model"``: the model's
            top-1 answer, ``"model logp"``: a probe on its log P(-ing), :data:`LOGP_PROBE`),
            ``group`` (``"prediction"``, ``"suppression"``, ``"all"``; the model: ``"model"``),
            ``k`` (neurons used; a single probe's rank by validation accuracy within its group),
            ``neuron`` (``"layer.neuron"``, single probes), ``val_accuracy`` (on the
            validation split, where choices are made), ``accuracy`` with ``accuracy_lo`` /
            ``accuracy_hi`` (on the test split, 95% Wilson), ``n_test``, ``chosen`` (the probe
            its group's choice on the validation split picked: the best single neuron, the best
            ``k``).
        correct: ``[n_test, n_probes]`` bool, one column per row of ``table`` (in order): was the
            probe right on each test window; for paired comparisons on the same windows.
    """

    table: pd.DataFrame
    correct: np.ndarray

    def chosen(self, probe: str, group: str) -> pd.Series:
        """The row of the probe chosen on the validation split for ``probe`` and ``group``."""
        rows = self.table[
            (self.table["probe"] == probe) & (self.table["group"] == group) & self.table["chosen"]
        ]
        if rows.empty:
            raise KeyError(f"no chosen {probe} probe in group {group!r}")
        return rows.iloc[0]

    def correct_of(self, row: pd.Series) -> np.ndarray:
        """``[n_test]`` bool: the test-window correctness of a row of :attr:`table`."""
        return self.correct[:, int(row.name)]


SPLIT = (0.5, 0.25, 0.25)
"""Train, validation and test shares of the windows (stratified by class)."""


def split_windows(labels: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stratified train / validation / test indices in the :data:`SPLIT` shares."""
    index = np.arange(len(labels))
    train, rest = train_test_split(index, train_size=SPLIT[0], random_state=seed, stratify=labels)
    val, test = train_test_split(
        rest, test_size=SPLIT[2] / (SPLIT[1] + SPLIT[2]), random_state=seed,
        stratify=labels[rest],
    )  # fmt: skip
    return train, val, test


def probe_accuracies(
    activations: pd.DataFrame, labels: np.ndarray, neurons: pd.DataFrame, *, seed: int = 0
) -> Probes:
    """Single-neuron probes, top-``k`` probes and the model's own answer, chosen on validation data.

    The windows are split into train / validation / test (:data:`SPLIT`, stratified). Every
    probe is a logistic regression (scikit-learn, standardised inputs) fitted on the train
    split. Within each group (the prediction neurons, the suppression neurons, all of them),
    single probes are ranked by their validation accuracy, and top-``k`` probes use the ``k``
    best-ranked neurons together (the authors: ensembles of the most accurate single probes).
    The best single neuron and the best ``k`` are chosen on the validation split; every
    accuracy reported is on the test split, which no choice has seen. The model enters twice:
    its top-1 answer (``model_yes``, no fitting) and a one-feature logistic probe on its
    log-probability of the positive class (:data:`LOGP_COLUMN`), fitted on the same train split
    and scored on the same test split (left out when ``activations`` lack the column: a
    results pack built before it).

    Args:
        activations: a :func:`neuron_activations` table (a column ``"layer.neuron"`` per
            neuron, ``model_yes`` and, where computed, ``model_logp``).
        labels: ``[n]`` bool, the true classes.
        neurons: ``layer``, ``neuron``, ``cls`` of the neurons to probe (:func:`ing_neurons`).
        seed: the split and the solver's seed.

    Returns:
        :class:`Probes`.
    """
    labels = np.asarray(labels, dtype=bool)
    names = [f"{int(r.layer)}.{int(r.neuron)}" for r in neurons.itertuples()]
    group_of = dict(zip(names, neurons["cls"], strict=True))
    x = activations[names].to_numpy(dtype=np.float64)
    train, val, test = split_windows(labels, seed)

    def fit(features: np.ndarray) -> tuple[float, np.ndarray]:
        """Validation accuracy and ``[n_test]`` test correctness of a probe on ``[n, f]``."""
        probe = make_pipeline(
            StandardScaler(), LogisticRegression(max_iter=2000, random_state=seed)
        )
        probe.fit(features[train], labels[train])
        val_acc = float((probe.predict(features[val]) == labels[val]).mean())
        return val_acc, probe.predict(features[test]) == labels[test]

    rows, correct = [], []

    def add(row: dict[str, Any], right: np.ndarray) -> None:
        lo, hi = wilson(right)
        rows.append(row | {"accuracy": float(right.mean()), "accuracy_lo": lo,
                           "accuracy_hi": hi, "n_test": len(right)})  # fmt: skip
        correct.append(right)

    singles = {name: fit(x[:, [j]]) for j, name in enumerate(names)}
    for group in ("prediction", "suppression", "all"):
        members = [n for n in names if group == "all" or group_of[n] == group]
        ranked = sorted(members, key=lambda n: -singles[n][0])  # stable: ties keep relevance
        for rank, name in enumerate(ranked, start=1):
            val_acc, right = singles[name]
            add({"probe": "single", "group": group, "k": rank, "neuron": name,
                 "val_accuracy": val_acc, "chosen": rank == 1}, right)  # fmt: skip
        curve = [fit(x[:, [names.index(n) for n in ranked[:k]]]) for k in range(1, len(ranked) + 1)]
        best = int(np.argmax([v for v, _ in curve])) if curve else -1
        for k, (val_acc, right) in enumerate(curve, start=1):
            add({"probe": "top-k", "group": group, "k": k, "neuron": "",
                 "val_accuracy": val_acc, "chosen": k - 1 == best}, right)  # fmt: skip
    said = activations["model_yes"].to_numpy()
    model_val = float(((said[val] > 0.5) == labels[val]).mean())
    add({"probe": "model", "group": "model", "k": 0, "neuron": "", "val_accuracy": model_val,
         "chosen": True}, (said[test] > 0.5) == labels[test])  # fmt: skip
    if LOGP_COLUMN in activations:
        val_acc, right = fit(activations[[LOGP_COLUMN]].to_numpy(dtype=np.float64))
        add({"probe": LOGP_PROBE, "group": "model", "k": 0, "neuron": "",
             "val_accuracy": val_acc, "chosen": True}, right)  # fmt: skip
    return Probes(pd.DataFrame(rows), np.stack(correct, axis=1))
