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
# # Robustness: dropping and swapping layers
#
# **The question** (paper section 4, Figure 3; appendix B, Figures 13-15; {cite}`lad2024remarkable`,
# building on residual networks' tolerance of deleted layers {cite}`veit2016residual` and on
# self-repair {cite}`mcgrath2023hydra,rushing2024selfrepair`). If we delete one
# transformer block, or run two adjacent blocks in exchanged order, how much of the model's
# behaviour survives? The paper reports that a single middle-layer intervention keeps 72-95% of
# the model's top-1 predictions, that intervening on the first layer (and, for Pythia, the last)
# is catastrophic and raises the entropy of the predictions, that swapping two adjacent middle
# layers hurts less than dropping one, and that dropping only an MLP hurts most in the final
# layers.
#
# **What this page does.** It loads a real model, samples `n_tokens` tokens of English prose,
# and runs every whole-block drop, every adjacent swap, and every attention-only and MLP-only
# drop, comparing each intervened model with the unperturbed one at every predicted position
# (definitions in [Methods](../methods.md)). Shaded bands are 95% bootstrap intervals over
# sequences.
#
# **Time to run.** With the defaults the numbers are read from the book's results pack (256
# sequences of 128 tokens; the sweep took about three hours on a 2-core CPU) and its first two
# sequences are recomputed to check it: about a minute and a half. Other parameters compute
# everything now: about 2.5 s per intervention per 1,000 tokens on a 2-core CPU for
# gemma-3-270m (71 interventions), or a GPU, e.g. `stages run robustness -p model
# EleutherAI/pythia-1.4b-deduped -p n_tokens 1000000 -p seq_len 1024 -p device cuda`.

# %%

import numpy as np
import pandas as pd
from IPython.display import HTML, Markdown, display

from stages import stats
from stages.book.page import open_page
from stages.book.present import data_table, verdict_table
from stages.claims import verdict_summary
from stages.depth import layers_where, scored, span, stack
from stages.claims.robustness import MIDDLE, most_damaging, robustness_claims
from stages.engine.sweep import sweep_table
from stages.formats import estimate, number, percent
from stages.plots.robustness import component_figure, robustness_figure, swap_vs_drop_zoom
from stages.plots.schematics import intervention_schematic

# %% [markdown]
# ## Figure 2: what a drop and a swap do

# %%
intervention_schematic()

# %% [markdown]
# **Figure 2** (the paper's Figure 2). The two interventions, drawn on four consecutive blocks of
# the residual stream (bottom: the token embedding; top: the unembedding). Each block (attention
# and MLP, with their norms) reads the stream and adds its output back. *Drop*: block i is
# removed and the stream skips it (a zero ablation of the whole block). *Swap*: blocks i and i+1
# run in exchanged order, each with its own weights. This page applies a drop at every layer and
# a swap at every adjacent pair, plus drops of only the attention or only the MLP of a block.

# %% tags=["parameters"]
model = "gemma-3-270m"  # the embedded default, or a Hugging Face name / local folder
n_tokens = 32768  # tokens scored per intervention (rounded up to whole sequences of seq_len)
seq_len = 128  # tokens per sequence, BOS included
batch_size = 8  # sequences per forward pass
device = "auto"  # "auto", "cpu", "cuda"
dtype = "float32"  # "float32", "bfloat16", "float64"
corpus = "default"  # the shipped public-domain prose, a local file, or a hub dataset
seed = 0  # which sequences are sampled, and the bootstrap
pack = "default"  # "default": the shipped results pack when these are its parameters; "none"; or a pack's folder

# %%
page = open_page("robustness", globals())
res = page.results()
sums = res.sums("sweep")  # per sequence: every intervention's metric sums
table = sweep_table(sums, n_layers=res.n_layers, seed=seed)
page.source(res)
name, n_layers = res.name, res.n_layers
baseline = table[table.kind == "none"].iloc[0]


def ci(row: pd.Series, column: str) -> str:
    """``row[column]`` with its 95% interval, as text (a share in percent)."""
    show = percent if column == "rel_acc" else estimate
    return show(row[column], row[f"{column}_lo"], row[f"{column}_hi"])


display(Markdown(
    f"**{name}**: {n_layers} layers, {len(table) - 1} interventions, each scored on "
    f"{int(baseline.n_tokens):,} positions ({int(baseline.n_seq)} sequences of "
    f"{res.recipe.seq_len} tokens). Unperturbed, the model's loss on this text is "
    f"{estimate(baseline.baseline_loss, baseline.loss_lo, baseline.loss_hi)} nats per token and "
    f"its predictions' entropy {number(baseline.baseline_entropy)} bits."
))

# %% [markdown]
# ## Figure 3: swaps and drops across depth

# %%
page.chart(robustness_figure(table, title=f"Figure 3 ({name}): swap vs drop of single layers"),
           table, "figure-3")

# %% [markdown]
# **Figure 3** (the paper's Figure 3). KL divergence from the unperturbed model, relative accuracy
# (share of top-1 predictions kept) and entropy change, for dropping layer *i* and for swapping
# layers *i* and *i+1*, against relative depth. Bands: 95% bootstrap intervals over sequences.

# %% [markdown]
# Over the middle layers only (relative depth 0.25-0.75), is a swap gentler than a drop?

# %%
middle_rows = table[table.kind.isin(["drop", "swap"]) & table.rel_depth.between(*MIDDLE)]
page.chart(swap_vs_drop_zoom(table, MIDDLE, title=f"Figure 3, zoom ({name}): KL in the middle "
                             "layers"), middle_rows, "figure-3-zoom")

# %% [markdown]
# **Figure 3, zoom.** The KL of swaps and drops over the middle layers only, where the paper finds
# swaps gentler than drops.

# %% [markdown]
# ## Figures 13-15: attention-only and MLP-only drops

# %%
components = table[table.kind.isin(["drop_attn", "drop_mlp"])]
page.chart(component_figure(table, title=f"Figures 13-15 ({name}): dropping only the attention "
                            "or only the MLP"), components, "figures-13-15")

# %% [markdown]
# **Figures 13-15** (the paper's appendix B). The same three metrics when only the attention or
# only the MLP of a layer is dropped.

# %% [markdown]
# ## Do the paper's claims hold for this model?
#
# Each claim is a statistic of the per-sequence sums with a 95% bootstrap interval over
# sequences, compared *paired* (on the same resampled sequences) where two interventions are
# involved. A claim about every middle layer is decided layer by layer, from a simultaneous band
# over those layers. *Holds*: the whole interval is on the claim's side of its threshold; *does
# not hold*: entirely on the other side; *unclear*: it contains the threshold. Each claim's
# statistic and rule are behind its "how it is decided".

# %%
verdicts = robustness_claims(sums, n_layers, seed=seed)
ends = [v for v in verdicts if v.claim.startswith(("the first", "the last", "swapping the last"))]
display(HTML(verdict_table([v for v in verdicts if v not in ends], caption="The paper's claims "
                           f"about the middle layers and the MLP, on {name}")))
display(HTML(verdict_table(ends, caption=f"The paper's claims about the first and last layers, "
                           f"on {name}")))
drops = table[table.kind == "drop"].set_index("layer")
swaps = table[table.kind == "swap"].set_index("layer")
worst = {kind: most_damaging(table, kind, k=1).iloc[0] for kind in ("drop", "swap")}
first = drops.loc[0]
middle = [layer for layer in layers_where(n_layers, *MIDDLE) if layer in swaps.index]
above = [layer for layer in middle if drops.kl[layer] > first.kl]
first_worst = worst["drop"].layer == 0
display(Markdown(
    f"The paper finds the first layer the most fragile. Here dropping layer 0 costs "
    f"{ci(first, 'kl')} nats of KL and keeps {ci(first, 'rel_acc')} of top-1 predictions"
    + (", the most damaging drop" if first_worst else
       f", while the most damaging drop, of layer {worst['drop'].layers}, costs "
       f"{ci(worst['drop'], 'kl')} and keeps {ci(worst['drop'], 'rel_acc')}")
    + f"; the most damaging swap is of layers {worst['swap'].layers}, {ci(worst['swap'], 'kl')} "
    "nats. Of the "
    f"{len(middle)} middle layers ({span(middle)}), "
    + (f"only layer{'s' * (len(above) > 1)} {', '.join(map(str, above))} "
       f"{'hurts' if len(above) == 1 else 'hurt'} more than "
       "the first when dropped: the claims that the first layer hurts most fail on "
       f"{'this layer' if len(above) == 1 else 'these layers'}." if above else
       "none hurts more than the first when dropped.")
))

# %% [markdown]
# ### Why is one middle layer catastrophic?

# %%
config = getattr(getattr(res.model, "original_model", None), "config", None)
layer_types = list(getattr(config, "layer_types", None) or [])
kinds = ("drop", "drop_attn", "drop_mlp")
typed = len(layer_types) == n_layers and {"full_attention", "sliding_attention"} <= set(layer_types)
if typed:
    values = stack(sums, [f"{kind} {layer}:kl" for kind in kinds for layer in range(n_layers)])
    est, dist = stats.bootstrap(values, scored(sums), seed=seed)
    est, dist = est.reshape(len(kinds), n_layers), dist.reshape(len(kinds), n_layers, -1)
    glob = [layer for layer, t in enumerate(layer_types) if t == "full_attention"]
    kept = drops.rel_acc
    bad = [layer for layer in range(n_layers) if kept[layer] < 0.25]  # keeps under a quarter
    others = [layer for layer in range(n_layers) if layer not in glob and layer not in bad]
    others = others or [layer for layer in range(n_layers) if layer not in glob]

    def kl(kind: str, layers: list[int]) -> tuple[float, float, float]:
        """Mean KL of ``kind`` over ``layers`` with its 95% interval (paired over sequences)."""
        k = kinds.index(kind)
        lo, hi = stats.percentile(dist[k, layers].mean(0))
        return float(est[k, layers].mean()), float(lo), float(hi)

    def row(label: str, layers: list[int], kind_of: str) -> dict:
        """One row of the table below: the mean KL of each kind over ``layers``."""
        out = {"layers": label, "attention": kind_of}
        for kind in kinds:
            out[kind], out[f"{kind}_lo"], out[f"{kind}_hi"] = kl(kind, layers)
        return out

    types = {"full_attention": "global", "sliding_attention": "local (sliding window)"}
    shown = [row(str(layer), [layer], types[layer_types[layer]]) for layer in sorted({*glob, *bad})]
    shown.append(row(f"the other {len(others)} (mean)", others, "local (sliding window)"))
    rope = getattr(config, "rope_parameters", None) or {}
    bases = [rope.get(t, {}).get("rope_theta") for t in ("sliding_attention", "full_attention")]
    window = getattr(config, "sliding_window", None)
    seq = res.recipe.seq_len
    where = (f"At {seq}-token sequences a {window}-token window sees the whole sequence, so here "
             "local and global layers differ only in their weights"
             + (f" and rotary base ({bases[0]:,.0f} local, {bases[1]:,.0f} global)"
                if all(bases) else "") + ". " if window and window >= seq else "")
    target = int(drops.kl.idxmax())
    t_full, t_attn, t_mlp = (kl(kind, [target]) for kind in kinds)
    rest = [layer for layer in glob if layer != target]
    bad_local = [layer for layer in bad if layer not in glob]

    def said(kind: str, layer: int) -> str:
        """The KL of ``kind`` at ``layer`` with its interval, as text."""
        return estimate(*kl(kind, [layer]))

    low, high = est[0, others].min(), est[0, others].max()
    benign = bool(rest) and all(low <= est[0, layer] <= high for layer in rest)

    display(Markdown(
        f"In {name}'s configuration, layers {', '.join(map(str, glob))} use global attention and "
        f"the others a sliding window of {window} tokens. " + where
        + f"Is layer {target} catastrophic because it is "
        + ("the first global layer? " if target == glob[0] else "a global layer? " if target in glob
           else "special? It is a local layer. ")
        + f"Dropping it gives a KL of {estimate(*t_full)} nats; dropping only its attention "
        f"{estimate(*t_attn)}, only its MLP {estimate(*t_mlp)}: the damage comes through its "
        f"{'attention' if t_attn[0] > t_mlp[0] else 'MLP'}. "
        + (f"The other global layer{'s' if len(rest) > 1 else ''}, "
           + " and ".join(f"{layer} at {said('drop', layer)}" for layer in rest)
           + (", lie within" if benign else ", do not all lie within")
           + f" the range of the other local layers ({number(low)} to {number(high)} nats)"
           + (", so global attention alone does not make a layer catastrophic. " if benign
              else ". ") if rest else "")
        + ("Local layers can be catastrophic too: "
           + ", ".join(f"layer {layer} through its "
                       f"{'attention' if est[1, layer] > est[2, layer] else 'MLP'}"
                       for layer in bad_local) + " (the table). " if bad_local else "")
        + f"The numbers support an attention-driven failure at layer {target}; whether being the "
        "*first* global layer is what matters, one model with one such layer cannot say."
    ))
    display(HTML(data_table(
        pd.DataFrame(shown), caption=f"Drop KL (nats, 95% interval over {len(sums)} sequences) "
        "of the global layers, of the layers whose drop keeps under a quarter of top-1 "
        "predictions, and the mean of the other local layers: the whole block, only its "
        "attention, only its MLP.",
        columns={"layers": "layer", "attention": "attention", "drop": "whole block",
                 "drop_attn": "attention only", "drop_mlp": "MLP only"},
    )))
else:
    display(Markdown(f"{name}'s configuration names no attention type per layer; skipped."))

# %% [markdown]
# ## The numbers

# %%
display(HTML(data_table(
    table[table.kind != "none"].assign(kind=lambda t: t.kind.map({
        "drop": "drop", "swap": "swap", "drop_attn": "drop attention", "drop_mlp": "drop MLP"})),
    caption=f"Every intervention of the sweep on {name}: KL from the unperturbed model (nats), "
    "share of top-1 predictions kept, entropy change (bits) and loss (nats), each a mean over "
    f"{int(baseline.n_tokens):,} positions with its 95% bootstrap interval over "
    f"{int(baseline.n_seq)} sequences.",
    columns={"kind": "intervention", "layers": "layer(s)", "rel_depth": "relative depth",
             "kl": "KL", "rel_acc": "top-1 kept", "entropy_delta": "entropy change",
             "loss": "loss"},
)))

# %% [markdown]
# ## Exercises
#
# Answer before you open a solution; each solution is computed from this page's numbers.

# %% [markdown]
# **1. Predict, then run.** Which single layer's drop hurts this model most (largest KL)? Write
# down a layer before opening the solution, then find it in Figure 3.

# %% tags=["hide-cell"]
# Solution 1
r = worst["drop"]
display(Markdown(f"Dropping layer {r.layers} (relative depth {number(r.rel_depth)}): KL "
                 f"{ci(r, 'kl')} nats, {ci(r, 'rel_acc')} of top-1 predictions kept. "
                 "The paper: the first layer, in every model."))

# %% [markdown]
# **2. Swap or drop?** In what fraction of the middle layers is swapping layers i and i+1
# gentler (lower KL) than dropping layer i? Guess, then check.

# %% tags=["hide-cell"]
# Solution 2
gentler = int((swaps.loc[middle, "kl"] < drops.loc[middle, "kl"]).sum())
display(Markdown(f"At {gentler} of the {len(middle)} middle layers ({span(middle)}) the swap "
                 "has the lower KL (point estimates; the verdict above says at how many the "
                 "difference is clear). The paper finds swaps gentler than drops in the middle "
                 "of the network."))

# %% [markdown]
# ## Summary

# %%
def kept_range(kind: str) -> str:
    """The least and most of top-1 predictions kept over the middle layers, as text."""
    rows = (drops if kind == "drop" else swaps).loc[middle]
    lo, hi = rows.loc[rows.rel_acc.idxmin()], rows.loc[rows.rel_acc.idxmax()]
    word = "layers" if kind == "swap" else "layer"
    return (f"between {ci(lo, 'rel_acc')} at {word} {lo.layers} and {ci(hi, 'rel_acc')} at "
            f"{word} {hi.layers}")


k = len(middle)
pairs = stack(sums, [f"swap {layer}-{layer + 1}:kl" for layer in middle]
              + [f"drop {layer}:kl" for layer in middle])
gap, gap_dist = stats.bootstrap(pairs, scored(sums), lambda m: m[:k] - m[k:], seed=seed)
gap_lo, gap_hi = stats.simultaneous(gap, gap_dist)  # per layer, holding together
extreme = int(abs(gap).argmax())
rest_mean = [float(x) for x in (np.delete(gap, extreme).mean(),
                                *stats.percentile(np.delete(gap_dist, extreme, 0).mean(0)))]
mlp = table[table.kind == "drop_mlp"].set_index("layer")
mlp_top = mlp.loc[mlp.kl.idxmax()]
mlp_mid = mlp.loc[middle, "kl"].median()
final = mlp[mlp.rel_depth > MIDDLE[1]]
final_top = final.loc[final.kl.idxmax()]
findings = [
    f"Dropping a single middle layer ({span(middle)}) keeps {kept_range('drop')} of top-1 "
    f"predictions on {name}; swapping two adjacent ones keeps {kept_range('swap')} (the paper: "
    "72-95%).",
    (f"The first layer is the most fragile: dropping it costs {ci(first, 'kl')} nats of KL "
     if first_worst else
     f"The first layer is not the most fragile: dropping it costs {ci(first, 'kl')} nats of KL, "
     f"dropping layer {worst['drop'].layers} costs {ci(worst['drop'], 'kl')} ")
    + "(the paper: the first layer is catastrophic in every model). "
    f"Dropping the first layer does raise the entropy, by {ci(first, 'entropy_delta')} bits, as "
    "the paper finds.",
    f"Layer by layer, a swap of layers i and i+1 is clearly harsher than dropping layer i at "
    f"{int((gap_lo > 0).sum())} of the {k} middle layers and clearly gentler at "
    f"{int((gap_hi < 0).sum())} (simultaneous 95% band; the paper: gentler in the middle). "
    f"Leaving out layer {middle[extreme]}, where the difference is largest at "
    f"{estimate(gap[extreme], gap_lo[extreme], gap_hi[extreme])} nats, KL(swap) − KL(drop) "
    f"averages {estimate(*rest_mean)} nats.",
    f"Dropping only an MLP hurts most at layer {mlp_top.layers}, {ci(mlp_top, 'kl')} nats; "
    f"among the final layers most at layer {final_top.layers}, {ci(final_top, 'kl')}, against "
    f"a median of {number(mlp_mid)} over the middle layers (the paper: MLP drops hurt most in "
    "the final layers).",
]
if typed:
    findings.append(
        f"Layer {target}'s drop fails through its "
        f"{'attention' if t_attn[0] > t_mlp[0] else 'MLP'}: dropping only its attention costs "
        f"{estimate(*t_attn)} nats, only its MLP {estimate(*t_mlp)}"
        + (f"; the other global-attention layers ({', '.join(map(str, rest))}) cost no more "
           "than local ones, so being global does not explain it." if benign else ".")
    )
display(Markdown(verdict_summary(verdicts, findings=tuple(findings))))

# %% [markdown]
# ## What's next
#
# The first layer is where the paper places stage 1: [detokenization](02_detokenization.ipynb)
# asks whether the early layers attend to the previous few tokens. What a swapped layer writes is
# compared in [appendix A](07_appendix_cosine_similarity.ipynb); spans of layers, beyond single
# ones, in [depth edits](09_depth_edits.ipynb).

# %% [markdown]
# ---

# %%
page.footer(res)
