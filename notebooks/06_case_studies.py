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
# of a word to its first token ("subjoiner" heads; the paper's example is Pythia 2.8B L2H5)?
# (2) Prediction ensembling needs neurons that vote together: do probes on several prediction
# and suppression neurons tell whether the next token ends in "-ing" better than any single
# neuron, and as well as the model itself?
#
# **What this page does.** (1) From the shipped corpus it takes windows of 16 tokens ending on a
# spaced, lower-case word of exactly four tokens, and as many ending on a one-token word (the
# tokenizer's space marker sets the word boundaries; [Methods](../methods.md)). For every head,
# it compares the attention from the last token to the position three tokens back (the word's
# first token) between the two classes, with a bootstrap interval. (2) It takes windows of 24
# tokens whose next token does or does not end in "-ing", picks the 32 prediction and suppression
# neurons whose output is most aligned (or anti-aligned) with the "-ing" tokens' unembeddings,
# and trains logistic probes on their activations at the last position: one probe per neuron and
# one on the top *k* for every *k*, scored on a held-out 30% with 95% Wilson intervals, beside
# the model's own top-1 answer on the same windows.
#
# **Time to run.** About a minute on a 2-core CPU once the neuron classes are cached (the
# [ensembling page](04_ensembling.ipynb) computes them; otherwise add about 4 minutes).

# %%
import time

from IPython.display import Markdown, display

import stages
from stages.plots import head_effects_figure, probe_figure, subjoiner_figure, token_effect_figure
from stages.probes import ing_probes, token_effects
from stages.provenance import provenance, provenance_markdown
from stages.subjoiner import attention_profile, final_token_attention, subjoiner_heads
from stages.words import Vocabulary, ing_dataset, subjoiner_dataset

# %% tags=["parameters"]
model = "gemma-3-270m"  # the embedded default, or a Hugging Face name / local folder
n_per_class = 256  # examples per class in each case study
n_neurons = 32  # prediction / suppression neurons given to the probes
batch_size = 32  # windows per forward pass
device = "auto"  # "auto", "cpu", "cuda"
dtype = "float32"  # "float32", "bfloat16", "float64"
corpus = "default"  # the shipped public-domain prose, or a local file
seed = 0  # which windows are drawn, the train/test split, the bootstrap

# %%
started = time.time()
lm = stages.load_model(model, device=device, dtype=dtype)
words = subjoiner_dataset(lm, corpus=corpus, n_per_class=n_per_class, seed=seed)
ranking = subjoiner_heads(lm, words.tokens, words.labels, batch_size=batch_size, seed=seed)
vocab = Vocabulary.of(lm.tokenizer, lm.cfg.d_vocab)
ing = vocab.ing()
classes = stages.neuron_classes(lm)
effects = token_effects(lm, classes, ing)
chosen = effects.head(n_neurons)
ings = ing_dataset(lm, corpus=corpus, n_per_class=n_per_class, seed=seed)
accuracy = ing_probes(lm, ings.tokens, ings.labels, chosen, ing, batch_size=batch_size, seed=seed)
elapsed = time.time() - started
name = lm.stages_info["name"]
examples = list(dict.fromkeys(w for w, y in zip(words.words, words.labels) if y))[:6]
display(Markdown(
    f"**{name}**: {len(words.labels)} windows for the subjoiner search (four-token words such "
    f"as *{'*, *'.join(examples)}*), {len(ings.labels)} windows for the probes, "
    f"{int(ing.sum()):,} '-ing' tokens in the vocabulary. Done in {elapsed:.0f} s."
))

# %% [markdown]
# ## Case study 1, Figure 9: the strongest subjoiner head

# %%
best = ranking.iloc[0]
attention = final_token_attention(lm, words.tokens, batch_size=batch_size)  # cached above
profile = attention_profile(attention, words.labels, int(best.layer), int(best["head"]))
subjoiner_figure(profile, title=f"Figure 9 ({name}): head L{int(best.layer)}H{int(best['head'])}, "
                 "attention from a word's last token")

# %% [markdown]
# **Figure 9** (the paper's Figure 9). Attention of the final token of a word to the preceding
# positions, for multi-token and one-token words, in the head that separates them best; error
# bars are two standard errors of the mean.

# %%
head_effects_figure(ranking, title=f"Subjoiner effect of every head ({name})")

# %% [markdown]
# **Subjoiner effect of every head.** The difference in attention to the word's first token
# between multi-token and one-token words, against relative depth, with 95% bootstrap intervals;
# the ten strongest heads are highlighted.

# %%
top = ranking.head(10)
early = (top.rel_depth <= 0.25).sum()
significant = (ranking.effect_lo > 0).sum()
display(Markdown(
    f"The strongest subjoiner head is **L{int(best.layer)}H{int(best['head'])}** (relative depth "
    f"{best.rel_depth:.2f}): from the last token of a four-token word it puts {best.word:.1%} of "
    f"its attention on the word's first token, against {best.control:.1%} at the same distance "
    f"after a one-token word (difference {best.effect:.3f}, 95% interval {best.effect_lo:.3f} to "
    f"{best.effect_hi:.3f}). {significant} of {len(ranking)} heads have an interval above zero. "
    f"Of the ten strongest, {early} sit in the first quarter of the layers (layers "
    + ", ".join(f"L{int(r.layer)}H{int(r.head)}" for r in top.itertuples())
    + "). The paper's claim, subjoiner heads in the early layers: **"
    + ("holds" if early >= 5 and best.rel_depth <= 0.25 else
       "holds in part" if early >= 1 else "does not hold") + "** for this model."
))

# %% [markdown]
# ## Case study 2, Figure 10b and 16: the neurons that move "-ing" tokens

# %%
token_effect_figure(effects, title=f"Figures 10b, 16 ({name}): the most '-ing'-aligned neurons")

# %% [markdown]
# **Figures 10b and 16** (the paper's). The neurons whose output direction is most aligned with
# the unembeddings of '-ing' tokens: their mean cosine with '-ing' tokens and with all others.

# %% [markdown]
# ## Figure 10a: probes on the neurons, and the model itself

# %%
probe_figure(accuracy, title=f"Figure 10a ({name}): does the next token end in '-ing'?")

# %% [markdown]
# **Figure 10a** (the paper's Figure 10a). Test accuracy of logistic probes on single neurons and
# on the top-k neurons together, against the model's own accuracy, for telling whether the next
# token ends in '-ing'.

# %%
single = accuracy[accuracy.probe == "single"]
topk = accuracy[accuracy.probe == "top-k"]
model_row = accuracy[accuracy.probe == "model"].iloc[0]
best_single = single.loc[single.accuracy.idxmax()]
best_topk = topk.loc[topk.accuracy.idxmax()]
beats_single = best_topk.accuracy_lo > best_single.accuracy_hi
beats_model = best_topk.accuracy_lo > model_row.accuracy_hi
display(Markdown(
    f"On {int(model_row.n_test)} held-out windows: the best single neuron "
    f"(L{best_single.neuron.replace('.', ' N')}) "
    f"reaches {best_single.accuracy:.1%} ({best_single.accuracy_lo:.1%}-"
    f"{best_single.accuracy_hi:.1%}); the best ensemble, the top {int(best_topk.k)} neurons, "
    f"{best_topk.accuracy:.1%} ({best_topk.accuracy_lo:.1%}-{best_topk.accuracy_hi:.1%}); the "
    f"model's own top-1 answer {model_row.accuracy:.1%} ({model_row.accuracy_lo:.1%}-"
    f"{model_row.accuracy_hi:.1%}). The paper's claims: top-k ensembles beat single neurons: **"
    + ("holds" if beats_single else "unclear" if best_topk.accuracy > best_single.accuracy
       else "does not hold")
    + "**; they can beat the model's own top-1: **"
    + ("holds" if beats_model else "unclear" if best_topk.accuracy > model_row.accuracy
       else "does not hold") + "**."
))

# %% [markdown]
# ## The numbers

# %%
display(ranking.head(20).round(4).style.hide(axis="index"))
display(chosen.round(4).style.hide(axis="index"))
display(accuracy.round(4).style.hide(axis="index"))

# %% [markdown]
# ## Exercises
#
# Answer before you open a solution; each solution is computed from this page's numbers.

# %% [markdown]
# **1. Which head joins sub-words?** Before reading Figure 9: will the head that best separates multi-token words from single-token ones sit early or late in the model?

# %% tags=["hide-cell"]
# Solution 1
display(Markdown(f"Layer {int(best.layer)}, head {int(best['head'])} (relative depth {best.rel_depth:.2f}), "
                 f"effect {best.effect:.3f}; {early} of the top 10 heads lie in the first quarter of the model. "
                 "The paper: subjoiner heads are early (stage 1)."))

# %% [markdown]
# ---

# %%
parameters = dict(model=model, n_per_class=n_per_class, n_neurons=n_neurons,
                  batch_size=batch_size, device=device, dtype=dtype, corpus=corpus, seed=seed)
tokens = words.tokens
display(Markdown(provenance_markdown(provenance(lm, tokens, parameters, corpus=corpus, seconds=elapsed))))
