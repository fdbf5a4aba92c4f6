"""Tests for stages.book: sections, TOC, parameters, Vega bundle, and an end-to-end build.

The end-to-end tests (marked ``book``) build a tiny demo book in a temporary folder and open it
in Debian's chromium with playwright.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import nbformat
import pytest
import yaml

from stages import book
from tests.conftest import require_browser
from tests.support import browser

REPO = Path(__file__).resolve().parents[2]

DEMO_NOTEBOOK = """\
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
# # Demo section
#
# A tiny chart of a small table.

# %%
import altair as alt
import pandas as pd

# %% tags=["parameters"]
n = 3  # number of points
label = "demo"  # a string parameter
scale = 1.5
show = True
offset = 2 * 3

# %%
table = pd.DataFrame({"x": list(range(n)), "y": [scale * i * i for i in range(n)]})
print(f"n={n} label={label}")

# %%
alt.Chart(table).mark_circle(size=400).encode(
    x="x:Q", y="y:Q", tooltip=["x:Q", "y:Q"]
).properties(width=300, height=200, title="Demo squares")
"""

FAILING_NOTEBOOK = """\
# %% [markdown]
# # Failing section

# %% tags=["parameters"]
n = 1

# %%
raise RuntimeError(f"boom {n}")
"""

OTHER_NOTEBOOK = """\
# %% [markdown]
# # Other section

# %% tags=["parameters"]
label = "other"
"""


def make_demo_book(root: Path, *, intro: str | None = None) -> Path:
    """A minimal book under ``root``: the repo's _config.yml, one demo notebook, tiny pages."""
    (root / "notebooks").mkdir(parents=True)
    (root / "book").mkdir()
    shutil.copy(REPO / "_config.yml", root / "_config.yml")
    (root / "_static").mkdir()
    shutil.copy(REPO / "_static" / "stages.css", root / "_static" / "stages.css")
    (root / "notebooks" / "01_demo.py").write_text(DEMO_NOTEBOOK)
    (root / "book" / "intro.md").write_text(
        intro
        or textwrap.dedent(
            """\
            # Demo book

            A citation {cite}`demo2024` and some math, $D(P \\| Q) = \\sum_x P(x) \\log P(x)/Q(x)$.
            """
        )
    )
    (root / "book" / "methods.md").write_text("# Methods\n\nNothing here.\n")
    (root / "book" / "deviations.md").write_text("# Deviations\n\nNone here.\n")
    (root / "book" / "references.md").write_text("# References\n\n```{bibliography}\n```\n")
    (root / "book" / "references.bib").write_text(
        "@misc{demo2024,\n  title = {A demo},\n  author = {Doe, Jane},\n  year = {2024}\n}\n"
    )
    return root


# ---------------------------------------------------------------------------------------------
# sections and TOC


def test_sections_are_discovered_by_glob(tmp_path):
    nb = tmp_path / "notebooks"
    nb.mkdir()
    for name in ["02_b.py", "01_a.py", "10_x_y.py", "1_short.py", "03_c.txt", "notes.py"]:
        (nb / name).write_text("# %%\n")
    sections = book.discover_sections(tmp_path)
    assert [s.name for s in sections] == ["a", "b", "x_y"]
    assert [s.stem for s in sections] == ["01_a", "02_b", "10_x_y"]
    assert [s.number for s in sections] == ["01", "02", "10"]
    assert sections[0].docname == "book/_executed/01_a"


def test_the_book_has_the_papers_sections_in_the_papers_order():
    """The paper's order (DESIGN.md), then the book's own pages; a renamed file fails here."""
    assert book.SECTIONS == (
        "overview", "robustness", "detokenization", "feature_engineering", "ensembling",
        "sharpening", "case_studies", "appendix_cosine_similarity", "cross_model",
        "depth_edits", "layer_similarity", "cloze", "performance", "what_holds", "changelog",
    )  # fmt: skip


def test_duplicate_section_names_are_refused(tmp_path):
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / "01_a.py").write_text("")
    (tmp_path / "notebooks" / "02_a.py").write_text("")
    with pytest.raises(ValueError, match="01_a.py, 02_a.py"):
        book.discover_sections(tmp_path)


def test_unknown_section_lists_the_valid_ones(tmp_path):
    make_demo_book(tmp_path)
    assert book.get_section("01_demo", tmp_path).name == "demo"
    with pytest.raises(ValueError, match=r"unknown section 'nope'; valid sections: demo"):
        book.get_section("nope", tmp_path)


def test_committed_toc_is_in_sync_with_the_notebooks():
    expected = book.render_toc(book.discover_sections(REPO))
    actual = (REPO / "_toc.yml").read_text()
    assert actual == expected, (
        "_toc.yml is out of date: regenerate it with "
        "python -c 'from pathlib import Path; from stages import book; book.write_toc(Path(\".\"))'"
    )


def test_toc_structure(tmp_path):
    for name in ["02_b.py", "01_a.py"]:
        (tmp_path / "notebooks").mkdir(exist_ok=True)
        (tmp_path / "notebooks" / name).write_text("")
    toc = yaml.safe_load(book.render_toc(book.discover_sections(tmp_path)))
    assert toc["format"] == "jb-book"
    assert toc["root"] == "book/intro"
    assert [p["caption"] for p in toc["parts"]] == [book.SECTIONS_CAPTION, "Reference"]
    assert [c["file"] for c in toc["parts"][0]["chapters"]] == [
        "book/_executed/01_a",
        "book/_executed/02_b",
    ]
    assert [c["file"] for c in toc["parts"][1]["chapters"]] == [
        "book/methods",
        "book/deviations",
        "book/references",
    ]
    path = book.write_toc(tmp_path)
    assert path.read_text() == book.render_toc(book.discover_sections(tmp_path))


# ---------------------------------------------------------------------------------------------
# parameters


def test_parameters_cell_is_parsed(tmp_path):
    make_demo_book(tmp_path)
    params = book.read_parameters("demo", tmp_path)
    assert list(params) == ["n", "label", "scale", "show", "offset"]
    assert params["n"].default == 3 and params["n"].type is int
    assert params["n"].help == "number of points"
    assert params["label"].default == "demo" and params["label"].type_name == "str"
    assert params["scale"].type is float and params["show"].type is bool
    assert params["offset"].default is book.UNKNOWN and params["offset"].source == "2 * 3"


def test_notebook_without_parameters_cell(tmp_path):
    make_demo_book(tmp_path)
    (tmp_path / "notebooks" / "02_plain.py").write_text("# %%\nx = 1\n")
    assert book.read_parameters("plain", tmp_path) == {}
    assert book.coerce_parameters("plain", {}, tmp_path) == {}
    with pytest.raises(ValueError, match="no parameters cell"):
        book.coerce_parameters("plain", {"x": "2"}, tmp_path)


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("n", "20000", 20000),
        ("n", " 7 ", 7),
        ("n", "1e6", 1_000_000),
        ("n", "1_000", 1000),
        ("n", 5, 5),
        ("n", 4.0, 4),
        ("scale", "2", 2.0),
        ("scale", "0.25", 0.25),
        ("scale", 2, 2.0),
        ("show", "false", False),
        ("show", "True", True),
        ("show", "0", False),
        ("show", "yes", True),
        ("label", "20000", "20000"),
        ("label", "EleutherAI/pythia-1.4b-deduped", "EleutherAI/pythia-1.4b-deduped"),
        ("offset", "12", 12),  # expression default: typed like papermill's -p
        ("offset", "None", None),
        ("offset", "cuda", "cuda"),
    ],
)
def test_values_are_coerced_to_the_default_type(tmp_path, name, value, expected):
    make_demo_book(tmp_path)
    got = book.coerce_parameters("demo", {name: value}, tmp_path)[name]
    assert got == expected and type(got) is type(expected)


@pytest.mark.parametrize(
    ("name", "value", "type_name"),
    [
        ("n", "2.5", "int"),
        ("n", "abc", "int"),
        ("n", "", "int"),
        ("n", True, "int"),
        ("n", 2.5, "int"),
        ("scale", "fast", "float"),
        ("show", "maybe", "bool"),
        ("label", 3, "str"),
    ],
)
def test_bad_values_name_parameter_value_and_type(tmp_path, name, value, type_name):
    make_demo_book(tmp_path)
    with pytest.raises(ValueError) as err:
        book.coerce_parameters("demo", {name: value}, tmp_path)
    message = str(err.value)
    assert repr(name) in message and repr(value) in message and type_name in message


def test_unknown_parameter_lists_the_valid_names(tmp_path):
    make_demo_book(tmp_path)
    with pytest.raises(ValueError) as err:
        book.coerce_parameters("demo", {"n_tokens": "5"}, tmp_path)
    assert "'n_tokens'" in str(err.value)
    assert "valid parameters: n, label, scale, show, offset" in str(err.value)


def test_global_parameters_go_to_the_sections_that_declare_them(tmp_path):
    make_demo_book(tmp_path)
    (tmp_path / "notebooks" / "02_other.py").write_text(OTHER_NOTEBOOK)
    split = book.split_global_parameters(
        {"n": "5", "label": "x"}, book.discover_sections(tmp_path), tmp_path
    )
    assert split == {"demo": {"n": 5, "label": "x"}, "other": {"label": "x"}}
    with pytest.raises(ValueError, match="no section has a parameter 'nope'"):
        book.split_global_parameters({"nope": 1}, ["demo", "other"], tmp_path)


def test_bad_parameters_are_refused_before_anything_runs(tmp_path):
    make_demo_book(tmp_path)
    with pytest.raises(ValueError, match="'n'"):
        book.build_book(tmp_path, {"n": "many"})
    with pytest.raises(ValueError, match="unknown section"):
        book.build_book(tmp_path, sections=["nope"])
    assert not (tmp_path / "book" / "_executed").exists()
    assert not (tmp_path / "_build").exists()


# ---------------------------------------------------------------------------------------------
# the offline Vega bundle


def test_vega_bundle_is_wrapped_and_declares_versions(tmp_path):
    import altair as alt

    path = book.write_vega_bundle(tmp_path)
    assert path == tmp_path / "_static" / "vega-offline.js"
    text = path.read_text()
    assert len(text) > 300_000
    body_start = text.index("(function(){\n")
    assert text[:body_start].startswith("/*")  # only a comment before the wrapper
    assert "})();\nwindow.VEGA_DEBUG = Object.assign(window.VEGA_DEBUG || {}, {" in text
    tail = text[text.rindex("})();") :]
    for version in (alt.VEGA_VERSION, alt.VEGALITE_VERSION, alt.VEGAEMBED_VERSION):
        assert f'"{version}"' in tail
    assert "window.vegaEmbed" in text
    mtime = path.stat().st_mtime_ns
    book.write_vega_bundle(tmp_path)  # unchanged content: not rewritten
    assert path.stat().st_mtime_ns == mtime


def test_reader_mode_folds_code_and_show_code_unfolds_it(tmp_path):
    from stages.book.reader import in_reader_mode, set_code_visibility

    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Title"),
        nbformat.v4.new_code_cell("import x"),
        nbformat.v4.new_code_cell("n = 1", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("chart()", metadata={"tags": ["other"]}),
        nbformat.v4.new_code_cell("# Solution", metadata={"tags": ["hide-cell"]}),
    ]
    path = tmp_path / "01_a.ipynb"
    nbformat.write(nb, path)

    def tags() -> list[list[str]]:
        cells = nbformat.read(path, as_version=4).cells
        return [c.metadata.get("tags", []) for c in cells]

    assert not in_reader_mode(path)
    assert set_code_visibility([path], show_code=False) == [path]
    assert tags() == [[], ["hide-input"], ["parameters"], ["other", "hide-input"], ["hide-cell"]]
    assert in_reader_mode(path)
    assert set_code_visibility([path], show_code=False) == []  # already folded: not rewritten
    assert set_code_visibility([path], show_code=True) == [path]
    assert tags() == [[], [], ["parameters"], ["other"], ["hide-cell"]]
    assert not in_reader_mode(path)


GLUE_NOTEBOOK = """\
# %% [markdown]
# # What holds

# %% tags=["parameters"]
held = 3

# %%
from IPython.display import Markdown
from myst_nb import glue

glue("conclusions", Markdown(f"**{held} claims** hold."), display=False)
"""


@pytest.mark.book
def test_the_introduction_states_what_the_what_holds_page_glued(tmp_path):
    from stages.book.intro import CONCLUSIONS, write_conclusions

    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / "07_what_holds.py").write_text(GLUE_NOTEBOOK)
    assert "this build holds none" in write_conclusions(tmp_path).read_text()
    book.execute_notebook("what_holds", {"held": 5}, root=tmp_path, progress_bar=False)
    assert write_conclusions(tmp_path) == tmp_path / CONCLUSIONS
    assert (tmp_path / CONCLUSIONS).read_text() == "**5 claims** hold.\n"


# ---------------------------------------------------------------------------------------------
# end to end: execute, build, open in a browser


@pytest.fixture(scope="module")
def demo_build(tmp_path_factory):
    """The demo book built once with n=5: (root, html folder)."""
    root = make_demo_book(tmp_path_factory.mktemp("demo-book"))
    html = book.build_book(root, {"n": 5}, echo=False, progress_bar=False)
    return root, html


@pytest.mark.book
def test_build_executes_with_the_parameters(demo_build):
    root, html = demo_build
    assert html == root / "_build" / "html"
    executed = root / "book" / "_executed" / "01_demo.ipynb"
    nb = nbformat.read(executed, as_version=4)
    outputs = "".join(
        o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
    )
    assert "n=5 label=demo" in outputs
    # one parameters cell, the author's, showing the value used and keeping its comment
    assert not [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    (params,) = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert "n = 5  # number of points" in params.source
    assert nb.metadata.papermill["input_path"] == "notebooks/01_demo.py"
    assert (root / "_static" / "vega-offline.js").exists()
    assert (root / "_toc.yml").read_text() == book.render_toc(book.discover_sections(root))
    page = html / "book" / "_executed" / "01_demo.html"
    assert page.exists() and "n=5 label=demo" in page.read_text()
    assert (html / "book" / "intro.html").exists()
    assert "build succeeded" in (root / "_build" / "build.log").read_text()
    # reader mode: every code cell folded behind a toggle, except the parameters cell
    folded = {c.source.splitlines()[0]: "hide-input" in c.metadata.get("tags", [])
              for c in nb.cells if c.cell_type == "code"}  # fmt: skip
    assert folded == {"import altair as alt": True, "n = 5  # number of points": False,
                      "table = pd.DataFrame({\"x\": list(range(n)), \"y\": [scale * i * i "
                      "for i in range(n)]})": True, "alt.Chart(table).mark_circle(size=400)"
                      ".encode(": True}  # fmt: skip


@pytest.mark.book
def test_demo_page_works_in_a_browser(demo_build):
    require_browser()
    _, html = demo_build
    with browser.serve_directory(html) as url:
        report = browser.check_page_in_browser(url + "book/_executed/01_demo.html")
    assert report["errors"] == [], json.dumps(report, indent=1)
    assert report["external_requests"] == []
    assert report["n_altair_outputs"] == 1
    assert report["chart_boxes"], "no svg.marks or canvas drawn"
    assert all(b["width"] > 0 and b["height"] > 0 for b in report["chart_boxes"])
    assert report["tooltip_ok"] is True, report
    assert re.search(r"x\s+\d", report["tooltip_text"])
    harmless = " ".join(report["harmless_errors"])
    for text in report["harmless_errors"]:
        assert any(h in text for h in browser.HARMLESS_BROWSER_ERRORS) or "404" in text, harmless
    # reader mode: the code is one click away, the parameters in view
    with browser.serve_directory(html) as url:
        report = browser.folded_code_report(url + "book/_executed/01_demo.html")
    assert report["folded"] == 3, report  # imports, table, chart
    assert report["hidden_before"] and report["shown_after"], report
    assert report["parameters_shown"], report


@pytest.mark.book
def test_the_print_edition_holds_every_page_and_chart(demo_build):
    require_browser()
    import pypdf

    root, _ = demo_build
    pdf = book.build_pdf(root, echo=False)
    assert pdf == root / "_build" / "pdf" / "book.pdf"
    reader = pypdf.PdfReader(pdf)
    text = "\n".join(page.extract_text() for page in reader.pages)
    for expected in ("Demo book", "Demo section", "Nothing here.", "A demo",  # every page
                     "Demo squares"):  # the chart, drawn (its title is SVG text)
        assert expected in text, expected
    assert "import altair" not in text and "Show code cell" not in text  # folded code: out
    assert "n = 5" in text  # the parameters cell stays


@pytest.mark.book
def test_page_with_math_makes_no_external_request(demo_build):
    require_browser()
    if book.mathjax_source() is None:
        message = "no local MathJax 3 (pip install django-static-mathjax)"
        if os.environ.get("CI"):
            pytest.fail(message + "; math would load from a CDN")
        pytest.skip(message)
    _, html = demo_build
    assert (html / "_static" / book.LOCAL_MATHJAX).exists()
    with browser.serve_directory(html) as url:
        report = browser.check_page_in_browser(url + "book/intro.html")
    assert report["errors"] == [], report
    assert report["external_requests"] == [], report
    assert report["tooltip_ok"] is None and report["chart_boxes"] == []


@pytest.mark.book
def test_failing_notebook_names_the_section(tmp_path):
    make_demo_book(tmp_path)
    (tmp_path / "notebooks" / "02_broken.py").write_text(FAILING_NOTEBOOK)
    with pytest.raises(book.NotebookExecutionError) as err:
        book.build_book(tmp_path, {"n": 7}, sections=["broken"], echo=False, progress_bar=False)
    failed = tmp_path / "book" / "_executed" / "02_broken.failed.ipynb"
    message = str(err.value)
    assert "'broken'" in message and str(failed) in message and "boom 7" in message
    assert err.value.section == "broken" and err.value.output_path == failed
    assert "boom 7" in failed.read_text()  # papermill saved the notebook with the error
    assert not (tmp_path / "book" / "_executed" / "02_broken.ipynb").exists()  # never a page
    assert not (tmp_path / "_build" / "html").exists()  # no build after a failed notebook


MIDDLE_NOTEBOOK = """\
# %% [markdown]
# # A middle section

# %% tags=["parameters"]
label = "middle"

# %%
import pathlib, time

time.sleep(2)
pathlib.Path(f"{label}.done").touch()
"""

LAST_NOTEBOOK = """\
# %% [markdown]
# # The last section

# %%
import pathlib

assert sorted(p.name for p in pathlib.Path().glob("*.done")) == ["middle.done", "other.done"]
"""


@pytest.mark.book
def test_sections_run_two_at_a_time_and_the_first_failure_in_book_order_is_raised(tmp_path):
    make_demo_book(tmp_path)
    notebooks = tmp_path / "notebooks"
    (notebooks / "02_middle.py").write_text(MIDDLE_NOTEBOOK)
    (notebooks / "03_broken.py").write_text(FAILING_NOTEBOOK)
    (notebooks / "04_broken_too.py").write_text(FAILING_NOTEBOOK.replace("boom", "bang"))
    (notebooks / "05_last.py").write_text(LAST_NOTEBOOK)
    sections = book.discover_sections(tmp_path)
    per_section = {s.name: {} for s in sections}
    with pytest.raises(book.NotebookExecutionError) as err:
        book.execute_sections(sections, per_section, tmp_path, jobs=2, progress_bar=False)
    assert err.value.section == "broken"  # not broken_too, whichever finished first
    executed = tmp_path / "book" / "_executed"
    assert (executed / "01_demo.ipynb").exists()  # the first section, alone, before the others
    assert (executed / "03_broken.failed.ipynb").exists()
    assert not (executed / "03_broken.ipynb").exists()
    assert not list(executed.glob("05_last*"))  # the last section only after the others

    (notebooks / "03_broken.py").unlink()
    (notebooks / "04_broken_too.py").write_text(MIDDLE_NOTEBOOK.replace('"middle"', '"other"'))
    (tmp_path / "middle.done").unlink()
    sections = book.discover_sections(tmp_path)
    book.execute_sections(sections, per_section, tmp_path, jobs=2, progress_bar=False)
    assert {p.name for p in executed.glob("0*.ipynb") if ".failed" not in p.name} == {
        "01_demo.ipynb", "02_middle.ipynb", "04_broken_too.ipynb", "05_last.ipynb"
    }  # fmt: skip  # the last one found both middle sections done


@pytest.mark.book
def test_an_executed_page_knows_what_it_was_made_from(tmp_path):
    """The stamp: a page is current until its source, its inputs or its parameters change."""
    from stages.book.execute import is_current

    make_demo_book(tmp_path)
    out = book.execute_notebook("demo", {"n": 5}, root=tmp_path, progress_bar=False)
    source = tmp_path / "notebooks" / "01_demo.py"
    assert is_current(out, source, {"n": 5}, tmp_path)
    assert not is_current(out, source, {"n": 6}, tmp_path)
    results = tmp_path / "benchmarks" / "results"
    results.mkdir(parents=True)
    (results / "speed.json").write_text("{}")  # a committed input the pages read
    assert not is_current(out, source, {"n": 5}, tmp_path)
    (results / "speed.json").unlink()
    source.write_text(source.read_text() + "\n# an edit\n")
    assert not is_current(out, source, {"n": 5}, tmp_path)


SLOW_NOTEBOOK = """\
# %% [markdown]
# # Slow section

# %% tags=["parameters"]
seconds = 120

# %%
import time

time.sleep(seconds)
"""


def _sleeping(notebook: Path) -> bool:
    """Whether papermill has saved ``notebook`` with its ``time.sleep`` cell running."""
    try:
        cells = json.loads(notebook.read_text())["cells"]
    except (OSError, ValueError, KeyError):
        return False
    return any("time.sleep" in "".join(c["source"])
               and c.get("metadata", {}).get("papermill", {}).get("status") == "running"
               for c in cells)  # fmt: skip


@pytest.mark.book
def test_an_interrupted_build_leaves_no_page_that_looks_complete(tmp_path):
    """Ctrl-C while a page executes: its earlier copy is gone, nothing partial is kept."""
    make_demo_book(tmp_path)
    (tmp_path / "notebooks" / "02_slow.py").write_text(SLOW_NOTEBOOK)
    executed = tmp_path / "book" / "_executed"
    executed.mkdir(parents=True)
    earlier = executed / "02_slow.ipynb"
    earlier.write_text("{}")  # a page from an earlier build, now being redone
    command = [sys.executable, "-m", "stages.cli", "book", "--root", str(tmp_path),
               "--sections", "slow", "--no-progress"]  # fmt: skip
    child = subprocess.Popen(  # Ctrl-C restored: a shell's `cmd &` starts pytest ignoring it
        command, start_new_session=True, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    running = executed / ".02_slow.running.ipynb"
    deadline = time.monotonic() + 120
    while not _sleeping(running):  # papermill saves the notebook as each cell starts
        assert child.poll() is None and time.monotonic() < deadline, child.stderr.read()
        time.sleep(0.1)
    time.sleep(1)
    os.killpg(child.pid, signal.SIGINT)  # what Ctrl-C sends: the whole foreground group
    assert child.wait(timeout=120) != 0
    assert sorted(p.name for p in executed.iterdir()) in ([], ["02_slow.failed.ipynb"])
    assert not (tmp_path / "_build" / "html").exists()
    sections = book.discover_sections(tmp_path)
    assert [s.name for s in sections if (tmp_path / f"{s.docname}.ipynb").exists()] == []


def test_a_second_build_in_one_checkout_refuses_at_once(tmp_path):
    make_demo_book(tmp_path)
    command = [sys.executable, "-m", "stages.cli", "book", "--root", str(tmp_path)]
    with book.book_lock(tmp_path):
        second = subprocess.run(command, capture_output=True, text=True, timeout=120)
        with pytest.raises(book.BookBusyError, match="wait for it to finish"):
            book.build_book(tmp_path, echo=False)
    assert second.returncode == 1
    assert f"process {os.getpid()} is building the book" in second.stderr
    assert not (tmp_path / "book" / "_executed").exists()
    with book.book_lock(tmp_path):  # released: the next build may start
        pass


@pytest.mark.book
def test_build_warning_fails_with_the_log(tmp_path):
    make_demo_book(tmp_path, intro="# Demo book\n\nA link to {doc}`missing-page`.\n")
    with pytest.raises(book.BookBuildError) as err:
        book.build_book(tmp_path, execute=False, echo=False)
    log = tmp_path / "_build" / "build.log"
    assert str(log) in str(err.value) and "missing-page" in log.read_text()
    assert "\x1b[" not in log.read_text()  # colour codes stripped
    # never executed: left out of this build's TOC, and _toc.yml still lists it
    assert (tmp_path / "_build" / "_toc.partial.yml").exists()
    assert "01_demo" in (tmp_path / "_toc.yml").read_text()


def test_a_page_takes_its_parameters_from_the_notebook_namespace():
    from stages.book.page import open_page

    declared = book.read_parameters("detokenization", REPO)
    namespace = {name: p.default for name, p in declared.items()} | {"seed": 7, "other": 1}
    page = open_page("detokenization", namespace)
    assert page.parameters == {name: namespace[name] for name in declared}  # no "other"
    assert page.parameters["seed"] == 7 and page.elapsed >= 0
    del namespace["pack"]
    with pytest.raises(NameError, match="pack not defined"):
        open_page("detokenization", namespace)


def test_the_book_the_package_and_the_citation_state_one_version():
    import importlib.metadata

    import stages

    version = stages.__version__
    assert importlib.metadata.version("stages") == version
    assert f'version: "{version}"' in (REPO / "CITATION.cff").read_text()
    intro = (REPO / "book" / "intro.md").read_text()
    assert f"This is version {version} of the book" in intro and f"version = {{{version}}}" in intro
