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
# # Beyond single layers: deleting, reordering and duplicating spans of layers
#
# **The question.** The paper intervenes on one layer or one adjacent pair at a time
# {cite}`lad2024remarkable`. How far does the robustness go when whole spans change? Three
# experiments from the paper's later version and the work around it:
#
# 1. **Block deletion** {cite}`gromov2024unreasonable`: every contiguous block of up to half the
#    depth is skipped. How long a block can the model lose, and where is the least harmful one?
#    Gromov et al. find it deep in the network, before the last layer.
# 2. **Reordering a span** ("Transformer Layers as Painters" {cite}`sun2024painters`): a span of a
#    quarter of the depth is reversed, shuffled, run twice or run in parallel, and compared with
#    dropping it. Painters find that the middle layers tolerate reordering and parallel execution
#    far better than deletion, and the paper's section 4 that the first and last layers are
#    fragile: does order matter less in the middle than near the ends?
# 3. **Layer duplication** (the later version's code): each layer of a middle range runs 2 to 5
#    times in place. How do KL and the entropy of the predictions change as the copies grow?
#
# **What this page does.** It reads (or computes) the sweep's metrics for every plan: KL from the
# unperturbed model (nats), the share of its top-1 predictions kept, and the change of entropy
# (bits), at every predicted position (definitions in [Methods](../methods.md)). Intervals are
# 95% bootstrap intervals over sequences, paired where plans are compared.
#
# **Time to run.** With the defaults the numbers come from the book's results pack, and the live
# slice recomputes the plans of three start layers on two sequences: about two minutes on a
# 2-core CPU. Computing everything now costs about 2.5 s per plan per 1,000 tokens on this CPU
# for gemma-3-270m (126 block deletions, 56 span plans, 12 duplications).

# %%

from IPython.display import Markdown, display

from stages.analyses.blocks import block_table, longest_kept
from stages.analyses.duplication import duplication_table
from stages.analyses.reorder import reorder_table, span_length
from stages.book.page import open_page
from stages.claims import verdict_summary, verdict_table, verdict_text
from stages.claims.beyond import depth_edit_claims
from stages.plots.depth_edits import block_heatmap, duplication_figure, reorder_figure

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
page = open_page("depth_edits", globals())
res = page.results()
sums = {part: res.sums(part) for part in ("blocks", "reorder", "duplication")}
name, n_layers = res.name, res.n_layers
blocks = block_table(sums["blocks"], n_layers, seed=seed)
reorder = reorder_table(sums["reorder"], n_layers, seed=seed)
duplication = duplication_table(sums["duplication"], n_layers, seed=seed)
n_seq = {part: len(frame) for part, frame in sums.items()}
display(Markdown(
    f"**{name}**, {n_layers} layers: {len(blocks)} block deletions, {len(reorder)} span plans "
    f"and {len(duplication)} duplications, on {n_seq['blocks']}, {n_seq['reorder']} and "
    f"{n_seq['duplication']} sequences of {res.recipe.seq_len} tokens."
))
display(Markdown(res.report()))

# %% [markdown]
# ## Block deletion

# %%
block_heatmap(blocks, title=f"Block deletion ({name}): KL and top-1 kept, by first layer and length")

# %% [markdown]
# **Figure 9.1** (after Gromov et al., Figure 1). Each cell deletes the layers from *first* to
# *first + length − 1*. Left: KL from the unperturbed model (log colour scale). Right: the share
# of its top-1 predictions kept. Hover for the 95% interval.

# %%
kept = {share: longest_kept(sums["blocks"], share, seed=seed) for share in (0.5, 0.8)}
lines = []
for share, (length, lo, hi, best) in kept.items():
    row = best.set_index("length").loc[max(int(length), 1)]
    lines.append(
        f"- The longest block whose best placement keeps **{share:.0%}** of top-1 predictions: "
        f"**{length:.0f} layers** (95% interval {lo:.0f}-{hi:.0f}); the best block of "
        f"{max(int(length), 1)} starts at layer {int(row.start)} and keeps {row.rel_acc:.1%}."
    )
display(Markdown("\n".join(lines)))

# %% [markdown]
# ## Reordering a span

# %%
reorder_figure(reorder, title=f"Reordering a span of {span_length(n_layers)} layers ({name})")

# %% [markdown]
# **Figure 9.2** (after Painters, Figures 2-4). KL of each way of changing a span of a quarter of
# the depth, against the relative depth of the span's centre (log scale; bands: 95% intervals;
# the shuffles are the mean of their three orders, without a band, each order being in the table
# below). Dropping the span is the reference the others are compared with.

# %% [markdown]
# ## Duplicating layers

# %%
duplication_figure(duplication, title=f"Layer duplication ({name}): each layer of a range run n times")

# %% [markdown]
# **Figure 9.3** (after the later version's duplication experiment). KL and entropy change as each
# layer of a middle range runs more times in place (n = 1 would be the unperturbed model: KL 0,
# entropy change 0); bars are 95% intervals.

# %% [markdown]
# ## Do the claims hold for this model?
#
# Each verdict is a statistic of the per-sequence sums with its 95% bootstrap interval over
# sequences, comparing plans on the same resampled sequences. A claim about every span, range or
# block is decided one by one: each gets an interval from a simultaneous band over all of them,
# and the claim holds only when every one does (the detail counts them). *Holds* when the whole
# interval is on the claim's side of its threshold, *does not hold* when it is entirely on the
# other side, *unclear* when it contains the threshold, *not enough data* below 30 sequences.

# %%
verdicts = depth_edit_claims(sums["blocks"], sums["reorder"], sums["duplication"], n_layers, seed=seed)
display(verdict_table(verdicts).style.hide(axis="index"))
held = sum(v.verdict == "holds" for v in verdicts)
display(Markdown(f"For **{name}**, **{held} of {len(verdicts)}** claims hold. " + verdict_text(verdicts)))

# %% [markdown]
# ## The numbers

# %%
columns = ["label", "kl", "kl_lo", "kl_hi", "rel_acc", "rel_acc_lo", "rel_acc_hi", "entropy_delta"]
display(reorder[["where", *columns, "kl_vs_drop"]].round(4).style.hide(axis="index"))
display(duplication[["times", *columns]].round(4).style.hide(axis="index"))

# %% [markdown]
# ## Exercises

# %% [markdown]
# **1. Where would you cut?** Before opening the solution, guess which block of a quarter of the
# depth this model loses most easily: early, middle or late?

# %% tags=["hide-cell"]
# Solution 1
k = max(2, n_layers // 4)
best = blocks[blocks.length == k].sort_values("kl").iloc[0]
display(Markdown(f"Deleting layers {best.layers} (KL {best.kl:.2f} nats, {best.rel_acc:.0%} of top-1 kept). "
                 "Gromov et al. find the least harmful block in the deeper half, before the last layer."))

# %% [markdown]
# **2. Order or presence?** In the middle, which hurts more: reversing a span or deleting it?

# %% tags=["hide-cell"]
# Solution 2
middle = reorder[(reorder["where"] == "middle") & reorder.kind.isin(["reverse", "drop_range"])]
display(middle[["label", "kl", "kl_lo", "kl_hi"]].round(3).style.hide(axis="index"))

# %% [markdown]
# ## Summary

# %%
display(Markdown(verdict_summary(verdicts)))

# %% [markdown]
# ## What's next
#
# [Layer similarity and skip effects](10_layer_similarity.ipynb): whether cheap measures of how
# much a layer changes the residual stream predict what dropping it costs.

# %% [markdown]
# ---

# %%
page.footer(res)
