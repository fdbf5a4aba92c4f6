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
# # Stage 3: prediction ensembling
#
# **The question** (paper section 5.3, Figure 6; {cite}`lad2024remarkable`, with the neuron classes
# of {cite}`gurnee2024universal`). In the second half of the model, the paper
# finds *prediction neurons*, MLP neurons whose output raises the logits of a small set of
# tokens, rising after the midpoint, peaking near 85% depth and declining in the last layers,
# while the logit lens falls towards the final prediction in a phase transition that they drive.
# Does this model do the same? The last claim is tested against a null, with depth held
# fixed: does the logit-lens KL fall more in the blocks that hold prediction neurons than depth
# alone predicts? (A fall that only follows depth would agree with any curve that rises with
# depth.) A null that finds nothing is reported as *no evidence*, not as a refutation. The
# claims about neuron counts treat the neurons as the units: a share gets an exact binomial
# interval, a comparison of layers draws each layer's fraction over its neurons.
#
# **What this page measures.** For every MLP neuron, the cosine similarity of the direction it
# writes into the residual stream with every token's unembedding vector: across the vocabulary
# these values have a skew and a (Pearson) kurtosis. A neuron with kurtosis above 10 is a
# prediction neuron if its skew is positive and a *suppression* neuron if negative (Gurnee et
# al. 2024, as in the authors' code; [Methods](../methods.md)). Beside the counts, the logit
# lens of the [previous page](03_feature_engineering.ipynb) over every layer.
#
# **Time to run.** With the defaults the numbers are read from the book's results pack (256
# sequences of 128 tokens; the moments of every neuron) and a slice of each is recomputed to
# check it: about half a minute. Other parameters compute everything now: the neuron classes
# take about 5 minutes on a 2-core CPU the first time (18 layers x 2,048 neurons x 262,144
# tokens), then come from the cache; the logit lens about 3 s per 1,000 tokens.

# %%

import numpy as np
import pandas as pd
from IPython.display import HTML, Markdown, display

from stages import stats
from stages.analyses.lens import lens_table
from stages.analyses.neurons import class_counts, top_neurons
from stages.book.page import open_page
from stages.book.present import data_table, neuron_table, verdict_table
from stages.claims import verdict_summary
from stages.depth import HALF
from stages.claims.stages import ensembling_claims
from stages.formats import estimate, number, percent
from stages.plots.stages import ensembling_figure

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
page = open_page("ensembling", globals())
res = page.results()
classes = res.classes()  # every neuron's moments (weights only) and class
counts = class_counts(classes)
counts["rel_depth"] = counts.layer / max(1, res.n_layers - 1)
lens_sums = res.sums("lens")
lens = lens_table(lens_sums, seed=seed).set_index("layer", drop=False)
page.source(res)
name, n_layers, lm = res.name, res.n_layers, res.model


def share(k: int, n: int) -> str:
    """``k / n`` in percent with its exact (Clopper-Pearson) 95% interval."""
    return percent(k / n, *stats.clopper_pearson(k, n))


display(Markdown(
    f"**{name}**: {len(classes):,} MLP neurons in {n_layers} layers, of which "
    f"{counts.prediction.sum()} are prediction and {counts.suppression.sum()} suppression "
    "neurons."
))

# %% [markdown]
# ## Figure 6: prediction neurons and the logit lens across depth

# %%
plain = lens.reset_index(drop=True)
figure = counts.merge(plain[["layer", "kl_to_final", "kl_to_final_lo", "kl_to_final_hi"]],
                      on="layer", how="left")
page.chart(ensembling_figure(counts, plain, title=f"Figure 6 ({name}): prediction neurons and the "
                             "logit lens"), figure, "figure-6")

# %% [markdown]
# **Figure 6** (the paper's Figure 6, its two axes drawn as two panels). Top: MLP neurons per
# layer whose vocabulary-effect distribution has kurtosis above 10, prediction neurons (positive
# skew) and suppression neurons (negative skew), as a fraction of each layer's neurons (hover for
# the counts). Bottom: the logit lens's KL from the model's final distribution after each layer
# (nats, logarithmic above 1; 95% bootstrap bands over sequences), where the paper sees a phase
# transition that the prediction neurons drive.

# %% [markdown]
# ## The strongest prediction neurons and the tokens they promote

# %%
display(HTML(neuron_table(top_neurons(lm, classes, "prediction"), "prediction", name)))

# %% [markdown]
# ## Does stage 3 hold for this model?

# %%
verdicts = ensembling_claims(classes, lens_sums, n_layers, seed=seed)
display(HTML(verdict_table(verdicts, caption=f"The paper's stage 3 claims on {name}")))

# %% [markdown]
# The neuron claims count neurons, so their n is the number of neurons and a share gets an
# exact binomial interval. The last claim is tested against a null that holds depth fixed; a
# null that finds nothing is reported as *unclear* or *no evidence*, not as a refutation.

# %% [markdown]
# ## The numbers: neurons per layer

# %%
display(HTML(data_table(
    counts, caption=f"Neurons of {name} per layer: prediction and suppression neurons (kurtosis "
    "above 10, skew positive or negative), the other neurons, the layer's width, and the two "
    "classes as fractions of the layer.",
    columns={"layer": "layer", "prediction": "prediction", "suppression": "suppression",
             "other": "other", "d_mlp": "neurons", "prediction_frac": "prediction share",
             "suppression_frac": "suppression share"},
)))

# %% [markdown]
# ## Exercises
#
# Answer before you open a solution; each solution is computed from this page's numbers.

# %% [markdown]
# **1. Count the predictors.** Predict the layer with the most prediction neurons, and whether
# suppression neurons outnumber them there.

# %% tags=["hide-cell"]
# Solution 1
row = counts.loc[counts.prediction.idxmax()]
display(Markdown(f"Layer {int(row.layer)}: {int(row.prediction)} prediction and "
                 f"{int(row.suppression)} suppression neurons (of {int(row.d_mlp)}). The paper: "
                 "prediction neurons peak near 85% depth."))

# %% [markdown]
# ## Summary

# %%
after = counts[counts.rel_depth > HALF]
n_pred = int(counts.prediction.sum())
peak = counts.loc[counts.prediction_frac.idxmax()]
mid = lens.loc[int(counts[counts.rel_depth <= HALF].layer.max())]
fall = verdicts[3]


def kl(row: pd.Series) -> str:
    """The lens's KL to the final distribution at ``row`` with its 95% interval."""
    return estimate(row.kl_to_final, row.kl_to_final_lo, row.kl_to_final_hi)


findings = (
    f"{share(int(after.prediction.sum()), n_pred)} of the {n_pred} prediction neurons of {name} "
    "lie past the midpoint (the paper: they appear in the second half).",
    f"The prediction-neuron fraction is largest at layer {int(peak.layer)} (relative depth "
    f"{number(peak.rel_depth)}): {int(peak.prediction)} of {int(peak.d_mlp)} neurons, "
    f"{share(int(peak.prediction), int(peak.d_mlp))}"
    + (", so they do not decline at the end" if int(peak.layer) == n_layers - 1 else "")
    + " (the paper: a peak near 85% depth, then a decline in the last layers).",
    f"The logit lens's KL to the final distribution falls from {kl(mid)} nats at the midpoint "
    f"(layer {int(mid.layer)}) to {kl(lens.loc[n_layers - 2])} after layer {n_layers - 2}; "
    "whether it falls more where the prediction neurons are than depth alone predicts is "
    f"{fall.verdict}: partial rank correlation "
    + (estimate(fall.value, fall.lo, fall.hi) if np.isfinite([fall.lo, fall.hi]).all() else
       f"{number(fall.value)} (no finite 95% interval: resamples that leave it undefined count "
       "against the claim at both ends)")
    + f" over {fall.n} blocks (the paper: a phase "
    "transition the prediction neurons drive).",
)
display(Markdown(verdict_summary(verdicts, findings=findings)))

# %% [markdown]
# ## What's next
#
# Stage 4, [residual sharpening](05_sharpening.ipynb): whether suppression neurons outnumber
# prediction neurons in the last layers.

# %% [markdown]
# ---

# %%
page.footer(res)
