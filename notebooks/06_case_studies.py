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

from IPython.display import Markdown, display

from stages.analyses.probes import probe_accuracies
from stages.analyses.subjoiner import attention_profile, rank_heads
from stages.book.page import open_page
from stages.claims import verdict_summary, verdict_table, verdict_text
from stages.claims.probes import probe_claims
from stages.claims.subjoiner import subjoiner_claims
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
elapsed = page.elapsed
name, n_layers = res.name, res.n_layers
examples = list(dict.fromkeys(w for w, y in zip(words.words, words.labels) if y))[:6]
display(Markdown(
    f"**{name}**: {int(labels.sum())} windows ending on a four-token word (such as "
    f"*{'*, *'.join(examples)}*{'; the corpus has no more' if labels.sum() < n_per_class else ''}) "
    f"and {int((~labels).sum())} on a one-token "
    f"word; {len(ing_rows)} windows for the probes ({int(ing_rows.label.sum())} before an '-ing' "
    f"token). Done in {elapsed:.0f} s."
))
display(Markdown(res.report()))

# %% [markdown]
# ## Case study 1, Figure 9: the strongest subjoiner head

# %%
best = ranking.iloc[0]
profile = attention_profile(profiles, labels, int(best.layer), int(best["head"]))
subjoiner_figure(profile, title=f"Figure 9 ({name}): head L{int(best.layer)}H{int(best['head'])}, "
                 "attention from a word's last token")

# %% [markdown]
# **Figure 9** (the paper's Figure 9). Attention of the final token of a word to the preceding
# positions, for four-token and one-token words, in the head that separates them best over all
# windows; error bars are two standard errors of the mean (over windows: descriptive). Unlike
# the paper's figure, no window is filtered out. The profile claim below is decided on held-out
# words instead, for the profile head chosen on the other half.

# %%
head_effects_figure(ranking, title=f"Subjoiner effect of every head ({name})")

# %% [markdown]
# **Subjoiner effect of every head.** The difference in attention to the word's first token
# between four-token and one-token words, against relative depth, with 95% bootstrap intervals
# (all windows, intervals resampling windows; descriptive); the ten strongest heads are
# highlighted.

# %%
display(verdict_table(subjoiner_verdicts).style.hide(axis="index"))
top = ranking.head(10)
display(Markdown(
    f"Over all windows the strongest head is **L{int(best.layer)}H{int(best['head'])}** (relative "
    f"depth {best.rel_depth:.2f}): from the last token of a four-token word it puts "
    f"{best.word:.1%} of its attention on the word's first token, against {best.control:.1%} at "
    f"the same distance after a one-token word. Of the ten strongest heads, "
    f"{int((top.rel_depth <= 0.5).sum())} sit in the first half of the layers (relative depth at "
    "most 0.5). The claims, decided by resampling words (and, where a head is chosen, on words "
    "the choice never saw): " + verdict_text(subjoiner_verdicts)
))

# %% [markdown]
# ## Case study 2, Figures 10b and 16: the neurons that move "-ing" tokens

# %%
ing_neuron_figure(neurons, title=f"Figures 10b, 16 ({name}): the {len(neurons)} neurons probed ({selection} selection)")

# %% [markdown]
# **Figures 10b and 16** (the paper's). The neurons given to the probes, most relevant first:
# how much more (or less) their output raises "-ing" tokens' logits than the other tokens'
# (authors' selection: raw logit effects, in logit units per unit of activation; cosine
# selection: mean cosine).

# %% [markdown]
# ## Figure 10a: probes on the neurons, and the model itself

# %%
probe_figure(probes.table, title=f"Figure 10a ({name}): does the next token end in '-ing'?")

# %% [markdown]
# **Figure 10a** (the paper's Figure 10a). Test accuracy of logistic probes on single neurons
# (points, at their rank by validation accuracy) and on the top-k neurons together (lines), and
# the accuracy of the model's own top-1 answer (dashed), for telling whether the next token ends
# in '-ing'. The probe on the model's log-probability of an "-ing" token is in the table below
# (`model logp`).

# %%
display(verdict_table(probe_verdicts).style.hide(axis="index"))
display(Markdown(f"On {int(probes.table.n_test.iloc[0])} test windows: " + verdict_text(probe_verdicts)))

# %% [markdown]
# ## The numbers

# %%
display(ranking.head(20).round(4).style.hide(axis="index"))
display(neurons.round(4).style.hide(axis="index"))
display(probes.table.round(4).style.hide(axis="index"))

# %% [markdown]
# ## Exercises
#
# Answer before you open a solution; each solution is computed from this page's numbers.

# %% [markdown]
# **1. Which head joins sub-words?** Before reading Figure 9: will the head that best separates multi-token words from single-token ones sit early or late in the model?

# %% tags=["hide-cell"]
# Solution 1
display(Markdown(f"Layer {int(best.layer)}, head {int(best['head'])} (relative depth {best.rel_depth:.2f}), "
                 f"effect {best.effect:.3f}; {int((top.rel_depth <= 0.5).sum())} of the top 10 heads lie in the "
                 "first half of the model. The paper: subjoiner heads are early (stage 1), at higher density in "
                 "the first half. Held out: " + verdict_text(subjoiner_verdicts[:1])))

# %% [markdown]
# **2. Why a validation split?** The best of 32 single probes, picked by its test accuracy, would look better than it is. By how much does the chosen single neuron's test accuracy differ from its validation accuracy here?

# %% tags=["hide-cell"]
# Solution 2
chosen = probes.chosen("single", "all")
display(Markdown(f"Neuron L{chosen.neuron.replace('.', ' N')}: validation {chosen.val_accuracy:.1%}, test "
                 f"{chosen.accuracy:.1%}. Choosing on the test split instead would report the maximum of 32 noisy "
                 "accuracies, which is biased upwards."))

# %% [markdown]
# **3. Is the model's top-1 a fair opponent?** The model "says -ing" only when an "-ing" token is its single most likely next token. On how many of the windows before an "-ing" token does it say so, and what does a probe on its own log-probability of "-ing" change?

# %% tags=["hide-cell"]
# Solution 3
said = ing_rows["model_yes"].to_numpy() > 0.5
positive = ing_rows["label"].to_numpy(bool)
display(Markdown(f"Its top-1 is an '-ing' token on {said[positive].mean():.0%} of the windows before one (and on "
                 f"{said[~positive].mean():.0%} of the others); the top-1 answer misses every window where '-ing' "
                 "is likely but not the likeliest. Read through its log-probability, the model is judged as the "
                 "neurons are: "
                 + verdict_text(probe_verdicts[2:3])))

# %% [markdown]
# ## Summary

# %%
display(Markdown(verdict_summary([*subjoiner_verdicts, *probe_verdicts])))

# %% [markdown]
# ## What's next
#
# [Appendix A](07_appendix_cosine_similarity.ipynb) returns to the swaps: what the two exchanged
# layers write to the residual stream (Figure 11 draws the comparison).

# %% [markdown]
# ---

# %%
page.footer(res)
