"""Which source serves a page: the shipped pack, a named pack, or a computation now.

:func:`open_results` loads the model and the page's sample of tokens, and decides:

- ``pack="default"``: if the shipped pack of this model (``data/results/<model>/``) holds
  exactly this model and these tokens (the notebooks' defaults), its per-row sums are read
  after every checksum is checked; otherwise everything is computed now, as the parameters ask.
- ``pack="<folder>"``: that pack, whatever the other parameters say (a researcher's paper-scale
  pack renders a whole book); its recipe gives the model, corpus and sample.
- ``pack="none"``: always computed now.

It returns a :class:`stages.results.source.Results`, which answers a page either way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from stages.models import load_model
from stages.results.pack import Pack, PackError, Recipe, matches, shipped_pack
from stages.results.source import Results
from stages.shapes import Tokens
from stages.text.corpus import load_corpus


def open_results(
    model: str,
    *,
    n_tokens: int = Recipe.n_seq * Recipe.seq_len,
    seq_len: int = Recipe.seq_len,
    seed: int = 0,
    corpus: str = "default",
    device: str = "auto",
    dtype: str = "float32",
    batch_size: int | None = None,
    n_per_class: int = 1024,
    n_neurons: int = 32,
    window_batch: int = Recipe.window_batch,
    n_cloze: int = Recipe.n_cloze,
    pack: str = "default",
) -> Results:
    """Load the model and its sample, and choose the pack or a live computation.

    Args:
        model: an embedded model name, a Hugging Face name or a local folder (ignored when
            ``pack`` is a folder: the pack names its model).
        n_tokens: tokens in the sample (rounded up to whole sequences).
        seq_len: tokens per sequence, BOS included.
        seed: which sequences and windows are drawn.
        corpus: the text (see :func:`stages.load_corpus`).
        device: where the model runs.
        dtype: the model's dtype.
        batch_size: sequences per forward pass when computing now.
        n_per_class: case-study windows per class.
        n_neurons: "-ing" neurons per selection rule.
        window_batch: case-study windows per forward pass when computing now.
        n_cloze: cloze windows (:func:`stages.text.cloze.cloze_set`).
        pack: ``"default"``, ``"none"`` or a pack's folder (see the module docstring).

    Raises:
        PackError: a pack that exists but fails its checksums, or a named pack that is missing
            or incomplete.
    """
    chosen: Pack | None = None
    why = ""
    if pack not in ("default", "none"):
        chosen = Pack.open(Path(pack))
        if not chosen.usable:
            raise PackError(f"the results pack at {pack} is incomplete: finish it with "
                            f"stages pack build {chosen.recipe.model} --out {pack}")  # fmt: skip
        recipe = chosen.recipe
        model = recipe.model
    else:
        recipe = Recipe(
            model=model, n_seq=-(-n_tokens // seq_len), seq_len=seq_len, seed=seed,
            corpus=corpus, dtype=dtype, batch_size=batch_size or Recipe.batch_size,
            n_per_class=n_per_class, n_neurons=n_neurons, window_batch=window_batch,
            n_cloze=n_cloze,
        )  # fmt: skip
    lm = load_model(model, device=device, dtype=recipe.dtype)
    tokens = load_corpus(
        lm, corpus=recipe.corpus, n_tokens=recipe.n_tokens, seq_len=recipe.seq_len,
        seed=recipe.seed,
    )  # fmt: skip
    if pack == "default":
        chosen, why = _shipped_if_it_matches(lm, tokens, n_per_class, n_neurons, n_cloze)
    elif pack == "none":
        why = "The results pack was not asked for (pack='none')."
    if chosen is not None and not chosen.complete:
        tokens = tokens[: chosen.sequences_done]
    return Results(lm, tokens, recipe, chosen, why_live=why)


def _shipped_if_it_matches(
    lm: Any, tokens: Tokens, n_per_class: int, n_neurons: int, n_cloze: int
) -> tuple[Pack | None, str]:
    """The shipped pack of ``lm`` if it holds exactly this sample, else None and why not."""
    name = lm.stages_info["name"]
    folder = shipped_pack(name)
    if not (folder / "manifest.json").exists():
        return None, f"No results pack ships for {name}."
    candidate = Pack.open(folder)  # a pack that fails its checksums stops the page
    r = candidate.recipe
    if not candidate.usable:
        return None, (
            f"The results pack of {name} is not finished (continue it with `stages pack build "
            f"{r.model}`), so everything here is computed now."
        )
    if torch.device(lm.cfg.device).type != "cpu":
        return None, (
            f"The results pack of {name} was computed on a CPU and this page runs on "
            f"{lm.cfg.device}, where the same code gives slightly different numbers: everything "
            "here is computed now."
        )
    if not (
        matches(candidate, lm, tokens)
        and (r.n_per_class, r.n_neurons, r.n_cloze) == (n_per_class, n_neurons, n_cloze)
    ):
        return None, (
            f"The results pack of {name} holds {r.n_seq} sequences x {r.seq_len} tokens (seed "
            f"{r.seed}, {r.dtype}, {r.n_per_class} case-study windows per class, {r.n_cloze} "
            "cloze windows); these "
            "parameters ask for another sample, so everything here is computed now."
        )
    return candidate, ""


def packs_for(models: list[str], pack: str) -> list[str]:
    """The ``pack`` argument of each model on a page that opens several models.

    A pack folder serves only the model its recipe names; the others use their shipped pack
    (``"default"``).

    Raises:
        ValueError: the folder's model is not among ``models``.
    """
    if pack in ("default", "none"):
        return [pack] * len(models)
    named = Pack.open(Path(pack)).recipe.model
    if named not in models:
        raise ValueError(
            f"the results pack at {pack} is for {named!r}, which is not among the models "
            f"{models}: add it (-p models '[...]')"
        )
    return [pack if m == named else "default" for m in models]
