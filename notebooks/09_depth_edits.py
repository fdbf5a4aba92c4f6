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
# # Beyond single layers: deleting, reordering and duplicating spans of layers
#
# **The question.** The paper intervenes on one layer or one adjacent pair at a time
# {cite}`lad2024remarkable`. How far does the robustness go when whole spans change? Three
# experiments from the paper's later version and the work around it:
#
# 1. **Block deletion** {cite}`gromov2024unreasonable`: every contiguous block of up to half the
#    depth is skipped. How long a block can the model lose, and where is the least harmful one?
#    Gromov et al. find it deep in the network, before the last layer.
# 2. **Reordering a span** ("Transformer Layers as Painters" {cite}`sun2024painters`): a span of a
#    quarter of the depth is reversed, shuffled, run twice or run in parallel, and compared with
#    dropping it. Painters find that the middle layers tolerate reordering and parallel execution
#    far better than deletion, and the paper's section 4 that the first and last layers are
#    fragile: does order matter less in the middle than near the ends?
# 3. **Layer duplication** (the later version's code): each layer of a middle range runs 2 to 5
#    times in place. How do KL and the entropy of the predictions change as the copies grow?
#
# **What this page does.** It reads (or computes) the sweep's metrics for every plan: KL from the
# unperturbed model (nats), the share of its top-1 predictions kept, and the change of entropy
# (bits), at every predicted position (definitions in [Methods](../methods.md)). Intervals are
# 95% bootstrap intervals over sequences, paired where plans are compared.
#
# **Time to run.** With the defaults the numbers come from the book's results pack, and the live
# slice recomputes the plans of three start layers on two sequences: about two minutes on a
# 2-core CPU. Computing everything now costs about 2.5 s per plan per 1,000 tokens on this CPU
# for gemma-3-270m (126 block deletions, 56 span plans, 12 duplications).

# %%

from IPython.display import HTML, Markdown, display

from stages.analyses.blocks import block_table, longest_kept
from stages.analyses.duplication import duplication_table
from stages.analyses.reorder import reorder_table, span_length
from stages.book.page import open_page
from stages.book.present import data_table, fold, verdict_table
from stages.claims import verdict_summary
from stages.claims.beyond import depth_edit_claims
from stages.formats import estimate, number, percent
from stages.plots.depth_edits import block_heatmap, duplication_figure, reorder_figure

# %% tags=["parameters"]
model = "gemma-3-270m"  # the embedded default, or a Hugging Face name / local folder
n_tokens = 32768  # tokens in the sample (rounded up to whole sequences of seq_len)
seq_len = 128  # tokens per sequence, BOS included
batch_size = 8  # sequences per forward pass
device = "auto"  # "auto", "cpu", "cuda"
dtype = "float32"  # "float32", "bfloat16", "float64"
corpus = "default"  # the shipped public-domain prose, a local file, or a hub dataset
seed = 0  # which sequences are sampled, and the bootstrap
pack = "default"  # "default": the shipped results pack when these are its parameters; "none"; or a pack's folder

# %%
page = open_page("depth_edits", globals())
res = page.results()
sums = {part: res.sums(part) for part in ("blocks", "reorder", "duplication")}
name, n_layers = res.name, res.n_layers
blocks = block_table(sums["blocks"], n_layers, seed=seed)
reorder = reorder_table(sums["reorder"], n_layers, seed=seed)
duplication = duplication_table(sums["duplication"], n_layers, seed=seed)
page.source(res)
n_seq = {part: len(frame) for part, frame in sums.items()}
counts = sorted(set(n_seq.values()))
read = (f"the first {counts[0]} of the sample's {res.recipe.n_seq} sequences" if len(counts) == 1
        and counts[0] < res.recipe.n_seq else ", ".join(f"{k} sequences" for k in counts))
display(Markdown(
    f"**{name}**, {n_layers} layers: {len(blocks)} block deletions, {len(reorder)} span plans "
    f"and {len(duplication)} duplications, each measured on {read} of "
    f"{res.recipe.seq_len} tokens"
    + (" (these plans are built into the results pack on their own, in rounds; every interval "
       "and verdict below rests on these sequences)." if counts[0] < res.recipe.n_seq else ".")
))

# %% [markdown]
# ## Block deletion

# %%
page.chart(block_heatmap(blocks, title=f"Block deletion ({name}): KL and top-1 kept"),
           blocks[["layers", "start", "length", "kl", "kl_lo", "kl_hi", "rel_acc", "rel_acc_lo",
                   "rel_acc_hi"]], "figure-e3")

# %% [markdown]
# **Figure E3** (after Gromov et al., Figure 1). Each cell deletes the layers from *first* to
# *first + length − 1*. Top: KL from the unperturbed model (nats, log colour scale). Bottom: the
# share of its top-1 predictions kept. Hover a cell for the 95% interval.

# %%
def layers_of(start: int, length: int) -> str:
    """``"layer 9"`` or ``"layers 7-9"``."""
    return f"layer {start}" if length == 1 else f"layers {start}-{start + length - 1}"


def longest(share: float) -> str:
    """The longest block whose best placement keeps ``share`` of top-1, in a sentence."""
    length, lo, hi, best = longest_kept(sums["blocks"], share, seed=seed)
    first = best.set_index("length").loc[1]
    if length == 0 and hi == 0:
        return (f"no block keeps **{share:.0%}** of top-1 predictions, not even one layer: the "
                f"best single drop ({layers_of(int(first.start), 1)}) keeps "
                f"{first.rel_acc:.1%}, and no resample of the sequences finds one that does")
    row = best.set_index("length").loc[max(int(length), 1)]
    spread = ("every resample of the sequences gives the same length" if lo == hi else
              f"95% interval {lo:.0f} to {hi:.0f} layers")
    return (f"the longest block whose best placement keeps **{share:.0%}** of top-1 predictions "
            f"is **{length:.0f} layer{'s' if length != 1 else ''}** of {n_layers} ({spread}): "
            f"deleting {layers_of(int(row.start), int(length))} keeps {row.rel_acc:.1%}")


kept = {share: longest(share) for share in (0.5, 0.8)}
display(Markdown("\n".join(f"- On {name}, {text}." for text in kept.values())))

# %% [markdown]
# ## Reordering a span

# %%
page.chart(reorder_figure(reorder, title=f"Reordering a span of {span_length(n_layers)} layers "
                          f"({name})"),
           reorder[["label", "kind", "layers", "mid_depth", "where", "kl", "kl_lo", "kl_hi"]],
           "figure-e4")

# %% [markdown]
# **Figure E4** (after Painters, Figures 2-4). KL of each way of changing a span of a quarter of
# the depth, against the relative depth of the span's centre (log scale; bands: 95% intervals;
# the shuffles are the mean of their three orders, without a band, each order being in the table
# below). Dropping the span is the reference the others are compared with.

# %% [markdown]
# ## Duplicating layers

# %%
page.chart(duplication_figure(duplication, title=f"Layer duplication ({name})"),
           duplication[["layers", "times", "kl", "kl_lo", "kl_hi", "entropy_delta",
                        "entropy_delta_lo", "entropy_delta_hi"]], "figure-e5")

# %% [markdown]
# **Figure E5** (after the later version's duplication experiment). KL and entropy change as each
# layer of a middle range runs more times in place (n = 1 would be the unperturbed model: KL 0,
# entropy change 0; one line per range of layers); bars are 95% intervals.

# %% [markdown]
# ## Do the claims hold for this model?
#
# Each verdict is a statistic of the per-sequence sums with its 95% bootstrap interval over
# sequences, comparing plans on the same resampled sequences. A claim about every span, range or
# block is decided one by one: each gets an interval from a simultaneous band over all of them,
# and the claim holds only when every one does (the fold under each claim counts them). *Holds*
# when the whole interval is on the claim's side of its threshold, *does not hold* when it is
# entirely on the other side, *unclear* when it contains the threshold, *not enough data* below
# 30 sequences.

# %%
verdicts = depth_edit_claims(sums["blocks"], sums["reorder"], sums["duplication"], n_layers,
                             seed=seed)
display(HTML(verdict_table(verdicts, caption=f"The claims beyond single layers, on {name} "
                           f"({n_seq['blocks']} sequences).")))

# %%
middle = reorder[reorder["where"] == "middle"]
mean_kl = middle.groupby("kind")["kl"].mean()
widest = duplication[duplication["length"] == duplication["length"].max()].set_index("times")
notes = []
if "reverse" in mean_kl and mean_kl["reverse"] > mean_kl["drop_range"]:
    notes.append(
        f"Reversing a middle span costs more than dropping it on {name} (mean KL "
        f"{number(mean_kl['reverse'])} against {number(mean_kl['drop_range'])} nats over the "
        f"middle spans): that is what decides the reordering claim. Running the span in parallel "
        + ("still costs less than dropping it" if mean_kl.get("parallel", float("inf"))
           < mean_kl["drop_range"] else "costs more too")
        + f" ({number(mean_kl.get('parallel', float('nan')))} nats). In a model of {n_layers} "
        "layers a span of a quarter of the depth is only "
        f"{span_length(n_layers)} layers, and the order within it still matters."
    )
e5 = widest.loc[widest.index.max()]
if e5.entropy_delta_hi < 0:
    notes.append(
        f"Running each of layers {e5.layers} {widest.index.max()} times *lowers* the entropy of "
        "the predictions, by "
        f"{estimate(-e5.entropy_delta, -e5.entropy_delta_hi, -e5.entropy_delta_lo)} bits: the "
        "copies make the model more confident while they move its predictions away from its "
        f"own (KL {estimate(e5.kl, e5.kl_lo, e5.kl_hi)} nats). The later version reports the "
        "entropy without a direction; the book tested a rise, and the data say the opposite."
    )
if notes:
    display(Markdown(" ".join(notes)))

# %% [markdown]
# ## The numbers

# %%
columns = {"label": "plan", "where": "where", "kl": "KL, nats (95% interval)",
           "rel_acc": "top-1 kept (95% interval)", "entropy_delta": "entropy change, bits",
           "kl_vs_drop": "KL / KL of dropping the span"}
display(HTML(fold(f"Every way of changing a span: the {len(reorder)} plans", data_table(
    reorder, columns=columns, fold_over=len(reorder),
    caption=f"Every way of changing a span of {span_length(n_layers)} layers: KL from the "
    "unperturbed model (nats), the share of its top-1 predictions kept, the mean change of "
    "entropy (bits), and the KL as a multiple of dropping the same span; intervals over "
    f"{n_seq['reorder']} sequences.",
))))
display(HTML(fold(f"Every duplication: the {len(duplication)} plans", data_table(
    duplication, fold_over=len(duplication), columns={k: v for k, v in columns.items() if k not in ("where", "kl_vs_drop")}
    | {"times": "runs of each layer"},
    caption="Every duplication: each layer of the range run n times in place; KL (nats), top-1 "
    f"kept and entropy change (bits), intervals over {n_seq['duplication']} sequences.",
))))

# %% [markdown]
# ## Exercises

# %% [markdown]
# **1. Where would you cut?** Before opening the solution, guess which block of a quarter of the
# depth this model loses most easily: early, middle or late?

# %% tags=["hide-cell"]
# Solution 1
k = max(2, n_layers // 4)
best = blocks[blocks.length == k].sort_values("kl").iloc[0]
display(Markdown(f"Deleting layers {best.layers}: KL {estimate(best.kl, best.kl_lo, best.kl_hi)} "
                 f"nats, {percent(best.rel_acc, best.rel_acc_lo, best.rel_acc_hi)} of top-1 kept. "
                 "Gromov et al. find the least harmful block in the deeper half, before the last "
                 "layer."))

# %% [markdown]
# **2. Order or presence?** In the middle, which hurts more: reversing a span or deleting it?

# %% tags=["hide-cell"]
# Solution 2
pairs = reorder[(reorder["where"] == "middle") & reorder.kind.isin(["reverse", "drop_range"])]
display(HTML(data_table(pairs, columns={"label": "plan", "kl": "KL, nats (95% interval)"},
                        caption="Reversing or dropping each middle span: KL from the unperturbed "
                        "model.")))

# %% [markdown]
# ## Summary

# %%
safer = next(v for v in verdicts if v.claim.startswith("deleting"))
parallel = next(v for v in verdicts if v.claim.startswith("running in parallel"))
two, five = widest.loc[widest.index.min()], widest.loc[widest.index.max()]
k = int(safer.claim.split()[1])  # the block length the claim compares
of_k = blocks[blocks["length"] == k]
halves = [of_k[of_k["start"] + k <= n_layers / 2], of_k[of_k["start"] >= n_layers / 2]]
early, late = (h.sort_values("kl").iloc[0] for h in halves)


def kl_of(row) -> str:
    """A plan's KL with its interval, in nats."""
    return f"{estimate(row.kl, row.kl_lo, row.kl_hi)} nats"

display(Markdown(verdict_summary(verdicts, findings=(
    f"On {name} ({n_layers} layers), {kept[0.5]} (Gromov et al., on question answering with "
    "much larger models: up to half the layers, after a brief fine-tuning).",
    f"The least harmful block of {k} layers to delete lies in the "
    + ("deeper half" if late.kl < early.kl else "first half") + f": the deeper half's best, "
    f"layers {late.layers}, costs KL {kl_of(late)}, the first half's best, layers "
    f"{early.layers}, {kl_of(early)}; the gap, "
    f"compared over every pair of blocks, is {estimate(safer.value, safer.lo, safer.hi)} nats "
    "(Gromov et al.: deep in the network, before the last layer).",
    f"Running a middle span of {span_length(n_layers)} layers in parallel instead of in turn "
    f"costs a mean KL of {number(mean_kl.get('parallel', float('nan')))} nats over the middle "
    f"spans, against {number(mean_kl['drop_range'])} for dropping them; "
    + ("less on every middle span" if parallel.verdict == "holds" else
       "not less on every middle span")
    + f" (the largest difference over the spans: "
    f"{estimate(parallel.value, parallel.lo, parallel.hi)} nats; Painters: the middle layers "
    "run in parallel degrade gracefully).",
    f"Running each of layers {two.layers} {widest.index.max()} times instead of "
    f"{widest.index.min()} raises the KL from {kl_of(two)} to {kl_of(five)}, while the entropy "
    f"changes by {estimate(five.entropy_delta, five.entropy_delta_lo, five.entropy_delta_hi)} "
    "bits (the later version reports the entropy without a direction).",
))))

# %% [markdown]
# ## What's next
#
# [Layer similarity and skip effects](10_layer_similarity.ipynb): whether cheap measures of how
# much a layer changes the residual stream predict what dropping it costs.

# %% [markdown]
# ---

# %%
page.footer(res)
