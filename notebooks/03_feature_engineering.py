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
# **Time to run.** With the defaults the numbers are read from the book's results pack (256
# sequences of 128 tokens) and its first two sequences are recomputed to check it: about 20
# seconds. Other parameters compute everything now: about 3 s per 1,000 tokens on a 2-core CPU
# for gemma-3-270m (one unembedding of every layer's residual).

# %%

import pandas as pd
from IPython.display import HTML, Markdown, display

from stages.analyses.lens import lens_table
from stages.book.page import open_page
from stages.book.present import data_table, verdict_table
from stages.claims import verdict_summary
from stages.depth import HALF
from stages.claims.stages import feature_engineering_claims
from stages.formats import estimate, number, percent
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
lens = lens_table(lens_sums, seed=seed).set_index("layer", drop=False)
page.source(res)
name, n_layers = res.name, res.n_layers


def ci(row: pd.Series, column: str, share: bool = False) -> str:
    """``row[column]`` with its 95% interval, as text (in percent when ``share``)."""
    return (percent if share else estimate)(row[column], row[f"{column}_lo"], row[f"{column}_hi"])


display(Markdown(
    f"**{name}**: {n_layers} layers, {int(lens.n_tokens.iloc[0]):,} scored positions in "
    f"{int(lens.n_seq.iloc[0])} sequences."
))

# %% [markdown]
# ## Figures 6 and 8, first half: the logit lens up to the midpoint
#
# The KL axis is logarithmic above 1 nat. The dashed line in the entropy panel is the entropy of
# the model's own predictions.

# %%
first_half = lens[lens.rel_depth <= HALF]
page.chart(lens_figure(lens, title=f"Figures 6 and 8, first half ({name}): the logit lens",
                       depth=(0.0, HALF)), first_half, "figures-6-and-8-first-half")

# %% [markdown]
# **Figures 6 and 8, first half** (the paper's Figures 6 and 8, left part). KL from the model's
# final distribution to the distribution read from the residual after each layer, the top-1
# agreement between them, and the read-out's entropy. Bands: 95% bootstrap intervals over
# sequences. [Stage 3](04_ensembling.ipynb) draws the KL over every layer (Figure 6),
# [stage 4](05_sharpening.ipynb) the second half (Figure 8).

# %% [markdown]
# ## Does stage 2 hold for this model?

# %%
verdicts = feature_engineering_claims(lens_sums, n_layers, seed=seed)
display(HTML(verdict_table(verdicts, caption=f"The paper's stage 2 claims on {name} "
                           f"({int(lens.n_seq.iloc[0])} sequences)")))
low = first_half.loc[first_half.entropy.idxmin()]
final_entropy = float(lens.final_entropy.iloc[0])
display(Markdown(
    f"The entropy claim fails the other way round: read through the lens, the first half's "
    f"predictions are *sharper* than the model's own ({number(final_entropy)} bits), down to "
    f"{ci(low, 'entropy')} bits after layer {int(low.layer)}. A confident read-out that agrees "
    "with the final top-1 at almost no position is a confident guess of something else; the "
    "lens shows the residual is not yet a next-token prediction, which is what stage 2 says, "
    "but not through high entropy."
    if low.entropy_hi < final_entropy else
    f"The lowest read-out entropy in the first half is {ci(low, 'entropy')} bits (layer "
    f"{int(low.layer)}), against the model's own {number(final_entropy)} bits."
))

# %% [markdown]
# ## The numbers (every layer)

# %%
last = lens.layer == n_layers - 1  # the lens there is the output itself
shown = lens.assign(
    kl_to_final=[("0 (by definition)" if is_last else ci(r, "kl_to_final"))
                 for is_last, (_, r) in zip(last, lens.iterrows(), strict=True)],
    top1_agreement=[("1 (by definition)" if is_last else ci(r, "top1_agreement"))
                    for is_last, (_, r) in zip(last, lens.iterrows(), strict=True)],
).drop(columns=["kl_to_final_lo", "kl_to_final_hi", "top1_agreement_lo", "top1_agreement_hi"])
display(HTML(data_table(
    shown, caption=f"The logit lens of {name} after each layer, means over "
    f"{int(lens.n_tokens.iloc[0]):,} positions with 95% bootstrap intervals over "
    f"{int(lens.n_seq.iloc[0])} sequences: KL(final ‖ layer) in nats, the share of positions "
    "where its top-1 token is the model's, its entropy in bits, and its loss on the true next "
    f"token in nats. After the last layer (layer {n_layers - 1}) the lens is the model's own "
    "output.",
    columns={"layer": "layer", "rel_depth": "relative depth", "kl_to_final": "KL to final",
             "top1_agreement": "top-1 agreement", "entropy": "entropy", "loss": "loss"},
)))

# %% [markdown]
# ## Exercises
#
# Answer before you open a solution; each solution is computed from this page's numbers.

# %% [markdown]
# **1. When does the lens agree?** At which relative depth does the logit lens first agree with
# the model's final top-1 prediction on at least half of the positions?

# %% tags=["hide-cell"]
# Solution 1
hit = lens[(lens.top1_agreement >= 0.5) & (lens.layer < n_layers - 1)]
display(Markdown("Never before the last layer." if hit.empty else
                 f"Layer {int(hit.iloc[0].layer)} (relative depth {number(hit.iloc[0].rel_depth)}),"
                 f" agreement {ci(hit.iloc[0], 'top1_agreement', True)}. The paper: little "
                 "progress toward the final prediction in stage 2."))

# %% [markdown]
# ## Summary

# %%
mid = lens.loc[int(first_half.layer.max())]
findings = [
    f"At the midpoint (after layer {int(mid.layer)}, relative depth {number(mid.rel_depth)}) the "
    f"logit lens agrees with the model's top-1 token at {ci(mid, 'top1_agreement', True)} of "
    f"positions and is {ci(mid, 'kl_to_final')} nats of KL from its output (the paper: little "
    "progress toward the final prediction in the first half).",
    f"Through the first half the lens's read-out is sharper than the model's own prediction, "
    f"not flatter: entropy {ci(low, 'entropy')} bits after layer {int(low.layer)} against "
    f"{number(final_entropy)} bits (the paper: high entropy early).",
]
if not hit.empty:
    h = hit.iloc[0]
    findings.append(f"The lens first agrees with the model at half of the positions after layer "
                    f"{int(h.layer)} of {n_layers} (relative depth {number(h.rel_depth)}): "
                    f"{ci(h, 'top1_agreement', True)}.")
display(Markdown(verdict_summary(verdicts, findings=tuple(findings))))

# %% [markdown]
# ## What's next
#
# Stage 3, [prediction ensembling](04_ensembling.ipynb): where the prediction neurons appear, and
# whether the lens's divergence to the final prediction falls in a phase transition.

# %% [markdown]
# ---

# %%
page.footer(res)
