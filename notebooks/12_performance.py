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
# # Performance: the sweep at paper scale
#
# **The question.** The paper's robustness sweep (every drop, swap, attention-only and MLP-only
# drop) cost its authors about 8 hours per model and intervention type for a million tokens on one
# A6000 GPU: for every swap they rebuilt the model from an exchanged state dict, ran one sequence at
# a time from the embedding, recomputed the unperturbed pass for every intervention and moved
# per-token metrics to Python lists {cite}`lad2024remarkable`. How fast can the same numbers be computed, and how close to
# the hardware's limit?
#
# **How `stages` computes them** ([Methods](../methods.md)). One unperturbed pass per batch is
# kept; an intervention at layer *i* runs only layers *i..L*; the drop, attention-only drop,
# MLP-only drop and swap starting at one layer share their remaining blocks in one stacked pass;
# logits are never materialised: the unembedding runs one cache-sized vocabulary tile at a time
# and an online softmax {cite}`milakov2018online` keeps what the KL, agreement, entropy and loss need; sums stay in float64
# on the device until one transfer per batch. Batches are checkpointed, so a run resumes where it
# stopped, and `executor="ray"` {cite}`moritz2018ray` spreads the work over a cluster with the same
# result.
#
# **What this page shows.** The benchmark committed with the book (`benchmarks/run.py`, run on the
# machine named below): the authors' method re-implemented faithfully against `stages.run_sweep`
# on the same model, tokens and process, with the model-FLOP utilisation against the matrix-
# multiply peak measured in that process; memory at 1x and 8x the tokens; Ray's overhead; and a
# *projection* for a GPU beside the same sweep *measured* on one H200 (`benchmarks/gpu.py`). Then a
# short live measurement on the machine building this page.
#
# **Time to run.** About 15 seconds: the page reads the committed results and times one small
# sweep.

# %%

from IPython.display import Markdown, display

import stages
from stages.book import find_root
from stages.book.page import open_page
from stages.claims import verdict_summary
from stages.engine.forward import start_groups
from stages.engine.performance import load_speed_results, measure_sweep, speed_table
from stages.plots.book import speed_figure
from stages.provenance import provenance

# %% tags=["parameters"]
model = "gemma-3-270m"  # the embedded default, or a Hugging Face name / local folder
n_tokens = 256  # tokens of the live measurement (rounded up to whole sequences)
seq_len = 128  # tokens per sequence, BOS included
batch_size = 8  # sequences per forward pass
device = "auto"  # "auto", "cpu", "cuda"
dtype = "float32"  # "float32", "bfloat16", "float64"
corpus = "default"  # the shipped public-domain prose, a local file, or a hub dataset
seed = 0  # which sequences are sampled
results = "benchmarks/results/speed.json"  # the committed benchmark, relative to the book root
gpu_results = "benchmarks/results/gpu.json"  # the committed GPU measurement (benchmarks/gpu.py)

# %%
page = open_page("performance", globals())
bench = load_speed_results(find_root() / results)
table = speed_table(bench)
machine = bench["machine"]
display(Markdown(
    f"Benchmark of {bench['date'][:10]} on **{machine['cpu']}**, {machine['cores']} cores, "
    f"{machine['memory_gb']:.0f} GB, no GPU; float32 matrix-multiply peak measured in the same "
    f"process: **{bench['matmul_peak_gflops']:.0f} GFLOP/s**."
))

# %% [markdown]
# ## The authors' method against `stages.run_sweep`

# %%
speed_figure(table, title="Seconds per intervention per 1,000 tokens, same model, same tokens")

# %% [markdown]
# **Speed.** Seconds per intervention per 1,000 scored tokens for the authors' method and
# `stages.run_sweep`, same model, same tokens, same process (log scale; hover for the speed ratio
# and the model-FLOP utilisation).

# %%
gemma = bench["versus_authors"][0]
kinds = gemma["authors_s_per_intervention_by_kind"]
worst = max(gemma["max_relative_difference"].values())
display(Markdown(
    f"**{gemma['model']}**, {gemma['n_interventions']} interventions on "
    f"{gemma['tokens'][0]} x {gemma['tokens'][1]} tokens: the authors' method took "
    f"{gemma['authors_s'] / 60:.1f} minutes ({kinds.get('drop', float('nan')):.1f} s per drop, "
    f"{kinds.get('swap', float('nan')):.1f} s per swap with its model rebuild), `stages.run_sweep` "
    f"{gemma['stages_s'] / 60:.1f} minutes: **{gemma['speed_ratio']:.1f}x faster** (target: 6x), at "
    f"**{gemma['stages_mfu']:.0%} of the measured matmul peak** (target: 60%). The two methods "
    f"agree to a relative difference of {worst:.1e} on every metric."
))
display(table.round(3))

# %% [markdown]
# ## Memory does not grow with the token count

# %%
memory = bench["memory"]
small, large = memory["runs"]
display(Markdown(
    f"Peak resident memory during a sweep (four interventions starting at layer 0, batches of "
    f"{small['batch_size']} sequences, each size in a fresh process, the peak counter reset after "
    f"the model was loaded): **{small['sweep_peak_rss_mb']:.0f} MB** at {small['n_tokens']:,} tokens "
    f"and **{large['sweep_peak_rss_mb']:.0f} MB** at {large['n_tokens']:,}, a ratio of "
    f"{memory['sweep_peak_ratio_8x_over_1x']:.3f} (target: within 10%). Loading the model peaks "
    f"higher, at {small['load_peak_rss_mb']:.0f} MB, before the sweep starts."
))

# %% [markdown]
# ## Scale-out on Ray

# %%
ray = bench["ray"]
display(Markdown(
    f"The same sweep ({len(ray['interventions'])} interventions, {ray['tokens'][0]} x "
    f"{ray['tokens'][1]} tokens) locally in {ray['local_s']:.1f} s, on a local Ray cluster in "
    f"{ray['ray_1_workers_s']:.1f} s with one worker and {ray['ray_2_workers_s']:.1f} s with two: "
    f"identical tables; the overhead of one worker (start-up, its own model load, transfers) is "
    f"{ray['overhead_1_worker_s']:.1f} s. On this 2-core machine two workers share the same cores, "
    f"so they gain nothing; on a cluster each worker brings its own CPUs or GPU."
))

# %% [markdown]
# ## A projection for a GPU (no GPU was used)

# %%
proj = bench["projection"]
low, high = sorted(proj["projected_minutes"].values())
assume = proj["assumptions"]
display(Markdown(
    f"**Projection, not a measurement.** {proj['model']}, {proj['n_interventions']} interventions "
    f"on {proj['tokens']} tokens: {proj['sweep_pflop']:.0f} PFLOP of forward passes (counted from "
    f"the model's shapes). At {assume['mfu_range'][0]:.0%}-{assume['mfu_range'][1]:.0%} of one "
    f"H100's dense bfloat16 peak ({assume['bf16_peak_tflops']:.0f} TFLOP/s), plus "
    f"{proj['softmax_memory_s']:.0f} s of softmax passes over the logits at "
    f"{assume['hbm_tb_per_s']} TB/s: **{low:.0f}-{high:.0f} minutes** for the whole sweep of four "
    f"intervention types, about {low / 4:.0f}-{high / 4:.0f} minutes per type. The paper reports "
    "about 8 hours per model and *per intervention type* on one A6000, a GPU with about a sixth "
    "of the H100's dense bfloat16 peak (155 against 989 TFLOP/s): the hardware differs as well as "
    "the method, so the ratio of the two is not the engine's speed-up (that is measured above, "
    f"both methods on one machine). Not included: {assume['not included']}."
))

# %% [markdown]
# ## Measured on a GPU
#
# The same sweep (Pythia-1.4B's shapes, 95 interventions, sequences of 1024 tokens) timed on one
# GPU by `benchmarks/gpu.py`, with random weights: the real ones cannot reach that machine, and a
# forward pass costs the same whatever the weights' values. Each precision ran at two sample sizes
# after a warm-up; the marginal time per sequence between them is the steady-state rate, from
# which the million-token sweep is extrapolated.

# %%
gpu = load_speed_results(find_root() / gpu_results)
f32, b16 = gpu["runs"]["float32"], gpu["runs"]["bfloat16"]
rates = gpu["matmul_tflop_per_s"]
display(Markdown(
    f"**{gpu['label']}** ({gpu['date'][:10]}; torch {gpu['machine']['torch']}, CUDA "
    f"{gpu['machine']['cuda']}). Its own matrix products ran at {rates['float32']:.0f} TFLOP/s in "
    f"float32 and {rates['bfloat16']:.0f} in bfloat16. The full sweep on "
    f"{gpu['full_sweep_sequences']} x {gpu['seq_len']} tokens takes **{f32['full_sweep_minutes']:.0f} "
    f"minutes in float32** ({f32['marginal_s_per_sequence']:.2f} s per sequence, "
    f"{f32['utilisation_of_measured_matmul']:.0%} of the float32 product rate) and "
    f"**{b16['full_sweep_minutes']:.0f} minutes with bfloat16 autocast** "
    f"({b16['marginal_s_per_sequence']:.2f} s per sequence, "
    f"{b16['utilisation_of_measured_matmul']:.0%} of the bfloat16 product rate), against "
    f"the projection's {low:.0f}-{high:.0f} minutes above. The projection assumed "
    f"{assume['mfu_range'][0]:.0%}-{assume['mfu_range'][1]:.0%} of the peak for bfloat16; the "
    f"sweep reached {b16['utilisation_of_measured_matmul']:.0%} of the measured rate. Bfloat16 "
    "speeds up the matrix products only; the "
    "rest of the sweep (float32 softmax tiles, float64 sums, eager attention patterns) is not "
    "sped up, and where that time goes was not profiled. "
    + (f"A larger batch does not help: {gpu['batch_size_checks']['conclusion']}. "
       if "batch_size_checks" in gpu else "")
    + "In float32 the products dominate and the sweep runs close to the GPU's float32 rate. "
    "Per intervention type, bfloat16 takes about "
    f"{b16['full_sweep_minutes'] / 4:.0f} minutes, against the 8 hours on one A6000 that the paper "
    "reports with its own method and GPU."
))

# %% [markdown]
# ## Live: this machine

# %%
lm = stages.load_model(model, device=device, dtype=dtype)
tokens = stages.load_corpus(lm, corpus=corpus, n_tokens=n_tokens, seq_len=seq_len, seed=seed)
group = start_groups(stages.default_interventions(lm))[len(lm.blocks) // 2]
here = measure_sweep(lm, tokens, group, batch_size=batch_size)
elapsed = page.elapsed
display(Markdown(
    f"On the machine that built this page: {len(group)} interventions starting at layer "
    f"{group[0].layer} of **{lm.stages_info['name']}** on {tokens.shape[0]} x {tokens.shape[1]} "
    f"tokens took {here['seconds']:.1f} s ({here['s_per_intervention']:.2f} s per intervention, "
    f"{here['tokens_per_s']:.0f} tokens x interventions per second), "
    f"{here['mfu']:.0%} of the {here['peak_gflops']:.0f} GFLOP/s matmul peak measured just before. "
    f"Small runs amortise the unperturbed pass over few interventions; the full sweep above does "
    f"better."
))

# %% [markdown]
# ## Exercises
#
# Answer before you open a solution; each solution is computed from this page's numbers.

# %% [markdown]
# **1. Where does the time go?** gemma-3-270m's unembedding has 262,144 columns. Estimate how many of its 18 blocks one unembedding costs, in FLOPs.

# %% tags=["hide-cell"]
# Solution 1
block = sum(p.numel() for p in lm.blocks[0].parameters() if p.ndim == 2)
unembed = lm.cfg.d_model * lm.cfg.d_vocab
display(Markdown(f"One block has {block / 1e6:.1f}M weights in matrices, the unembedding {unembed / 1e6:.0f}M: one "
                 f"unembedding costs about {unembed / block:.0f} blocks. That is why the engine streams it in tiles."))

# %% [markdown]
# **Reproduce the benchmark**: `.venv/bin/python benchmarks/run.py` (about 50 minutes on a
# 2-core CPU; `--quick` for a few minutes) rewrites `benchmarks/results/speed.json`.

# %% [markdown]
# ## Summary

# %%
display(Markdown(verdict_summary([], findings=(
    f"On {machine['cpu']} ({machine['cores']} cores), `stages.run_sweep` ran {gemma['model']}'s "
    f"{gemma['n_interventions']} interventions **{gemma['speed_ratio']:.1f}x faster** than the "
    f"authors' method (target 6x) at **{gemma['stages_mfu']:.0%}** of the measured matmul peak "
    f"(target 60%), equal to it within {worst:.1e} relative on every metric (one benchmark run, "
    f"{bench['date'][:10]}).",
    f"A sweep's peak memory grows by a factor {memory['sweep_peak_ratio_8x_over_1x']:.3f} from "
    f"{small['n_tokens']:,} to {large['n_tokens']:,} tokens (target: within 10%).",
    f"On the machine that built this page, {len(group)} interventions ran at {here['mfu']:.0%} of "
    f"its {here['peak_gflops']:.0f} GFLOP/s peak.",
))))

# %% [markdown]
# ## What's next
#
# [What holds](13_what_holds.ipynb): every verdict of both models on one page, and what the two
# models agree on.

# %% [markdown]
# ---

# %%
page.footer(provenance(lm, tokens, page.parameters, corpus=corpus, seconds=page.elapsed))
