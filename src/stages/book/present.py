"""How a page shows its numbers to a reader: formatted values, verdicts at a glance, folds.

Every page uses these, so a verdict, an interval or a table looks the same everywhere:

- :func:`number` and :func:`estimate` (from :mod:`stages.formats`): three significant digits, an
  interval as ``a (b to c)``;
- :func:`verdict_table`: a page's verdicts in four columns (claim, verdict, estimate with its 95%
  interval, n), the statistic, rule and numbers of each behind a fold under its claim;
- :func:`data_table`: a table of numbers with a caption, ``x`` / ``x_lo`` / ``x_hi`` columns
  merged into one, folded when it is long;
- :func:`fold`: anything behind a ``<details>`` toggle;
- :func:`neuron_table`: the strongest prediction or suppression neurons and the tokens they move
  (stages 3 and 4 show the two classes the same way).

Everything is HTML (``IPython.display.HTML``): a claim's text may hold characters Markdown would
read as syntax (``|attention out| / |MLP out|``), and HTML shows them as they are.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
from markdown_it import MarkdownIt

from stages.formats import estimate, number
from stages.stats import Verdict

__all__ = ["badge", "data_table", "estimate", "fold", "markdown", "neuron_table", "number",
           "verdict_matrix", "verdict_table"]  # fmt: skip

LONG_TABLE = 12
"""Rows above which :func:`data_table` folds a table."""

_MARKDOWN = MarkdownIt("commonmark").enable("table")


def markdown(text: str) -> str:
    """CommonMark (with tables) to HTML, for prose inside a fold."""
    return _MARKDOWN.render(text)


VERDICT_CLASS = {
    "holds": "holds",
    "does not hold": "fails",
    "unclear": "unclear",
    "no evidence": "noevidence",
    "not enough data": "nodata",
}
"""The CSS class of each verdict's badge (``_static/stages.css``)."""


def badge(verdict: str) -> str:
    """A verdict as a coloured badge (HTML)."""
    return f'<span class="verdict verdict-{VERDICT_CLASS[verdict]}">{html.escape(verdict)}</span>'


def verdict_estimate(v: Verdict | Any) -> str:
    """A verdict's value with its 95% interval, ``""`` when it has no value."""
    return estimate(v.value, v.lo, v.hi)


def _how(v: Verdict | Any) -> str:
    """The fold under a claim: statistic, rule, numbers, the paper's figure and the source."""
    items = [
        ("Statistic", v.statistic),
        ("Rule", v.rule),
        ("Numbers", v.detail),
        ("In the paper", v.figure),
        ("Source", v.source),
    ]
    body = "".join(f"<dt>{k}</dt><dd>{html.escape(str(t))}</dd>" for k, t in items if t)
    return f'<details class="how"><summary>how it is decided</summary><dl>{body}</dl></details>'


def verdict_table(verdicts: Sequence[Verdict], *, caption: str = "") -> str:
    """A page's verdicts at a glance: claim, verdict, estimate (95% interval), n.

    Each claim carries a fold with its statistic, its rule exactly as applied, the numbers
    behind it, the paper's figure and the claim's source.

    Returns:
        HTML (display it with ``IPython.display.HTML``).
    """
    rows = [
        f"<tr><td>{html.escape(v.claim)}{_how(v)}</td><td>{badge(v.verdict)}</td>"
        f"<td>{verdict_estimate(v)}</td><td>{v.n:,} {html.escape(v.unit)}</td></tr>"
        for v in verdicts
    ]
    head = "<tr><th>claim</th><th>verdict</th><th>estimate (95% interval)</th><th>n</th></tr>"
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return (f'<table class="stages-verdicts">{cap}<thead>{head}</thead>'
            f"<tbody>{''.join(rows)}</tbody></table>")  # fmt: skip


def verdict_matrix(
    claims: pd.DataFrame, models: Sequence[str], *, pages: Mapping[str, str], caption: str = ""
) -> str:
    """Every claim of several models at a glance, grouped by the page that tests it.

    Args:
        claims: :func:`stages.results.verdicts.decide_all` of each model with a ``model``
            column; a claim is one row per model, matched by ``group`` and ``number``.
        models: the models, in column order.
        pages: each group's page (``"01_robustness"``), for the group's heading link.
        caption: the table's caption.

    Returns:
        HTML: per group a heading row linking its page, then per claim its wording (each
        model's, where they differ), its source, and per model the verdict with its estimate
        and n; the rule and numbers behind a fold.
    """
    head = ("<tr><th>claim</th><th>source</th>"
            + "".join(f"<th>{html.escape(m)}</th>" for m in models) + "</tr>")  # fmt: skip
    body = []
    for group, rows in claims.groupby("group", sort=False):
        link = pages.get(group)
        title = (f'<a href="{link}.html">{html.escape(group)}</a>' if link
                 else html.escape(group))  # fmt: skip
        body.append(f'<tr class="group"><th colspan="{len(models) + 2}">{title}</th></tr>')
        for _, claim in rows.groupby("number", sort=False):
            claim = claim.set_index("model")
            wordings = list(dict.fromkeys(claim["claim"]))
            text = wordings[0] if len(wordings) == 1 else "; ".join(
                f"{w} ({', '.join(claim.index[claim['claim'] == w])})" for w in wordings
            )  # fmt: skip
            first = claim.iloc[0]
            cells = []
            for m in models:
                if m not in claim.index:
                    cells.append("<td></td>")
                    continue
                v = claim.loc[m]
                numbers = verdict_estimate(v)
                cells.append(f"<td>{badge(v.verdict)}"
                             + (f"<br>{numbers}<br><small>n = {int(v.n):,} {html.escape(v.unit)}"
                                "</small>" if numbers else "") + "</td>")  # fmt: skip
            body.append(f"<tr><td>{html.escape(text)}{_how(first)}</td>"
                        f"<td>{html.escape(first.source)}</td>{''.join(cells)}</tr>")  # fmt: skip
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return (f'<table class="stages-verdicts stages-matrix">{cap}<thead>{head}</thead>'
            f"<tbody>{''.join(body)}</tbody></table>")  # fmt: skip


def _merged(frame: pd.DataFrame) -> pd.DataFrame:
    """``x``, ``x_lo``, ``x_hi`` (numbers) merged into one text column ``x``."""
    out = pd.DataFrame(index=frame.index)
    for column in frame.columns:
        if column.endswith(("_lo", "_hi")) and column[:-3] in frame.columns:
            continue
        values = frame[column]
        if f"{column}_lo" in frame.columns and f"{column}_hi" in frame.columns:
            bounds = zip(values, frame[f"{column}_lo"], frame[f"{column}_hi"], strict=True)
            out[column] = [estimate(v, lo, hi) for v, lo, hi in bounds]
        elif pd.api.types.is_float_dtype(values):
            out[column] = [number(v) for v in values]
        else:
            out[column] = values.astype(str)
    return out


def data_table(
    frame: pd.DataFrame, *, caption: str, columns: Mapping[str, str] | None = None,
    fold_over: int = LONG_TABLE,
) -> str:  # fmt: skip
    """A table of numbers for a reader: three significant digits, intervals merged, a caption.

    Args:
        frame: the table; a column ``x`` with ``x_lo`` and ``x_hi`` is shown as ``x (lo to hi)``.
        caption: what the table shows (units, what n counts).
        columns: the columns to show and their headings (default: all, as named).
        fold_over: fold the table behind a toggle when it has more rows than this.

    Returns:
        HTML.
    """
    shown = _merged(frame)
    if columns is not None:
        shown = shown[list(columns)].rename(columns=dict(columns))
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in shown.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(x))}</td>" for x in row) + "</tr>"
        for row in shown.itertuples(index=False)
    )
    table = (f'<table class="stages-data"><caption>{html.escape(caption)}</caption>'
             f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")  # fmt: skip
    if len(shown) > fold_over:
        return fold(f"{caption.rstrip('.')} ({len(shown):,} rows)", table)
    return table


def fold(summary: str, content: str, *, open_: bool = False) -> str:
    """``content`` (HTML) behind a toggle labelled ``summary`` (plain text)."""
    flag = " open" if open_ else ""
    return (f'<details class="stages-fold"{flag}><summary>{html.escape(summary)}</summary>'
            f"{content}</details>")  # fmt: skip


def neuron_table(strongest: pd.DataFrame, cls: str, name: str) -> str:
    """A :func:`stages.analyses.neurons.top_neurons` table as HTML, with its caption.

    Args:
        strongest: one row per neuron (``layer``, ``neuron``, ``kurtosis``, ``tokens``,
            ``cosines``: the cosines joined by spaces, first to last).
        cls: ``"prediction"`` (tokens whose unembedding is most aligned with what the neuron
            writes) or ``"suppression"`` (most opposed).
        name: the model, as the caption names it.
    """
    relation = {"prediction": "aligned with", "suppression": "opposed to"}[cls]
    shown = strongest.assign(
        cosine=[f"{c.split()[0]} to {c.split()[-1]}" for c in strongest["cosines"]]
    )
    return data_table(
        shown,
        caption=f"The {cls} neurons of {name} with the highest kurtosis, and the "
        f"{len(strongest['cosines'].iloc[0].split()) if len(strongest) else 0} tokens whose "
        f"unembedding is most {relation} what each neuron writes (their cosine similarities "
        "with it, from the first to the last).",
        columns={"layer": "layer", "neuron": "neuron", "kurtosis": "kurtosis",
                 "tokens": "tokens", "cosine": "cosines"},
    )  # fmt: skip
