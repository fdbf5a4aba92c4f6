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
# hold for the models here? Each claim is decided on the page linked in its group's heading,
# for each model: the verdict, the statistic with its 95% interval, and the number of
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

import html

import pandas as pd
from IPython.display import HTML, Markdown, display
from myst_nb import glue

from stages.book.page import open_page
from stages.book.present import fold, markdown, verdict_matrix, verdict_table
from stages.claims import conclusions, verdict_summary
from stages.claims.groups import PAGES
from stages.analyses.cross_model import Sample
from stages.claims.cross_model import cross_model_claims
from stages.claims.headlines import headline_findings
from stages.plots.book import verdict_figure
from stages.results.ledger import write_ledger
from stages.results.opening import open_results, packs_for
from stages.results.verdicts import decide_all
from stages.stats import VERDICTS
from stages.stats import table as verdict_frame
from stages.store import data_dir

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
tables, samples, sources, records, missing, shipped = [], [], {}, {}, {}, {}
for model, its_pack in zip(models, packs_for(models, pack)):
    res = open_results(model, n_tokens=n_tokens, seq_len=seq_len, seed=seed, corpus=corpus,
                       device=device, dtype=dtype, batch_size=batch_size,
                       n_per_class=n_per_class, n_cloze=n_cloze, pack=its_pack)
    decided = decide_all(res, seed=seed)
    tables.append(decided.assign(model=res.name))
    missing[res.name] = decided.attrs["missing"]
    frames = {part: res.sums(part) for part in ("sweep", "attention", "norms", "lens")}
    samples.append(Sample(res.name, frames, res.classes(), res.n_layers))
    sources[res.name] = (res.headline(), res.report())
    shipped[res.name] = res.pack is not None and its_pack == "default"
    records[res.name] = res.provenance({})
    del res
claims = pd.concat(tables, ignore_index=True)
across_verdicts = cross_model_claims(samples, seed=seed)
across = verdict_frame(across_verdicts)
if all(shipped.values()):
    # the shipped packs decided every verdict: keep the committed ledger in step (unchanged
    # bytes when no verdict, n or number moved; the changelog page lists the verdicts' moves)
    ledger = pd.concat([claims, across.assign(model="across models", group="cross-model",
                                              number=range(len(across)))], ignore_index=True)
    write_ledger(ledger, data_dir() / "results")
elapsed = page.elapsed
names = list(dict.fromkeys(claims["model"]))
for name, (headline, report) in sources.items():
    display(HTML(f'<p class="stages-source">{html.escape(headline)}</p>'
                 + fold(f"Where the numbers of {name} come from", markdown(report))))
for name, groups in missing.items():
    if groups:
        parts = ",".join(p for needed in groups.values() for p in needed)
        display(Markdown(
            f"**Not yet decided for {name}**, left out of the tables below: "
            + ", ".join(groups) + ". Its results pack does not hold these parts yet "
            f"(`stages pack build {name} --parts {parts} --up-to 34` builds their first round)."
        ))

# %% [markdown]
# ## The verdicts at a glance

# %%
page.chart(verdict_figure(claims, title="Every claim's verdict, per model"),
           claims[["model", "group", "number", "claim", "verdict", "value", "lo", "hi", "n",
                   "unit"]], "figure-e12")

# %% [markdown]
# **Figure E12.** One row per claim (grouped by the page that tests it, in the book's order),
# one column per model, coloured by the verdict; hover a cell for the whole claim, the
# statistic, its 95% interval, n and the rule. A long claim is cut short at the left; the
# tables below give every claim in full.

# %%
PLURAL = {"holds": "hold", "does not hold": "do not hold"}


def counted(verdicts: pd.Series) -> str:
    """``"4 hold, 9 do not hold"``: verdicts counted, in the order of stages.stats.VERDICTS."""
    counts = verdicts.value_counts()
    return ", ".join(f"{counts[v]} {v if counts[v] == 1 else PLURAL.get(v, v)}"
                     for v in VERDICTS if v in counts)


display(Markdown("In all: " + "; ".join(
    f"**{n}**: {counted(claims.loc[claims['model'] == n, 'verdict'])} (of "
    f"{(claims['model'] == n).sum()} claims)" for n in names) + "."))

# %% [markdown]
# ## Every claim, per model
#
# One table per page of the book, folded: open a page's to see each claim in full, its source,
# and for each model the verdict, the statistic's value with its 95% interval and n, the
# independent units the interval resamples (sequences, test windows, held-out words, neurons, or
# layers for the shape of a curve). Under each claim, "how it is decided" gives its statistic,
# its rule exactly as applied and the numbers behind it.

# %%
def tally(rows: pd.DataFrame) -> str:
    """Each model's verdicts of a group of claims, counted, for the fold's label."""
    return "; ".join(f"{name}: {counted(rows.loc[rows['model'] == name, 'verdict'])}"
                     for name in names)


for group, rows in claims.groupby("group", sort=False):
    n_claims = rows.groupby("number").ngroups
    display(HTML(fold(
        f"{group} ({n_claims} claim{'s' if n_claims > 1 else ''}): {tally(rows)}",
        verdict_matrix(rows, names, pages=PAGES,
                       caption=f"The claims of {group}, tested on its page."),
    )))
every_rule = page.download(claims, "verdicts.csv", "every claim of every model with its "
                           "statistic, value, interval, n, rule and numbers (CSV)")
display(HTML(f'<p class="stages-downloads">Download {every_rule}.</p>'))

# %% [markdown]
# ## Across the models
#
# Whether the two models' curves have the same shape over relative depth (compared over layers:
# n counts the points of a common depth grid), whether two features sit at the same relative
# depth, and whether the deeper model is the more robust (details on the
# [cross-model page](08_cross_model.ipynb)).

# %%
display(HTML(fold(
    f"The {len(across_verdicts)} claims across the models: "
    + counted(pd.Series([v.verdict for v in across_verdicts])),
    verdict_table(across_verdicts, caption="The claims across the models: the verdict, the "
                  "statistic with its 95% interval, and n (the points of the common depth grid, "
                  "or the sequences)."),
)))

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
display(Markdown("The verdicts differ in " + (", ".join(f"{g} ({k} claim{'s' * (k > 1)})"
                                                        for g, k in differ.items())
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
