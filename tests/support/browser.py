"""Check a built book page as a reader would: Debian's chromium driven by Python playwright.

:func:`serve_directory` serves the HTML on 127.0.0.1; :func:`check_page_in_browser` opens a
page and reports console errors, requests to any other host, the sizes of the drawn charts and
whether a tooltip appears on hover (recipe: ``shared/BOOK-RECIPE.md``). Never a browser
download: the system ``chromium`` is used.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from stages.book.browser import system_chromium as _browser

HARMLESS_BROWSER_ERRORS = ("Got invalid theme mode",)
"""Console errors every Jupyter Book 1.0.4 page logs (plus a favicon 404); see BOOK-RECIPE.md.
(Its third, "Identifier 'THEBE_JS_URL' has already been declared", is gone: the book's Sphinx
extension keeps one of each script, :func:`stages.book.sphinx._one_of_each_script`.)"""

def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def serve_directory(directory: Path, *, timeout: float = 10.0) -> Iterator[str]:
    """Serve ``directory`` with ``python -m http.server`` on 127.0.0.1 and a free port.

    Yields:
        The base URL, ``http://127.0.0.1:PORT/``. The server is stopped (by its PID) on exit.
    """
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)],
        cwd=str(directory),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"http.server did not start on port {port}") from None
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class _Record:
    errors: list[str] = field(default_factory=list)
    harmless: list[str] = field(default_factory=list)
    external: list[str] = field(default_factory=list)


def _is_local(url: str) -> bool:
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme in ("data", "blob", "about", "javascript"):
        return True
    return parsed.hostname == "127.0.0.1"


def _is_favicon(url: str) -> bool:
    return urllib.parse.urlparse(url).path.rstrip("/").endswith("favicon.ico")


_MARK_SELECTORS = (
    # points and bars first: the centre of their box is on the mark
    "svg.marks g.mark-symbol [role='graphics-symbol']",
    "svg.marks g.mark-rect [role='graphics-symbol']",
    "svg.marks [role='graphics-symbol']",
    "svg.marks g[class*='mark-'] path:not(.background)",  # marks drawn without ARIA roles
)

_TOOLTIP_VISIBLE = (
    "() => { const t = document.getElementById('vg-tooltip-element');"
    " return !!t && t.classList.contains('visible') && t.textContent.trim().length > 0; }"
)


def _hover_for_tooltip(page, *, per_selector: int = 6, wait_ms: int = 1000) -> tuple[bool, str]:
    """Move the mouse over chart marks (scrolled into view) until a vega-tooltip shows."""
    tried = 0
    for selector in _MARK_SELECTORS:
        items = page.locator(selector)
        for i in range(min(items.count(), per_selector)):
            item = items.nth(i)
            try:
                item.scroll_into_view_if_needed(timeout=wait_ms)
            except Exception:  # noqa: BLE001 - hidden or detached: try the next one
                continue
            box = item.bounding_box()
            if not box or box["width"] <= 0 or box["height"] <= 0:
                continue
            page.mouse.move(0, 0)
            page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2, steps=2)
            tried += 1
            try:
                page.wait_for_function(_TOOLTIP_VISIBLE, timeout=wait_ms)
            except Exception:  # noqa: BLE001 - no tooltip on this mark: try the next one
                continue
            return True, page.locator("#vg-tooltip-element").inner_text()
    return False, ""


def check_page_in_browser(
    url: str,
    *,
    chromium: str | None = None,
    timeout_ms: int = 20_000,
    hover: bool = True,
    screenshot: Path | None = None,
) -> dict[str, Any]:
    """Open a built page in headless chromium as a reader would, and report what went wrong.

    Drives the system's chromium (Debian's ``chromium`` on PATH; never a downloaded browser)
    with Python playwright. Requests to any host other than 127.0.0.1 are recorded and
    aborted (a page must work offline). Waits for every Altair chart on the page to render,
    measures the charts, and hovers the marks of the first chart until a vega-tooltip appears.

    Args:
        url: the page, served from 127.0.0.1 (see :func:`serve_directory`).
        chromium: the browser executable; ``shutil.which("chromium")`` by default.
        timeout_ms: how long to wait for the page and for each chart.
        hover: try the tooltip.
        screenshot: also save a full-page screenshot there.

    Returns:
        A dict with

        - ``errors``: console errors, page errors, failed requests and HTTP errors, except the
          harmless ones Jupyter Book 1.0.4 always logs (listed in ``harmless_errors``);
        - ``harmless_errors``: those, for the record;
        - ``external_requests``: URLs of requests to hosts other than 127.0.0.1;
        - ``n_altair_outputs``: the number of Altair chart containers on the page;
        - ``chart_boxes``: ``{"x", "y", "width", "height"}`` of each ``svg.marks`` or canvas;
        - ``image_boxes``: the same for the page's ``img`` elements in the content;
        - ``tooltip_ok``: whether hovering a mark showed ``#vg-tooltip-element`` (None when
          there is no chart or ``hover`` is False);
        - ``tooltip_text``: the tooltip's text.

    Raises:
        FileNotFoundError: if no chromium is found.
    """
    record = _Record()

    def on_console(msg) -> None:
        if msg.type != "error":
            return
        text = msg.text
        location = (msg.location or {}).get("url", "")
        if any(h in text for h in HARMLESS_BROWSER_ERRORS) or (
            _is_favicon(location) and "404" in text
        ):
            record.harmless.append(text)
        elif "Failed to load resource" in text and not _is_local(location):
            record.harmless.append(f"(blocked external request) {location}")
        else:
            record.errors.append(f"console: {text}" + (f" ({location})" if location else ""))

    def on_page_error(exc) -> None:
        text = str(exc)
        if any(h in text for h in HARMLESS_BROWSER_ERRORS):
            record.harmless.append(text)
        else:
            record.errors.append(f"pageerror: {text}")

    def on_response(response) -> None:
        if response.status >= 400 and _is_local(response.url):
            if _is_favicon(response.url):
                record.harmless.append(f"{response.status} {response.url}")
            else:
                record.errors.append(f"http {response.status}: {response.url}")

    def on_request_failed(request) -> None:
        if _is_local(request.url):
            record.errors.append(f"request failed: {request.url} ({request.failure})")

    def route(route_, request) -> None:
        if _is_local(request.url):
            route_.continue_()
        else:
            record.external.append(request.url)
            route_.abort()

    result: dict[str, Any] = {}
    with _browser(chromium) as browser:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.on("console", on_console)
        page.on("pageerror", on_page_error)
        page.on("response", on_response)
        page.on("requestfailed", on_request_failed)
        context.route("**/*", route)
        page.goto(url, wait_until="load", timeout=timeout_ms)
        with contextlib.suppress(Exception):
            page.wait_for_load_state("networkidle", timeout=timeout_ms)

        n_altair = page.locator("[id^='altair-viz-'], .vega-embed").count()
        marks = page.locator("svg.marks, .vega-embed canvas")
        if n_altair:
            with contextlib.suppress(Exception):
                page.wait_for_function(
                    "n => document.querySelectorAll('svg.marks, .vega-embed canvas').length >= n",
                    arg=n_altair,
                    timeout=timeout_ms,
                )
        chart_boxes = [
            b for b in (marks.nth(i).bounding_box() for i in range(marks.count())) if b is not None
        ]
        images = page.locator("article img, main img, .bd-content img")
        image_boxes = [
            b
            for b in (images.nth(i).bounding_box() for i in range(images.count()))
            if b is not None
        ]

        tooltip_ok: bool | None = None
        tooltip_text = ""
        if hover and chart_boxes:
            tooltip_ok, tooltip_text = _hover_for_tooltip(page)
        if screenshot is not None:
            page.screenshot(path=str(screenshot), full_page=True)
        result = {
            "url": url,
            "errors": list(record.errors),
            "harmless_errors": list(record.harmless),
            "external_requests": list(record.external),
            "n_altair_outputs": n_altair,
            "chart_boxes": chart_boxes,
            "image_boxes": image_boxes,
            "tooltip_ok": tooltip_ok,
            "tooltip_text": tooltip_text,
        }
    return result


def static_figures_without_javascript(url: str, *, timeout_ms: int = 20_000) -> list[dict]:
    """Open a page with JavaScript off; return the boxes of the static SVG figures it shows.

    :mod:`stages.plots` puts an SVG copy of every chart in ``<noscript>``; with scripts
    disabled the browser draws those instead of the interactive charts.
    """
    with _browser() as browser:
        context = browser.new_context(
            java_script_enabled=False, viewport={"width": 1280, "height": 900}
        )
        page = context.new_page()
        page.goto(url, wait_until="load", timeout=timeout_ms)
        figures = page.locator(".stages-static-figure svg")
        return [b for b in (figures.nth(i).bounding_box() for i in range(figures.count())) if b]


class _Links(HTMLParser):
    """The ``href`` of every ``<a>`` and the ``id`` of every element of one HTML page."""

    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if values.get("id"):
            self.ids.add(values["id"])
        if tag == "a" and values.get("href"):
            self.hrefs.append(values["href"])


def broken_links(html_dir: Path, pages: Iterable[Path]) -> list[str]:
    """Links of ``pages`` (built HTML files) that point at nothing in the built book.

    Every relative ``<a href>`` must name a file of ``html_dir`` and, when it has a
    ``#fragment``, an element with that id in the target page (TOC entries, cross-references,
    citations and in-page anchors alike). Links to other sites are not followed (the book has
    to work offline; the browser check reports requests that leave 127.0.0.1).

    Returns:
        ``"page: href (reason)"`` for every broken link.
    """
    html_dir = Path(html_dir).resolve()
    parsed: dict[Path, _Links] = {}

    def parse(path: Path) -> _Links:
        if path not in parsed:
            parser = _Links()
            parser.feed(path.read_text(encoding="utf-8", errors="replace"))
            parsed[path] = parser
        return parsed[path]

    broken = []
    for page in pages:
        page = Path(page).resolve()
        for href in parse(page).hrefs:
            url = urllib.parse.urlparse(href)
            if url.scheme or url.netloc or href.startswith(("mailto:", "javascript:")):
                continue
            target = (page.parent / urllib.parse.unquote(url.path)).resolve() if url.path else page
            if target.is_dir():
                target = target / "index.html"
            where = f"{page.relative_to(html_dir)}: {href}"
            if not target.is_relative_to(html_dir) or not target.is_file():
                broken.append(f"{where} (no such file)")
            elif (
                url.fragment and target.suffix == ".html" and url.fragment not in parse(target).ids
            ):
                broken.append(f"{where} (no element with id {url.fragment!r})")
    return broken


def folded_code_report(url: str, *, timeout_ms: int = 20_000) -> dict[str, Any]:
    """Open a page in reader mode and unfold its first folded code cell, as a reader would.

    Returns:
        ``folded``: cells whose source sits behind a toggle (``details.hide.above-input``);
        ``hidden_before``: whether the first one's source was hidden before the click;
        ``shown_after``: whether it showed after clicking its toggle;
        ``parameters_shown``: whether the parameters cell's source shows without a click;
        ``schematics``: the boxes of the schematic figures (``svg.stages-schematic``).
    """
    with _browser() as browser:
        page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
        page.goto(url, wait_until="load", timeout=timeout_ms)
        toggles = page.locator("details.hide.above-input")
        folded = toggles.count()
        hidden_before = shown_after = False
        if folded:
            source = toggles.first.locator(".cell_input")
            hidden_before = not source.is_visible()
            toggles.first.locator("summary").click()
            source.wait_for(state="visible", timeout=timeout_ms)
            shown_after = source.is_visible()
        parameters = page.locator(".tag_parameters .cell_input")
        schematics = page.locator("svg.stages-schematic")
        return {
            "folded": folded,
            "hidden_before": hidden_before,
            "shown_after": shown_after,
            "parameters_shown": parameters.count() == 1 and parameters.first.is_visible(),
            "schematics": [b for b in (schematics.nth(i).bounding_box()
                                       for i in range(schematics.count())) if b],  # fmt: skip
        }


_LAYOUT_JS = """
() => {
  const column = document.querySelector('article.bd-article') || document.querySelector('main');
  const col = column.getBoundingClientRect();
  const folded = el => {
    for (let d = el.closest('details'); d; d = d.parentElement.closest('details')) {
      if (!d.open) return true;
    }
    return false;
  };
  const charts = [...document.querySelectorAll('.vega-embed')].filter(e => !folded(e)).map(e => {
    const svg = e.querySelector('svg.marks');
    const box = (svg || e).getBoundingClientRect();
    const intrinsic = svg ? svg.width.baseVal.value : box.width;
    const scale = intrinsic ? box.width / intrinsic : 1;
    const sizes = svg ? [...svg.querySelectorAll('text')].filter(t => t.textContent.trim())
      .map(t => parseFloat(getComputedStyle(t).fontSize) * scale) : [];
    return {left: box.left, right: box.right, width: box.width, intrinsic: intrinsic,
            min_font: sizes.length ? Math.min(...sizes) : null,
            small_text: svg ? [...svg.querySelectorAll('text')].filter(t => t.textContent.trim()
              && parseFloat(getComputedStyle(t).fontSize) * scale < 11).slice(0, 3)
              .map(t => t.textContent.trim()) : []};
  });
  const tables = [...column.querySelectorAll('table')].filter(t => !folded(t)
    && t.getBoundingClientRect().height > window.innerHeight)
    .map(t => ({rows: t.rows.length, height: t.getBoundingClientRect().height,
                text: (t.caption ? t.caption.textContent : t.textContent).slice(0, 80)}));
  const scrolls = el => {  // a table in a box of its own that scrolls sideways in the column
    const table = el.closest('table');
    if (!table) return false;
    for (let p = table.parentElement; p && p !== column; p = p.parentElement) {
      const x = getComputedStyle(p).overflowX;
      if ((x === 'auto' || x === 'scroll') && p.getBoundingClientRect().right <= col.right + 2) {
        return true;
      }
    }
    return false;
  };
  const wide = [...column.querySelectorAll('*')].filter(e => !folded(e) && e.offsetParent !== null
    && e.getBoundingClientRect().right > col.right + 2 && !e.closest('.highlight, pre, .MathJax')
    && !scrolls(e))
    .slice(0, 5).map(e => e.tagName + '.' + (e.className.baseVal ?? e.className));
  return {column: {left: col.left, right: col.right, width: col.width}, charts, tables, wide,
          page_width: document.documentElement.scrollWidth, viewport: window.innerWidth};
}
"""


def layout_report(url: str, *, width: int = 1280, timeout_ms: int = 20_000) -> dict[str, Any]:
    """Open a page at a window ``width`` and measure what a reader would find cut or too small.

    Returns:
        ``column`` (the text column's box), ``charts`` (each visible chart's box, its drawn
        width against its own, the smallest font it draws in px as drawn, and up to three texts
        under 11 px), ``tables`` (visible tables taller than the window, not folded), ``wide``
        (visible elements reaching past the column's right edge, code and math aside, and
        tables in a box of their own that scrolls sideways within the column),
        ``page_width`` against ``viewport`` (a page wider than the window scrolls sideways).
    """
    with _browser() as browser:
        page = browser.new_context(viewport={"width": width, "height": 900}).new_page()
        page.goto(url, wait_until="load", timeout=timeout_ms)
        n = page.locator(".vega-embed").count()
        if n:
            with contextlib.suppress(Exception):
                page.wait_for_function(
                    "n => document.querySelectorAll('.vega-embed svg.marks').length >= n",
                    arg=n, timeout=timeout_ms,
                )  # fmt: skip
        return page.evaluate(_LAYOUT_JS)
