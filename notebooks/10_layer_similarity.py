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
# # Layer similarity and skip effects: can one pass predict which layer is safe to drop?
#
# **The question.** Dropping a layer costs a forward pass per layer (page 01). Three measures
# need only one unperturbed pass:
#
# - **linear CKA** between the residual streams after every pair of layers
#   {cite}`kornblith2019similarity`, which the paper's later version draws as a heatmap, here
#   with the unbiased HSIC estimator {cite}`song2012feature` averaged over sequences ("minibatch
#   CKA" {cite}`nguyen2021wide`);
# - **Block Influence** {cite}`men2024shortgpt`, 1 − cos(h_in, h_out) per layer: ShortGPT deletes
#   the layers that change the residual least;
# - **angular distance** arccos(cos(h_l, h_l+n))/π {cite}`gromov2024unreasonable`, which Gromov et
#   al. use to choose the block to delete.
#
# Do they rank the layers as dropping them does? And when a layer *is* dropped, what happens to
# the layers after it? Csordás et al. {cite}`csordas2025depth` skip layer *i* and measure how
# much every later layer *j* changes what it writes: large changes in the first half of the
# network, little in the second half, a sign that the second half refines rather than composes.
#
# **What this page does.** It reads (or computes) the residual stream at every layer boundary of
# the unperturbed model, and, for every dropped layer *i*, the attention and MLP outputs of every
# later layer *j*, at every position but the first (definitions in the modules'
# documentation: `stages.analyses.similarity`, `stages.analyses.skip_effects`). Intervals are
# 95% bootstrap intervals over sequences.
#
# **Time to run.** With the defaults the numbers come from the book's results pack and the live
# slice recomputes two sequences: about a minute on a 2-core CPU. Computing everything now costs
# about one forward pass per sequence for the similarity and about L/2 for the skip effects.

# %%

import re

from IPython.display import HTML, Markdown, display

from stages.analyses.similarity import cka_table, layer_scores
from stages.analyses.skip_effects import regime_summary, skip_table
from stages.book.page import open_page
from stages.book.present import verdict_table
from stages.claims import verdict_summary
from stages.claims.beyond import similarity_claims
from stages.engine.sweep import sweep_table
from stages.formats import estimate, number
from stages.plots.similarity import cka_figure, regime_figure, scores_figure, skip_figure

# %% tags=["parameters"]
model = "gemma-3-270m"  # the embedded default, or a Hugging Face name / local folder
n_tokens = 32768  # tokens in the sample (rounded up to whole sequences of seq_len)
seq_len = 128  # tokens per sequence, BOS included
batch_size = 8  # sequences per forward pass
device = "auto"  # "auto", "cpu", "cuda"
dtype = "float32"  # "float32", "bfloat16", "float64"
corpus = "default"  # the shipped public-domain prose, a local file, or a hub dataset
seed = 0  # which sequences are sampled, and the bootstrap
pack = "default"  # "default": the shipped results pack when these are its parameters; "none"; or a pack's folder

# %%
page = open_page("layer_similarity", globals())
res = page.results()
similarity, skips = res.sums("similarity"), res.sums("skip_effects")
name, n_layers = res.name, res.n_layers
n = len(similarity)
sweep = sweep_table(res.sums("sweep").head(n), n_layers=n_layers, seed=seed)
page.source(res)
of = res.recipe.n_seq
display(Markdown(
    f"**{name}**, {n_layers} layers: layer similarity on {n} sequences and skip effects on "
    f"{len(skips)} sequences of {res.recipe.seq_len} tokens"
    + (f" (of the sample's {of}: these parts are built on their own, in rounds)"
       if min(n, len(skips)) < of else "")
    + f"; the KL of each drop on the same {n} sequences."
))

# %% [markdown]
# ## Linear CKA between layers

# %%
cka = cka_table(similarity, seed=seed)
page.chart(cka_figure(cka, title=f"Linear CKA between residual points ({name})"), cka,
           "figure-e6")

# %% [markdown]
# **Figure E6** (after the later version's CKA heatmaps). Linear CKA between the residual
# entering block *a* and the one entering block *b* (point *L* is the last block's output), from
# the unbiased HSIC of each sequence's positions, averaged over sequences. 1: the same
# representation up to rotation and scale.

# %%
neighbours = cka[cka.b == cka.a + 1].set_index("a")
middle = neighbours.loc[n_layers // 4 : 3 * n_layers // 4]
low = neighbours.loc[neighbours.cka.idxmin()]
high = neighbours.loc[neighbours.cka.idxmax()]
cka_text = (
    f"between neighbouring residual points the CKA ranges from "
    f"{estimate(low.cka, low.cka_lo, low.cka_hi)} (points {int(low.name)} and "
    f"{int(low.name) + 1}) to {estimate(high.cka, high.cka_lo, high.cka_hi)} (points "
    f"{int(high.name)} and {int(high.name) + 1}); over the middle half of the network its "
    f"mean is {number(middle.cka.mean())}"
)
display(Markdown(f"On {name}, {cka_text}."))

# %% [markdown]
# ## Block Influence and angular distance against the cost of dropping

# %%
scores = layer_scores(similarity, seed=seed)
drop = sweep[sweep.kind == "drop"]
page.chart(scores_figure(scores, drop, title=f"One-pass scores and the cost of a drop ({name})"),
           scores.merge(drop[["layer", "kl", "kl_lo", "kl_hi"]], on="layer", how="left"),
           "figure-e7")

# %% [markdown]
# **Figure E7.** Left: Block Influence and the one-block angular distance of every layer (log
# scale). Right: the KL of dropping that layer, from the sweep on the same sequences. If a score
# predicts the cost, the two panels have the same shape.

# %% [markdown]
# ## Skip effects: what the later layers do when one is missing

# %%
skip = skip_table(skips, seed=seed)
page.chart(skip_figure(skip, title=f"Dropping layer i: change of layer j's output ({name})"),
           skip, "figure-e8")

# %% [markdown]
# **Figure E8** (after Csordás et al., Figure 2). For every dropped layer *i* (rows) and every
# later layer *j* (columns), the mean relative change ‖out′ − out‖ / ‖out‖ of *j*'s attention
# output (left) and MLP output (right), log colour scale.

# %%
regime = regime_summary(skips, n_layers, seed=seed)
page.chart(regime_figure(regime, title=f"Is there a change of regime? ({name})"), regime,
           "figure-e9")

# %% [markdown]
# **Figure E9.** Per dropped layer, the mean relative change of the next three layers' outputs
# and of all later layers' outputs, with 95% bands.

# %% [markdown]
# ## Do the claims hold for this model?
#
# *Holds* when the whole 95% interval is on the claim's side of its threshold, *does not hold*
# when it is entirely on the other side, *unclear* when it contains it, *not enough data* below
# 30 sequences. The rank correlations leave out layer 0, whose drop is catastrophic in every
# model and would decide them alone.

# %%
verdicts = similarity_claims(similarity, skips, res.sums("sweep"), n_layers, seed=seed)
display(HTML(verdict_table(verdicts, caption=f"The claims of layer similarity and skip effects, "
                           f"on {name}.")))


def chance(v) -> float:
    """The rank correlation chance reaches 5% of the time, as the verdict's rule states it."""
    found = re.search(r"is > (-?[0-9.]+)", v.rule)
    return float(found.group(1)) if found else float("nan")


scored = [v for v in verdicts if v.statistic.startswith("Spearman")]
undecided = [v for v in scored if v.verdict == "unclear"]
if undecided:
    display(Markdown(
        " ".join(f"*{v.claim[:1].upper()}{v.claim[1:]}* is unclear on {name}: the rank "
                 f"correlation {estimate(v.value, v.lo, v.hi)} is above what chance gives "
                 f"({number(chance(v))}), but its interval reaches below it."
                 for v in undecided)
        + f" Its interval comes from resampling the {undecided[0].n} layers, not the "
        "sequences: a model of so few layers cannot rank them more precisely, however many "
        "sequences are read."
    ))

# %% [markdown]
# ## Exercises

# %% [markdown]
# **1. The safest layer by one pass.** Which layer has the smallest Block Influence, and is it
# among the three cheapest to drop?

# %% tags=["hide-cell"]
# Solution 1
safest = int(scores.sort_values("block_influence").iloc[0].layer)
cheapest = drop.sort_values("kl").head(3).layer.astype(int).tolist()
display(Markdown(f"Smallest Block Influence: layer {safest}. The three cheapest drops: layers "
                 f"{', '.join(map(str, cheapest))}: {'yes' if safest in cheapest else 'no'}."))

# %% [markdown]
# ## Summary

# %%
influence, angular = scored[0], scored[1]
skipped = next(v for v in verdicts if v.claim.startswith("skipping"))
display(Markdown(verdict_summary(verdicts, findings=(
    f"On {name}, {cka_text} (the later version draws these heat maps for GPT-2 and Pythia "
    "without a number to compare).",
    f"Block Influence, from one unperturbed pass, ranks layers 1 and up by what dropping them "
    f"costs with Spearman's rho {estimate(influence.value, influence.lo, influence.hi)} over "
    f"{influence.n} layers (chance reaches {number(chance(influence))} one time in twenty), "
    f"the angular distance with {estimate(angular.value, angular.lo, angular.hi)} (chance: "
    f"{number(chance(angular))}); ShortGPT and Gromov et al. delete the layers these scores "
    "call least important.",
    f"Skipping a layer of the first half changes what the later layers write by "
    f"{estimate(skipped.value, skipped.lo, skipped.hi)} more (mean relative change, layer 0 "
    "left out) than skipping one of the second half (Csordás et al., Figure 2: large changes in "
    "the first half, little in the second).",
))))

# %% [markdown]
# ## What's next
#
# [A cloze task](11_cloze.ipynb): whether dropping a middle layer keeps a downstream accuracy,
# not only the next-token distribution.

# %% [markdown]
# ---

# %%
page.footer(res)
