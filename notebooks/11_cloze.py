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

from IPython.display import HTML, Markdown, display

from stages.analyses.cloze import cloze_table
from stages.book.page import open_page
from stages.book.present import data_table, fold, verdict_table
from stages.claims import verdict_summary
from stages.claims.cloze import MIN_HITS, cloze_claims
from stages.formats import estimate, percent
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
page.source(res)
hits = round(base.accuracy * len(sums))
baseline = percent(base.accuracy, base.accuracy_lo, base.accuracy_hi)
display(Markdown(cloze.describe()))
display(Markdown(
    f"**{name}** on the first **{len(sums)}** of these windows"
    + (f" (of the {res.recipe.n_cloze:,} the results pack is built toward, in rounds: every "
       "interval and verdict below rests on these)" if len(sums) < res.recipe.n_cloze else "")
    + f": the unperturbed model produces the whole word in **{baseline}** of them ({hits} "
    "windows). The models here are 4-bit quantized stand-ins, dequantized."
))

# %% [markdown]
# ## Accuracy under every drop and swap

# %%
page.chart(cloze_figure(table, title=f"Cloze accuracy under single-layer drops and swaps ({name})"),
           table[["label", "kind", "layers", "rel_depth", "accuracy", "accuracy_lo",
                  "accuracy_hi"]], "figure-e10")

# %% [markdown]
# **Figure E10** (after the later version's downstream-accuracy figures). The share of windows
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
display(HTML(verdict_table(verdicts, caption=f"The robustness claims asked of the cloze task, on "
                           f"{name} ({len(sums)} windows).")))
mid_drops = table[(table.kind == "drop") & table.rel_depth.between(0.25, 0.75)]
worst = mid_drops.sort_values("accuracy").iloc[0]
if hits >= MIN_HITS and verdicts[0].verdict == "does not hold":
    display(Markdown(
        f"On {name} the task is fragile: "
        f"dropping a single middle layer ({worst.label}) leaves "
        f"{round(worst.accuracy * len(sums))} of the {hits} words the unperturbed model gets "
        "whole."
    ))
if hits < MIN_HITS:
    display(Markdown(
        f"On {name} the unperturbed model answers only {hits} of the {len(sums)} windows, fewer "
        f"than the {MIN_HITS} a share kept needs: a drop that keeps 2 of {hits} hits or 10 of "
        f"{hits} would look alike here. The claims wait for more windows (the pack grows in "
        "rounds); the fold under each claim gives the numbers so far."
    ))

# %% [markdown]
# ## The numbers

# %%
columns = {"label": "plan", "accuracy": "accuracy (95% interval)",
           "delta": "change from the unperturbed model", "logprob": "mean log P(word), nats"}
display(HTML(fold(f"Every drop and swap: the {len(table)} plans", data_table(
    table, columns=columns, fold_over=len(table),
    caption=f"Every plan on {len(sums)} windows: the share whose word the model produces whole, "
    "its change from the unperturbed model (paired), and the mean log-probability of the whole "
    "word. A plan that never produces the word shows 0 (0 to 0): no resample of the windows "
    "holds a hit; the claims use the exact Clopper-Pearson bound there instead.",
))))

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
kept, first, swap = verdicts
best = mid_drops.sort_values("accuracy").iloc[-1]
display(Markdown(verdict_summary(verdicts, findings=(
    f"On {name} the unperturbed model finishes {baseline} of {len(sums)} windows with the "
    "whole word.",
    f"The worst middle-layer drop keeps {percent(kept.value, kept.lo, kept.hi)} of that "
    f"accuracy and the best ({best.label}) reaches "
    f"{percent(best.accuracy, best.accuracy_lo, best.accuracy_hi)} accuracy (the paper, for the "
    "model's own top-1 predictions: 72-95% kept).",
    "Compared with dropping the first layer, the middle-layer drop that fares worst has an "
    f"accuracy {estimate(100 * first.value, 100 * first.lo, 100 * first.hi)} percentage points "
    "higher (below 0: a middle drop hurts more than the first; the paper's Figure 3: the first "
    "layer is the most fragile).",
    "Swapping two middle layers instead of dropping one: at the layer where the swap fares "
    f"worst, its accuracy is {estimate(100 * swap.value, 100 * swap.lo, 100 * swap.hi)} "
    "percentage points higher than the drop's (below 0: the swap keeps less there; the paper, "
    "for its own predictions: a swap keeps more than a drop).",
))))

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
