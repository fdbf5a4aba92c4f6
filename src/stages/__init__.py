"""stages: re-run "The Remarkable Robustness of LLMs: Stages of Inference?" on real models.

The public API (notebooks, tests and the CLI use exactly this)::

    import stages
    model = stages.load_model("gemma-3-270m", device="cpu", dtype="float32")
    tokens = stages.load_corpus(model, corpus="default", n_tokens=4096, seq_len=256, seed=0)
    ivs = stages.drops(model) + stages.swaps(model)
    table = stages.run_sweep(model, tokens, ivs, batch_size=8)
"""

from stages.corpus import load_corpus
from stages.interventions import Intervention, drops, intervened_logits, swaps
from stages.models import EMBEDDED_DEFAULT, ModelLoadError, load_model, model_info
from stages.neurons import neuron_classes
from stages.sweep import default_interventions, run_sweep

__all__ = [
    "EMBEDDED_DEFAULT",
    "Intervention",
    "ModelLoadError",
    "default_interventions",
    "drops",
    "intervened_logits",
    "load_corpus",
    "load_model",
    "model_info",
    "neuron_classes",
    "run_sweep",
    "swaps",
]
__version__ = "0.1.0"
