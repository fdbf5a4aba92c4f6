"""Prediction and suppression neurons (Gurnee et al. 2024, as in the authors' code).

For every MLP neuron, take the direction it writes into the residual stream (its row of
``W_out``; for models with a norm after the MLP, Gemma's ``post_feedforward_layernorm``, that row
passed through the norm, i.e. scaled by its gain) and its cosine similarity with every column of
the unembedding ``W_U`` (after the paper's weight processing, which folds the final norm's gain
into ``W_U`` and centres it). Across the vocabulary these ``d_vocab`` values have a skew and a
**Pearson** kurtosis (the mean of z^4: a Gaussian gives 3, not scipy's default excess 0).
A neuron with kurtosis above 10 is a *prediction* neuron when the skew is positive (it raises a
few tokens' logits) and a *suppression* neuron when it is negative. The variance of the same
values is kept too: the authors' "-ing" case study also takes neurons whose variance exceeds
0.005 (:func:`stages.analyses.probes.ing_neurons`).
"""

from __future__ import annotations

import sys

import pandas as pd
import torch
from tqdm.auto import tqdm

from stages.cache import Entry
from stages.engine.runs import code_fingerprint, model_key, model_provenance
from stages.provenance import versions
from stages.shapes import Model

KURTOSIS_THRESHOLD = 10.0


def vocab_moments(
    w_out: torch.Tensor, w_u: torch.Tensor, *, chunk: int = 256
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Skew, Pearson kurtosis and variance over the vocabulary of each neuron's cosine with ``W_U``.

    Args:
        w_out: ``[n_neurons, d_model]`` output directions.
        w_u: ``[d_model, d_vocab]`` unembedding.
        chunk: neurons per matrix product (memory: ``chunk * d_vocab`` floats).

    Returns:
        ``(skew, kurtosis, variance)``, each float64 ``[n_neurons]``; population moments
        (``bias=True`` in scipy's terms, ``ddof=0``), kurtosis not excess. Elementwise work stays
        in the weights' dtype; sums are float64.
    """
    unit_u = w_u / w_u.norm(dim=0, keepdim=True)
    skews, kurts, variances = [], [], []
    for start in range(0, len(w_out), chunk):
        rows = w_out[start : start + chunk]
        cos = (rows / rows.norm(dim=1, keepdim=True)) @ unit_u  # [chunk, d_vocab]
        n = cos.shape[1]
        z = cos - cos.sum(dim=1, keepdim=True, dtype=torch.float64).to(cos.dtype) / n
        z2 = z * z
        var = z2.sum(dim=1, dtype=torch.float64) / n
        skews.append((z2 * z).sum(dim=1, dtype=torch.float64) / n / var.pow(1.5))
        kurts.append((z2 * z2).sum(dim=1, dtype=torch.float64) / n / var.pow(2))
        variances.append(var)
    return torch.cat(skews), torch.cat(kurts), torch.cat(variances)


def classify(skew: float, kurtosis: float, threshold: float = KURTOSIS_THRESHOLD) -> str:
    """The paper's rule: ``prediction`` / ``suppression`` when kurtosis > threshold, by skew."""
    if kurtosis > threshold and skew > 0:
        return "prediction"
    if kurtosis > threshold and skew < 0:
        return "suppression"
    return "other"


def output_directions(model: Model, layer: int) -> torch.Tensor:
    """``[d_mlp, d_model]``: what each neuron of ``layer`` adds to the residual, up to scale.

    The row of ``W_out``, passed through the block's post-MLP norm where it has one (Gemma);
    a norm's per-row scale does not change a cosine, its gain does.
    """
    rows = model.W_out[layer].detach()
    post = getattr(model.blocks[layer], "ln2_post", None)
    if post is not None:
        with torch.no_grad():
            rows = post(rows[None])[0]
    return rows


def vocab_cosines(model: Model, layer: int, neurons: list[int]) -> torch.Tensor:
    """``[len(neurons), d_vocab]``: cosine of each neuron's output with every ``W_U`` column.

    The per-token values whose moments :func:`vocab_moments` takes, for a few neurons.
    """
    w_u = model.W_U.detach()
    rows = output_directions(model, layer)[neurons]
    return (rows / rows.norm(dim=1, keepdim=True)) @ (w_u / w_u.norm(dim=0, keepdim=True))


def neuron_classes(
    model: Model,
    *,
    threshold: float = KURTOSIS_THRESHOLD,
    progress: bool = True,
    cache: bool = True,
) -> pd.DataFrame:
    """Classify every MLP neuron of ``model`` as prediction, suppression or other.

    The moments depend on the weights only; they are computed once per model and kept in the
    result cache (``cache=False`` recomputes them and writes nothing). On gemma-3-270m (18 x
    2,048 neurons, 262,144 tokens) the computation takes a few minutes on a 2-core CPU.

    Args:
        model: a ``TransformerBridge`` from :func:`stages.load_model`.
        threshold: the kurtosis above which a neuron is classed (the paper: 10).
        progress: show a progress bar over layers.
        cache: read and write the result cache.

    Returns:
        One row per neuron: ``layer``, ``neuron``, ``skew``, ``kurtosis`` (Pearson),
        ``variance`` (of the cosines), ``cls`` (``prediction`` / ``suppression`` / ``other``),
        ``rel_depth``; ``attrs["provenance"]``.
    """
    if not isinstance(threshold, (int, float)) or threshold <= 0:
        raise ValueError(f"threshold must be a positive number, got {threshold!r}")
    entry = None
    if cache:
        key = {
            "analysis": "neurons",
            "model": model_key(model),
            "versions": {k: v for k, v in versions().items() if k != "python"},
            "engine": code_fingerprint(sys.modules[__name__]),
        }
        entry = Entry.for_run("neurons", key)
    hit = entry.read("moments") if entry is not None else None
    if hit is not None:
        table, meta = hit
        meta = meta | {"from_cache": True}
    else:
        table = _moments_table(model, progress)
        meta = model_provenance(model) | {"analysis": "neurons", "from_cache": False}
        if entry is not None:
            entry.write("moments", table, meta=meta)
    table = classify_table(table, len(model.blocks), threshold=threshold)
    table.attrs["provenance"] = meta | {"threshold": threshold}
    return table


def classify_table(
    moments: pd.DataFrame, n_layers: int, *, threshold: float = KURTOSIS_THRESHOLD
) -> pd.DataFrame:
    """Add ``cls`` (:func:`classify`) and ``rel_depth`` to a table of neuron moments.

    Args:
        moments: ``layer``, ``neuron``, ``skew``, ``kurtosis`` (and ``variance``) per neuron,
            computed now or read from a results pack.
        n_layers: the model's number of blocks.
        threshold: the kurtosis above which a neuron is classed.
    """
    table = moments.copy()
    table["cls"] = [
        classify(s, k, threshold) for s, k in zip(table["skew"], table["kurtosis"], strict=True)
    ]
    table["rel_depth"] = table["layer"] / max(1, n_layers - 1)
    return table


def vocab_moments_rows(model: Model, layer: int, neurons: list[int]) -> pd.DataFrame:
    """:func:`vocab_moments` of a few neurons of one layer, as rows of the moments table."""
    skew, kurt, var = vocab_moments(output_directions(model, layer)[neurons], model.W_U.detach())
    return pd.DataFrame(
        {"layer": layer, "neuron": neurons, "skew": skew.cpu().numpy(),
         "kurtosis": kurt.cpu().numpy(), "variance": var.cpu().numpy()}
    )  # fmt: skip


def _moments_table(model: Model, progress: bool) -> pd.DataFrame:
    """``layer``, ``neuron``, ``skew``, ``kurtosis``, ``variance`` of every neuron."""
    w_u = model.W_U.detach()
    parts = []
    for layer in tqdm(range(len(model.blocks)), disable=not progress, desc="neurons", unit="layer"):
        skew, kurt, var = vocab_moments(output_directions(model, layer), w_u)
        parts.append(
            pd.DataFrame(
                {
                    "layer": layer,
                    "neuron": range(len(skew)),
                    "skew": skew.cpu().numpy(),
                    "kurtosis": kurt.cpu().numpy(),
                    "variance": var.cpu().numpy(),
                }
            )  # fmt: skip
        )
    return pd.concat(parts, ignore_index=True)


def top_neurons(
    model: Model, classes: pd.DataFrame, cls: str, *, k: int = 8, n_tokens: int = 6
) -> pd.DataFrame:
    """The ``k`` neurons of class ``cls`` with the highest kurtosis, and the tokens they move.

    Args:
        model: the model ``classes`` was computed on.
        classes: a :func:`neuron_classes` table.
        cls: ``"prediction"`` or ``"suppression"``.
        k: how many neurons.
        n_tokens: how many tokens per neuron: those whose unembedding direction has the
            highest cosine with the neuron's output (``prediction``: promoted) or the lowest
            (``suppression``: suppressed).

    Returns:
        One row per neuron: ``layer``, ``neuron``, ``kurtosis``, ``skew``, ``tokens`` (the
        tokens, quoted and joined), ``cosines`` (their cosines, rounded, joined).
    """
    if cls not in ("prediction", "suppression"):
        raise ValueError(f"cls must be 'prediction' or 'suppression', got {cls!r}")
    rows = classes[classes["cls"] == cls].nlargest(k, "kurtosis")
    records = []
    for row in rows.itertuples():
        cos = vocab_cosines(model, int(row.layer), [int(row.neuron)])[0]
        values, ids = cos.topk(n_tokens, largest=cls == "prediction")
        records.append(
            {
                "layer": int(row.layer),
                "neuron": int(row.neuron),
                "kurtosis": float(row.kurtosis),
                "skew": float(row.skew),
                "tokens": " ".join(repr(model.tokenizer.decode([i])) for i in ids.tolist()),
                "cosines": " ".join(f"{v:+.2f}" for v in values.tolist()),
            }
        )
    columns = ["layer", "neuron", "kurtosis", "skew", "tokens", "cosines"]
    return pd.DataFrame.from_records(records, columns=columns)


def class_counts(table: pd.DataFrame) -> pd.DataFrame:
    """Per layer: ``prediction`` and ``suppression`` counts and fractions of the layer's neurons."""
    sizes = table.groupby("layer").size()
    counts = pd.crosstab(table["layer"], table["cls"]).reindex(
        columns=["prediction", "suppression", "other"], fill_value=0
    )
    out = counts.assign(d_mlp=sizes)
    for cls in ("prediction", "suppression"):
        out[f"{cls}_frac"] = out[cls] / out["d_mlp"]
    out = out.reset_index()
    out.columns.name = None
    return out
