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
# # A downstream task: a LAMBADA-style cloze under every drop and swap
#
# **The question.** The paper measures robustness by how much of the model's *own* next-token
# distribution survives an intervention (page 01). Its later version asks the same of tasks:
# accuracy on LAMBADA {cite}`paperno2016lambada` and other benchmarks for every dropped or
# swapped layer. Does a model that keeps most of its predictions also keep its ability to finish
# a passage with the right word?
#
# **The task, offline.** LAMBADA cannot be fetched here (it is on the Hugging Face hub only; no
# package on PyPI ships it), so this page builds the same kind of task from the shipped corpus:
# windows of 96 tokens that end on a word which already occurs earlier in the window, so the
# answer can be recovered from the context. The model must produce the *whole* word: greedy
# decoding must emit every token of it, which one forward pass decides exactly (the target is
# the unique top-1 prediction at each of its positions, given the earlier ones). The
# construction, its rules and its counts are printed below.
#
# **What this page does.** It reads (or computes) the correctness of every window under the
# unperturbed model and under every single-layer drop and adjacent swap. Intervals are 95%
# bootstrap intervals over windows, paired where two plans are compared.
#
# **Time to run.** With the defaults the numbers come from the book's results pack and the live
# slice recomputes two windows: under a minute. Computing everything now costs about one forward
# pass of a 96-token window per plan: about 15 minutes per 256 windows for gemma-3-270m on a
# 2-core CPU.

# %%

from IPython.display import Markdown, display

from stages.analyses.cloze import cloze_table
from stages.book.page import open_page
from stages.claims import verdict_summary, verdict_table, verdict_text
from stages.claims.beyond import cloze_claims
from stages.plots.robustness import cloze_figure

# %% tags=["parameters"]
model = "gemma-3-270m"  # the embedded default, or a Hugging Face name / local folder
n_cloze = 1024  # cloze windows asked for (the pack holds its first ones; see below)
seq_len = 128  # tokens per sequence of the pack's sample, BOS included
device = "auto"  # "auto", "cpu", "cuda"
dtype = "float32"  # "float32", "bfloat16", "float64"
corpus = "default"  # the shipped public-domain prose, a local file, or a hub dataset
seed = 0  # which windows are drawn, and the bootstrap
pack = "default"  # "default": the shipped results pack when these are its parameters; "none"; or a pack's folder

# %%
page = open_page("cloze", globals())
res = page.results()
sums = res.sums("cloze")
name, n_layers = res.name, res.n_layers
table = cloze_table(sums, n_layers, seed=seed)
base = table[table.kind == "none"].iloc[0]
cloze = res.cloze_windows()
display(Markdown(cloze.describe()))
display(Markdown(
    f"**{name}** on the first **{len(sums)}** of these windows: the unperturbed model produces "
    f"the whole word in **{base.accuracy:.1%}** of them (95% interval {base.accuracy_lo:.1%} to "
    f"{base.accuracy_hi:.1%}). The models here are 4-bit quantized stand-ins, dequantized."
))
display(Markdown(res.report()))

# %% [markdown]
# ## Accuracy under every drop and swap

# %%
cloze_figure(table, title=f"Cloze accuracy under single-layer drops and swaps ({name})")

# %% [markdown]
# **Figure 11.1** (after the later version's downstream-accuracy figures). The share of windows
# whose word the model still produces whole, when layer *i* is dropped or layers *i* and *i+1*
# are swapped, against relative depth; dashed: the unperturbed model. Bands: 95% intervals over
# windows.

# %% [markdown]
# ## Do the claims hold on the task?
#
# The paper's robustness claims, asked of the task instead of the model's own predictions, each
# decided layer by layer. The share kept: a simultaneous 95% band over the middle layers (a drop
# that never gets the word gets the exact Clopper-Pearson bound instead of a band of zero
# width). The paired comparisons: an exact McNemar test per layer (the windows one plan gets
# right and the other wrong), Holm-corrected over the layers. *Holds* when every layer agrees,
# *does not hold* when some layer is significantly against the claim, *unclear* otherwise, *not
# enough data* below 30 windows or 30 windows the unperturbed model answers right (a share kept
# of a handful of hits says nothing).

# %%
verdicts = cloze_claims(sums, n_layers, seed=seed)
display(verdict_table(verdicts).style.hide(axis="index"))
held = sum(v.verdict == "holds" for v in verdicts)
display(Markdown(f"For **{name}**, **{held} of {len(verdicts)}** claims hold. " + verdict_text(verdicts)))

# %% [markdown]
# ## The numbers

# %%
columns = ["label", "accuracy", "accuracy_lo", "accuracy_hi", "delta", "delta_lo", "delta_hi", "logprob"]
display(table[columns].round(4).style.hide(axis="index"))

# %% [markdown]
# ## Exercises

# %% [markdown]
# **1. Which words survive?** Of the windows the unperturbed model gets right, which does the
# most damaging middle-layer drop lose? Guess what they have in common, then look.

# %% tags=["hide-cell"]
# Solution 1
middle = table[(table.kind == "drop") & table.rel_depth.between(0.25, 0.75)]
worst = middle.sort_values("accuracy").iloc[0].label
lost = [w for w, a, b in zip(cloze.words, sums["none:correct"], sums[f"{worst}:correct"], strict=False) if a and not b]
display(Markdown(f"{worst} loses {len(lost)} words: " + ", ".join(lost[:30]) + ("..." if len(lost) > 30 else "")))

# %% [markdown]
# ## Summary

# %%
display(Markdown(verdict_summary(verdicts)))

# %% [markdown]
# ## What's next
#
# [Performance](12_performance.ipynb): how fast the engine behind every page runs, and what a
# paper-scale run costs; then [what holds](13_what_holds.ipynb), every verdict of every model on
# one page.

# %% [markdown]
# ---

# %%
page.footer(res)
