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
# **What this page shows.** Measurements, all committed with the book: the benchmark
# `benchmarks/run.py`, run on a 2-core CPU with no GPU (the authors' method re-implemented
# faithfully against `stages.run_sweep` on the same model, tokens and process, with the
# model-FLOP utilisation against the matrix-multiply peak measured in that process; memory at 1x
# and 8x the tokens; Ray's overhead), and the paper-scale sweep timed on one H200 GPU
# (`benchmarks/gpu.py`). Then the estimate the CPU benchmark made of the GPU time before any GPU
# was available, against what the GPU measured. Last, a short live measurement on the machine
# building this page.
#
# **Time to run.** About 15 seconds: the page reads the committed results and times one small
# sweep.

# %%

import pandas as pd
from IPython.display import HTML, Markdown, display

import stages
from stages.book import find_root
from stages.book.page import open_page
from stages.book.present import data_table
from stages.claims import verdict_summary
from stages.engine.forward import start_groups
from stages.engine.performance import load_speed_results, measure_sweep, speed_table
from stages.formats import number
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
page.chart(speed_figure(table, title="Figure E11: seconds per intervention per 1,000 tokens"),
           table, "figure-e11")

# %% [markdown]
# **Figure E11.** Seconds per intervention per 1,000 scored tokens for the authors' method and
# `stages.run_sweep`, same model, same tokens, same process (log scale; hover for the speed ratio
# and the model-FLOP utilisation). The two random-weight models have the shapes of GPT-2 small
# and Pythia-410M: a forward pass costs the same whatever the weights' values.

# %%
gemma = bench["versus_authors"][0]
kinds = gemma["authors_s_per_intervention_by_kind"]
worst = max(gemma["max_relative_difference"].values())
display(Markdown(
    f"**{gemma['model']}**, {gemma['n_interventions']} interventions on "
    f"{gemma['tokens'][0]} x {gemma['tokens'][1]} tokens: the authors' method took "
    f"{gemma['authors_s'] / 60:.1f} minutes ({kinds.get('drop', float('nan')):.1f} s per drop, "
    f"{kinds.get('swap', float('nan')):.1f} s per swap with its model rebuild), `stages.run_sweep` "
    f"{gemma['stages_s'] / 60:.1f} minutes: **{gemma['speed_ratio']:.1f}x faster**, at "
    f"**{gemma['stages_mfu']:.0%} of the measured matmul peak**. The two methods agree on every "
    f"metric to within {number(100 * worst, 1)}% (relative). One benchmark run: no interval."
))
per_model = pd.DataFrame([{
    "model": r["model"], "tokens": f"{r['tokens'][0]} x {r['tokens'][1]}",
    "n_interventions": r["n_interventions"], "authors_s": r["authors_s_per_intervention"],
    "stages_s": r["stages_s_per_intervention"], "speed_ratio": r["speed_ratio"],
    "mfu": f"{r['stages_mfu']:.0%}",
} for r in bench["versus_authors"]])
display(HTML(data_table(per_model, caption=(
    "The benchmark's numbers, one row per model: the tokens (sequences x length) and "
    "interventions timed, seconds per intervention of the authors' method (one sequence at a "
    "time, the model rebuilt for every swap) and of stages.run_sweep, the speed ratio (the first "
    "over the second) and stages' model-FLOP utilisation against the float32 matrix-multiply "
    "peak measured in the same process."),
    columns={"model": "model", "tokens": "tokens", "n_interventions": "interventions",
             "authors_s": "authors' method, s", "stages_s": "stages, s",
             "speed_ratio": "speed ratio", "mfu": "utilisation"})))

# %% [markdown]
# ## Memory does not grow with the token count

# %%
memory = bench["memory"]
small, large = memory["runs"]
display(Markdown(
    f"Peak resident memory during a sweep (four interventions starting at layer 0, batches of "
    f"{small['batch_size']} sequences, each size in a fresh process, the peak counter reset after "
    f"the model was loaded): **{small['sweep_peak_rss_mb']:.0f} MB** at {small['n_tokens']:,} "
    f"tokens and **{large['sweep_peak_rss_mb']:.0f} MB** at {large['n_tokens']:,}, a ratio of "
    f"{memory['sweep_peak_ratio_8x_over_1x']:.3f}: the memory a sweep holds does not depend on "
    f"how many tokens it reads. Loading the model peaks "
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
# ## Measured on a GPU: the sweep at the paper's scale
#
# The paper's sweep (Pythia-1.4B's shapes, 95 interventions: every drop, swap, attention-only and
# MLP-only drop, on about a million tokens in sequences of 1,024) timed on one GPU by
# `benchmarks/gpu.py`, with random weights: the real ones cannot reach that machine, and a
# forward pass costs the same whatever the weights' values. Each precision ran at two sample
# sizes after a warm-up; the marginal time per sequence between them is the steady-state rate,
# from which the million-token sweep is extrapolated.

# %%
gpu = load_speed_results(find_root() / gpu_results)
f32, b16 = gpu["runs"]["float32"], gpu["runs"]["bfloat16"]
rates = gpu["matmul_tflop_per_s"]
display(Markdown(
    f"**{gpu['machine']['gpu']}** ({gpu['date'][:10]}; torch {gpu['machine']['torch']}, CUDA "
    f"{gpu['machine']['cuda']}). Its own matrix products ran at {rates['float32']:.0f} TFLOP/s in "
    f"float32 and {rates['bfloat16']:.0f} in bfloat16. The full sweep on "
    f"{gpu['full_sweep_sequences']} x {gpu['seq_len']} tokens takes "
    f"**{f32['full_sweep_minutes']:.0f} minutes in float32** "
    f"({f32['marginal_s_per_sequence']:.2f} s per sequence, "
    f"{f32['utilisation_of_measured_matmul']:.0%} of the float32 product rate) and "
    f"**{b16['full_sweep_minutes']:.0f} minutes with bfloat16 autocast** "
    f"({b16['marginal_s_per_sequence']:.2f} s per sequence, "
    f"{b16['utilisation_of_measured_matmul']:.0%} of the bfloat16 product rate): about "
    f"{b16['full_sweep_minutes'] / 4:.0f} minutes per intervention type, against the 8 hours per "
    "type on one A6000 that the paper reports with its own method and GPU. "
    "In float32 the products dominate and the sweep runs close to the GPU's float32 rate. "
    "Bfloat16 speeds up the matrix products only; the rest of the sweep (float32 softmax tiles, "
    "float64 sums, eager attention patterns) is not sped up, and where that time goes was not "
    "profiled. "
    + (f"A larger batch does not help: {gpu['batch_size_checks']['conclusion']}."
       if "batch_size_checks" in gpu else "")
))

# %% [markdown]
# ## The estimate made before a GPU was available
#
# The benchmark machine has no GPU, so `benchmarks/run.py` estimated the GPU time of the same
# sweep from its floating-point operations, counted from the model's shapes, and an assumed
# share of a GPU's peak. That estimate was written before the measurement above existed; it is
# kept here to show how far such an estimate was from the measurement. The measurement is the
# number to use.

# %%
proj = bench["projection"]
low, high = sorted(proj["projected_minutes"].values())
assume = proj["assumptions"]
products = proj["sweep_pflop"] * 1e3 / rates["bfloat16"] / 60  # minutes at the measured rate
display(Markdown(
    f"**Estimated, not measured.** {proj['model']}, {proj['n_interventions']} interventions on "
    f"{proj['tokens']} tokens: {proj['sweep_pflop']:.0f} PFLOP of forward passes. At "
    f"{assume['mfu_range'][0]:.0%}-{assume['mfu_range'][1]:.0%} of one H100's dense bfloat16 peak "
    f"({assume['bf16_peak_tflops']:.0f} TFLOP/s; the H200 has the same compute peak), plus "
    f"{proj['softmax_memory_s']:.0f} s of softmax passes over the logits at "
    f"{assume['hbm_tb_per_s']} TB/s, the whole sweep would take **{low:.0f}-{high:.0f} minutes**. "
    f"Measured with bfloat16 it took {b16['full_sweep_minutes']:.0f} minutes, "
    f"{b16['full_sweep_minutes'] / high:.1f}-{b16['full_sweep_minutes'] / low:.1f} times the "
    f"estimate: the sweep reached {b16['tflop_per_s']:.0f} TFLOP/s, "
    f"{b16['tflop_per_s'] / assume['bf16_peak_tflops']:.0%} of the peak, where the estimate "
    f"assumed {assume['mfu_range'][0]:.0%}-{assume['mfu_range'][1]:.0%}. At the rate the GPU's "
    f"own bfloat16 products reached, the sweep's products alone take about {products:.0f} "
    f"minutes of the {b16['full_sweep_minutes']:.0f}: most of the time goes to work that "
    "bfloat16 does not speed up, which the estimate counted only as the softmax passes. It also "
    f"left out {assume['not included']}."
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
display(Markdown(
    f"One block has {block / 1e6:.1f}M weights in matrices, the unembedding {unembed / 1e6:.0f}M: "
    f"one unembedding costs about {unembed / block:.0f} blocks. That is why the engine streams it "
    "in tiles."
))

# %% [markdown]
# **Reproduce the benchmark**: `.venv/bin/python benchmarks/run.py` (about 50 minutes on a
# 2-core CPU; `--quick` for a few minutes) rewrites `benchmarks/results/speed.json`.

# %% [markdown]
# ## Summary

# %%
display(Markdown(verdict_summary([], findings=(
    f"**Against the authors' method.** On a {machine['cores']}-core {machine['cpu']} CPU, "
    f"`stages.run_sweep` ran the {gemma['n_interventions']} interventions of "
    f"{gemma['model'].split(' (')[0]} "
    f"**{gemma['speed_ratio']:.1f}x faster** than the authors' method re-implemented, at "
    f"**{gemma['stages_mfu']:.0%}** of the measured matrix-multiply peak, with the same numbers to "
    f"within {number(100 * worst, 1)}% (one benchmark run, {bench['date'][:10]}).",
    f"**At the paper's scale, measured.** The full sweep of Pythia-1.4B's shapes (95 "
    f"interventions, about a million tokens) took {b16['full_sweep_minutes']:.0f} minutes with "
    f"bfloat16 and {f32['full_sweep_minutes']:.0f} in float32 on one {gpu['machine']['gpu']}, "
    f"about {b16['full_sweep_minutes'] / 4:.0f} minutes per intervention type (the paper: about 8 "
    "hours per intervention type on one A6000, with its own method).",
    f"**The estimate from FLOPs** made before that measurement ({low:.0f}-{high:.0f} minutes) was "
    f"{b16['full_sweep_minutes'] / high:.1f}-{b16['full_sweep_minutes'] / low:.1f} times too "
    f"optimistic: the matrix products take about {products:.0f} of the "
    f"{b16['full_sweep_minutes']:.0f} minutes, and the rest is work bfloat16 does not speed up.",
    f"**Memory.** A sweep's peak memory changes by a factor "
    f"{memory['sweep_peak_ratio_8x_over_1x']:.3f} from {small['n_tokens']:,} to "
    f"{large['n_tokens']:,} tokens: it does not grow with the token count.",
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
