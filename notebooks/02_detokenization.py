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
# **Time to run.** With the defaults the numbers are read from the book's results pack (256
# sequences of 128 tokens) and its first two sequences are recomputed to check it: about 15
# seconds. Other parameters compute everything now: about 10 s per 1,000 tokens on a 2-core CPU
# (one forward pass).

# %%

import pandas as pd
from IPython.display import HTML, Markdown, display

from stages.analyses.attention import attention_table
from stages.analyses.norms import norms_table
from stages.book.page import open_page
from stages.book.present import data_table, verdict_table
from stages.claims import verdict_summary
from stages.depth import EARLY, layers_where, span
from stages.claims.stages import detokenization_claims
from stages.formats import estimate, number, percent
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
page.source(res)
name, n_layers = res.name, res.n_layers
per_layer = locality[locality["head"] == -1].set_index("layer", drop=False)


def ci(row: pd.Series, column: str, share: bool = False) -> str:
    """``row[column]`` with its 95% interval, as text (in percent when ``share``)."""
    return (percent if share else estimate)(row[column], row[f"{column}_lo"], row[f"{column}_hi"])


display(Markdown(
    f"**{name}**: {n_layers} layers of {res.model.cfg.n_heads} heads, {len(res.tokens)} sequences "
    f"of {res.recipe.seq_len} tokens."
))

# %% [markdown]
# ## Figure 4: attention to the previous five tokens

# %%
page.chart(locality_figure(locality, title=f"Figure 4 ({name}): attention to the previous 5 "
                           "tokens"), locality, "figure-4")

# %% [markdown]
# **Figure 4** (the paper's Figure 4). Left: the paper's quantity, the attention each layer's
# queries put on the five previous tokens per entry (BOS included); right: the summed attention on
# the previous five tokens with BOS removed as a key. Grey points are single heads; the line is the
# mean over a layer's heads, with its 95% bootstrap interval over sequences.

# %%
sink_top, sink_low = per_layer.loc[per_layer.bos.idxmax()], per_layer.loc[per_layer.bos.idxmin()]
display(Markdown(
    f"How much of the attention goes to BOS, the first token, which carries no local context? "
    f"Averaged over heads and queries, from {ci(sink_low, 'bos', True)} at layer "
    f"{int(sink_low.layer)} to {ci(sink_top, 'bos', True)} at layer {int(sink_top.layer)} (per "
    "layer in the table below). The paper's quantity counts that attention; the right panel "
    "leaves it out."
))

# %% [markdown]
# ## Figures 5 and 7: what attention and the MLP write

# %%
page.chart(norms_figure(norms, title=f"Figures 5 and 7 ({name}): what attention and MLP write, "
                        "per layer"), norms, "figures-5-and-7")

# %% [markdown]
# **Figures 5 and 7** (the paper's Figure 5, the ratio, and Figure 7, the MLP's norm). Mean L2
# norm of what attention and the MLP add to the residual stream at each layer, and their ratio
# (above 1: attention writes more). Bands: 95% bootstrap intervals over sequences. Stage 4's
# page reads the MLP's norm in the last layers from this figure.

# %% [markdown]
# ## Does stage 1 hold for this model?

# %%
verdicts = detokenization_claims(attention, norm_sums, n_layers, seed=seed)
display(HTML(verdict_table(verdicts, caption=f"The paper's stage 1 claims on {name} "
                           f"({len(res.tokens)} sequences)")))

# %% [markdown]
# ## The numbers

# %%
shown = per_layer.reset_index(drop=True).merge(norms, on=["layer", "rel_depth"])
display(HTML(data_table(
    shown, caption=f"Per layer of {name}, means over heads with 95% bootstrap intervals over "
    f"{len(res.tokens)} sequences: attention per previous-5 entry (the paper's quantity), summed "
    "attention on the previous 5 tokens with BOS removed, the share of attention on BOS, and the "
    "mean L2 norms of what attention and the MLP write with their ratio.",
    columns={"layer": "layer", "attn_prev5": "per previous-5 entry", "prev_sum_nobos":
             "previous 5, BOS removed", "bos": "on BOS", "attn_norm": "|attention out|",
             "mlp_norm": "|MLP out|", "ratio": "ratio"},
)))

# %% [markdown]
# ## Exercises
#
# Answer before you open a solution; each solution is computed from this page's numbers.

# %% [markdown]
# **1. Where is local attention?** Guess the layer whose heads attend most to the previous five
# tokens, then read it from Figure 4.

# %% tags=["hide-cell"]
# Solution 1
row = per_layer.loc[per_layer.attn_prev5.idxmax()]
display(Markdown(f"Layer {int(row.layer)}: {ci(row, 'attn_prev5')} of attention per "
                 "previous-five entry. The paper: highest in the first layers (stage 1)."))

# %% [markdown]
# **2. The BOS sink.** Much attention goes to the first (BOS) token, which carries no local
# context. What share of early-layer attention lands there?

# %% tags=["hide-cell"]
# Solution 2
early = per_layer.loc[layers_where(n_layers, 0.0, EARLY)]
display(Markdown(f"In {span(list(early.layer))}, {early.bos.mean():.0%} of attention goes to BOS "
                 "on average. The right panel of Figure 4 redoes the measure without it."))

# %% [markdown]
# ## Summary

# %%
local, ratio = verdicts[0], verdicts[1]
peak = per_layer.loc[per_layer.attn_prev5.idxmax()]
nobos = per_layer.loc[per_layer.prev_sum_nobos.idxmax()]
top_ratio = norms.loc[norms.ratio.idxmax()]
display(Markdown(verdict_summary(verdicts, findings=(
    f"Attention to the previous five tokens (the paper's quantity) is highest at layer "
    f"{int(peak.layer)} (relative depth {number(peak.rel_depth)}), {ci(peak, 'attn_prev5')} per "
    f"entry; the highest layer of the first quarter minus the highest later one is "
    f"{estimate(local.value, local.lo, local.hi)} (the paper: attention is most local in the "
    "first layers).",
    f"Among the real tokens (BOS removed), the five previous tokens get at most "
    f"{ci(nobos, 'prev_sum_nobos', True)} of a layer's attention, at layer {int(nobos.layer)}; "
    f"BOS takes up to {ci(sink_top, 'bos', True)} (layer {int(sink_top.layer)}).",
    "Over the early layers taken together, attention writes "
    + ("more" if ratio.lo > 1 else "less" if ratio.hi < 1 else "about as much")
    + " into the residual stream than the MLP: "
    f"|attention out| / |MLP out| is {estimate(ratio.value, ratio.lo, ratio.hi)} over "
    f"{span(layers_where(n_layers, 0.0, EARLY))} and highest at layer {int(top_ratio.layer)}, "
    f"{ci(top_ratio, 'ratio')} (the paper: above 1 in the first layers, falling with depth).",
))))

# %% [markdown]
# ## What's next
#
# Stage 2, [feature engineering](03_feature_engineering.ipynb): whether the middle layers build
# features without yet moving toward the final prediction, seen through the logit lens.

# %% [markdown]
# ---

# %%
page.footer(res)
