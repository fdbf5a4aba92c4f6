"""stages: re-run "The Remarkable Robustness of LLMs: Stages of Inference?" on real models.

The public API (notebooks, tests and the CLI use exactly this)::

    import stages
    model = stages.load_model("gemma-3-270m", device="cpu", dtype="float32")
    tokens = stages.load_corpus(model, corpus="default", n_tokens=4096, seq_len=256, seed=0)
    ivs = stages.drops(model) + stages.swaps(model)
    table = stages.run_sweep(model, tokens, ivs, batch_size=8)

and one function per stage measurement, each ``f(model, tokens, ...) -> DataFrame``:
``attention_locality``, ``component_norms``, ``logit_lens``; ``neuron_classes(model)``
(weights only); ``stage_boundaries(per_layer_table, columns)`` fits the stage boundaries.

Interventions are plans (:mod:`stages.engine.plans`): ``drop(i)``, ``drop_range(i, j)``,
``drop_component(i, "attn" | "mlp")``, ``swap(i)``, ``reverse(i, j)``, ``shuffle(i, j, seed)``,
``repeat(i, j, times)``, ``duplicate(i, j, times)`` and ``parallel(i, j)``; ``run_sweep`` takes
any list of them.

Names are imported when first used (PEP 562), so ``import stages.store`` or ``stages cache ls``
does not load torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# public name -> the module that defines it
_API = {
    "attention_locality": "stages.analyses.attention",
    "stage_boundaries": "stages.analyses.boundaries",
    "load_corpus": "stages.text.corpus",
    "intervened_logits": "stages.engine.forward",
    **dict.fromkeys(
        ["FAMILIES", "Intervention", "Plan", "drop", "drop_component", "drop_range", "drops",
         "duplicate", "parallel", "repeat", "reverse", "shuffle", "swap", "swaps"],
        "stages.engine.plans",
    ),
    "logit_lens": "stages.analyses.lens",
    "block_deletion": "stages.analyses.blocks",
    "reorderings": "stages.analyses.reorder",
    "layer_duplication": "stages.analyses.duplication",
    **dict.fromkeys(["cka_table", "layer_scores", "similarity_sums"], "stages.analyses.similarity"),
    "skip_effects": "stages.analyses.skip_effects",
    "cloze_accuracy": "stages.analyses.cloze",
    "cloze_set": "stages.text.cloze",
    **dict.fromkeys(
        ["EMBEDDED_DEFAULT", "ModelLoadError", "load_model", "model_info"], "stages.models"
    ),
    **dict.fromkeys(["class_counts", "neuron_classes", "top_neurons"], "stages.analyses.neurons"),
    "component_norms": "stages.analyses.norms",
    "ing_probes": "stages.analyses.probes",
    "subjoiner_heads": "stages.analyses.subjoiner",
    "swap_similarity": "stages.analyses.swap_similarity",
    **dict.fromkeys(["default_interventions", "run_sweep"], "stages.engine.sweep"),
}  # fmt: skip

__all__ = [
    "EMBEDDED_DEFAULT",
    "FAMILIES",
    "Intervention",
    "ModelLoadError",
    "Plan",
    "attention_locality",
    "block_deletion",
    "cka_table",
    "class_counts",
    "cloze_accuracy",
    "cloze_set",
    "component_norms",
    "default_interventions",
    "drop",
    "drop_component",
    "drop_range",
    "drops",
    "duplicate",
    "ing_probes",
    "intervened_logits",
    "layer_duplication",
    "layer_scores",
    "load_corpus",
    "load_model",
    "logit_lens",
    "model_info",
    "neuron_classes",
    "parallel",
    "reorderings",
    "repeat",
    "reverse",
    "run_sweep",
    "shuffle",
    "similarity_sums",
    "skip_effects",
    "stage_boundaries",
    "subjoiner_heads",
    "swap",
    "swap_similarity",
    "swaps",
    "top_neurons",
]
__version__ = "0.2.0"


def __getattr__(name: str) -> Any:
    if name in _API:
        value = getattr(importlib.import_module(_API[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'stages' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_API})


if TYPE_CHECKING:  # what the names are, for readers and type checkers
    from stages.analyses.attention import attention_locality
    from stages.analyses.blocks import block_deletion
    from stages.analyses.boundaries import stage_boundaries
    from stages.analyses.cloze import cloze_accuracy
    from stages.analyses.duplication import layer_duplication
    from stages.analyses.lens import logit_lens
    from stages.analyses.neurons import class_counts, neuron_classes, top_neurons
    from stages.analyses.norms import component_norms
    from stages.analyses.probes import ing_probes
    from stages.analyses.reorder import reorderings
    from stages.analyses.similarity import cka_table, layer_scores, similarity_sums
    from stages.analyses.skip_effects import skip_effects
    from stages.analyses.subjoiner import subjoiner_heads
    from stages.analyses.swap_similarity import swap_similarity
    from stages.engine.forward import intervened_logits
    from stages.engine.plans import (
        FAMILIES,
        Intervention,
        Plan,
        drop,
        drop_component,
        drop_range,
        drops,
        duplicate,
        parallel,
        repeat,
        reverse,
        shuffle,
        swap,
        swaps,
    )
    from stages.engine.sweep import default_interventions, run_sweep
    from stages.models import EMBEDDED_DEFAULT, ModelLoadError, load_model, model_info
    from stages.text.cloze import cloze_set
    from stages.text.corpus import load_corpus
