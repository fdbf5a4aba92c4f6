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
# # Appendix: what a swapped layer writes
#
# **The question** (paper appendix A, Figures 11 and 12; {cite}`lad2024remarkable`). When two adjacent layers run in
# exchanged order, does each keep writing what it wrote in its own place ("stubborn"), or does it
# take over the role of the layer it replaced? The paper compares, for every adjacent swap, the
# attention and MLP outputs of the swapped model with the unperturbed model's by cosine
# similarity.
#
# **What this page measures.** For every swap of layers *i* and *i+1* and each component, the
# mean cosine over tokens between: a layer's output after the swap and its own output in the
# unperturbed model (*self*-similarity); the output now at a position and the output the
# unperturbed model had there (*index* similarity); and, for reference, the outputs of layers
# *i* and *i+1* in the unperturbed model (*adjacent* similarity). Bands are 95% bootstrap
# intervals over sequences. The swapped pair starts from the unperturbed residual entering
# layer *i* and each block keeps its own attention type and positional table
# ([Methods](../methods.md)).
#
# **Time to run.** With the defaults, on a CPU (a GPU computes everything now), the sums are read from the book's results pack and its
# first two sequences recomputed to check it: about 15 seconds. Other parameters compute
# everything now: about 25 s per 1,000 tokens on a 2-core CPU (one forward pass per batch plus
# two blocks per swap).

# %%

from IPython.display import HTML, Markdown, display

from stages.analyses.swap_similarity import swap_similarity_table
from stages.book.page import open_page
from stages.book.present import data_table, verdict_table
from stages.claims import verdict_summary
from stages.claims.appendix import appendix_claims
from stages.formats import estimate, number
from stages.plots.book import SIMILARITY_TITLES, swap_similarity_figure
from stages.plots.schematics import similarity_schematic

# %% [markdown]
# ## Figure 11: what the three similarities compare

# %%
similarity_schematic()

# %% [markdown]
# **Figure 11** (the paper's Figure 11). What the three similarities compare, for a swap of
# layers i and i+1: *index* similarity, the output now at a position against the output the
# unperturbed model had there (does the moved layer take over its new place's role?); *self*
# similarity, a layer's output at its new position against its own unperturbed output (does it
# keep writing what it wrote, "stubborn"?); *adjacent* similarity, the unperturbed outputs of the
# two layers (how alike neighbours are without any swap). Each is computed for the attention and
# the MLP output separately, per token, and averaged (Figure 12 below).

# %% tags=["parameters"]
model = "gemma-3-270m"  # the embedded default, or a Hugging Face name / local folder
n_tokens = 32768  # tokens compared (rounded up to whole sequences of seq_len)
seq_len = 128  # tokens per sequence, BOS included
batch_size = 8  # sequences per forward pass
device = "auto"  # "auto", "cpu", "cuda"
dtype = "float32"  # "float32", "bfloat16", "float64"
corpus = "default"  # the shipped public-domain prose, a local file, or a hub dataset
seed = 0  # which sequences are sampled, and the bootstrap
pack = "default"  # "default": the shipped results pack when these are its parameters; "none"; or a pack's folder

# %%
page = open_page("appendix_cosine_similarity", globals())
res = page.results()
similarity_sums = res.sums("swap_similarity")  # per sequence: cosine sums of every swap
similarity = swap_similarity_table(similarity_sums, seed=seed)
name, n_layers = res.name, res.n_layers
page.source(res)

# %% [markdown]
# ## Figure 12: cosine similarity after each swap

# %%
page.chart(swap_similarity_figure(similarity,
                                  title=f"Figure 12 ({name}): outputs of swapped layers"),
           similarity, "figure-12")

# %% [markdown]
# **Figure 12** (the paper's Figure 12). For each swap of layers *i* and *i+1* (at the relative
# depth of layer *i*): cosine similarity of each layer's output with its own unperturbed output
# (self), with the output the unperturbed model had at that position (index), and of the two
# unperturbed layers with each other (adjacent). Bands: 95% bootstrap intervals over sequences.

# %%
wide = similarity.pivot_table(index=["component", "layer"], columns=["metric", "which"],
                              values="value")
means = {}
for component in ("attn", "mlp"):
    rows = wide.loc[component]
    means[component] = {
        "self": rows["self"].to_numpy().mean(),
        "index": rows["index"].to_numpy().mean(),
        "adjacent": rows[("adjacent", "baseline")].mean(),
        "stubborn": (rows["self"].mean(axis=1) > rows["index"].mean(axis=1)).mean(),
    }
display(Markdown(" ".join(
    f"Averaged over the {n_layers - 1} swaps, a swapped **{label}** output has a cosine of "
    f"{number(m['self'])} with its own unperturbed output (self) and {number(m['index'])} with "
    f"the output it displaced (index); two unswapped neighbours have {number(m['adjacent'])} "
    f"(adjacent). It writes more like itself than like the layer it replaced in "
    f"{m['stubborn']:.0%} of the swaps."
    for component, label in (("attn", "attention"), ("mlp", "MLP")) for m in [means[component]]
)))

# %% [markdown]
# ## Do the paper's claims hold for this model?
#
# The paper reads three things from its Figure 12 for the MLPs: in stage 2 (here the swaps
# starting at relative depth 0.25-0.5) a layer moved earlier writes more like the layer it
# replaced than like itself (index similarity above self-similarity; clearer in Pythia 1.4B than
# in GPT-2 XL); index similarity drops after the midpoint; and in stage 3 (after the midpoint, up
# to 0.85) swapped MLPs are *stubborn*, writing what they wrote in their own place. Each is a
# paired difference of per-token cosines with a 95% bootstrap interval over sequences. What
# an MLP does in a stage is claimed of every swap in it, so those claims are decided swap by
# swap: the estimate is the least swap's difference, with the bounds of a simultaneous band over
# the swaps (one swap cannot carry a mean). The drop after the midpoint compares the two stages'
# mean levels.

# %%
verdicts = appendix_claims(similarity_sums, n_layers, seed=seed)
display(HTML(verdict_table(verdicts, caption=(
    f"Appendix A's claims on {name}: each estimate is a paired difference of mean cosines "
    f"(per token, then per sequence; for a stage's claim the least swap's) with its 95% "
    f"bootstrap interval over {verdicts[0].n} sequences; open a claim for its statistic, rule "
    "and how many swaps agree."))))
stage2, drop, stubborn_mlp = verdicts[0], verdicts[1], verdicts[2]
if stage2.verdict == "does not hold" and stubborn_mlp.verdict == "holds":
    display(Markdown(
        f"What the table adds up to: on {name} a swapped MLP keeps writing what it wrote in its "
        "own place before the midpoint as well as after it. The paper contrasts a stage 2 in which "
        "a moved layer takes over its new place's role (iterative refinement: neighbours are "
        "interchangeable) with a stubborn stage 3; here the MLPs are stubborn in both, so what "
        "they write does not mark the boundary between the two stages."
    ))

# %% [markdown]
# ## The numbers

# %%
numbers = similarity.assign(
    series=[SIMILARITY_TITLES[(m, w)] for m, w in zip(similarity["metric"], similarity["which"],
                                                       strict=True)],
)
for component, label in (("attn", "attention"), ("mlp", "MLP")):
    rows = numbers[numbers["component"] == component]
    table = rows.pivot_table(index="layers", columns="series", values=["value", "lo", "hi"],
                             sort=False)
    frame = table["value"].copy()
    for series in frame.columns:
        frame[f"{series}_lo"], frame[f"{series}_hi"] = table["lo"][series], table["hi"][series]
    frame = frame.reset_index()
    frame["layers"] = frame["layers"].map(lambda x: x.replace("-", " and "))
    display(HTML(data_table(
        frame, caption=(f"{label[0].upper()}{label[1:]} outputs after each swap of layers i and "
                        f"i+1 ({name}): mean cosine over tokens (95% bootstrap interval over "
                        f"{len(res.tokens)} sequences), the series of Figure 12."),
        columns={"layers": "swapped layers",
                 **{series: series for series in SIMILARITY_TITLES.values()}},
    )))

# %% [markdown]
# ## Exercises
#
# Answer before you open a solution; each solution is computed from this page's numbers.

# %% [markdown]
# **1. Stubborn layers.** After a swap, does an MLP keep writing what it wrote in its own place? Guess the share of swaps where its self-similarity beats its index similarity.

# %% tags=["hide-cell"]
# Solution 1
rows = wide.loc["mlp"]
share = (rows["self"].mean(axis=1) > rows["index"].mean(axis=1)).mean()
display(Markdown(f"In {share:.0%} of the swaps the MLP writes more like itself than like the "
                 "layer it replaced."))

# %% [markdown]
# ## Summary

# %%
display(Markdown(verdict_summary(verdicts, findings=(
    f"**Stubborn MLPs in stage 3** ({stubborn_mlp.verdict}). After a swap past the midpoint, "
    f"a swapped MLP's self- minus index similarity (how much closer its output stays to its own "
    f"unperturbed output than to the one it displaced) is at least "
    f"{estimate(stubborn_mlp.value, stubborn_mlp.lo, stubborn_mlp.hi)} in cosine on {name}; "
    f"{stubborn_mlp.detail.split('; ')[-1]} (the paper: swapped MLPs are stubborn in stage 3).",
    f"**Role taken over in stage 2?** ({stage2.verdict}). Index minus self-similarity of an MLP "
    f"moved earlier, at the swap where it is least: "
    f"{estimate(stage2.value, stage2.lo, stage2.hi)}; {stage2.detail.split('; ')[-1]} (the "
    "paper: above 0 in Pythia 1.4B, less clearly in GPT-2 XL).",
    f"**Index similarity after the midpoint.** The MLPs' index similarity "
    f"{'rises' if drop.value < 0 else 'drops'}: before minus after "
    f"{estimate(drop.value, drop.lo, drop.hi)} (the paper: it drops).",
    f"**Over all {n_layers - 1} swaps**, the two swapped MLPs taken together write more like "
    f"themselves than like the layers they replaced in {means['mlp']['stubborn']:.0%} of them, "
    f"the two attention outputs in {means['attn']['stubborn']:.0%} (the stage 3 claim above "
    "asks it of each swapped layer).",
))))

# %% [markdown]
# ## What's next
#
# [Across models](08_cross_model.ipynb): whether a second, deeper model shows the same signals on
# the same relative-depth axis.

# %% [markdown]
# ---

# %%
page.footer(res)
