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
# # What holds: every claim, every model, on one page
#
# **The question.** Of the paper's claims {cite}`lad2024remarkable` that this book tests, which
# hold for the models here? Each row below is one claim, decided on the page linked in its last
# column, for each model: the verdict, the statistic with its 95% interval, and the number of
# independent units it rests on (sequences, windows, or neurons for claims about the weights).
# Nothing on this page is typed by hand: it is computed from the same per-sequence results as
# the other pages (by default the book's results packs), with the same functions.
#
# **How to read a verdict.** *holds*: the whole 95% interval is on the claim's side of its
# threshold; *does not hold*: the data are evidence against the claim (the interval entirely on
# the other side, or below a stated margin); *unclear*: the interval contains the threshold
# (more data could decide it); *no evidence*: a test against chance (a null) found nothing,
# which is not evidence against the claim; *not enough data*: fewer units than the rule needs
# (30 sequences, windows or held-out words; 10 neurons; 30 baseline hits of the cloze task).
# Each page states every rule exactly as the code applies it. Each claim names its **source**:
# the paper as published (v1), its later version (v3), the related work the book reproduces, or
# this book (a baseline or a direction the paper does not state); the conclusions count the
# paper's claims apart from the others.
# The models are 4-bit quantized stand-ins dequantized to float32 (gemma-3-270m from Q4_K_M,
# SmolLM2-135M-Instruct from Q4_1), not the paper's GPT-2, Pythia and Phi models: a verdict here
# is about these models.
#
# **Time to run.** With the defaults, on a CPU, both models' results packs are read and checked
# by a live slice of every part: 57 s on a 2-core CPU in the default book build (whose earlier
# pages computed most slices already; alone, a few minutes more). Other parameters (or a GPU)
# compute everything now: hours on a CPU at the default sizes.

# %%

import pandas as pd
from IPython.display import Markdown, display
from myst_nb import glue

from stages.book.page import open_page
from stages.claims import all_claims, conclusions, verdict_summary
from stages.claims.headlines import headline_findings
from stages.claims.cross_model import Sample, cross_model_claims
from stages.plots.book import verdict_figure
from stages.results.ledger import write_ledger
from stages.results.source import open_results, packs_for
from stages.store import data_dir
from stages.stats import table as verdict_frame

# %% tags=["parameters"]
models = ["gemma-3-270m", "smollm2-135m-instruct"]  # embedded names, hub names or folders
n_tokens = 32768  # tokens per model (rounded up to whole sequences of seq_len)
seq_len = 128  # tokens per sequence, BOS included
n_per_class = 1024  # case-study windows per class
n_cloze = 1024  # cloze windows (page 11)
batch_size = 8  # sequences per forward pass
device = "auto"  # "auto", "cpu", "cuda"
dtype = "float32"  # "float32", "bfloat16", "float64"
corpus = "default"  # the shipped public-domain prose, a local file, or a hub dataset
seed = 0  # which sequences and windows are drawn, the splits, the bootstrap
pack = "default"  # "default": each model's shipped results pack when these are its parameters; "none"; or a pack's folder (for the model it names)

# %%
page = open_page("what_holds", globals())
tables, samples, reports, records, missing, shipped = [], [], {}, {}, {}, {}
for model, its_pack in zip(models, packs_for(models, pack)):
    res = open_results(model, n_tokens=n_tokens, seq_len=seq_len, seed=seed, corpus=corpus,
                       device=device, dtype=dtype, batch_size=batch_size,
                       n_per_class=n_per_class, n_cloze=n_cloze, pack=its_pack)
    decided = all_claims(res, seed=seed)
    tables.append(decided.assign(model=res.name))
    missing[res.name] = decided.attrs["missing"]
    frames = {part: res.sums(part) for part in ("sweep", "attention", "norms", "lens")}
    samples.append(Sample(res.name, frames, res.classes(), res.n_layers))
    reports[res.name] = res.report()
    shipped[res.name] = res.pack is not None and its_pack == "default"
    records[res.name] = res.provenance({})
    del res
claims = pd.concat(tables, ignore_index=True)
across_verdicts = cross_model_claims(samples, seed=seed)
across = verdict_frame(across_verdicts)
if all(shipped.values()):
    # the shipped packs decided every verdict: keep the committed ledger in step (unchanged
    # bytes when no verdict moved; the changelog page lists the moves)
    ledger = pd.concat([claims, across.assign(model="across models", group="cross-model",
                                              number=range(len(across)))], ignore_index=True)
    write_ledger(ledger, data_dir() / "results")
elapsed = page.elapsed
names = list(dict.fromkeys(claims["model"]))
for name, report in reports.items():
    display(Markdown(f"**{name}.** {report}"))
for name, groups in missing.items():
    if groups:
        parts = ",".join(p for needed in groups.values() for p in needed)
        display(Markdown(
            f"**Not yet decided for {name}**, left out of the tables below: "
            + ", ".join(groups) + ". Its results pack does not hold these parts yet "
            f"(`stages pack build {name} --parts {parts} --up-to 34` builds their first round)."
        ))

# %% [markdown]
# ## Every claim, per model

# %%
def cell(row: pd.Series) -> str:
    """A verdict with its numbers, for the table."""
    if row.value != row.value:
        return f"**{row.verdict}**"
    return f"**{row.verdict}**<br>{row.value:.3g} ({row.lo:.3g} to {row.hi:.3g}), n = {row.n}"


lines = ["| claim | source | paper | " + " | ".join(names) + " | tested on |",
         "|---|---|---|" + "---|" * len(names) + "---|"]
for (group, number), rows in claims.groupby(["group", "number"], sort=False):
    rows = rows.set_index("model")
    first = rows.iloc[0]
    wording = list(dict.fromkeys(rows["claim"]))  # a claim may name each model's own layers
    claim = first.claim if len(wording) == 1 else "; ".join(
        f"{text} ({', '.join(rows.index[rows.claim == text])})" for text in wording)
    lines.append(f"| {claim} | {first.source} | {first.figure} | "
                 + " | ".join(cell(rows.loc[n]) if n in rows.index else "" for n in names)
                 + f" | [{group}]({first.page}.ipynb) |")
display(Markdown("\n".join(lines)))

# %% [markdown]
# Each cell: the verdict; the statistic's value with its 95% interval; n, the independent units
# the interval resamples (sequences, test windows, held-out words, neurons, or layers for the
# shape of a curve). The statistic and the rule of every row are on its page, and in the full
# table at the end of this page.

# %%
verdict_figure(claims, title="Every claim's verdict, per model")

# %% [markdown]
# **The verdicts at a glance.** One row per claim (grouped by the page that tests it), one
# column per model, coloured by the verdict; hover a cell for the statistic, its 95% interval,
# n and the rule.

# %%
counts = claims.pivot_table(index="verdict", columns="model", values="claim", aggfunc="count",
                            fill_value=0)
display(Markdown(
    "In all: " + "; ".join(
        f"**{n}**: " + ", ".join(f"{int(counts.loc[v, n])} {v}" for v in counts.index
                                 if counts.loc[v, n])
        + f" (of {int(counts[n].sum())} claims)" for n in names) + "."
))

# %% [markdown]
# ## Across the models
#
# Whether the two models' curves have the same shape over relative depth (compared over layers:
# n counts the points of a common depth grid), whether two features sit at the same relative
# depth, and whether the deeper model is the more robust (details on the
# [cross-model page](08_cross_model.ipynb)).

# %%
display(Markdown("\n".join(
    ["| claim | source | verdict | statistic | 95% interval | n |", "|---|---|---|---|---|---|"]
    + [f"| {r.claim} | {r.source} | **{r.verdict}** | {r.value:.3g} | {r.lo:.3g} to {r.hi:.3g} | "
       f"{r.n} {r.unit} |" if r.value == r.value else
       f"| {r.claim} | {r.source} | **{r.verdict}** | | | {r.n} {r.unit} |"
       for r in across.itertuples()]
)))

# %% [markdown]
# ## Every statistic and rule

# %%
columns = ["model", "group", "source", "claim", "verdict", "statistic", "value", "lo", "hi", "n",
           "unit", "rule", "detail"]
display(claims[columns].round(4).style.hide(axis="index"))

# %% [markdown]
# ## Exercises
#
# Answer before you open a solution; each solution is computed from this page's numbers.

# %% [markdown]
# **1. Where do the models disagree?** Guess which section of the paper the two models disagree on most, then count.

# %% tags=["hide-cell"]
# Solution 1
pivot = claims.pivot_table(index=["group", "number"], columns="model", values="verdict", aggfunc="first")
differ = pivot[pivot.nunique(axis=1) > 1].reset_index().groupby("group").size().sort_values()
display(Markdown("The verdicts differ in " + (", ".join(f"{g} ({k} claims)" for g, k in differ.items())
                                             if len(differ) else "no section") + "."))

# %% [markdown]
# ## Summary

# %%
findings = headline_findings(claims)
book_conclusions = "\n\n".join([*findings, conclusions(claims)])
glue("conclusions", Markdown(book_conclusions), display=False)  # the introduction's (stages.book.intro)
display(Markdown(book_conclusions + "\n\n**Across the models**: "
                 + verdict_summary(across_verdicts).replace("- ", "", 1)))

# %% [markdown]
# ## What's next
#
# The [changelog](14_changelog.ipynb) lists how the results packs behind these verdicts changed
# from one build to the next. To test a claim on another model, re-run any page with `-p model
# NAME` (the [introduction](../intro.md) says how), or build a pack for it with `stages pack
# build NAME`.

# %% [markdown]
# ---

# %%
page.footer_for_models(records)
