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
# # Appendix: what a swapped layer writes
#
# **The question** (paper appendix A, Figures 11 and 12; {cite}`lad2024remarkable`). When two adjacent layers run in
# exchanged order, does each keep writing what it wrote in its own place ("stubborn"), or does it
# take over the role of the layer it replaced? The paper compares, for every adjacent swap, the
# attention and MLP outputs of the swapped model with the unperturbed model's by cosine
# similarity.
#
# **What this page measures.** For every swap of layers *i* and *i+1* and each component, the
# mean cosine over tokens between: a layer's output after the swap and its own output in the
# unperturbed model (*self*-similarity); the output now at a position and the output the
# unperturbed model had there (*index* similarity); and, for reference, the outputs of layers
# *i* and *i+1* in the unperturbed model (*adjacent* similarity). Bands are 95% bootstrap
# intervals over sequences. The swapped pair starts from the unperturbed residual entering
# layer *i* and each block keeps its own attention type and positional table
# ([Methods](../methods.md)).
#
# **Time to run.** With the defaults, on a CPU (a GPU computes everything now), the sums are read from the book's results pack and its
# first two sequences recomputed to check it: about 15 seconds. Other parameters compute
# everything now: about 25 s per 1,000 tokens on a 2-core CPU (one forward pass per batch plus
# two blocks per swap).

# %%

from IPython.display import Markdown, display

from stages.analyses.swap_similarity import swap_similarity_table
from stages.book.page import open_page
from stages.claims import verdict_summary, verdict_table, verdict_text
from stages.claims.appendix import appendix_claims
from stages.plots.book import swap_similarity_figure
from stages.plots.schematics import similarity_schematic

# %% [markdown]
# ## Figure 11: what the three similarities compare

# %%
similarity_schematic()

# %% [markdown]
# **Figure 11** (the paper's Figure 11). What the three similarities compare, for a swap of
# layers i and i+1: *index* similarity, the output now at a position against the output the
# unperturbed model had there (does the moved layer take over its new place's role?); *self*
# similarity, a layer's output at its new position against its own unperturbed output (does it
# keep writing what it wrote, "stubborn"?); *adjacent* similarity, the unperturbed outputs of the
# two layers (how alike neighbours are without any swap). Each is computed for the attention and
# the MLP output separately, per token, and averaged (Figure 12 below).

# %% tags=["parameters"]
model = "gemma-3-270m"  # the embedded default, or a Hugging Face name / local folder
n_tokens = 32768  # tokens compared (rounded up to whole sequences of seq_len)
seq_len = 128  # tokens per sequence, BOS included
batch_size = 8  # sequences per forward pass
device = "auto"  # "auto", "cpu", "cuda"
dtype = "float32"  # "float32", "bfloat16", "float64"
corpus = "default"  # the shipped public-domain prose, a local file, or a hub dataset
seed = 0  # which sequences are sampled, and the bootstrap
pack = "default"  # "default": the shipped results pack when these are its parameters; "none"; or a pack's folder

# %%
page = open_page("appendix_cosine_similarity", globals())
res = page.results()
similarity_sums = res.sums("swap_similarity")  # per sequence: cosine sums of every swap
similarity = swap_similarity_table(similarity_sums, seed=seed)
elapsed = page.elapsed
name, n_layers = res.name, res.n_layers
display(Markdown(f"**{name}**, {n_layers - 1} adjacent swaps, {len(res.tokens)} sequences. "
                 f"Done in {elapsed:.0f} s."))
display(Markdown(res.report()))

# %% [markdown]
# ## Figure 12: cosine similarity after each swap

# %%
swap_similarity_figure(similarity, title=f"Figure 12 ({name}): outputs of swapped layers")

# %% [markdown]
# **Figure 12** (the paper's Figure 12). For each swap of layers *i* and *i+1*: cosine similarity
# of each layer's output with its own unperturbed output (self), with the output the unperturbed
# model had at that position (index), and of the two unperturbed layers with each other
# (adjacent).

# %%
wide = similarity.pivot_table(index=["component", "layer"], columns=["metric", "which"],
                              values="value")
summary = []
for component, label in (("attn", "attention"), ("mlp", "MLP")):
    rows = wide.loc[component]
    self_mean = rows["self"].to_numpy().mean()
    index_mean = rows["index"].to_numpy().mean()
    adjacent = rows[("adjacent", "baseline")].mean()
    stubborn = (rows["self"].mean(axis=1) > rows["index"].mean(axis=1)).mean()
    summary.append(
        f"**{label}**: mean self-similarity {self_mean:.2f}, index similarity {index_mean:.2f}, "
        f"adjacent similarity {adjacent:.2f}; a swapped layer writes more like itself than like "
        f"the layer it replaced in {stubborn:.0%} of the swaps"
    )
display(Markdown(f"For **{name}**: " + "; ".join(summary) + "."))

# %% [markdown]
# ## Do the paper's claims hold for this model?
#
# The paper reads three things from its Figure 12 for the MLPs: in stage 2 (here the swaps
# starting at relative depth 0.25-0.5) a layer moved earlier writes more like the layer it
# replaced than like itself (index similarity above self-similarity; clearer in Pythia 1.4B than
# in GPT-2 XL); index similarity drops after the midpoint; and in stage 3 (after the midpoint, up
# to 0.85) swapped MLPs are *stubborn*, writing what they wrote in their own place. Each is a
# paired difference of per-token cosines with a 95% bootstrap interval over sequences.

# %%
verdicts = appendix_claims(similarity_sums, n_layers, seed=seed)
display(verdict_table(verdicts).style.hide(axis="index"))
display(Markdown(f"For **{name}**: " + verdict_text(verdicts)))

# %% [markdown]
# ## The numbers

# %%
display(wide.round(3))

# %% [markdown]
# ## Exercises
#
# Answer before you open a solution; each solution is computed from this page's numbers.

# %% [markdown]
# **1. Stubborn layers.** After a swap, does an MLP keep writing what it wrote in its own place? Guess the share of swaps where its self-similarity beats its index similarity.

# %% tags=["hide-cell"]
# Solution 1
rows = wide.loc["mlp"]
share = (rows["self"].mean(axis=1) > rows["index"].mean(axis=1)).mean()
display(Markdown(f"In {share:.0%} of the swaps the MLP writes more like itself than like the layer it replaced."))

# %% [markdown]
# ## Summary

# %%
display(Markdown(verdict_summary(verdicts)))

# %% [markdown]
# ## What's next
#
# [Across models](08_cross_model.ipynb): whether a second, deeper model shows the same signals on
# the same relative-depth axis.

# %% [markdown]
# ---

# %%
page.footer(res)
