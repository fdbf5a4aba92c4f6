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
# segmentation into four stages, piecewise constant in every (standardised) signal at once
# ([Methods](../methods.md)). How sure each boundary is gets four answers, each covering what
# the others hold fixed: the fit's credible interval, the *sequence noise* (refits on resampled
# sequences), refits with one signal left out, and refits with three and five stages. None of
# them shows that the stages are real: the fit finds where the signals change most, however
# many stages it is asked for.
#
# **Time to run.** With the defaults the signals are read from the book's results pack, which is
# checked by recomputing two sequences (about a minute and a half), plus under half a minute of
# refits. Other parameters compute the sweep and the attention patterns now (their times are on
# the [robustness](01_robustness.ipynb) and [stage 1](02_detokenization.ipynb) pages).
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

import pandas as pd
from IPython.display import HTML, Markdown, display

from stages.analyses.boundaries import stage_boundaries
from stages.analyses.signals import (
    OVERVIEW,
    boundary_summary,
    leave_one_signal_out,
    overview_signals,
    sequence_noise,
    sequence_noise_ranges,
    stage_count_evidence,
    stage_count_sensitivity,
)
from stages.book.page import open_page
from stages.book.present import data_table, fold, markdown
from stages.claims import verdict_summary
from stages.formats import number
from stages.plots.stages import overview_figure

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
n_resamples = 500  # bootstrap resamples of the sequences, for the boundaries' sequence noise

# %%
page = open_page("overview", globals())
res = page.results()
frames = {"sweep": res.sums("sweep"), "attention": res.sums("attention")}
signals, resampled = overview_signals(frames, res.classes(), res.n_layers, n_boot=n_resamples,
                                      seed=seed)
names, min_size = list(OVERVIEW), 2  # every stage at least two layers
fitted = stage_boundaries(signals, names, n_stages=4, min_size=min_size)
noise = sequence_noise(resampled, res.n_layers, n_stages=4, min_size=min_size)
left_out = leave_one_signal_out(signals, names, n_stages=4, min_size=min_size)
by_k = stage_count_sensitivity(signals, names, (3, 4, 5), min_size=min_size)
k_choice = stage_count_evidence(signals, names, (3, 4, 5), min_size=min_size)
summary = boundary_summary(fitted, sequence_noise_ranges(fitted, noise), left_out, by_k)
page.source(res)
name, n_layers = res.name, res.n_layers
display(Markdown(f"**{name}**: {n_layers} layers, {len(res.tokens)} sequences."))

# %% [markdown]
# ## Figure 1: the stage signals and the fitted boundaries

# %%
page.chart(overview_figure(signals, OVERVIEW, fitted, title=f"Figure 1 ({name}): stages of "
                           "inference"), signals, "figure-1")

# %% [markdown]
# **Figure 1** (the paper's Figure 1). Per layer, against relative depth, each signal scaled to
# 0..1 by its own range (hover for the values): the KL of dropping the layer, attention on the
# previous five tokens, and the fractions of prediction and suppression neurons. Dashed lines: the
# fitted stage boundaries; grey bands: the central 90% credible interval of each boundary under
# the fit's model (hover a line for its posterior probability). A boundary without a band has
# 90% of its posterior on one layer. Stage 1 is left of the first line, stage 4 right of the last.

# %%
stage_names = ["detokenization", "feature engineering", "prediction ensembling",
               "residual sharpening"]
starts = [0, *fitted["layer"], n_layers]
stages_table = pd.DataFrame({
    "stage": stage_names,
    "layers": [f"{a}" if a == b - 1 else f"{a}–{b - 1}" for a, b in zip(starts[:-1], starts[1:],
                                                                     strict=True)],
    "depth": [f"{number(a / (n_layers - 1))} to {number((b - 1) / (n_layers - 1))}"
              for a, b in zip(starts[:-1], starts[1:], strict=True)],
})
display(HTML(data_table(stages_table, caption=f"The four stages of {name} as fitted (the joint "
                        "most probable segmentation).",
                        columns={"stage": "stage", "layers": "layers",
                                 "depth": "relative depth"})))
display(Markdown(
    "The paper gives no numbers for its boundaries; in words, stage 3 begins the second half of "
    f"the model (here boundary 2 is at relative depth {number(fitted.rel_depth.iloc[1])}, 90% "
    f"credible {number(fitted.rel_depth_lo.iloc[1])} to {number(fitted.rel_depth_hi.iloc[1])}) "
    "and stage 4 is the last layers (here from relative depth "
    f"{number(fitted.rel_depth.iloc[2])})."
))

# %% [markdown]
# ## How sure are the boundaries?
#
# - **90% credible interval**: where the fit's posterior puts the boundary, given four
#   piecewise-constant stages and these signals. Every departure of a curve from a step counts
#   as noise, so it widens where the curves are not step-like.
# - **Sequence noise**: where 90% of the refits on bootstrap resamples of the sequences put it.
#   It covers the sampling of text only; the neuron fractions depend on the weights alone and
#   never change.
# - **Without one signal**: the refit on the other three signals (still four stages).
# - **K = 3 and K = 5**: the nearest boundary of a three- or five-stage fit (matched one to one;
#   with three stages one boundary has none).
#
# The last two are refits, not probabilities. A boundary's layer is the first layer of the next
# stage.

# %%
def span(lo: int, hi: int) -> str:
    """A range of layers as text: ``"6"`` or ``"3–8"``."""
    return f"{lo}" if lo == hi else f"{lo}–{hi}"


def layers(lo: int, hi: int) -> str:
    """A range of layers in words: ``"layer 6"`` or ``"layers 3–8"``."""
    return f"layer{'' if lo == hi else 's'} {span(lo, hi)}"


def noisy(lo: int, hi: int) -> str:
    """The sequence-noise range in words: ``"at layer 6 only"`` or ``"layers 5–7"``."""
    return f"at layer {lo} only" if lo == hi else f"layers {span(lo, hi)}"


def refit(value: object) -> str:
    """A refit's boundary layer, or ``"none"`` where the refit has no counterpart."""
    return "none" if pd.isna(value) else str(int(value))


table = pd.DataFrame({
    "boundary": summary.boundary, "layer": summary.layer,
    "credible": [span(a, b) for a, b in zip(summary.credible_lo, summary.credible_hi, strict=True)],
    "noise": [span(a, b) for a, b in zip(summary.noise_lo, summary.noise_hi, strict=True)],
    "without": [", ".join(map(str, sorted({int(getattr(r, f"without_{n}")) for n in names})))
                for r in summary.itertuples()],
    "k3": summary.k3.map(refit), "k5": summary.k5.map(refit),
})
display(HTML(data_table(
    table, caption=f"Each boundary of {name} (the layer that starts the next stage): as fitted, "
    "its 90% credible interval, its sequence noise (90% of the refits on resampled sequences), "
    "the layers where the refits that leave out one signal put it (which signal moves it: below), "
    "and the nearest boundary of the fits with three and five stages (none: no counterpart).",
    columns={"boundary": "boundary", "layer": "fitted", "credible": "90% credible",
             "noise": "sequence noise", "without": "without one signal", "k3": "K = 3",
             "k5": "K = 5"},
)))

# %%
credible_w = summary.credible_hi - summary.credible_lo
noise_w = summary.noise_hi - summary.noise_lo
wider = summary.boundary[credible_w > noise_w].tolist()
moves = {OVERVIEW[n]: [f"boundary {r.boundary} to layer {getattr(r, f'without_{n}')}"
                       for r in summary.itertuples() if getattr(r, f"without_{n}") != r.layer]
         for n in names}  # fmt: skip
moves = {signal: where for signal, where in moves.items() if where}
k5 = by_k[by_k.n_stages == 5].layer
extra = sorted(set(k5) - set(summary.k5.dropna()))
missing = summary.boundary[summary.k3.isna()].tolist()
best = k_choice[k_choice.preferred].iloc[0]
four = k_choice[k_choice.n_stages == 4].iloc[0]
display(Markdown(
    f"The credible interval is wider than the sequence noise at {len(wider)} of the "
    f"{len(summary)} boundaries: resampling the text moves only the drop-KL and attention curves, "
    "so a narrow sequence noise says the sample is large enough, not that the boundary is well "
    "placed. "
    + ("Leaving out " + "; leaving out ".join(f"{signal} moves {', '.join(where)}"
                                              for signal, where in moves.items()) + ". "
       if moves else "No boundary moves when any one signal is left out. ")
    + "With three stages the fit keeps boundaries at layers "
    f"{', '.join(map(str, summary.k3.dropna()))}"
    + (f" and boundary {', '.join(map(str, missing))} has no counterpart" if missing else "")
    + f"; with five it adds one at layer {', '.join(map(str, extra))}. Among three, four and five "
    f"stages the Schwarz criterion (BIC) prefers **{int(best.n_stages)}**"
    + ("." if best.n_stages == 4 else
       f"; four stages have a BIC {number(four.delta_bic)} higher (approximate probability "
       f"{f'{four.weight:.0%}' if four.weight >= 0.01 else 'under 1%'} among the three). BIC "
       "treats the residuals as independent, which flatters more stages when the curves are "
       "smooth, and it still prefers fewer.")
))
display(HTML(fold("Why BIC, and what it assumes", markdown(
    "The fit's log evidence cannot compare numbers of stages: its flat priors on the stage means "
    "make it comparable only between fits with the same number of stages. BIC, the Schwarz "
    "criterion of the least-squares segmentation, can; it adds to the fit's assumptions a "
    "large-sample approximation and counts one parameter per stage mean, per boundary and for "
    "the noise. The approximate probabilities assume equal prior odds of three, four and five "
    "stages. Residuals correlated along depth, as those of smooth curves are, make more stages "
    "look better supported than they are. " + fitted.attrs["method"]
))))

# %% [markdown]
# ## The numbers
#
# The signals per layer; the fits with three, four and five stages (each boundary with its
# credible interval); their BIC; and the sequence noise.

# %%
display(HTML(data_table(
    signals, caption=f"The four signals of Figure 1 per layer of {name}: the KL of dropping the "
    "layer (nats) and its natural log, the attention per previous-5 entry, and the fractions of "
    "the layer's neurons that are prediction and suppression neurons.",
    columns={"layer": "layer", "rel_depth": "relative depth", "drop_kl": "drop KL",
             "log_drop_kl": "log drop KL", "prev_attention": "attention",
             "prediction_frac": "prediction", "suppression_frac": "suppression"},
)))
fits = by_k.assign(credible=[span(a, b) for a, b in zip(by_k.layer_lo, by_k.layer_hi,
                                                         strict=True)])
fits = fits.drop(columns=["layer_lo", "layer_hi", "rel_depth_lo", "rel_depth_hi"])
display(HTML(data_table(
    fits, caption=f"The fits of {name} with three, four and five stages: each boundary's layer "
    "(the joint most probable segmentation), relative depth, the posterior probability of that "
    "layer, and the 90% credible interval in layers.",
    columns={"n_stages": "stages", "boundary": "boundary", "layer": "layer",
             "rel_depth": "relative depth", "probability": "probability",
             "credible": "90% credible"},
)))
display(HTML(data_table(
    k_choice.assign(preferred=k_choice.preferred.map({True: "yes", False: ""})),
    caption="The number of stages compared: the fit's log evidence (comparable only within one "
    "number of stages), BIC, its difference from the lowest, and the approximate probability "
    "of each number of stages (equal prior odds).",
    columns={"n_stages": "stages", "log_evidence": "log evidence", "bic": "BIC",
             "delta_bic": "ΔBIC", "weight": "probability", "preferred": "preferred"},
)))
display(HTML(data_table(
    noise, caption=f"Sequence noise: of {n_resamples} refits on resampled sequences, the share "
    "that starts a stage at each layer (only layers some refit chose).",
    columns={"boundary": "boundary", "layer": "layer", "share": "share of refits"},
)))

# %% [markdown]
# ## Exercises
#
# Answer before you open a solution; each solution is computed from this page's numbers.

# %% [markdown]
# **1. Predict, then look.** The paper places prediction ensembling in the second half of a
# model. Before looking at Figure 1, guess the relative depth of the first layer with any
# prediction neuron in this model.

# %% tags=["hide-cell"]
# Solution 1
first = signals[signals.prediction_frac > 0].iloc[0]
display(Markdown(f"The first layer with prediction neurons is layer {int(first.layer)}, "
                 f"relative depth {number(first.rel_depth)} ({first.prediction_frac:.2%} of its "
                 "neurons)."))

# %% [markdown]
# **2. Two kinds of uncertainty.** Take the boundary with the widest credible interval. Is its
# sequence-noise range wider or narrower, and why can the two differ?

# %% tags=["hide-cell"]
# Solution 2
r = next(summary.loc[[credible_w.idxmax()]].itertuples())
display(Markdown(
    f"Boundary {r.boundary} (at layer {r.layer}): 90% credible "
    f"{layers(r.credible_lo, r.credible_hi)}, sequence noise {noisy(r.noise_lo, r.noise_hi)}, so "
    "the sequence-noise range is "
    f"{'narrower' if r.noise_hi - r.noise_lo < r.credible_hi - r.credible_lo else 'not narrower'}."
    " The credible interval counts every departure of the curves from four flat steps as noise;"
    " resampling the sequences changes only how the text-dependent curves wiggle, never the"
    " weights' neuron fractions nor the step model."
))

# %% [markdown]
# **3. Which signal decides?** Which signal, left out, moves the boundaries most (in layers,
# summed over the three boundaries)?

# %% tags=["hide-cell"]
# Solution 3
shift = {n: int((summary[f"without_{n}"] - summary.layer).abs().sum()) for n in names}
top = max(shift, key=shift.get)
display(Markdown(
    f"Leaving out {OVERVIEW[top]} moves the boundaries by {shift[top]} layers in all; "
    + ", ".join(f"{OVERVIEW[n]}: {v}" for n, v in shift.items() if n != top) + ". "
    "A signal whose removal moves nothing agrees with the others; one whose removal moves a "
    "boundary is the one that places it."
))

# %% [markdown]
# ## Summary

# %%
landing = {r.boundary: sorted({getattr(r, f"without_{n}") for n in names})
           for r in summary.itertuples()}  # fmt: skip
display(Markdown(verdict_summary([], findings=tuple(
    f"Boundary {r.boundary} (the start of stage {r.boundary + 1}) is at layer {r.layer} of "
    f"{n_layers} (relative depth {number(r.rel_depth)}); 90% credible "
    f"{layers(r.credible_lo, r.credible_hi)}, sequence noise {noisy(r.noise_lo, r.noise_hi)}; "
    f"with one signal left out at layer{'s' if len(landing[r.boundary]) > 1 else ''} "
    f"{' or '.join(', '.join(map(str, landing[r.boundary])).rsplit(', ', 1))}."
    for r in summary.itertuples()
) + (f"Among three, four and five stages, BIC prefers {int(best.n_stages)}"
     + (" (the paper: four)." if best.n_stages == 4 else
        f" (four stages: BIC {number(four.delta_bic)} higher; the paper: four).")
     + " The fit assumes its number of stages; where a boundary's ranges are wide, or it moves "
     "when a signal is left out, the signals do not place it.",))))

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
