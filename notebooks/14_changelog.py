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
# # Changelog: how the results changed between pack builds
#
# **The question.** The book's default numbers come from committed results packs
# (`data/results/<model>/`), built in rounds and extended part by part. Did any build change a
# number that an earlier build had already published, what did each build add, and which
# verdicts moved when the packs grew or the tests changed?
#
# **What this page does.** It reads every committed version of each pack's manifest from the
# repository's git history (`stages.results.changelog`): a manifest lists each part's files
# with their sha256, so comparing two versions tells rows *added* or *grown* (every row held
# before unchanged) from rows *recomputed* (a file held before now has other contents: numbers
# already shown changed). Each page of the book states when and at which commit the parts it
# reads were computed; this page is their history. The verdicts have a history too: the
# [What holds](13_what_holds.ipynb) page keeps a ledger of every verdict it decides from the
# shipped packs (`data/results/verdicts.csv`, `stages.results.ledger`), committed with the
# change that moved them; the last section lists every move.
#
# **Time to run.** A few seconds (`git log` and `git show` of the manifests). It needs a git
# clone with its history; in a shallow clone, or without git, it lists what each pack holds now.

# %%

import math
import re

from IPython.display import HTML, Markdown, display

from stages.book.page import open_page
from stages.book.present import data_table, fold
from stages.claims import verdict_summary
from stages.formats import estimate, number
from stages.plots.book import pack_history_figure
from stages.results.changelog import (
    NoHistoryError,
    current_holdings,
    pack_history,
    uncommitted,
)
from stages.results.ledger import ledger_history, pending_moves
from stages.results.pack import git_commit
from stages.store import data_dir

# %% tags=["parameters"]
model = "all"  # a model whose pack's history to list (its folder name in data/results/), or "all"

# %%
page = open_page("changelog", globals())
packs = data_dir() / "results"
try:
    history, no_history = pack_history(packs), ""
except NoHistoryError as exc:  # no git, not a clone, a shallow clone, nothing committed
    history = current_holdings(packs)
    no_history = (f"**No history of the packs here** ({exc}): listed below is what each pack "
                  "holds now, with the date and commit its manifest records for each part. A "
                  "full `git clone` shows every build.")
if model != "all":
    history = history[history["model"] == model]
recomputed = history[history["change"] == "recomputed"]
rows_changed = history[history["change"].isin(["added", "grown", "recomputed", "removed"])]
builds = rows_changed.groupby(["commit", "model"], sort=False).size()
metadata_only = history.loc[~history["commit"].isin(rows_changed["commit"]), "commit"].nunique()
pending = uncommitted(packs)
answer = no_history or (
    f"**{len(builds)} builds** of {history['model'].nunique()} packs changed their rows, from "
    f"{rows_changed['date'].min()} to {rows_changed['date'].max()} (UTC), in "
    f"{rows_changed['commit'].nunique()} commits ({metadata_only} more changed only what a "
    "manifest records, such as dates). "
    + ("**No build changed a row that an earlier build had published**: every build added rows "
       "or parts." if recomputed.empty else
       f"**{len(recomputed)} changes recomputed rows already published**: "
       + "; ".join(f"{r.model} `{r.part}` at commit `{r.commit}` ({r.detail})"
                   for r in recomputed.itertuples()) + ".")
)
if pending:
    answer += (f" **Not committed yet**: {', '.join(f'`{p}`' for p in pending)} differ from the "
               "last commit; the builds listed here are the committed ones.")
display(Markdown(answer))

# %% [markdown]
# ## What each pack held, build by build

# %%
page.chart(pack_history_figure(history, title="Rows held by each part of each results pack"),
           history, "figure-e13")

# %% [markdown]
# **Figure E13.** After each commit that changed a pack, the rows each part holds (sequences,
# or windows for the case studies and the cloze task; the neuron moments, computed from the
# weights alone, count as one), on a symmetric log scale; hover a point for the commit and its
# message. A part grows in rounds of sequences (`stages pack build MODEL --up-to N`).

# %% [markdown]
# ## Every build

# %%
per_build = (
    history.assign(what=[f"{r.part} {r.change} ({r.rows_before:,} → {r.rows_after:,} rows)"
                         for r in history.itertuples()])
    .groupby(["date", "commit", "subject", "model"], sort=False)["what"]
    .agg("; ".join)
    .reset_index()
    .assign(what=lambda d: d["model"] + ": " + d["what"])
    .groupby(["date", "commit", "subject"], sort=False)["what"]  # one row per commit
    .agg(" | ".join)
    .reset_index()
    .iloc[::-1]  # newest first
)
display(HTML(fold(f"Every build, newest first ({len(per_build)} commits)", data_table(
    per_build, caption="Every commit that changed a pack, newest first: per pack, each part it "
    "changed (added, grown, recomputed or removed, with the rows held before and after: "
    "sequences, or windows for the case studies and the cloze task) and the commit's message.",
    columns={"date": "date (UTC)", "commit": "commit", "what": "what changed, per pack",
             "subject": "commit message"}, fold_over=len(per_build),
))))

# %% [markdown]
# ## Which verdicts moved
#
# Each row of the table: a claim whose verdict differs from the ledger's previous committed
# version, with its value, 95% interval and n before and after; newest first. (A claim new to
# the book counts as moved from "(new)" in the counts; the table leaves those out.) A move comes
# from more data (a pack grown), from a changed test (the commit message says which), or from a
# changed computation.

# %%
try:
    moves, no_ledger = ledger_history(packs), ""
except NoHistoryError as exc:
    moves, no_ledger = None, f"No committed history of the verdict ledger here ({exc})."
if moves is not None and model != "all":
    moves = moves[moves["model"].isin([model, "across models"])]
if moves is not None:
    versions = moves.assign(new=moves["before"] == "(new)").groupby(
        ["date", "commit"], sort=False)["new"].agg(added="sum", moved=lambda x: (~x).sum())

    def version(date: str, commit: str, added: int, moved: int) -> str:
        """What one committed version of the ledger changed, in words."""
        what = [f"moved **{moved}** verdicts"] if moved else []
        what += [f"added {added} claims"] if added else []
        return f"`{commit}` ({date}) " + " and ".join(what)

    display(Markdown(
        f"The ledger was committed in {len(versions)} versions, newest first: "
        + "; ".join(version(d, c, r.added, r.moved)
                    for (d, c), r in versions.iloc[::-1].iterrows()) + "."
        if len(versions) else "No verdict has moved since the ledger was first committed."
    ))
    def readable(verdict: str, interval: str) -> str:
        """A ledger's ``"0.5 (0.4 to 0.6), n = 34"`` as the book writes numbers (stages.formats)."""
        found = re.fullmatch(r"(\S+) \((\S+) to (\S+)\), n = (\d+)", interval or "")
        if not found:
            return verdict
        value, lo, hi = (float(x) for x in found.groups()[:3])
        if math.isnan(value):
            return f"{verdict} (n = {found[4]})"
        numbers = (f"{number(value)} (no interval)" if math.isnan(lo) else
                   f"{number(value)} ({number(lo)} to {number(hi)})"
                   if math.isinf(lo) or math.isinf(hi) else estimate(value, lo, hi))
        return f"{verdict}: {numbers}, n = {found[4]}"

    shown = moves[moves["before"] != "(new)"].iloc[::-1].assign(
        when=lambda d: d["date"] + " (" + d["commit"] + ")",
        was=lambda d: [readable(v, i) for v, i in zip(d["before"], d["interval_before"],
                                                      strict=True)],
        now=lambda d: [readable(v, i) for v, i in zip(d["after"], d["interval_after"],
                                                     strict=True)],
    )  # fmt: skip
    display(HTML(fold(f"The {len(shown)} verdicts that moved, newest first", data_table(
        shown, caption="Every verdict that moved between committed versions of the ledger, "
        "newest first: the commit, the model, the claim, and the verdict before and after, each "
        "with its estimate, 95% interval and n (an interval from −∞ to ∞ is one the resamples "
        "could not bound; \"no interval\": the verdict had none).",
        columns={"when": "date (UTC) and commit", "model": "model", "claim": "claim",
                 "was": "before", "now": "after"}, fold_over=len(shown),
    ))) if len(shown) else Markdown("No verdict moved between committed versions."))
else:
    display(Markdown(no_ledger))
pending_verdicts = pending_moves(packs)
if pending_verdicts is not None and len(pending_verdicts):
    display(Markdown(f"**Not committed yet**: the ledger this build wrote moves "
                     f"{len(pending_verdicts)} verdicts against its last committed version: "
                     + "; ".join(f"{r.model}, *{r.claim}*: {r.before} → {r.after}"
                                 for r in pending_verdicts.itertuples()) + "."))

# %% [markdown]
# ## Exercises
#
# Answer before you open a solution; each solution is computed from this page's numbers.

# %% [markdown]
# **1. Rounds.** How many commits did the gemma-3-270m sweep take to go from its first rows to
# its full 256 sequences? Guess from Figure E13, then count.

# %% tags=["hide-cell"]
# Solution 1
sweeps = history[(history["part"] == "sweep") & (history["change"].isin(["added", "grown"]))]
display(Markdown("; ".join(
    f"**{name}**: {len(rows)} commits, from {rows.date.iloc[0]} to {rows.date.iloc[-1]}"
    for name, rows in sweeps.groupby("model")
) + ". A sweep of every intervention is the costliest part: it was built in rounds, each "
    "committed as it finished, so the work could span sessions."))

# %% [markdown]
# ## Summary

# %%
display(Markdown(verdict_summary([], findings=(
    "No git history here: the builds cannot be compared." if no_history else
    f"{len(builds)} builds in {rows_changed['commit'].nunique()} commits; "
    f"{(history['change'] == 'added').sum()} parts added, {(history['change'] == 'grown').sum()} "
    f"grown, **{len(recomputed)} recomputed** (rows already published that changed).",
    "Each pack now holds: " + "; ".join(
        f"{name}: " + ", ".join(f"`{r.part}` {r.rows_after:,}" for r in rows.itertuples())
        for name, rows in history.drop_duplicates(["model", "part"], keep="last")
        .sort_values(["model", "part"]).groupby("model")
    ) + " rows.",
    no_ledger or (
        f"The verdict ledger was committed in {moves['commit'].nunique()} versions; between "
        f"them **{(moves['before'] != '(new)').sum()} verdicts moved** (and "
        f"{(moves['before'] == '(new)').sum()} claims were added)."
    ),
))))

# %% [markdown]
# ## What's next
#
# Back to the [introduction](../intro.md), or to [what holds](13_what_holds.ipynb) for the
# verdicts these packs decide. Growing a pack (`stages pack build MODEL --parts PART --up-to N`)
# adds a build to this page at the next commit.

# %% [markdown]
# ---

# %%
page.footer({"parameters": f"model={model!r}", "repository at": git_commit(),
             "history of": "data/results/*/manifest.json (git log)",
             "run time": f"{page.elapsed:.0f} s"})
