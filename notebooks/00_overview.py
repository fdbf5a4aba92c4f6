# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---


# %% [markdown]
# # Overview: four stages on one axis
#
# **The question** (paper section 1, Figure 1). The paper {cite}`lad2024remarkable` proposes that every model it studied
# runs in four stages, *detokenization*, *feature engineering*, *prediction ensembling* and
# *residual sharpening*, and draws their boundaries by eye over four signals: how much dropping
# each layer hurts, how much each layer attends to the previous tokens, and how many prediction
# and suppression neurons each layer has. Where do the boundaries fall for this model, and how
# sure can we be?
#
# **What this page does.** It puts the four signals on one relative-depth axis (each scaled to its
# own range) and, beyond the paper, *fits* the boundaries: an exact Bayesian change-point
# segmentation into four stages, piecewise constant in every (standardised) signal at once, with
# every possible segmentation enumerated ([Methods](../methods.md)). Each boundary is reported at
# its most probable layer with a 90% credible interval. The fit assumes four stages exist; a
# narrow interval says where the signals change most, not that the stages are real.
#
# **Time to run.** Seconds when the [robustness](01_robustness.ipynb), [stage 1](02_detokenization.ipynb)
# and [stage 3](04_ensembling.ipynb) pages have run with the same parameters (their tables are read
# from the cache); otherwise their times added.
#
# **Where each stage is tested.** [Robustness](01_robustness.ipynb) (the interventions),
# [detokenization](02_detokenization.ipynb), [feature engineering](03_feature_engineering.ipynb),
# [prediction ensembling](04_ensembling.ipynb), [residual sharpening](05_sharpening.ipynb), the
# [case studies](06_case_studies.ipynb), [what swapped layers write](07_appendix_cosine_similarity.ipynb),
# the same signals [across models](08_cross_model.ipynb), and the engine's
# [performance](09_performance.ipynb).

# %%
import time

from IPython.display import Markdown, display

import stages
from stages.attention import attention_locality
from stages.boundaries import stage_boundaries
from stages.neurons import class_counts, neuron_classes
from stages.plots import overview_figure
from stages.provenance import provenance, provenance_markdown
from stages.stage_claims import SIGNALS, stage_signals

# %% tags=["parameters"]
model = "gemma-3-270m"  # the embedded default, or a Hugging Face name / local folder
n_tokens = 768  # tokens scored (rounded up to whole sequences)
seq_len = 128  # tokens per sequence, BOS included
batch_size = 8  # sequences per forward pass
device = "auto"  # "auto", "cpu", "cuda"
dtype = "float32"  # "float32", "bfloat16", "float64"
corpus = "default"  # the shipped public-domain prose, a local file, or a hub dataset
seed = 0  # which sequences are sampled, and the bootstrap

# %%
started = time.time()
lm = stages.load_model(model, device=device, dtype=dtype)
tokens = stages.load_corpus(lm, corpus=corpus, n_tokens=n_tokens, seq_len=seq_len, seed=seed)
sweep = stages.run_sweep(lm, tokens, batch_size=batch_size, seed=seed)
locality = attention_locality(lm, tokens, batch_size=batch_size, seed=seed)
counts = class_counts(neuron_classes(lm))
signals = stage_signals(sweep, locality, counts)
boundaries = stage_boundaries(signals, list(SIGNALS), n_stages=4, min_size=2)
elapsed = time.time() - started
name = lm.stages_info["name"]
display(Markdown(f"**{name}**, {len(lm.blocks)} layers. Done in {elapsed:.0f} s."))

# %% [markdown]
# ## Figure 1: the stage signals and the fitted boundaries

# %%
overview_figure(signals, SIGNALS, boundaries, title=f"Figure 1 ({name}): stages of inference")

# %% [markdown]
# **Figure 1** (the paper's Figure 1). Per layer, against relative depth, each signal scaled to
# 0..1 by its own range (hover for the values): the KL of dropping the layer, attention on the
# previous five tokens, and the fractions of prediction and suppression neurons. Dashed lines: the
# most probable stage boundaries; grey bands: their 90% credible intervals. Stage 1 is left of the
# first line, stage 4 right of the last.

# %%
stage_names = ["detokenization", "feature engineering", "prediction ensembling",
               "residual sharpening"]
starts = [0, *boundaries["layer"], len(lm.blocks)]
spans = [f"**{stage}**: layers {a}-{b - 1} (relative depth {a / (len(lm.blocks) - 1):.2f}-"
         f"{(b - 1) / (len(lm.blocks) - 1):.2f})"
         for stage, a, b in zip(stage_names, starts[:-1], starts[1:])]
display(Markdown(
    f"The fitted stages of **{name}**: " + "; ".join(spans) + ". "
    + " ".join(f"Boundary {r.boundary} starts at layer {r.layer} (posterior probability "
               f"{r.probability:.2f}; 90% interval layers {r.layer_lo}-{r.layer_hi})."
               for r in boundaries.itertuples())
    + " The paper gives no numbers for its boundaries; in words, stage 3 begins the second half"
    + " of the model (here boundary 2 is at relative depth "
    + f"{boundaries.rel_depth.iloc[1]:.2f}) and stage 4 is the last layers (here from relative"
    + f" depth {boundaries.rel_depth.iloc[2]:.2f}). " + boundaries.attrs["method"]
))

# %% [markdown]
# ## The numbers

# %%
display(signals.round(4).style.hide(axis="index"))
display(boundaries.round(3).style.hide(axis="index"))

# %% [markdown]
# ## Exercises
#
# Answer before you open a solution; each solution is computed from this page's numbers.

# %% [markdown]
# **1. Predict, then look.** The paper places prediction ensembling in the second half of a model. Before looking at Figure 1, guess the relative depth of the first layer with any prediction neuron in this model.

# %% tags=["hide-cell"]
# Solution 1
first = signals[signals.prediction_frac > 0].iloc[0]
display(Markdown(f"The first layer with prediction neurons is layer {int(first.layer)}, relative depth "
                 f"{first.rel_depth:.2f} ({first.prediction_frac:.2%} of its neurons)."))

# %% [markdown]
# **2. How sure is the fit?** Which of the three fitted boundaries is the least certain, and what on the page tells you?

# %% tags=["hide-cell"]
# Solution 2
widest = boundaries.assign(width=boundaries.layer_hi - boundaries.layer_lo).sort_values("width").iloc[-1]
display(Markdown(f"Boundary {int(widest.boundary)} (at layer {int(widest.layer)}): its 90% credible interval spans "
                 f"layers {int(widest.layer_lo)}-{int(widest.layer_hi)} and its posterior probability is "
                 f"{widest.probability:.2f}. Re-run with `-p seed 1` or `-p n_tokens 4096` to see it move."))

# %% [markdown]
# ---

# %%
parameters = dict(model=model, n_tokens=n_tokens, seq_len=seq_len, batch_size=batch_size,
                  device=device, dtype=dtype, corpus=corpus, seed=seed)
display(Markdown(provenance_markdown(provenance(lm, tokens, parameters, corpus=corpus, seconds=elapsed))))
