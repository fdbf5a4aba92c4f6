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
# # Case studies: subjoiner heads and "-ing" neuron ensembles
#
# **The questions** (paper section 6, Figures 9, 10 and 16; {cite}`lad2024remarkable`). (1) Detokenization needs heads that
# put the pieces of a multi-token word together: do some early heads attend from the last token
# of a word to its first token ("subjoiner" heads)? The paper finds them "in the early layers",
# "at higher density in the first half of the models", and says the final token of the word
# "attends most strongly to the first token". Its example is "Pythia 2.8B L2H5"; the authors'
# code plots layer 1, head 6 (0-based) and shows in Figure 9 only rows it filtered for high
# attention. (2) Prediction ensembling needs neurons that vote together: do probes on several
# prediction and suppression neurons tell whether the next token ends in "-ing" better than the
# best single neuron, and better than the model itself? And are suppression neurons, as the
# paper found, the best single probes?
#
# **What this page does.** (1) From the shipped corpus it takes windows of 16 tokens ending on a
# spaced, lower-case word of exactly four tokens (every such word the corpus has, up to
# `n_per_class`) and `n_per_class` windows ending on a one-token word (the tokenizer's space
# marker sets the word boundaries; [Methods](../methods.md)). For every head, it compares the
# attention from the last token to the position three tokens back (the word's first token)
# between the two classes: a head's *effect*. The corpus repeats some words many times, so the
# independent unit is the word: every interval resamples words (each class's on its own, each
# word with all its windows). Where a head is chosen, it is chosen on a random half of each
# class's words and measured on the other half, which the choice never saw. Three claims:
# *early heads*: the best head of the first half of the layers (relative depth at most 0.5),
# chosen on one half of the words, against the best later head, chosen the same way, on the
# other half; *density*: the mean effect of all first-half heads against that of all later heads
# (no head is chosen, so every word counts); *the profile*: for the strongest of the few heads
# whose attention the results pack keeps at every offset (chosen on one half of the words), on
# the other half's four-token words, the attention to the word's first token against the
# largest attention to any other of the last 16 positions, with a band that holds for every
# offset at once. (2) It
# takes `n_per_class` windows of 24 tokens whose next token does, and as many whose next token
# does not, end in "-ing"; picks 32 neurons as the authors did (kurtosis above 10 or variance
# above 0.005 of their vocabulary cosines, ranked by how differently their raw logit effects
# treat "-ing" tokens; `selection = "cosine"` ranks prediction and suppression neurons by mean
# cosine instead); and trains logistic probes on their activations at the last position, on
# half of the windows. The best single neuron and the best ensemble size *k* are chosen on a
# quarter (validation), and every accuracy is reported on the last quarter (test), with 95%
# Wilson intervals, beside the model's own accuracy on the same windows: the model "says -ing"
# when its top-1 next-token prediction is an "-ing" token, and is right when that matches the
# truth (the paper's comparison). That answer is harsh on the model: an "-ing" token can be
# likely without being the single most likely token. So the page also fits, on the same train
# windows, a one-feature logistic probe on the model's own log-probability of an "-ing" next
# token (the log of the total probability of the "-ing" tokens) and scores it on the same test
# windows: a baseline that reads the model's answer as fairly as the neurons are read.
#
# **Time to run.** With the defaults, on a CPU (a GPU computes everything now), the windows' attention and activations are read from the
# book's results pack and the first two windows of each are recomputed to check it: about 30
# seconds. Other parameters compute them now: about a minute on a 2-core CPU once the neuron
# classes are cached (the [ensembling page](04_ensembling.ipynb) computes them; otherwise add
# about 5 minutes).

# %%

from IPython.display import HTML, Markdown, display

from stages.analyses.probes import probe_accuracies
from stages.analyses.subjoiner import attention_profile, rank_heads
from stages.book.page import open_page
from stages.book.present import data_table, verdict_table
from stages.claims import verdict_summary
from stages.claims.probes import probe_claims
from stages.claims.subjoiner import subjoiner_claims
from stages.formats import estimate, number, percent
from stages.plots.case_studies import (
    head_effects_figure,
    ing_neuron_figure,
    probe_figure,
    subjoiner_figure,
)

# %% tags=["parameters"]
model = "gemma-3-270m"  # the embedded default, or a Hugging Face name / local folder
n_per_class = 1024  # windows per class in each case study (a class the corpus has fewer of takes all)
n_neurons = 32  # neurons given to the probes
selection = "authors"  # how the neurons are chosen: "authors" or "cosine"
batch_size = 32  # windows per forward pass
device = "auto"  # "auto", "cpu", "cuda"
dtype = "float32"  # "float32", "bfloat16", "float64"
corpus = "default"  # the shipped public-domain prose, or a local file
seed = 0  # which windows are drawn, the splits, the bootstrap
pack = "default"  # "default": the shipped results pack when these are its parameters; "none"; or a pack's folder

# %%
page = open_page("case_studies", globals())
res = page.results(window_batch=batch_size)
words = res.windows("subjoiner")
attention = res.window_rows("subjoiner")  # per window: attention 3 tokens back, every head
labels = attention["label"].to_numpy(bool)
ranking = rank_heads(attention, labels, res.n_layers, seed=seed)
profiles = res.window_rows("subjoiner_profile")  # every offset, for the strongest heads
subjoiner_verdicts = subjoiner_claims(
    attention, profiles, labels, words.words, res.n_layers, seed=seed
)
ing_rows = res.window_rows("ing")  # per window: the neurons' activations, the model's answers
neurons = res.ing_neurons()[selection]
probes = probe_accuracies(ing_rows, ing_rows["label"].to_numpy(bool), neurons, seed=seed)
probe_verdicts = probe_claims(probes, seed=seed)
name, n_layers = res.name, res.n_layers
page.source(res)
examples = list(dict.fromkeys(w for w, y in zip(words.words, words.labels, strict=True) if y))[:6]
display(Markdown(
    f"**{name}**: {int(labels.sum())} windows ending on a four-token word (such as "
    f"*{'*, *'.join(examples)}*{'; the corpus has no more' if labels.sum() < n_per_class else ''}) "
    f"and {int((~labels).sum())} on a one-token "
    f"word; {len(ing_rows)} windows for the probes ({int(ing_rows.label.sum())} before an '-ing' "
    "token)."
))


def points(v):
    """A verdict's difference of accuracies, in percentage points with its interval."""
    if v.value != v.value:
        return f"not decided ({v.verdict})"
    return f"{estimate(100 * v.value, 100 * v.lo, 100 * v.hi)} percentage points"


def weight(v):
    """A verdict's difference of attention weights with its interval."""
    if v.value != v.value:
        return f"not decided ({v.verdict})"
    return f"{estimate(v.value, v.lo, v.hi)} in attention weight"

# %% [markdown]
# ## Case study 1, Figure 9: the strongest subjoiner head

# %%
best = ranking.iloc[0]
profile = attention_profile(profiles, labels, int(best.layer), int(best["head"]))
page.chart(subjoiner_figure(profile, title=f"Figure 9 ({name}): head L{int(best.layer)}H"
                            f"{int(best['head'])}, attention from a word's last token"),
           profile, "figure-9")

# %% [markdown]
# **Figure 9** (the paper's Figure 9). Attention of the final token of a word to the preceding
# positions, for four-token and one-token words, in the head that separates them best over all
# windows; error bars are two standard errors of the mean (over windows: descriptive). Unlike
# the paper's figure, no window is filtered out. The profile claim below is decided on held-out
# words instead, for the profile head chosen on the other half.

# %%
page.chart(head_effects_figure(ranking, title=f"Figure E1 ({name}): the subjoiner effect of every "
                               "head"), ranking, "figure-e1")

# %% [markdown]
# **Figure E1.** The subjoiner effect of every head: the difference in attention to the word's
# first token between four-token and one-token words, against relative depth, with 95% bootstrap
# intervals
# (all windows, intervals resampling windows; descriptive); the ten strongest heads are
# highlighted.

# %%
display(HTML(verdict_table(subjoiner_verdicts, caption=(
    f"Section 6.1's claims on {name}: differences of mean attention weights (each word counted "
    "once), with 95% intervals resampling words; where a head is chosen, it is chosen on one half "
    "of the words and measured on the other (n counts the words measured). Open a claim for the "
    "heads chosen and the rule."))))
top = ranking.head(10)
display(Markdown(
    f"Over all windows the strongest head is **L{int(best.layer)}H{int(best['head'])}** (relative "
    f"depth {number(best.rel_depth)}): from the last token of a four-token word it puts "
    f"{best.word:.1%} of its attention on the word's first token, against {best.control:.1%} at "
    f"the same distance after a one-token word. Of the ten strongest heads, "
    f"{int((top.rel_depth <= 0.5).sum())} sit in the first half of the layers (relative depth at "
    "most 0.5)."
))

# %% [markdown]
# ## Case study 2, Figures 10b and 16: the neurons that move "-ing" tokens

# %%
page.chart(ing_neuron_figure(neurons, title=f"Figures 10b, 16 ({name}): the {len(neurons)} neurons "
                             f"probed ({selection} selection)"), neurons, "figure-10b-16")

# %% [markdown]
# **Figures 10b and 16** (the paper's). The neurons given to the probes, most relevant first:
# how much more (or less) their output raises "-ing" tokens' logits than the other tokens'
# (authors' selection: raw logit effects, in logit units per unit of activation; cosine
# selection: mean cosine).

# %% [markdown]
# ## Figure 10a: probes on the neurons, and the model itself

# %%
page.chart(probe_figure(probes.table, title=f"Figure 10a ({name}): does the next token end in "
                        "'-ing'?"), probes.table, "figure-10a")

# %% [markdown]
# **Figure 10a** (the paper's Figure 10a). Test accuracy of logistic probes on single neurons
# (points, at their rank by validation accuracy) and on the top-k neurons together (lines), for
# telling whether the next token ends in '-ing'; the two dashed rules are the model itself: the
# accuracy of its own top-1 answer (the paper's comparison) and of a probe on its
# log-probability of an "-ing" token.

# %%
n_test = int(probes.table.n_test.iloc[0])
display(HTML(verdict_table(probe_verdicts, caption=(
    f"Section 6.2's claims on {name}: differences of test accuracy on the same {n_test} test "
    "windows (paired), with 95% intervals; the best single neuron and the ensemble size are "
    "chosen on the validation windows. Open a claim for the probes compared and the rule."))))
single, top1, logp, suppression = probe_verdicts
if top1.verdict == "holds" and logp.verdict == "does not hold":
    display(Markdown(
        "The two baselines disagree, and the second is the fairer one: the model's top-1 answer "
        "says '-ing' only when an '-ing' token is its single likeliest next token, so it misses "
        "every window where '-ing' is likely but not the likeliest. Read through its own "
        f"log-probability of '-ing', the model beats the neuron ensemble by "
        f"{estimate(-100 * logp.value, -100 * logp.hi, -100 * logp.lo)} percentage points: on "
        f"{name} the neurons probed carry less about "
        "'-ing' than the model's output does, and the ensemble beats only the harsher reading."
    ))

# %% [markdown]
# ## The numbers

# %%
display(HTML(data_table(
    ranking.head(20).assign(name=[f"L{r.layer}H{r.head}" for r in ranking.head(20).itertuples()]),
    caption=("The 20 heads with the largest subjoiner effect (all windows): mean attention from "
             "the last token to the position 3 back after a four-token word and after a one-token "
             "word, and their difference with its 95% bootstrap interval over windows."),
    columns={"name": "head", "rel_depth": "relative depth", "word": "four-token word",
             "control": "one-token word", "effect": "effect (95% interval)"},
)))
display(HTML(data_table(
    neurons.assign(name=[f"L{r.layer} N{r.neuron}" for r in neurons.itertuples()]),
    caption=(f"The {len(neurons)} neurons probed (Figures 10b and 16): class, the skew and "
             "kurtosis of their vocabulary cosines, and how much more their output raises "
             "'-ing' tokens' logits than the others' (the bars of Figure 10b)."),
    columns={"name": "neuron", "cls": "class", "skew": "skew", "kurtosis": "kurtosis",
             "contrast": "'-ing' minus the rest"},
)))
display(HTML(data_table(
    probes.table.assign(
        neuron=[f"L{n.replace('.', ' N')}" if n else "" for n in probes.table["neuron"]],
        probe=probes.table["probe"].replace({"model": "the model's top-1",
                                             "model logp": "probe on the model's log P(-ing)"}),
        **{column: [str(x) if p in ("single", "top-k") else "" for p, x in
                    zip(probes.table["probe"], values, strict=True)]
           for column, values in (("group", probes.table["group"]), ("k", probes.table["k"]),
                                  ("chosen", probes.table["chosen"].map({True: "chosen",
                                                                         False: ""})))},
    ),
    caption=(f"Every probe of Figure 10a: its validation accuracy and its test accuracy with a "
             f"95% Wilson interval over the {n_test} test windows; 'chosen' marks the single "
             "neuron and the k chosen on the validation windows in each group."),
    columns={"probe": "probe", "group": "neurons", "k": "k or rank", "neuron": "neuron",
             "val_accuracy": "validation accuracy", "accuracy": "test accuracy (95% interval)",
             "chosen": "chosen"},
)))

# %% [markdown]
# ## Exercises
#
# Answer before you open a solution; each solution is computed from this page's numbers.

# %% [markdown]
# **1. Which head joins sub-words?** Before reading Figure 9: will the head that best separates multi-token words from single-token ones sit early or late in the model?

# %% tags=["hide-cell"]
# Solution 1
early = subjoiner_verdicts[0]
display(Markdown(
    f"Layer {int(best.layer)}, head {int(best['head'])} (relative depth {number(best.rel_depth)}), "
    f"effect {estimate(best.effect, best.effect_lo, best.effect_hi)}; "
    f"{int((top.rel_depth <= 0.5).sum())} of the top 10 heads lie in the first half of the model. "
    "The paper: subjoiner heads are early (stage 1), at higher density in the first half. On "
    f"held-out words the best first-half head beats the best later head by {weight(early)} "
    f"({early.verdict})."
))

# %% [markdown]
# **2. Why a validation split?** The best of 32 single probes, picked by its test accuracy, would look better than it is. By how much does the chosen single neuron's test accuracy differ from its validation accuracy here?

# %% tags=["hide-cell"]
# Solution 2
chosen = probes.chosen("single", "all")
display(Markdown(
    f"Neuron L{chosen.neuron.replace('.', ' N')}: validation {chosen.val_accuracy:.1%}, test "
    f"{chosen.accuracy:.1%}. Choosing on the test split instead would report the maximum of 32 "
    "noisy accuracies, which is biased upwards."
))

# %% [markdown]
# **3. Is the model's top-1 a fair opponent?** The model "says -ing" only when an "-ing" token is its single most likely next token. On how many of the windows before an "-ing" token does it say so, and what does a probe on its own log-probability of "-ing" change?

# %% tags=["hide-cell"]
# Solution 3
said = ing_rows["model_yes"].to_numpy() > 0.5
positive = ing_rows["label"].to_numpy(bool)
logp_row = probes.table[probes.table["probe"] == "model logp"].iloc[0]
top1_row = probes.table[probes.table["probe"] == "model"].iloc[0]
display(Markdown(
    f"Its top-1 is an '-ing' token on {said[positive].mean():.0%} of the windows before one (and "
    f"on {said[~positive].mean():.0%} of the others); the top-1 answer misses every window where "
    "'-ing' is likely but not the likeliest. Its top-1 is right on "
    f"{percent(top1_row.accuracy, top1_row.accuracy_lo, top1_row.accuracy_hi)} of the test "
    "windows; a probe on its log-probability of '-ing' on "
    f"{percent(logp_row.accuracy, logp_row.accuracy_lo, logp_row.accuracy_hi)}, and the neuron "
    f"ensemble minus that probe is {points(logp)} ({logp.verdict})."
))

# %% [markdown]
# ## Summary

# %%
early, density, profile_claim = subjoiner_verdicts
display(Markdown(verdict_summary([*subjoiner_verdicts, *probe_verdicts], findings=(
    f"**Subjoiner heads are early.** On words the choice never saw, the best first-half head "
    f"attends from a four-token word's last token to its first more than the best later head, by "
    f"{weight(early)} ({early.verdict}; the paper: subjoiner heads sit in the early layers, its "
    "example Pythia 2.8B's L2H5).",
    f"**At higher density in the first half.** The first-half heads' mean effect exceeds the later "
    f"heads' by {weight(density)} ({density.verdict}; the paper: higher density in the first half "
    "of the models).",
    f"**The final token attends most to the first.** In the profile head chosen on the other half "
    f"of the words, the attention to the word's first token exceeds that to any other of the last "
    f"16 positions by {weight(profile_claim)} ({profile_claim.verdict}; the paper: the final token "
    "attends most strongly to the first).",
    f"**Neuron ensembles against the model.** The ensemble's test accuracy minus the best single "
    f"neuron's is {points(single)} ({single.verdict}), minus the model's top-1 answer's "
    f"{points(top1)} ({top1.verdict}), and minus a probe on the model's own log P(-ing) "
    f"{points(logp)} ({logp.verdict}) (the paper: the ensemble beats the best single neuron and "
    "the model).",
    f"**Suppression neurons as single probes.** The best suppression neuron minus the best "
    f"prediction neuron: {points(suppression)} ({suppression.verdict}; the paper: suppression "
    "neurons are the best single probes).",
))))

# %% [markdown]
# ## What's next
#
# [Appendix A](07_appendix_cosine_similarity.ipynb) returns to the swaps: what the two exchanged
# layers write to the residual stream (Figure 11 draws the comparison).

# %% [markdown]
# ---

# %%
page.footer(res)
