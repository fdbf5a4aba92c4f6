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
# # Stage 1: detokenization
#
# **The question** (paper section 5.1, Figures 4 and 5; {cite}`lad2024remarkable`). The first stage turns tokens into
# words: the paper finds that the early layers attend locally, to the previous few tokens, and
# that early on the attention layers write more into the residual stream than the MLPs. Does this
# model do the same?
#
# **What this page measures.** For every head of every layer, the attention its queries put on
# the five previous tokens, and for every layer the mean L2 norm of what attention and MLP add to
# the residual stream (definitions in [Methods](../methods.md)). Two versions of the locality are
# shown: the paper's quantity (the mean attention weight per entry of the five sub-diagonals of
# the attention pattern, with BOS counted as a key; about a fifth of the attention on the five
# previous tokens), and the summed attention on the five previous tokens after removing BOS as a
# key and renormalising. Many models park most of their attention on BOS (an "attention sink");
# only the second version shows what happens among the real tokens. Gemma 3's sliding-window
# layers (window 512) are read as they are; with sequences of 128 tokens the window never binds.
#
# **Time to run.** With the defaults, on a CPU (a GPU computes everything now), the numbers are read from the book's results pack (256
# sequences of 128 tokens) and its first two sequences are recomputed to show that the pack still
# matches the code: about 15 seconds. Other parameters compute everything now: about 10 s per 1,000 tokens on a 2-core CPU (one forward pass).

# %%

from IPython.display import Markdown, display

from stages.analyses.attention import attention_table
from stages.analyses.norms import norms_table
from stages.book.page import open_page
from stages.claims import verdict_summary, verdict_table, verdict_text
from stages.claims.stages import detokenization_claims
from stages.plots.stages import locality_figure, norms_figure

# %% tags=["parameters"]
model = "gemma-3-270m"  # the embedded default, or a Hugging Face name / local folder
n_tokens = 32768  # tokens per measurement (rounded up to whole sequences of seq_len)
seq_len = 128  # tokens per sequence, BOS included
batch_size = 8  # sequences per forward pass
device = "auto"  # "auto", "cpu", "cuda"
dtype = "float32"  # "float32", "bfloat16", "float64"
corpus = "default"  # the shipped public-domain prose, a local file, or a hub dataset
seed = 0  # which sequences are sampled, and the bootstrap
pack = "default"  # "default": the shipped results pack when these are its parameters; "none"; or a pack's folder

# %%
page = open_page("detokenization", globals())
res = page.results()
attention, norm_sums = res.sums("attention"), res.sums("norms")  # per-sequence sums
locality = attention_table(attention, seed=seed)
norms = norms_table(norm_sums, seed=seed)
elapsed = page.elapsed
name, n_layers = res.name, res.n_layers
display(Markdown(
    f"**{name}**, {n_layers} layers x {res.model.cfg.n_heads} heads, {len(res.tokens)} sequences "
    f"of {res.recipe.seq_len} tokens. Done in {elapsed:.0f} s."
))
display(Markdown(res.report()))

# %% [markdown]
# ## Figure 4: attention to the previous five tokens

# %%
locality_figure(locality, title=f"Figure 4 ({name}): attention to the previous 5 tokens")

# %% [markdown]
# **Figure 4** (the paper's Figure 4). Left: the paper's quantity, the attention each layer's
# queries put on the five previous tokens per entry (BOS included); right: the summed attention on
# the previous five tokens with BOS removed as a key. Grey points are single heads; the line is the
# mean over a layer's heads, with its 95% bootstrap interval over sequences.

# %% [markdown]
# How much attention goes to BOS, per layer (mean over heads):

# %%
per_layer = locality[locality["head"] == -1]
display(Markdown(
    "Attention on BOS, mean over heads and queries: "
    + ", ".join(f"layer {r.layer} {r.bos:.0%}" for r in per_layer.itertuples()) + "."
))

# %% [markdown]
# ## Figure 5: attention versus MLP output norms

# %%
norms_figure(norms, title=f"Figure 5 ({name}): what attention and MLP write, per layer")

# %% [markdown]
# **Figure 5** (the paper's Figure 5). Mean L2 norm of what attention and the MLP add to the
# residual stream at each layer, and their ratio (above 1: attention writes more).

# %% [markdown]
# ## Does stage 1 hold for this model?

# %%
verdicts = detokenization_claims(attention, norm_sums, n_layers, seed=seed)
display(verdict_table(verdicts).style.hide(axis="index"))
display(Markdown(f"For **{name}**: " + verdict_text(verdicts)))

# %% [markdown]
# ## The numbers

# %%
columns = ["layer", "attn_prev5", "attn_prev5_lo", "attn_prev5_hi", "prev_sum", "prev_sum_nobos",
           "prev_sum_nobos_lo", "prev_sum_nobos_hi", "bos"]
display(per_layer[columns].round(4).style.hide(axis="index"))
columns = ["layer", "attn_norm", "attn_norm_lo", "attn_norm_hi", "mlp_norm", "mlp_norm_lo",
           "mlp_norm_hi", "ratio", "ratio_lo", "ratio_hi"]
display(norms[columns].round(3).style.hide(axis="index"))

# %% [markdown]
# ## Exercises
#
# Answer before you open a solution; each solution is computed from this page's numbers.

# %% [markdown]
# **1. Where is local attention?** Guess the layer whose heads attend most to the previous five tokens, then read it from Figure 4.

# %% tags=["hide-cell"]
# Solution 1
row = per_layer.sort_values("attn_prev5").iloc[-1]
display(Markdown(f"Layer {int(row.layer)}: {row.attn_prev5:.3f} of attention per previous-five entry. The paper: "
                 "highest in the first layers (stage 1)."))

# %% [markdown]
# **2. The BOS sink.** Much attention goes to the first (BOS) token, which carries no local context. What share of early-layer attention lands there?

# %% tags=["hide-cell"]
# Solution 2
early = per_layer[per_layer.layer <= (n_layers - 1) * 0.25]
display(Markdown(f"In layers 0-{int(early.layer.max())}, {early.bos.mean():.0%} of attention goes to BOS on average. "
                 "The `_nobos` columns in the table above redo the measure without it."))

# %% [markdown]
# ## Summary

# %%
display(Markdown(verdict_summary(verdicts)))

# %% [markdown]
# ## What's next
#
# Stage 2, [feature engineering](03_feature_engineering.ipynb): whether the middle layers build
# features without yet moving toward the final prediction, seen through the logit lens.

# %% [markdown]
# ---

# %%
page.footer(res)
