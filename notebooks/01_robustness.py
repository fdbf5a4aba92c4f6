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
# # Robustness: dropping and swapping layers
#
# **The question** (paper section 4, Figure 3; appendix B, Figures 13-15; {cite}`lad2024remarkable`,
# building on residual networks' tolerance of deleted layers {cite}`veit2016residual` and on
# self-repair {cite}`mcgrath2023hydra,rushing2024selfrepair`). If we delete one
# transformer block, or run two adjacent blocks in exchanged order, how much of the model's
# behaviour survives? The paper reports that a single middle-layer intervention keeps 72-95% of
# the model's top-1 predictions, that intervening on the first layer (and, for Pythia, the last)
# is catastrophic and raises the entropy of the predictions, that swapping two adjacent middle
# layers hurts less than dropping one, and that dropping only an MLP hurts most in the final
# layers.
#
# **What this page does.** It loads a real model, samples `n_tokens` tokens of English prose,
# and runs every whole-block drop, every adjacent swap, and every attention-only and MLP-only
# drop, comparing each intervened model with the unperturbed one at every predicted position
# (definitions in [Methods](../methods.md)). Shaded bands are 95% bootstrap intervals over
# sequences.
#
# **Time to run.** With the defaults, on a CPU (a GPU computes everything now), the numbers are read from the book's results pack (256
# sequences of 128 tokens: the sweep took about three hours on a 2-core CPU) and only
# its first two sequences are recomputed, to show that the pack still matches the code: about
# a minute and a half. Other parameters compute everything now: on a 2-core laptop CPU about
# 2.5 s per intervention per 1,000 tokens for gemma-3-270m (71 interventions). To go to paper
# scale, re-run this page with more tokens, another model and a GPU, e.g.
# `stages run robustness -p model EleutherAI/pythia-1.4b-deduped -p n_tokens 1000000 -p seq_len 1024 -p device cuda`.

# %%

from IPython.display import Markdown, display

from stages.book.page import open_page
from stages.claims import verdict_summary, verdict_table, verdict_text
from stages.claims.robustness import MIDDLE, most_damaging, robustness_claims
from stages.engine.sweep import sweep_table
from stages.plots.robustness import component_figure, robustness_figure, swap_vs_drop_zoom
from stages.plots.schematics import intervention_schematic

# %% [markdown]
# ## Figure 2: what a drop and a swap do

# %%
intervention_schematic()

# %% [markdown]
# **Figure 2** (the paper's Figure 2). The two interventions, drawn on four consecutive blocks of
# the residual stream (bottom: the token embedding; top: the unembedding). Each block (attention
# and MLP, with their norms) reads the stream and adds its output back. *Drop*: block i is
# removed and the stream skips it (a zero ablation of the whole block). *Swap*: blocks i and i+1
# run in exchanged order, each with its own weights. This page applies a drop at every layer and
# a swap at every adjacent pair, plus drops of only the attention or only the MLP of a block.

# %% tags=["parameters"]
model = "gemma-3-270m"  # the embedded default, or a Hugging Face name / local folder
n_tokens = 32768  # tokens scored per intervention (rounded up to whole sequences of seq_len)
seq_len = 128  # tokens per sequence, BOS included
batch_size = 8  # sequences per forward pass
device = "auto"  # "auto", "cpu", "cuda"
dtype = "float32"  # "float32", "bfloat16", "float64"
corpus = "default"  # the shipped public-domain prose, a local file, or a hub dataset
seed = 0  # which sequences are sampled, and the bootstrap
pack = "default"  # "default": the shipped results pack when these are its parameters; "none"; or a pack's folder

# %%
page = open_page("robustness", globals())
res = page.results()
sums = res.sums("sweep")  # per sequence: every intervention's metric sums
table = sweep_table(sums, n_layers=res.n_layers, seed=seed)
elapsed = page.elapsed
name, n_layers, tokens = res.name, res.n_layers, res.tokens
baseline = table[table.kind == "none"].iloc[0]
display(Markdown(
    f"**{name}**, {n_layers} layers, {len(table) - 1} interventions on "
    f"{int(baseline.n_tokens):,} scored positions ({int(baseline.n_seq)} sequences of "
    f"{res.recipe.seq_len} tokens). Baseline loss on this text: **{baseline.baseline_loss:.3f} nats** "
    f"per token (95% interval {baseline.loss_lo:.3f}-{baseline.loss_hi:.3f}); baseline "
    f"prediction entropy {baseline.baseline_entropy:.2f} bits."
))
display(Markdown(res.report()))

# %% [markdown]
# ## Figure 3: swaps and drops across depth

# %%
robustness_figure(table, title=f"Figure 3 ({name}): swap vs drop of single layers")

# %% [markdown]
# **Figure 3** (the paper's Figure 3). KL divergence from the unperturbed model, relative accuracy
# (share of top-1 predictions kept) and entropy change, for dropping layer *i* and for swapping
# layers *i* and *i+1*, against relative depth. Bands: 95% bootstrap intervals over sequences.

# %% [markdown]
# The zoom of Figure 3: over the middle layers only (relative depth 0.25-0.75), is a swap
# gentler than a drop?

# %%
swap_vs_drop_zoom(table, MIDDLE, title=f"Figure 3, zoom ({name}): KL in the middle layers")

# %% [markdown]
# **Figure 3, zoom.** The KL of swaps and drops over the middle layers only, where the paper finds
# swaps gentler than drops.

# %% [markdown]
# ## Figures 13-15: attention-only and MLP-only drops

# %%
component_figure(table, title=f"Figures 13-15 ({name}): dropping only the attention or only the MLP")

# %% [markdown]
# **Figures 13-15** (the paper's appendix B). The same three metrics when only the attention or
# only the MLP of a layer is dropped.

# %% [markdown]
# ## Do the paper's claims hold for this model?
#
# Each claim is a statistic of the per-sequence sums with a 95% bootstrap interval over
# sequences (the independent unit), compared *paired* where two interventions are involved:
# on the same resampled sequences. A claim about every middle layer is decided layer by layer:
# each layer gets an interval from a simultaneous band over those layers (all of them hold
# together with 95% confidence), and the claim holds only when every layer's does; the detail
# says at how many layers each way. The paper's 72-95% is also asked of the middle layers on
# average. The verdict follows the rule in the last column exactly: *holds* when the whole
# interval is on the claim's side of its threshold, *does not hold* when it is entirely on the
# other side, *unclear* when it contains the threshold, *not enough data* below 30 sequences.

# %%
verdicts = robustness_claims(sums, n_layers, seed=seed)
display(verdict_table(verdicts).style.hide(axis="index"))
held = sum(v.verdict == "holds" for v in verdicts)
display(Markdown(
    f"For **{name}** on {int(baseline.n_seq)} sequences, **{held} of {len(verdicts)}** tested "
    "robustness claims hold. " + verdict_text(verdicts)
))
worst = {kind: most_damaging(table, kind) for kind in ("drop", "swap")}
display(Markdown(
    "The most damaging single interventions for this model: "
    + "; ".join(
        f"{kind}s of layer(s) "
        + ", ".join(f"{r.layers} (KL {r.kl:.2f} nats, {r.rel_acc:.0%} of top-1 kept)" for r in rows.itertuples())
        for kind, rows in worst.items()
    )
    + "."
))

# %% [markdown]
# ## The numbers
#
# Every row of the sweep (metric means with their 95% bootstrap intervals).

# %%
columns = ["kind", "layers", "rel_depth", "kl", "kl_lo", "kl_hi", "rel_acc", "rel_acc_lo",
           "rel_acc_hi", "entropy_delta", "loss"]
display(table[columns].round(4).style.hide(axis="index"))

# %% [markdown]
# ## Exercises
#
# Answer before you open a solution; each solution is computed from this page's numbers.

# %% [markdown]
# **1. Predict, then run.** Which single layer's drop hurts this model most (largest KL)? Write down a layer before opening the solution, then find it in Figure 3.

# %% tags=["hide-cell"]
# Solution 1
row = table[table.kind == "drop"].sort_values("kl").iloc[-1]
display(Markdown(f"Dropping layer {row.layers} (relative depth {row.rel_depth:.2f}): KL {row.kl:.2f} nats, "
                 f"{row.rel_acc:.0%} of top-1 predictions kept. The paper: the first layer, in every model."))

# %% [markdown]
# **2. Swap or drop?** In what fraction of the middle layers is swapping layers i and i+1 gentler (lower KL) than dropping layer i? Guess, then check.

# %% tags=["hide-cell"]
# Solution 2
pair = table[table.kind == "drop"].merge(table[table.kind == "swap"], on="layer", suffixes=("_drop", "_swap"))
middle = pair[pair.rel_depth_drop.between(*MIDDLE)]
share = (middle.kl_swap < middle.kl_drop).mean()
display(Markdown(f"In {share:.0%} of the {len(middle)} middle layers (relative depth {MIDDLE[0]}-{MIDDLE[1]}) the swap has "
                 "the lower KL. The paper finds swaps gentler than drops in the middle of the network."))

# %% [markdown]
# ## Summary

# %%
display(Markdown(verdict_summary(verdicts)))

# %% [markdown]
# ## What's next
#
# The first layer is where the paper places stage 1: [detokenization](02_detokenization.ipynb)
# asks whether the early layers attend to the previous few tokens. What a swapped layer writes is
# compared in [appendix A](07_appendix_cosine_similarity.ipynb); spans of layers, beyond single
# ones, in [depth edits](09_depth_edits.ipynb).

# %% [markdown]
# ---

# %%
page.footer(res)
