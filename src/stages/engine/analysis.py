"""One call for an analysis of two steps: per-sequence sums, then the table (:func:`analysis`).

Every analysis is ``*_sums(model, tokens, ...)`` (one row per sequence, cached and resumable,
what a results pack stores) and ``*_table(sums, ...)`` (the reduction with bootstrap intervals).
:func:`analysis` makes the one-call function a reader uses, ``run_sweep``, ``logit_lens``,
``attention_locality`` and the others, from the two steps: keyword arguments go to the step that
takes them, ``n_layers`` comes from the model, and the docstring is assembled from the steps'
own, so each argument is documented once.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import pandas as pd

from stages.engine.runs import RunOptions
from stages.shapes import Model

COMMON_ARGS: dict[str, str] = {
    "model": "a ``TransformerBridge`` from :func:`stages.load_model`.",
    "tokens": "``[n_seq, seq_len]`` token ids, each row starting with BOS.",
    "batch_size": "sequences per forward pass (default: from the free memory of the model's "
    "device).",
    "progress": "show a progress bar.",
    "cache": "read and write the result cache (:mod:`stages.cache`): each batch is "
    "checkpointed as it finishes, so an interrupted run resumes where it stopped and gives "
    "the same table; finished sums are reused.",
    "n_boot": "bootstrap resamples (over sequences) for the 95% intervals.",
    "seed": "bootstrap seed.",
}
"""The arguments every analysis shares, documented once."""


def documented(f: Callable[..., Any]) -> dict[str, str]:
    """The arguments a Google-style docstring's ``Args`` section describes, by name."""
    lines = inspect.cleandoc(f.__doc__ or "").splitlines()
    if "Args:" not in lines:
        return {}
    out: dict[str, str] = {}
    name = None
    for line in lines[lines.index("Args:") + 1:]:
        if line and not line.startswith(" "):
            break
        head = line[4:] if line.startswith("    ") and not line.startswith("     ") else None
        if head and ":" in head:
            name, _, text = head.partition(":")
            out[name.strip()] = text.strip()
        elif name and line.strip():
            out[name] += " " + line.strip()
    return out


def _params(f: Callable[..., Any]) -> list[str]:
    """The keywords ``f`` takes: its named parameters, and ``**run`` as the :class:`RunOptions`."""
    out = []
    for p in inspect.signature(f).parameters.values():
        if p.kind is p.VAR_KEYWORD:
            out += list(RunOptions.__annotations__)
        elif p.name not in ("sums", "n_layers"):
            out.append(p.name)
    return out


def analysis(
    name: str, sums: Callable[..., pd.DataFrame], table: Callable[..., pd.DataFrame],
    summary: str, *, args: dict[str, str] | None = None,
) -> Callable[..., pd.DataFrame]:  # fmt: skip
    """The one-call function ``table(sums(model, tokens, ...), ...)`` of an analysis.

    Args:
        name: the function's name (``"logit_lens"``).
        sums: ``f(model, tokens, ...)``: the per-sequence sums.
        table: ``g(sums, ...)``: their reduction (given ``n_layers`` from the model when it
            takes one).
        summary: the call's description (its docstring's first paragraph).
        args: the documentation of arguments particular to this analysis that the steps'
            docstrings do not give (the shared ones are in :data:`COMMON_ARGS`).

    Returns:
        ``call(model, tokens, *args, **kwargs)``: positional arguments after ``tokens`` and the
        keyword arguments ``sums`` takes go to it (those both take to both), the others to
        ``table``; an argument neither takes is a ``TypeError``.
    """
    to_sums, to_table = _params(sums), _params(table)
    wants_layers = "n_layers" in inspect.signature(table).parameters
    sums_docs = documented(sums)
    docs = COMMON_ARGS | documented(table) | sums_docs | (args or {})
    if "run" in sums_docs:  # what the batch counts and how its default is sized, as sums says
        docs["batch_size"] = (f"the run options as :func:`{sums.__name__}` describes them: "
                              f"{sums_docs['run']}")  # fmt: skip
    missing = [p for p in dict.fromkeys(to_sums + to_table) if p not in docs]
    if missing:
        raise ValueError(f"{name}: document the arguments {missing}")

    def call(model: Model, tokens: Any, *positional: Any, **kwargs: Any) -> pd.DataFrame:
        unknown = set(kwargs) - set(to_sums) - set(to_table)
        if unknown:
            raise TypeError(f"{name}() got unexpected arguments {sorted(unknown)}")
        s_kw = {k: v for k, v in kwargs.items() if k in to_sums}
        t_kw = {k: v for k, v in kwargs.items() if k in to_table}
        if wants_layers:
            t_kw.setdefault("n_layers", len(model.blocks))
        return table(sums(model, tokens, *positional, **s_kw), **t_kw)

    lines = [f"    {p}: {docs[p]}" for p in dict.fromkeys(to_sums + to_table)]
    call.__name__ = call.__qualname__ = name
    call.__module__ = sums.__module__
    call.__doc__ = (
        f"{summary}\n\n:func:`{sums.__module__}.{sums.__name__}` (one row per sequence or "
        f"window), then :func:`{table.__module__}.{table.__name__}`.\n\nArgs:\n"
        + "\n".join(lines)
        + f"\n\nReturns:\n    The :func:`{table.__name__}` of the sums.\n"
    )
    return call
