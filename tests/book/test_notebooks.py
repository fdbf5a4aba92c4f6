"""The whole book: every page executed completely, built, linked and working offline.

The book under test is the checkout's own (``book/_executed`` and ``_build/html``, which
``bash setup.sh`` builds with the default parameters) when every executed page is current: made
from today's notebook source, package code and committed inputs (results packs, benchmark
results), with the default parameters (the stamp :func:`stages.book.execute.stamp` writes into
each notebook), and rendered after it and after the hand-written pages and settings. Otherwise a
copy of the book is built here, the same way. One section is also re-executed with small
parameters, the path a reader takes with ``stages run SECTION -p NAME VALUE``.
"""

from __future__ import annotations

import json
import re
import shutil
import unicodedata
from pathlib import Path

import pytest

from stages import book
from stages.book.execute import is_current
from stages.book.reader import in_reader_mode
from tests.conftest import require_browser, shared_results
from tests.support import browser

pytestmark = [pytest.mark.book, pytest.mark.real]

ROOT = Path(__file__).resolve().parents[2]
# Small values for the parameters the sections share; each section gets those it declares.
SMALL = {"n_tokens": 64, "seq_len": 32, "batch_size": 2, "device": "cpu", "n_per_class": 32,
         "n_cloze": 4}  # fmt: skip


def _current_build(root: Path) -> Path | None:
    """``root``'s rendered book if it is current, else None.

    Current: every page's stamp matches, its code is folded as the default book folds it, and
    its HTML is newer than the page and than every hand-written page and setting.
    """
    html = root / "_build" / "html"
    settings = [root / "_config.yml", root / "_toc.yml", root / "_static" / "stages.css",
                *sorted((root / "book").glob("*.*"))]  # fmt: skip
    newest = max(path.stat().st_mtime for path in settings if path.is_file())
    for section in book.discover_sections(root):
        executed = root / book.EXECUTED_DIR / f"{section.stem}.ipynb"
        page = html / book.EXECUTED_DIR / f"{section.stem}.html"
        if not (is_current(executed, section.path, {}, root) and page.is_file()):
            return None
        if not in_reader_mode(executed):  # rendered with --show-code: not the default book
            return None
        if page.stat().st_mtime < max(newest, executed.stat().st_mtime):
            return None
    return html


@pytest.fixture(scope="module")
def built_book(tmp_path_factory) -> tuple[Path, Path]:
    """``(root, html)``: the checkout's current book, or a copy built now with the defaults."""
    if (html := _current_build(ROOT)) is not None:
        return ROOT, html
    root = tmp_path_factory.mktemp("book")
    shutil.copytree(
        ROOT / "notebooks", root / "notebooks", ignore=shutil.ignore_patterns("*.ipynb")
    )
    (root / "book").mkdir()
    for path in (ROOT / "book").iterdir():
        if path.is_file():
            shutil.copy(path, root / "book" / path.name)
    for name in ("_config.yml", "_toc.yml", "_static/stages.css"):
        (root / name).parent.mkdir(exist_ok=True)
        shutil.copy(ROOT / name, root / name)
    shutil.copytree(ROOT / "benchmarks" / "results", root / "benchmarks" / "results")
    shared_results()
    html = book.build_book(root, echo=False, progress_bar=False)
    assert _current_build(root) == html
    return root, html


def test_every_section_executed_completely(built_book):
    root, html = built_book
    for section in book.discover_sections(ROOT):
        executed = root / "book" / "_executed" / f"{section.stem}.ipynb"
        text = executed.read_text()
        assert '"output_type": "error"' not in text
        assert "Provenance" in text, f"{section.name}: no provenance footer"
        assert "Run it yourself" in text and f"stages run {section.name}" in text
        assert "## Exercises" in text and '"hide-cell"' in text, f"{section.name}: no exercises"
        assert "## Summary" in text and "## What's next" in text, f"{section.name}: no summary"
        assert "Live slice check: FAILED" not in text and "**FAILED**" not in text
        assert (html / "book" / "_executed" / f"{section.stem}.html").exists()


def test_a_section_reexecutes_with_small_parameters(tmp_path):
    """``stages run robustness -p n_tokens 64 ...``: computed now, for the reader's sample."""
    declared = book.read_parameters("robustness", ROOT)
    small = {name: value for name, value in SMALL.items() if name in declared}
    out = book.execute_notebook("robustness", small, root=ROOT, out_dir=tmp_path,
                                progress_bar=False)  # fmt: skip
    text = out.read_text()
    assert '"output_type": "error"' not in text and "Computed now" in text
    assert is_current(out, book.get_section("robustness", ROOT).path, small, ROOT)


@pytest.mark.parametrize("section", [s.stem for s in book.discover_sections(ROOT)])
def test_each_page_shows_its_charts_offline(section, built_book):
    require_browser()
    _, html = built_book
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


def test_every_link_of_every_page_resolves(built_book):
    """TOC entries, cross-references between pages, citations and in-page anchors."""
    _, html = built_book
    pages = _toc_pages(html)
    assert all(page.is_file() for page in pages)
    assert browser.broken_links(html, pages) == []


@pytest.mark.parametrize("doc", ["book/intro", *book.REFERENCE_PAGES])
def test_hand_written_pages_work_offline(doc, built_book):
    """No console errors, nothing fetched from the network (the methods page's math included)."""
    require_browser()
    _, html = built_book
    with browser.serve_directory(html) as url:
        report = browser.check_page_in_browser(f"{url}{doc}.html")
    assert report["errors"] == [] and report["external_requests"] == [], json.dumps(
        report, indent=1
    )


_EVERY_PAGE = ["book/intro", *book.REFERENCE_PAGES,
               *(f"{book.EXECUTED_DIR}/{s.stem}" for s in book.discover_sections(ROOT))]


@pytest.mark.parametrize("doc", _EVERY_PAGE)
def test_every_page_fits_its_column_at_1280_and_400_px(doc, built_book):
    """Nothing a reader finds cut or too tall, at 1280 px and at 400 px.

    No chart past the text column, no sideways scroll, no unfolded table taller than the window
    (900 px); chart fonts of at least 11 px at 1280 px (at 400 px a chart scales down with the
    column).
    """
    require_browser()
    _, html = built_book
    with browser.serve_directory(html) as url:
        for width in (1280, 400):
            report = browser.layout_report(f"{url}{doc}.html", width=width)
            right = report["column"]["right"] + 2
            cut = [c for c in report["charts"] if c["right"] > right]
            assert cut == [] and report["wide"] == [], (width, cut, report["wide"])
            assert report["page_width"] <= report["viewport"], (width, report["page_width"])
            assert report["tables"] == [], (width, report["tables"])
            if width == 1280:
                small = [c["small_text"] for c in report["charts"] if c["min_font"] is not None
                         and c["min_font"] < 11 - 0.05]  # fmt: skip
                assert small == [], small


def test_the_introduction_states_the_books_conclusions(built_book):
    _, html = built_book
    intro = (html / "book" / "intro.html").read_text()
    assert "Of the paper’s claims (v1) this book tests: on <strong>gemma-3-270m</strong>" in intro
    assert "hold on every model" in intro and "this build holds none" not in intro


def test_the_committed_verdict_ledger_is_the_one_the_book_decides(built_book):
    """The What holds page rewrote ``data/results/verdicts.csv``: it must equal the commit's.

    A change that moves a verdict or a number commits the ledger with it (the changelog page
    lists the moves); with packs grown but not committed yet, the comparison waits for their
    commit. A failure prints the rows that differ (a statistic counts within ``ledger.RTOL``).
    """
    import subprocess

    import pandas as pd

    from stages.results.ledger import LEDGER, ledger_differences, pending_moves, read_ledger

    ledger = f"data/results/{LEDGER}"

    def git(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True)

    if git("rev-parse", "HEAD").returncode != 0:
        pytest.skip("not a git checkout: no committed ledger to compare")
    if git("status", "--porcelain", "--", "data/results/*/manifest.json").stdout.strip():
        pytest.skip("the results packs differ from the commit: their verdicts too, until committed")
    moves = pending_moves(ROOT / "data" / "results")
    assert moves is not None and moves.empty, (
        "the book decides other verdicts than data/results/verdicts.csv records; commit it:\n"
        + moves.to_string()
    )
    written = read_ledger(ROOT / "data" / "results" / LEDGER)
    committed = read_ledger(git("show", f"HEAD:{ledger}").stdout.encode())
    differences = ledger_differences(committed, written)
    with pd.option_context("display.width", 250, "display.max_columns", None):
        assert differences.empty, (
            "the book decides the same verdicts with other numbers; commit the ledger:\n"
            + differences.to_string()
        )
    assert not git("status", "--porcelain", "--", ledger).stdout.strip()


@pytest.mark.parametrize("section", ["01_robustness", "07_appendix_cosine_similarity"])
def test_the_papers_schematics_are_drawn_and_the_code_is_folded(section, built_book):
    require_browser()
    _, html = built_book
    with browser.serve_directory(html) as url:
        report = browser.folded_code_report(f"{url}book/_executed/{section}.html")
    assert len(report["schematics"]) == 1, report
    assert report["schematics"][0]["width"] > 300 and report["schematics"][0]["height"] > 150
    assert report["folded"] >= 3 and report["hidden_before"] and report["shown_after"], report
    assert report["parameters_shown"], report


_STRAIGHT = str.maketrans({"“": '"', "”": '"', "‘": "'", "’": "'"})


def _plain(text: str) -> str:
    """Text compared as words: ligatures undone, curly quotes straightened, spaces collapsed."""
    return " ".join(unicodedata.normalize("NFKC", text).translate(_STRAIGHT).split())


def test_the_print_edition_holds_every_page_and_figure(built_book):
    """``stages book --pdf``: one PDF, offline; every page's title, every chart, every caption."""
    require_browser()
    import nbformat
    import pypdf

    root, _ = built_book
    pdf = book.build_pdf(root, echo=False)
    printed = json.loads(pdf.with_suffix(".json").read_text())
    pages = [p.extract_text() for p in pypdf.PdfReader(pdf).pages]
    blank = [i + 1 for i, page in enumerate(pages) if len(page.strip()) < 40]
    assert blank == [], f"pages with no content: {blank}"
    text = _plain("\n".join(pages))
    charts = 0
    for section in book.discover_sections(ROOT):
        nb = nbformat.read(root / book.EXECUTED_DIR / f"{section.stem}.ipynb", as_version=4)
        title = next(line[2:] for c in nb.cells if c.cell_type == "markdown"
                     for line in c.source.splitlines() if line.startswith("# "))  # fmt: skip
        assert _plain(title) in text, f"{section.name}: its title is not in the PDF"
        captions = {m for c in nb.cells if c.cell_type == "markdown"
                    for m in re.findall(r"\*\*(Figures? [0-9][0-9.a-z-]*)", c.source)}  # fmt: skip
        assert all(caption in text for caption in captions), (section.name, captions)
        charts += sum("vegaEmbed(" in o.get("data", {}).get("text/html", "")
                      for c in nb.cells if c.cell_type == "code" for o in c.outputs)  # fmt: skip
    assert printed == {"charts": charts, "drawn": charts, "schematics": 2, "blocked": 0}
    assert "Unperturbed model" in text and "the stream skips layer" in text  # the schematics
    for page in ("Methods", "References"):
        assert page in text
