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
# # Stage 4: residual sharpening
#
# **The question** (paper section 5.4, Figures 6, 7 and 8; {cite}`lad2024remarkable`; on neurons
# that suppress tokens see also {cite}`voita2023neurons`). In the last layers, the paper finds
# that *suppression neurons* take over, that the MLPs write their largest outputs, and that the
# final layers can even raise the entropy of the prediction: sharpening (or calibrating) the
# distribution rather than changing the top token. Does this model do the same?
#
# **What this page measures.** The counts of suppression and prediction neurons per layer
# ([stage 3](04_ensembling.ipynb) explains the rule), the mean L2 norm of what each MLP and attention
# layer adds to the residual stream ([stage 1](02_detokenization.ipynb)), and the logit lens over the
# last layers ([stage 2](03_feature_engineering.ipynb)). Every table is read from the result cache when
# the earlier pages ran with the same parameters.
#
# **Time to run.** Seconds when the earlier pages have run; otherwise their times added.

# %%
import time

from IPython.display import Markdown, display

import stages
from stages.lens import logit_lens
from stages.neurons import class_counts, neuron_classes, top_neurons
from stages.norms import component_norms
from stages.plots import lens_figure, neuron_counts_figure, norms_figure
from stages.provenance import provenance, provenance_markdown
from stages.stage_claims import HALF, sharpening_claims

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
classes = neuron_classes(lm)
counts = class_counts(classes)
norms = component_norms(lm, tokens, batch_size=batch_size, seed=seed)
lens = logit_lens(lm, tokens, batch_size=batch_size, seed=seed)
elapsed = time.time() - started
name = lm.stages_info["name"]
display(Markdown(f"**{name}**, {len(lm.blocks)} layers. Done in {elapsed:.0f} s."))

# %% [markdown]
# ## Figure 6: suppression neurons in the last layers

# %%
neuron_counts_figure(counts, title=f"Figure 6 ({name}): prediction and suppression neurons")

# %% [markdown]
# **Figure 6** (the paper's Figure 6), read for the last layers: suppression against prediction
# neurons.

# %% [markdown]
# ## Figure 7: MLP output norms

# %%
norms_figure(norms, title=f"Figure 7 ({name}): what MLP and attention write, per layer")

# %% [markdown]
# **Figure 7** (the paper's Figure 7). The norms of what the MLP and attention write per layer;
# the paper finds the MLP's largest at the end.

# %% [markdown]
# ## Figure 8: the logit lens over the second half

# %%
lens_figure(lens, title=f"Figure 8 ({name}): logit lens, second half", depth=(HALF, 1.0))

# %% [markdown]
# **Figure 8** (the paper's Figure 8). The logit lens over the second half: KL to the final
# distribution, agreement and the read-out's entropy.

# %% [markdown]
# ## The strongest suppression neurons and the tokens they suppress

# %%
display(top_neurons(lm, classes, "suppression").round(2).style.hide(axis="index"))

# %% [markdown]
# ## Does stage 4 hold for this model?

# %%
claims = sharpening_claims(counts, norms, lens)
display(claims.style.hide(axis="index"))
display(Markdown(
    f"For **{name}**: " + " ".join(f"*{c.claim}*: **{c.verdict}** ({c.measured})."
                                   for c in claims.itertuples())
))

# %% [markdown]
# ## Exercises
#
# Answer before you open a solution; each solution is computed from this page's numbers.

# %% [markdown]
# **1. Sharper or flatter?** Does the last layer make the next-token distribution sharper (lower entropy) or flatter? Guess, then check against the logit lens.

# %% tags=["hide-cell"]
# Solution 1
before, last = lens.iloc[-2], lens.iloc[-1]
verb = "raises" if last.entropy > before.entropy else "lowers"
display(Markdown(f"The last layer {verb} the entropy from {before.entropy:.2f} to {last.entropy:.2f} bits. "
                 "The paper's residual sharpening expects suppression neurons to reshape the distribution at the end."))

# %% [markdown]
# ---

# %%
parameters = dict(model=model, n_tokens=n_tokens, seq_len=seq_len, batch_size=batch_size,
                  device=device, dtype=dtype, corpus=corpus, seed=seed)
display(Markdown(provenance_markdown(provenance(lm, tokens, parameters, corpus=corpus, seconds=elapsed))))
