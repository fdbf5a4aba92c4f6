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
# last layers ([stage 2](03_feature_engineering.ipynb)).
#
# **Time to run.** With the defaults, on a CPU (a GPU computes everything now), the numbers are read from the book's results pack (256
# sequences of 128 tokens; the neuron moments of every neuron) and a slice of each is recomputed
# to show that the pack still matches the code: about half a minute. Other parameters compute everything
# now: the times of the stage 1 to 3 pages added.

# %%

from IPython.display import Markdown, display

from stages.analyses.lens import lens_table
from stages.analyses.neurons import class_counts, top_neurons
from stages.analyses.norms import norms_table
from stages.book.page import open_page
from stages.claims import verdict_summary, verdict_table, verdict_text
from stages.depth import HALF
from stages.claims.stages import sharpening_claims
from stages.plots.stages import lens_figure, neuron_counts_figure, norms_figure

# %% tags=["parameters"]
model = "gemma-3-270m"  # the embedded default, or a Hugging Face name / local folder
n_tokens = 32768  # tokens scored (rounded up to whole sequences of seq_len)
seq_len = 128  # tokens per sequence, BOS included
batch_size = 8  # sequences per forward pass
device = "auto"  # "auto", "cpu", "cuda"
dtype = "float32"  # "float32", "bfloat16", "float64"
corpus = "default"  # the shipped public-domain prose, a local file, or a hub dataset
seed = 0  # which sequences are sampled, and the bootstrap
pack = "default"  # "default": the shipped results pack when these are its parameters; "none"; or a pack's folder

# %%
page = open_page("sharpening", globals())
res = page.results()
classes = res.classes()
counts = class_counts(classes)
norm_sums, lens_sums = res.sums("norms"), res.sums("lens")
norms = norms_table(norm_sums, seed=seed)
lens = lens_table(lens_sums, seed=seed)
elapsed = page.elapsed
name, n_layers, lm = res.name, res.n_layers, res.model
display(Markdown(f"**{name}**, {n_layers} layers. Done in {elapsed:.0f} s."))
display(Markdown(res.report()))

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
verdicts = sharpening_claims(classes, norm_sums, lens_sums, n_layers, seed=seed)
display(verdict_table(verdicts).style.hide(axis="index"))
display(Markdown(f"For **{name}**: " + verdict_text(verdicts)))

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
# ## Summary

# %%
display(Markdown(verdict_summary(verdicts)))

# %% [markdown]
# ## What's next
#
# The [case studies](06_case_studies.ipynb) test two of the stages on specific mechanisms: heads
# that join a word's sub-word tokens (stage 1) and neurons that predict "-ing" (stage 3).

# %% [markdown]
# ---

# %%
page.footer(res)
