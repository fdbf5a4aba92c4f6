"""The paper's two schematic figures, drawn as SVG.

What the interventions do (Figure 2) and what the swap similarities compare (Figure 11).

They are diagrams, not data: each function returns a :class:`Schematic`, which a notebook
displays inline (an ``<svg class="stages-schematic">`` in the page, so it prints as vectors and
needs no JavaScript) and whose ``svg`` text can be saved. Coordinates are SVG user units
(pixels at 100%); the drawing scales down to the text width (``_static/stages.css``).
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from stages.plots import CATEGORY_COLORS, FONT
from stages.plots.book import SIMILARITY_COLORS

BLUE, ORANGE = CATEGORY_COLORS[0], CATEGORY_COLORS[3]
SELF, INDEX, GREY = (SIMILARITY_COLORS[m][0] for m in ("self", "index", "adjacent"))
INK = "#333333"
STREAM = "#c9d6e3"  # the residual stream


@dataclass(frozen=True)
class Schematic:
    """An SVG diagram with its accessible title.

    Attributes:
        title: what the drawing shows, in one sentence (the SVG's ``<title>``).
        svg: the complete ``<svg>`` element.
    """

    title: str
    svg: str

    def _repr_html_(self) -> str:
        return self.svg


def _svg(name: str, width: int, height: int, title: str, body: list[str]) -> Schematic:
    """The ``<svg>`` element; ``name`` keeps its arrowhead's id unique in a one-page book."""
    head = (
        f'<svg class="stages-schematic" xmlns="http://www.w3.org/2000/svg" role="img" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'font-family="{FONT}" font-size="13" fill="{INK}">'
        f"<title>{escape(title)}</title>"
        f'<defs><marker id="arrow-{name}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        f'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
        f'fill="{INK}"/></marker></defs>'
    )
    return Schematic(title, head + "".join(body) + "</svg>")


def _text(x: float, y: float, text: str, **attrs: str | float) -> str:
    extra = "".join(f' {k.replace("_", "-")}="{v}"' for k, v in attrs.items())
    return f'<text x="{x}" y="{y}"{extra}>{escape(text)}</text>'


def _arrow(x1: float, y1: float, x2: float, y2: float, *, color: str = INK,
           width: float = 1.5) -> str:  # fmt: skip
    """A line with Figure 2's arrowhead (the only figure with arrows)."""
    return (f'<line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" stroke="{color}" '
            f'stroke-width="{width}" marker-end="url(#arrow-figure-2)"/>')  # fmt: skip


def _block(x: float, y: float, label: str, *, fill: str, dashed: bool = False,
           w: float = 118, h: float = 34) -> str:  # fmt: skip
    """A transformer block (attention + MLP): a rounded box, its label centred."""
    border = f'stroke="{GREY}" stroke-dasharray="5 4"' if dashed else f'stroke="{INK}"'
    colour = GREY if dashed else "#ffffff"
    return (
        f'<rect x="{x}" y="{y}" width="{w}" height="{h}" rx="6" fill="{fill}" {border}/>'
        + _text(x + w / 2, y + h / 2 + 4.5, label, text_anchor="middle", fill=colour,
                font_weight="bold")
    )  # fmt: skip


def intervention_schematic() -> Schematic:
    """Figure 2: the model, a dropped layer and a swap of two adjacent layers.

    Each panel is four consecutive blocks on the residual stream (bottom: embedding; top:
    unembedding). A block reads the stream and adds its output back. Dropping layer i removes
    it: the stream skips it. Swapping layers i and i+1 runs block i+1 first, each with its own
    weights.
    """
    panels = (
        ("The model", [("layer i−1", BLUE), ("layer i", BLUE), ("layer i+1", BLUE),
                       ("layer i+2", BLUE)], None),
        ("Drop layer i", [("layer i−1", BLUE), ("dropped", None), ("layer i+1", BLUE),
                          ("layer i+2", BLUE)], "the stream skips layer i"),
        ("Swap layers i and i+1", [("layer i−1", BLUE), ("layer i+1", ORANGE),
                                   ("layer i", ORANGE), ("layer i+2", BLUE)],
         "i+1 runs first, then i"),
    )  # fmt: skip
    width, height, panel_w = 750, 330, 250
    body = []
    bottom, top, step = 270, 50, 52
    for k, (name, blocks, note) in enumerate(panels):
        x0 = k * panel_w
        stream_x = x0 + 50
        body.append(_text(x0 + panel_w / 2 - 10, 22, name, text_anchor="middle",
                          font_weight="bold", font_size=14))  # fmt: skip
        body.append(f'<line x1="{stream_x}" y1="{bottom + 28}" x2="{stream_x}" y2="{top - 6}" '
                    f'stroke="{STREAM}" stroke-width="10"/>')  # fmt: skip
        body.append(_arrow(stream_x, bottom + 28, stream_x, top - 8, color=GREY, width=1))
        body.append(_text(stream_x, bottom + 44, "embed", text_anchor="middle", font_size=11))
        body.append(_text(stream_x, top - 14, "unembed", text_anchor="middle", font_size=11))
        for j, (label, colour) in enumerate(blocks):
            y = bottom - (j + 1) * step
            bx = stream_x + 40
            body.append(_block(bx, y, label, fill=colour or "#f4f4f4", dashed=colour is None))
            if colour is None:
                continue
            body.append(_arrow(stream_x + 6, y + 27, bx - 2, y + 27, width=1.2))  # reads
            body.append(_arrow(bx - 2, y + 8, stream_x + 8, y + 8, width=1.2))  # writes
            body.append(f'<circle cx="{stream_x}" cy="{y + 8}" r="6" fill="#ffffff" '
                        f'stroke="{INK}"/>' + _text(stream_x, y + 12, "+", text_anchor="middle",
                                                    font_size=12))  # fmt: skip
        if note:
            body.append(_text(x0 + panel_w / 2 - 10, bottom + 44 + 18, note, text_anchor="middle",
                              font_style="italic", font_size=12))  # fmt: skip
    title = ("Figure 2: the residual stream with four blocks; dropping layer i removes its "
             "block; swapping layers i and i+1 runs block i+1 before block i")  # fmt: skip
    return _svg("figure-2", width, height + 10, title, body)


def similarity_schematic() -> Schematic:
    """Figure 11: what the self, index and adjacent similarities compare after a swap.

    Left, the unperturbed model; right, the model with layers i and i+1 swapped. Each block's
    output (of one component, attention or MLP) is a dot; a line between two dots is one cosine
    similarity (:mod:`stages.analyses.swap_similarity`): *self*, the same weights at their new
    position against their own baseline output; *index*, the output at a position against the
    baseline output at that position; *adjacent*, the baseline outputs of layers i and i+1.
    """
    width, height = 680, 330  # the text column: drawn at 100%, its 11-px labels stay 11 px
    left_x, right_x, w = 90, 450, 140
    rows = {"i+1": 56, "i": 176}  # position -> y of its block (top of the box)
    body = [
        _text(left_x + w / 2, 24, "Unperturbed model", text_anchor="middle", font_weight="bold",
              font_size=14),
        _text(right_x + w / 2, 24, "Layers i and i+1 swapped", text_anchor="middle",
              font_weight="bold", font_size=14),
    ]  # fmt: skip
    dots = {}
    for side, x, weights in (("base", left_x, {"i": "i", "i+1": "i+1"}),
                             ("swap", right_x, {"i": "i+1", "i+1": "i"})):  # fmt: skip
        for position, y in rows.items():
            colour = BLUE if weights[position] == "i" else ORANGE
            body.append(_block(x, y, f"layer {weights[position]}", fill=colour, w=w, h=36))
            body.append(_text(x - 12 if side == "base" else x + w + 12, y + 23,
                              f"position {position}",
                              text_anchor="end" if side == "base" else "start", font_size=11))
            dots[(side, weights[position])] = (x + w + 10 if side == "base" else x - 10, y + 18)

    def line(x1: float, y1: float, x2: float, y2: float, colour: str, dash: str) -> str:
        dashed = f' stroke-dasharray="{dash}"' if dash else ""
        return (f'<line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" stroke="{colour}" '
                f'stroke-width="2.4"{dashed}/>')  # fmt: skip

    kinds = (
        ("index", INDEX, "", "the output now at a position against the output the "
         "unperturbed model had there", [(("base", "i"), ("swap", "i+1")),
                                         (("base", "i+1"), ("swap", "i"))]),
        ("self", SELF, "7 4", "a layer's output at its new position against its own "
         "output in the unperturbed model", [(("base", "i"), ("swap", "i")),
                                             (("base", "i+1"), ("swap", "i+1"))]),
    )  # fmt: skip
    for k, (name, colour, dash, meaning, pairs) in enumerate(kinds):
        for a, b in pairs:
            body.append(line(*dots[a], *dots[b], colour, dash))
        y = 250 + 24 * k
        body.append(line(120, y - 4, 160, y - 4, colour, dash))
        body.append(_text(170, y, name, fill=colour, font_weight="bold")
                    + _text(230, y, meaning, font_size=12))  # fmt: skip
    (ax, ay1), (_, ay2) = dots[("base", "i")], dots[("base", "i+1")]
    body.append(f'<path d="M{ax},{ay1} C{ax + 45},{ay1 - 25} {ax + 45},{ay2 + 25} {ax},{ay2}" '
                f'fill="none" stroke="{GREY}" stroke-width="2.4"/>')  # fmt: skip
    body.append(f'<path d="M120,294 C135,288 145,288 160,294" fill="none" stroke="{GREY}" '
                'stroke-width="2.4"/>')  # fmt: skip
    body.append(_text(170, 298, "adjacent", fill=GREY, font_weight="bold")
                + _text(230, 298, "the outputs of layers i and i+1 in the unperturbed model",
                        font_size=12))  # fmt: skip
    for cx, cy in dots.values():
        body.append(f'<circle cx="{cx}" cy="{cy}" r="5" fill="{INK}"/>')
    body.append(_text(width / 2, height - 6, "each line: the cosine similarity of two outputs of "
                      "one component (attention or MLP), per token", text_anchor="middle",
                      font_style="italic", font_size=12))  # fmt: skip
    title = ("Figure 11: the self, index and adjacent similarities between the outputs of the "
             "unperturbed model and of the model with layers i and i+1 swapped")  # fmt: skip
    return _svg("figure-11", width, height, title, body)
