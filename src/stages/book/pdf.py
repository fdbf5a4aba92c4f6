"""The print edition: the whole book as one PDF, offline, with the system's chromium.

``stages book --pdf`` (after the HTML book) runs :func:`build_pdf`:

1. ``jupyter-book build <root> --builder singlehtml`` renders every page of the TOC into one
   HTML page (the TOC's root, ``book/intro.html``, copied to ``_build/singlehtml/book.html``
   because its links are relative to the build's top folder), with the same executed
   notebooks, figures, captions, cross-references and bibliography as the HTML book;
2. Debian's chromium (:mod:`stages.book.browser`) opens it from 127.0.0.1 with every request
   elsewhere refused, waits until every Altair chart has drawn (a chart that does not draw
   stops the build: a PDF is never printed with a figure missing), and prints it to
   ``_build/pdf/book.pdf`` (A4, page numbers in the footer) with the book's print style
   (``_static/stages.css``: folded code stays out, each chapter starts a page).

Jupyter Book's own ``pdfhtml`` builder downloads a chromium through pyppeteer, and its LaTeX
builder needs a TeX installation; neither works offline here.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import shutil
import threading
import urllib.parse
from collections.abc import Iterator
from functools import partial
from pathlib import Path

from stages.book.browser import system_chromium

PDF = Path("_build") / "pdf" / "book.pdf"
"""The print edition, relative to the book's root."""

SINGLEHTML = Path("_build") / "singlehtml"
"""Where the one-page HTML edition is rendered, relative to the book's root."""

CHARTS = "[id^='altair-viz-'], .vega-embed"
DRAWN_COUNT = f"""() => [...document.querySelectorAll("{CHARTS}")].filter(
  chart => chart.querySelector("svg.marks g[class*='mark-'], canvas")).length"""
"""JavaScript: how many charts Vega has drawn (marks in their SVG, or a canvas)."""

MATH_TYPESET = """async (ms) => {
  const mj = window.MathJax;
  if (!mj || !mj.startup || !mj.startup.promise) { return; }
  await Promise.race([mj.startup.promise, new Promise((_, no) => setTimeout(no, ms))]);
}"""
"""Waits for MathJax 3 to typeset the page (pages without math have no MathJax)."""

FOOTER = (
    '<div style="font-size:8px; width:100%; text-align:center; color:#666;">'
    '<span class="pageNumber"></span> / <span class="totalPages"></span></div>'
)


class PdfBuildError(RuntimeError):
    """The print edition could not be made (the message says what is missing)."""


@contextlib.contextmanager
def _serve(directory: Path) -> Iterator[str]:
    """Serve ``directory`` on 127.0.0.1 (a free port) from a thread; yield the base URL."""
    handler = partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base's name
        pass


def print_to_pdf(html: Path, out: Path, *, timeout_ms: int = 120_000) -> dict[str, int]:
    """Print one HTML page (and what it loads from its folder) to a PDF with chromium.

    Args:
        html: the page (``_build/singlehtml/book.html``).
        out: the PDF to write (its folder is created).
        timeout_ms: how long to wait for the page and for its charts to draw.

    Returns:
        ``{"charts": n, "drawn": n, "schematics": n, "blocked": 0}``: the Altair charts on the
        page, those drawn, the schematic SVG figures, and the requests to other hosts refused
        (always 0: any stops the print).

    Raises:
        PdfBuildError: a chart did not draw within ``timeout_ms``, the page asked for anything
            from the network, or no chromium is installed.
    """
    try:
        return _print(Path(html), Path(out), timeout_ms)
    except FileNotFoundError as exc:  # no chromium: the message says how to install it
        raise PdfBuildError(str(exc)) from exc


def _print(html: Path, out: Path, timeout_ms: int) -> dict[str, int]:
    blocked: list[str] = []

    def route(route_, request) -> None:
        host = urllib.parse.urlparse(request.url).hostname
        if request.url.startswith(("data:", "blob:")) or host == "127.0.0.1":
            route_.continue_()
        else:
            blocked.append(request.url)
            route_.abort()

    with _serve(html.parent) as base, system_chromium() as browser:
        context = browser.new_context(viewport={"width": 1100, "height": 1400})
        context.route("**/*", route)
        page = context.new_page()
        page.goto(base + html.name, wait_until="load", timeout=timeout_ms)
        n_charts = page.locator(CHARTS).count()
        try:
            page.wait_for_function(f"() => ({DRAWN_COUNT})() === {n_charts}", timeout=timeout_ms)
        except Exception as exc:  # playwright's TimeoutError
            raise PdfBuildError(
                f"only {page.evaluate(DRAWN_COUNT)} of the {n_charts} charts of {html} drew "
                f"within {timeout_ms / 1000:.0f} s: no PDF is printed with a figure missing"
            ) from exc
        page.evaluate(MATH_TYPESET, timeout_ms)  # MathJax typesets the formulas first
        if blocked:
            raise PdfBuildError(
                f"{html} asked for {len(blocked)} resources from the network (the first: "
                f"{blocked[0]}); an offline print would miss them"
            )
        counts = {
            "charts": n_charts,
            "drawn": page.evaluate(DRAWN_COUNT),
            "schematics": page.locator("svg.stages-schematic").count(),
            "blocked": len(blocked),
        }
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.partial")
        page.pdf(
            path=str(tmp),
            format="A4",
            print_background=True,
            margin={"top": "16mm", "bottom": "18mm", "left": "14mm", "right": "14mm"},
            display_header_footer=True,
            header_template="<span></span>",
            footer_template=FOOTER,
        )
        tmp.replace(out)
    return counts


def _root_doc(root: Path) -> str:
    """The TOC's root document (``book/intro``): the one page the singlehtml builder writes."""
    import yaml

    return yaml.safe_load((root / "_toc.yml").read_text())["root"]


def build_pdf(root: Path, *, echo: bool = True, warnings_as_errors: bool = True) -> Path:
    """Render the book's one-page HTML edition and print it to ``<root>/_build/pdf/book.pdf``.

    Uses the executed notebooks already in ``book/_executed`` (run ``stages book`` first; a
    section never executed is left out, as in the HTML build); the Vega bundle, the folded code
    and the introduction's conclusions are those the HTML build wrote. MathJax typesets the
    formulas before the page is printed.

    Args:
        root: the book's root folder.
        echo: echo jupyter-book's output (it is always written to ``_build/singlehtml.log``).
        warnings_as_errors: pass ``-W`` to jupyter-book.

    Returns:
        The PDF's path. Beside it, ``book.json`` records what was printed
        (:func:`print_to_pdf`'s counts).

    Raises:
        BookBuildError: the one-page HTML build failed (names its log).
        PdfBuildError: no chromium is installed (checked first), a chart did not draw, or the
            page asked for anything from the network.
    """
    from stages.book.build import (
        BookBuildError,
        _jupyter_book_command,
        _run_logged,
        toc_of_executed,
    )
    from stages.book.sections import discover_sections

    if shutil.which("chromium") is None:  # before the minute of the one-page build
        raise PdfBuildError(
            "no chromium on PATH: install Debian's package (apt-get install -y chromium)"
        )
    root = Path(root).resolve()
    cmd = [*_jupyter_book_command(), "build", str(root), "--builder", "singlehtml", "-n",
           "--keep-going"]  # fmt: skip
    if warnings_as_errors:
        cmd.append("-W")
    cmd += toc_of_executed(root, discover_sections(root))
    log = root / "_build" / "singlehtml.log"
    code, excerpt = _run_logged(cmd, log, cwd=root, echo=echo)
    single = root / SINGLEHTML / f"{_root_doc(root)}.html"  # index.html only redirects there
    if code != 0 or not single.exists():
        raise BookBuildError(code, log, excerpt or f"no {single} was written")
    # Its links (_static/, _images/) are relative to the build's top folder: print it from there.
    page = root / SINGLEHTML / "book.html"
    page.write_bytes(single.read_bytes())
    out = root / PDF
    counts = print_to_pdf(page, out)
    out.with_suffix(".json").write_text(json.dumps(counts, indent=1) + "\n")
    if echo:
        print(f"[stages] printed {counts['charts']} charts and {counts['schematics']} schematics "
              f"to {out} ({out.stat().st_size / 1e6:.1f} MB)")  # fmt: skip
    return out
