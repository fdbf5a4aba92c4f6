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
# # Stage 2: feature engineering
#
# **The question** (paper section 5.2, Figures 6 and 8; {cite}`lad2024remarkable`), read with the
# logit lens {cite}`nostalgebraist2020logitlens` (the tuned lens {cite}`belrose2023eliciting` is its
# trained refinement). After detokenization, the paper argues,
# the first half of the model builds features rather than predictions: read through the logit
# lens, the residual stream of these layers is still far from the model's final next-token
# distribution. Is it for this model?
#
# **What this page measures.** After every block, the residual stream is read as the model reads
# its last one: the final norm, with that residual's own statistics, then the unembedding (the
# *logit lens*; [Methods](../methods.md)). Each layer's distribution is compared with the
# model's own output at every scored position: KL(final || layer) in nats, the fraction of
# positions where the two agree on the top-1 token, and the entropy of the layer's distribution
# in bits. Shaded bands are 95% bootstrap intervals over sequences. (The authors' notebook
# normalised every layer with the final layer's cached scale, a TransformerLens behaviour of the
# time; here every layer gets its own normalisation, which is the definition of the lens.)
#
# **Time to run.** With the defaults, on a CPU (a GPU computes everything now), the numbers are read from the book's results pack (256
# sequences of 128 tokens) and its first two sequences are recomputed to show that the pack still
# matches the code: about 20 seconds. Other parameters compute everything now: about 3 s per 1,000 tokens on a 2-core CPU for gemma-3-270m (one unembedding of every layer's residual).

# %%

from IPython.display import Markdown, display

from stages.analyses.lens import lens_table
from stages.book.page import open_page
from stages.claims import verdict_summary, verdict_table, verdict_text
from stages.depth import HALF
from stages.claims.stages import feature_engineering_claims
from stages.plots.stages import lens_figure

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
page = open_page("feature_engineering", globals())
res = page.results()
lens_sums = res.sums("lens")  # per sequence: every layer's logit-lens sums
lens = lens_table(lens_sums, seed=seed)
elapsed = page.elapsed
name, n_layers = res.name, res.n_layers
display(Markdown(
    f"**{name}**, {n_layers} layers, {int(lens.n_tokens.iloc[0]):,} scored positions in "
    f"{int(lens.n_seq.iloc[0])} sequences. Done in {elapsed:.0f} s."
))
display(Markdown(res.report()))

# %% [markdown]
# ## Figures 6 and 8, first half: the logit lens up to the midpoint
#
# The KL axis is logarithmic above 1 nat. The dashed line on the right is the entropy of the
# model's own predictions.

# %%
lens_figure(lens, title=f"Logit lens ({name}), first half of the layers", depth=(0.0, HALF))

# %% [markdown]
# **Logit lens, first half** (the paper's Figures 6 and 8, left part). KL from the model's final
# distribution to the distribution read from the residual after each layer, the top-1 agreement
# between them, and the read-out's entropy.

# %% [markdown]
# ## Does stage 2 hold for this model?

# %%
verdicts = feature_engineering_claims(lens_sums, n_layers, seed=seed)
display(verdict_table(verdicts).style.hide(axis="index"))
display(Markdown(f"For **{name}**: " + verdict_text(verdicts)))

# %% [markdown]
# ## The numbers (every layer)

# %%
columns = ["layer", "rel_depth", "kl_to_final", "kl_to_final_lo", "kl_to_final_hi",
           "top1_agreement", "top1_agreement_lo", "top1_agreement_hi", "entropy", "entropy_lo",
           "entropy_hi", "loss"]
display(lens[columns].round(4).style.hide(axis="index"))

# %% [markdown]
# ## Exercises
#
# Answer before you open a solution; each solution is computed from this page's numbers.

# %% [markdown]
# **1. When does the lens agree?** At which relative depth does the logit lens first agree with the model's final top-1 prediction on at least half of the positions?

# %% tags=["hide-cell"]
# Solution 1
hit = lens[lens.top1_agreement >= 0.5]
display(Markdown("Never before the last layer." if hit.empty else
                 f"Layer {int(hit.iloc[0].layer)} (relative depth {hit.iloc[0].rel_depth:.2f}), agreement "
                 f"{hit.iloc[0].top1_agreement:.0%}. The paper: little progress toward the final prediction in stage 2."))

# %% [markdown]
# ## Summary

# %%
display(Markdown(verdict_summary(verdicts)))

# %% [markdown]
# ## What's next
#
# Stage 3, [prediction ensembling](04_ensembling.ipynb): where the prediction neurons appear, and
# whether the lens's divergence to the final prediction falls in a phase transition.

# %% [markdown]
# ---

# %%
page.footer(res)
