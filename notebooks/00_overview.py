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
# # Overview: four stages on one axis
#
# **The question** (paper section 1, Figure 1). The paper {cite}`lad2024remarkable` proposes that every model it studied
# runs in four stages, *detokenization*, *feature engineering*, *prediction ensembling* and
# *residual sharpening*, and draws their boundaries by eye over four signals: how much dropping
# each layer hurts, how much each layer attends to the previous tokens, and how many prediction
# and suppression neurons each layer has. Where do the boundaries fall for this model, and how
# sure can we be?
#
# **What this page does.** It puts the four signals on one relative-depth axis (each scaled to its
# own range) and, beyond the paper, *fits* the boundaries: an exact Bayesian change-point
# segmentation into four stages, piecewise constant in every (standardised) signal at once, with
# every possible segmentation enumerated ([Methods](../methods.md)). Each boundary is placed where
# the jointly most probable segmentation puts it. How sure that placement is comes from the data, not from the fit's own
# posterior (which treats the weight-only neuron fractions and the smooth depth curves as
# independent noise, and so overstates certainty): the fit is repeated on bootstrap resamples of
# the sequences, and the page reports how often each boundary lands on each layer. The fit assumes
# four stages exist; a stable boundary says where the signals change most, not that the stages
# are real.
#
# **Time to run.** With the defaults, on a CPU (a GPU computes everything now), the signals are read from the book's results pack and the
# pack is checked by recomputing two sequences (about a minute and a half), plus half a minute
# of refits. Other parameters compute the sweep and the attention patterns now (their times are
# on the [robustness](01_robustness.ipynb) and [stage 1](02_detokenization.ipynb) pages).
#
# **Where each stage is tested.** [Robustness](01_robustness.ipynb) (the interventions),
# [detokenization](02_detokenization.ipynb), [feature engineering](03_feature_engineering.ipynb),
# [prediction ensembling](04_ensembling.ipynb), [residual sharpening](05_sharpening.ipynb), the
# [case studies](06_case_studies.ipynb), [what swapped layers write](07_appendix_cosine_similarity.ipynb),
# the same signals [across models](08_cross_model.ipynb); beyond single layers, from the paper's
# later version and related work: [deleting, reordering and duplicating spans](09_depth_edits.ipynb),
# [layer similarity and skip effects](10_layer_similarity.ipynb) and [a cloze task](11_cloze.ipynb);
# the engine's [performance](12_performance.ipynb), and every verdict on one page:
# [what holds](13_what_holds.ipynb).

# %%

from IPython.display import Markdown, display

from stages.analyses.boundaries import stage_boundaries
from stages.analyses.signals import OVERVIEW, boundary_ranges, boundary_stability, overview_signals
from stages.book.page import open_page
from stages.claims import verdict_summary
from stages.plots.stages import overview_figure, stability_figure

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
n_resamples = 500  # bootstrap resamples of the sequences for the boundaries' uncertainty

# %%
page = open_page("overview", globals())
res = page.results()
frames = {"sweep": res.sums("sweep"), "attention": res.sums("attention")}
signals, resampled = overview_signals(frames, res.classes(), res.n_layers, n_boot=n_resamples,
                                      seed=seed)
fitted = stage_boundaries(signals, list(OVERVIEW), n_stages=4, min_size=2)
stability = boundary_stability(resampled, res.n_layers)
boundaries = boundary_ranges(fitted, stability, res.n_layers)
elapsed = page.elapsed
name, n_layers = res.name, res.n_layers
display(Markdown(f"**{name}**, {n_layers} layers, {len(res.tokens)} sequences. "
                 f"Done in {elapsed:.0f} s."))
display(Markdown(res.report()))

# %% [markdown]
# ## Figure 1: the stage signals and the fitted boundaries

# %%
overview_figure(signals, OVERVIEW, boundaries, title=f"Figure 1 ({name}): stages of inference")

# %% [markdown]
# **Figure 1** (the paper's Figure 1). Per layer, against relative depth, each signal scaled to
# 0..1 by its own range (hover for the values): the KL of dropping the layer, attention on the
# previous five tokens, and the fractions of prediction and suppression neurons. Dashed lines: the
# fitted stage boundaries; grey bands: where 90% of the fits on resampled sequences put them.
# Stage 1 is left of the first line, stage 4 right of the last.

# %% [markdown]
# ## How stable are the boundaries?
#
# Each bar is the share of the bootstrap resamples whose fit starts a stage at that layer.

# %%
stability_figure(stability, boundaries, title=f"Stage boundaries of {name} over {n_resamples} resamples of the sequences")

# %%
stage_names = ["detokenization", "feature engineering", "prediction ensembling",
               "residual sharpening"]
starts = [0, *boundaries["layer"], n_layers]
spans = [f"**{stage}**: layers {a}-{b - 1} (relative depth {a / (n_layers - 1):.2f}-"
         f"{(b - 1) / (n_layers - 1):.2f})"
         for stage, a, b in zip(stage_names, starts[:-1], starts[1:])]
display(Markdown(
    f"The fitted stages of **{name}**: " + "; ".join(spans) + ". "
    + " ".join(f"Boundary {r.boundary} starts at layer {r.layer} in {r.share:.0%} of the "
               f"{n_resamples} resampled fits (90% of them between layers {r.layer_lo} and "
               f"{r.layer_hi})." for r in boundaries.itertuples())
    + " The paper gives no numbers for its boundaries; in words, stage 3 begins the second half"
    + " of the model (here boundary 2 is at relative depth "
    + f"{boundaries.rel_depth.iloc[1]:.2f}) and stage 4 is the last layers (here from relative"
    + f" depth {boundaries.rel_depth.iloc[2]:.2f}). " + fitted.attrs["method"].split(";")[0]
    + "; the ranges come from refitting on resampled sequences (the neuron fractions, which"
    " depend on the weights alone, do not vary)."
))

# %% [markdown]
# ## The numbers

# %%
display(signals.round(4).style.hide(axis="index"))
display(boundaries.round(3).style.hide(axis="index"))
display(stability.pivot_table(index="layer", columns="boundary", values="share", fill_value=0)
        .round(3))

# %% [markdown]
# ## Exercises
#
# Answer before you open a solution; each solution is computed from this page's numbers.

# %% [markdown]
# **1. Predict, then look.** The paper places prediction ensembling in the second half of a model. Before looking at Figure 1, guess the relative depth of the first layer with any prediction neuron in this model.

# %% tags=["hide-cell"]
# Solution 1
first = signals[signals.prediction_frac > 0].iloc[0]
display(Markdown(f"The first layer with prediction neurons is layer {int(first.layer)}, relative depth "
                 f"{first.rel_depth:.2f} ({first.prediction_frac:.2%} of its neurons)."))

# %% [markdown]
# **2. How sure is the fit?** Which of the three fitted boundaries is the least stable under resampling, and what on the page tells you?

# %% tags=["hide-cell"]
# Solution 2
widest = boundaries.assign(width=boundaries.layer_hi - boundaries.layer_lo).sort_values(["width", "share"], ascending=[True, False]).iloc[-1]
display(Markdown(f"Boundary {int(widest.boundary)} (at layer {int(widest.layer)}): 90% of the resampled fits put it "
                 f"between layers {int(widest.layer_lo)} and {int(widest.layer_hi)}, and only {widest.share:.0%} "
                 "exactly where the full data put it. Re-run with `-p seed 1` to see it move."))

# %% [markdown]
# ## Summary

# %%
display(Markdown(verdict_summary([], findings=tuple(
    f"Boundary {r.boundary} (the start of stage {r.boundary + 1}) is at layer {r.layer} of {n_layers} "
    f"(relative depth {r.rel_depth:.2f}) in {r.share:.0%} of {n_resamples} fits on "
    f"resampled sequences; 90% of them put it between layers {r.layer_lo} and {r.layer_hi}."
    for r in boundaries.itertuples()
) + ("The fit assumes four stages; where the 90% range is wide, the signals do not place that "
     "boundary.",))))

# %% [markdown]
# ## What's next
#
# The four signals rest first on the interventions: [robustness](01_robustness.ipynb) measures
# how much dropping or swapping each layer hurts (the blue curve of Figure 1), with a verdict on
# each of the paper's robustness claims. Then each stage has its page, from
# [detokenization](02_detokenization.ipynb) to [residual sharpening](05_sharpening.ipynb).

# %% [markdown]
# ---

# %%
page.footer(res)
