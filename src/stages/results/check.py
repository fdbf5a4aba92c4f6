"""The live slice: the first rows of every part recomputed with today's code."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from stages.analyses.neurons import vocab_moments_rows
from stages.engine.runs import tokens_sha256
from stages.models import model_info
from stages.results.computer import Computer, ing_neuron_sets, profile_heads
from stages.results.pack import SLICE, Pack, PackError
from stages.results.parts import PLAN_PARTS, WINDOW_PARTS
from stages.results.tolerance import RTOL, kernels, slice_rtol
from stages.shapes import Model


def compare_rows(live: pd.DataFrame, stored: pd.DataFrame, *, rtol: float = RTOL) -> pd.DataFrame:
    """Compare rows computed now with the same rows of a pack, column by column.

    A value matches when ``|live - stored| <= rtol * max(|stored|, 1e-3 * scale)``, where
    ``scale`` is the column's mean absolute value over these rows (so a sum that happens to
    lie near zero is compared at its column's scale, not at zero).

    A column that only one side has fails (the code now computes something the pack lacks,
    or no longer computes something it holds).

    Returns:
        One row per column: ``column``, ``max_rel_diff``, ``ok``.
    """
    rows = [
        {"column": column, "max_rel_diff": np.inf, "ok": False}
        for column in live.columns
        if column not in stored.columns
    ]
    for column in stored.columns:
        if column not in live.columns:
            rows.append({"column": column, "max_rel_diff": np.inf, "ok": False})
            continue
        a = live[column].to_numpy(dtype=np.float64)
        b = stored[column].to_numpy(dtype=np.float64)
        if len(a) != len(b):
            rows.append({"column": column, "max_rel_diff": np.inf, "ok": False})
            continue
        scale = np.abs(b).mean() if len(b) else 0.0
        floor = max(1e-3 * scale, np.finfo(np.float64).tiny)
        rel = np.abs(a - b) / np.maximum(np.abs(b), floor)
        worst = float(rel.max()) if len(rel) else 0.0
        rows.append({"column": column, "max_rel_diff": worst, "ok": worst <= rtol})
    return pd.DataFrame(rows)


def part_slice(pack: Pack, computer: Computer, part: str, here: str) -> dict[str, Any]:
    """One part's live slice: its first rows recomputed by ``computer`` and compared.

    The rows are those :func:`slice_check` describes; ``here`` is the
    :func:`~stages.results.tolerance.kernels` running now (it picks the tolerance).

    Returns:
        ``part``, ``rows``, ``columns``, ``max_rel_diff``, ``rtol``, ``ok``.
    """
    if part == "neurons":
        stored_all = pack.frame(part)
        stored = stored_all[stored_all["layer"] == 0].head(64)
        live = vocab_moments_rows(computer.model, 0, stored["neuron"].tolist())
    else:
        stored = pack.frame(part, min(SLICE, pack.rows_done(part))).reset_index(drop=True)
        live = computer.slice_rows(part, len(stored))
        if part in PLAN_PARTS:
            stored = stored[[c for c in stored.columns if c in live.columns]]
    rtol = slice_rtol(pack.manifest, part, here)
    cmp = compare_rows(live.reset_index(drop=True), stored, rtol=rtol)
    return {"part": part, "rows": len(stored), "columns": len(cmp),
            "max_rel_diff": float(cmp["max_rel_diff"].max()), "rtol": rtol,
            "ok": bool(cmp["ok"].all())}  # fmt: skip


def slice_check(pack: Pack, model: Model, parts: tuple[str, ...] | None = None) -> pd.DataFrame:
    """Recompute the first ``SLICE`` rows of each part with today's code; compare with the pack.

    The rows are computed exactly as the pack's first chunk was (same rows, same batch); for a
    part of hundreds of plans, the plans of a few start layers
    (:meth:`stages.results.computer.Computer.slice_rows`). They are kept in the result cache,
    whose keys hold a hash of the source of the code that computes them, so a book computes
    each part's slice once and any change of that code computes it again. For the neuron
    moments, the first 64 neurons of layer 0 are recomputed. For the case studies, today's
    windows must have the manifest's sha256, and the choices the pack made once (the "-ing"
    neurons of each selection rule, the heads whose whole profile is kept) must be those today's
    code makes.

    Args:
        pack: an opened pack.
        model: the pack's model (weights checked).
        parts: the parts to check (default: every part in the pack); a part the pack does not
            hold is left out.

    A part's rows match to :data:`~stages.results.tolerance.RTOL` when its first chunk was
    computed on the kernels that run now, else to
    :data:`~stages.results.tolerance.CROSS_KERNEL_RTOL` (:mod:`stages.results.tolerance`).

    Returns:
        One row per check: ``part``, ``rows`` (how many rows were recomputed), ``columns``
        (values per row compared), ``max_rel_diff`` (over every value), ``rtol`` (the
        tolerance applied; 0 for a choice that must be identical), ``ok``.

    Raises:
        PackError: the model is not the pack's.
    """
    if model_info(model).get("weights_hash") != pack.manifest["model"]["weights_hash"]:
        raise PackError("this model's weights are not those the pack was computed with")
    computer = Computer(model, pack.recipe, pack)
    here = kernels(model_info(model).get("device", "cpu"))
    out = []

    def add(part: str, rows: int, columns: int, diff: float, ok: bool, rtol: float = 0.0) -> None:
        out.append({"part": part, "rows": rows, "columns": columns, "max_rel_diff": diff,
                    "rtol": rtol, "ok": bool(ok)})  # fmt: skip

    held = tuple(p for p in pack.manifest["parts"] if pack.rows_done(p) or pack.has(p))
    chosen = tuple(p for p in (parts or held) if p in held)
    out.extend(part_slice(pack, computer, part, here) for part in chosen)
    windows = {"ing" if p == "ing" else "subjoiner" for p in chosen if p in WINDOW_PARTS}
    for name in sorted(windows):
        data = computer.datasets[name]
        same = tokens_sha256(data.tokens) == pack.manifest["windows"][name]["sha256"]
        add(f"{name} windows (sha256)", len(data.labels), int(data.tokens.shape[1]),
            0.0 if same else np.inf, same)  # fmt: skip
    if "cloze" in chosen:
        data = computer.cloze
        same = tokens_sha256(data.tokens) == pack.manifest["windows"]["cloze"]["sha256"]
        add("cloze windows (sha256)", len(data), int(data.tokens.shape[1]),
            0.0 if same else np.inf, same)  # fmt: skip
    if "ing" in chosen:
        today = ing_neuron_sets(model, computer.classes(), pack.recipe)
        for rule, rows in pack.manifest["ing_neurons"].items():
            stored = pd.DataFrame(rows, columns=today[rule].columns)
            same = list(zip(today[rule]["layer"], today[rule]["neuron"], strict=True)) == list(
                zip(stored["layer"], stored["neuron"], strict=True)
            )
            rtol = slice_rtol(pack.manifest, "ing", here)
            cmp = (
                compare_rows(today[rule][["contrast"]], stored[["contrast"]], rtol=rtol)
                if same else None
            )  # fmt: skip
            ok = same and bool(cmp["ok"].all())
            diff = float(cmp["max_rel_diff"].max()) if same else np.inf
            add(f"'-ing' neurons, {rule} selection", len(stored), 1, diff, ok, rtol)
    if "subjoiner_profile" in chosen:
        sub = pack.frame("subjoiner")
        same = profile_heads(sub, sub["label"].to_numpy(bool)) == pack.manifest["profile_heads"]
        add("subjoiner profile heads", len(sub), 1, 0.0 if same else np.inf, same)
    return pd.DataFrame(out)
