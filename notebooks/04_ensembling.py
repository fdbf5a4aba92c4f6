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
# # Stage 3: prediction ensembling
#
# **The question** (paper section 5.3, Figure 6; {cite}`lad2024remarkable`, with the neuron classes
# of {cite}`gurnee2024universal`). In the second half of the model, the paper
# finds *prediction neurons*, MLP neurons whose output raises the logits of a small set of
# tokens, rising after the midpoint, peaking near 85% depth and declining in the last layers,
# while the logit lens falls towards the final prediction in a phase transition that they drive.
# Does this model do the same? The last claim is tested against a null, with depth held
# fixed: does the logit-lens KL fall more in the blocks that hold prediction neurons than depth
# alone predicts? (A fall that only follows depth would agree with any curve that rises with
# depth.) A null that finds nothing is reported as *no evidence*, not as a refutation. The
# claims about neuron counts treat the neurons as the units: a share gets an exact binomial
# interval, a comparison of layers a bootstrap over each layer's neurons.
#
# **What this page measures.** For every MLP neuron, the cosine similarity of the direction it
# writes into the residual stream with every token's unembedding vector: across the vocabulary
# these values have a skew and a (Pearson) kurtosis. A neuron with kurtosis above 10 is a
# prediction neuron if its skew is positive and a *suppression* neuron if negative (Gurnee et
# al. 2024, as in the authors' code; [Methods](../methods.md)). Beside the counts, the logit
# lens of the [previous page](03_feature_engineering.ipynb) over every layer.
#
# **Time to run.** With the defaults, on a CPU (a GPU computes everything now), the numbers are read from the book's results pack (256
# sequences of 128 tokens; the neuron moments of every neuron) and a slice of each is recomputed
# to show that the pack still matches the code: about half a minute. Other parameters compute everything
# now: the neuron classes take about 5 minutes on a 2-core CPU the first time (18 layers x 2,048 neurons x 262,144 tokens), then come from the cache; the logit lens about 3 s per 1,000 tokens.

# %%

from IPython.display import Markdown, display

from stages.analyses.lens import lens_table
from stages.analyses.neurons import class_counts, top_neurons
from stages.book.page import open_page
from stages.claims import verdict_summary, verdict_table, verdict_text
from stages.claims.stages import ensembling_claims
from stages.plots.stages import lens_figure, neuron_counts_figure

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
page = open_page("ensembling", globals())
res = page.results()
classes = res.classes()  # every neuron's moments (weights only) and class
counts = class_counts(classes)
lens_sums = res.sums("lens")
lens = lens_table(lens_sums, seed=seed)
elapsed = page.elapsed
name, n_layers, lm = res.name, res.n_layers, res.model
display(Markdown(
    f"**{name}**: {len(classes):,} MLP neurons in {n_layers} layers; "
    f"{counts.prediction.sum()} prediction and {counts.suppression.sum()} suppression neurons. "
    f"Done in {elapsed:.0f} s."
))
display(Markdown(res.report()))

# %% [markdown]
# ## Figure 6: prediction and suppression neurons across depth

# %%
neuron_counts_figure(counts, title=f"Figure 6 ({name}): neurons with kurtosis > 10, by skew")

# %% [markdown]
# **Figure 6** (the paper's Figure 6). MLP neurons per layer whose vocabulary-effect distribution
# has kurtosis above 10: prediction neurons (positive skew) and suppression neurons (negative
# skew), as a fraction of each layer's neurons (hover for the counts).

# %% [markdown]
# ## Figure 6: the logit lens over every layer

# %%
lens_figure(lens, title=f"Logit lens ({name}), every layer")

# %% [markdown]
# **Logit lens, every layer.** KL to the final distribution and top-1 agreement after each layer:
# the phase transition the paper places in stage 3.

# %% [markdown]
# ## The strongest prediction neurons and the tokens they promote
#
# The neurons of highest kurtosis, and the tokens whose unembedding is most aligned with what the
# neuron writes (cosine similarity).

# %%
display(top_neurons(lm, classes, "prediction").round(2).style.hide(axis="index"))

# %% [markdown]
# ## Does stage 3 hold for this model?

# %%
verdicts = ensembling_claims(classes, lens_sums, n_layers, seed=seed)
display(verdict_table(verdicts).style.hide(axis="index"))
display(Markdown(f"For **{name}**: " + verdict_text(verdicts)))

# %% [markdown]
# ## The numbers: neurons per layer

# %%
display(counts.round(4).style.hide(axis="index"))

# %% [markdown]
# ## Exercises
#
# Answer before you open a solution; each solution is computed from this page's numbers.

# %% [markdown]
# **1. Count the predictors.** Predict the layer with the most prediction neurons, and whether suppression neurons outnumber them there.

# %% tags=["hide-cell"]
# Solution 1
row = counts.sort_values("prediction").iloc[-1]
display(Markdown(f"Layer {int(row.layer)}: {int(row.prediction)} prediction and {int(row.suppression)} suppression "
                 f"neurons (of {int(row.d_mlp)}). The paper: prediction neurons peak near 85% depth."))

# %% [markdown]
# ## Summary

# %%
display(Markdown(verdict_summary(verdicts)))

# %% [markdown]
# ## What's next
#
# Stage 4, [residual sharpening](05_sharpening.ipynb): whether suppression neurons outnumber
# prediction neurons in the last layers.

# %% [markdown]
# ---

# %%
page.footer(res)
