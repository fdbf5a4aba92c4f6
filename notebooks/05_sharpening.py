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
# # Stage 4: residual sharpening
#
# **The question** (paper section 5.4, Figures 6, 7 and 8; {cite}`lad2024remarkable`; on neurons
# that suppress tokens see also {cite}`voita2023neurons`). In the last layers, the paper finds
# that *suppression neurons* take over, that the MLPs write their largest outputs, and that the
# final layers can even raise the entropy of the prediction: sharpening (or calibrating) the
# distribution rather than changing the top token. Does this model do the same?
#
# **What this page measures.** The counts of suppression and prediction neurons per layer
# ([stage 3](04_ensembling.ipynb) explains the rule and draws them in Figure 6), the mean L2
# norm of what each MLP adds to the residual stream ([stage 1](02_detokenization.ipynb) draws it
# for every layer, Figures 5 and 7), and the logit lens over the second half
# ([stage 2](03_feature_engineering.ipynb) explains it). This page reads them for the last
# layers.
#
# **Time to run.** With the defaults the numbers are read from the book's results pack (256
# sequences of 128 tokens; the moments of every neuron) and a slice of each is recomputed to
# check it: about half a minute. Other parameters compute everything now: the times of the
# stage 1 to 3 pages added.

# %%

import pandas as pd
from IPython.display import HTML, Markdown, display

from stages import stats
from stages.analyses.lens import lens_table
from stages.analyses.neurons import class_counts, top_neurons
from stages.analyses.norms import norms_table
from stages.book.page import open_page
from stages.book.present import data_table, neuron_table, verdict_table
from stages.claims import verdict_summary
from stages.depth import HALF, LAST, layers_where, span
from stages.claims.stages import sharpening_claims
from stages.formats import estimate, percent
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
page = open_page("sharpening", globals())
res = page.results()
classes = res.classes()
counts = class_counts(classes)
norm_sums, lens_sums = res.sums("norms"), res.sums("lens")
norms = norms_table(norm_sums, seed=seed)
lens = lens_table(lens_sums, seed=seed)
page.source(res)
name, n_layers, lm = res.name, res.n_layers, res.model
last = layers_where(n_layers, LAST, 1.0)


def ci(row: pd.Series, column: str) -> str:
    """``row[column]`` with its 95% interval, as text."""
    return estimate(row[column], row[f"{column}_lo"], row[f"{column}_hi"])


def share(k: int, n: int) -> str:
    """``k / n`` in percent with its exact (Clopper-Pearson) 95% interval."""
    return percent(k / n, *stats.clopper_pearson(k, n))


display(Markdown(f"**{name}**: {n_layers} layers; the last layers (relative depth {LAST} and "
                 f"beyond) are {span(last)}."))

# %% [markdown]
# ## The last layers in numbers
#
# Figure 6 (neurons) is drawn on the [stage 3](04_ensembling.ipynb) page and Figure 7 (the
# MLP's output norm) on the [stage 1](02_detokenization.ipynb) page; here are their numbers for
# the last layers.

# %%
late = counts.merge(norms, on="layer")
late = late[late.layer >= last[0] - 2]  # the last layers and the two before them
display(HTML(data_table(
    late, caption=f"The last layers of {name} ({span(last)}) and the two before them: "
    "prediction and suppression neurons (counts) and the mean L2 norm of what the MLP adds to "
    "the residual stream, with its 95% bootstrap interval over sequences.",
    columns={"layer": "layer", "prediction": "prediction", "suppression": "suppression",
             "mlp_norm": "|MLP out|"},
)))

# %% [markdown]
# ## Figure 8: the logit lens over the second half

# %%
page.chart(lens_figure(lens, title=f"Figure 8 ({name}): logit lens, second half",
                       depth=(HALF, 1.0)), lens[lens.rel_depth >= HALF], "figure-8")

# %% [markdown]
# **Figure 8** (the paper's Figure 8, with Figure 6's KL beside it). The logit lens over the
# second half: KL to the final distribution, top-1 agreement and the read-out's entropy (dashed:
# the model's own). Bands: 95% bootstrap intervals over sequences.

# %% [markdown]
# ## The strongest suppression neurons and the tokens they suppress

# %%
display(HTML(neuron_table(top_neurons(lm, classes, "suppression"), "suppression", name)))

# %% [markdown]
# ## Does stage 4 hold for this model?

# %%
verdicts = sharpening_claims(classes, norm_sums, lens_sums, n_layers, seed=seed)
display(HTML(verdict_table(verdicts, caption=f"The paper's stage 4 claims on {name}")))

# %% [markdown]
# ## Exercises
#
# Answer before you open a solution; each solution is computed from this page's numbers.

# %% [markdown]
# **1. Sharper or flatter?** Does the last layer make the next-token distribution sharper (lower
# entropy) or flatter? Guess, then check against the logit lens.

# %% tags=["hide-cell"]
# Solution 1
before, end = lens.iloc[-2], lens.iloc[-1]
verb = "raises" if end.entropy > before.entropy else "lowers"
display(Markdown(f"The last layer {verb} the entropy from {ci(before, 'entropy')} to "
                 f"{ci(end, 'entropy')} bits. The paper's residual sharpening expects "
                 "suppression neurons to reshape the distribution at the end."))

# %% [markdown]
# ## Summary

# %%
tail = counts[counts.layer.isin(last)]
n_supp, n_pred = int(tail.suppression.sum()), int(tail.prediction.sum())
supp_peak = counts.loc[counts.suppression_frac.idxmax()]
mlp_peak = norms.loc[norms.mlp_norm.idxmax()]
norm_v, entropy_v = verdicts[1], verdicts[2]
findings = (
    f"In the last layers ({span(last)}) suppression neurons are "
    f"{share(n_supp, n_supp + n_pred)} of the classed neurons ({n_supp} suppression, {n_pred} "
    "prediction; the paper: suppression neurons outnumber prediction neurons there).",
    f"The density of suppression neurons is highest at layer {int(supp_peak.layer)}: "
    f"{int(supp_peak.suppression)} of {int(supp_peak.d_mlp)} neurons, "
    f"{share(int(supp_peak.suppression), int(supp_peak.d_mlp))} (the paper: the final layers).",
    f"The MLP writes most at layer {int(mlp_peak.layer)}, a mean norm of "
    f"{ci(mlp_peak, 'mlp_norm')}, "
    f"{estimate(norm_v.value, norm_v.lo, norm_v.hi)} times the largest of the earlier layers "
    "(the paper: the MLP output norm peaks in the final layers).",
    f"The last layer raises the entropy of the prediction by "
    f"{estimate(entropy_v.value, entropy_v.lo, entropy_v.hi)} bits over the logit lens before "
    "it (the paper: the entropy can rise at the end).",
)
display(Markdown(verdict_summary(verdicts, findings=findings)))

# %% [markdown]
# ## What's next
#
# The [case studies](06_case_studies.ipynb) test two of the stages on specific mechanisms: heads
# that join a word's sub-word tokens (stage 1) and neurons that predict "-ing" (stage 3).

# %% [markdown]
# ---

# %%
page.footer(res)
