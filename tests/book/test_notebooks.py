"""Every notebook, found by glob, runs through papermill with small parameters.

The real book then builds from them with warnings as errors, and each page works in a browser
with no network.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from stages import book
from tests.conftest import require_browser, shared_results
from tests.support import browser

pytestmark = [pytest.mark.book, pytest.mark.real]

ROOT = Path(__file__).resolve().parents[2]
# Small values for the parameters the sections share; each section gets those it declares.
SMALL = {"n_tokens": 64, "seq_len": 32, "batch_size": 2, "device": "cpu", "n_per_class": 32,
         "n_cloze": 4}  # fmt: skip


@pytest.fixture(scope="module")
def small_book(tmp_path_factory) -> tuple[Path, Path]:
    """Build a copy of the book (sources only) with SMALL parameters; return (root, html)."""
    root = tmp_path_factory.mktemp("book")
    shutil.copytree(
        ROOT / "notebooks", root / "notebooks", ignore=shutil.ignore_patterns("*.ipynb")
    )
    (root / "book").mkdir()
    for path in (ROOT / "book").iterdir():
        if path.is_file():
            shutil.copy(path, root / "book" / path.name)
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy(ROOT / name, root / name)
    shutil.copytree(ROOT / "benchmarks" / "results", root / "benchmarks" / "results")
    shared_results()
    html = book.build_book(root, SMALL, echo=False, progress_bar=False)
    return root, html


def test_every_section_executes_with_small_parameters(small_book):
    root, html = small_book
    for section in book.discover_sections(ROOT):
        executed = root / "book" / "_executed" / f"{section.stem}.ipynb"
        text = executed.read_text()
        assert '"output_type": "error"' not in text
        assert "Provenance" in text, f"{section.name}: no provenance footer"
        assert "Run it yourself" in text and f"stages run {section.name}" in text
        assert "## Exercises" in text and '"hide-cell"' in text, f"{section.name}: no exercises"
        assert (html / "book" / "_executed" / f"{section.stem}.html").exists()


@pytest.mark.parametrize("section", [s.stem for s in book.discover_sections(ROOT)])
def test_each_page_shows_its_charts_offline(section, small_book):
    require_browser()
    _, html = small_book
    with browser.serve_directory(html) as url:
        report = browser.check_page_in_browser(f"{url}book/_executed/{section}.html")
    assert report["errors"] == [], json.dumps(report, indent=1)
    assert report["external_requests"] == [], report["external_requests"]
    assert (
        report["n_altair_outputs"] >= 1 and len(report["chart_boxes"]) >= report["n_altair_outputs"]
    )
    assert all(box["width"] > 50 and box["height"] > 50 for box in report["chart_boxes"])
    assert report["tooltip_ok"], report
    with browser.serve_directory(html) as url:
        static = browser.static_figures_without_javascript(f"{url}book/_executed/{section}.html")
    assert len(static) == report["n_altair_outputs"], static  # every chart, without JavaScript
    assert all(box["width"] > 50 and box["height"] > 50 for box in static)


def _toc_pages(html: Path) -> list[Path]:
    toc = book.render_toc(book.discover_sections(ROOT))
    docs = ["book/intro", *book.REFERENCE_PAGES] + [s.docname for s in book.discover_sections(ROOT)]
    assert all(doc in toc for doc in docs)
    return [html / f"{doc}.html" for doc in docs]


def test_every_link_of_every_page_resolves(small_book):
    """TOC entries, cross-references between pages, citations and in-page anchors."""
    _, html = small_book
    pages = _toc_pages(html)
    assert all(page.is_file() for page in pages)
    assert browser.broken_links(html, pages) == []


@pytest.mark.parametrize("doc", ["book/intro", "book/methods", "book/references"])
def test_hand_written_pages_work_offline(doc, small_book):
    """No console errors, nothing fetched from the network (the methods page's math included)."""
    require_browser()
    _, html = small_book
    with browser.serve_directory(html) as url:
        report = browser.check_page_in_browser(f"{url}{doc}.html")
    assert report["errors"] == [] and report["external_requests"] == [], json.dumps(
        report, indent=1
    )
