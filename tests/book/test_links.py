"""The link checker of the browser test, and the "Run it yourself" box."""

from __future__ import annotations

from stages.book import run_it_yourself
from tests.support.browser import broken_links


def test_broken_links_finds_missing_files_and_anchors(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.html").write_text('<h1 id="top">B</h1><a href="#top">self</a>')
    (tmp_path / "a.html").write_text(
        '<a href="sub/b.html#top">ok</a> <a href="sub/b.html#nope">bad anchor</a>'
        '<a href="missing.html">bad file</a> <a href="https://example.org/x">external</a>'
        '<a href="#here">in page</a><p id="here"></p><a href="sub/">folder</a>'
    )
    got = broken_links(tmp_path, [tmp_path / "a.html", tmp_path / "sub" / "b.html"])
    assert got == [
        "a.html: sub/b.html#nope (no element with id 'nope')",
        "a.html: missing.html (no such file)",
        "a.html: sub/ (no such file)",
    ]


def test_run_it_yourself_gives_the_exact_commands():
    box = run_it_yourself("01_robustness", {"n_tokens": "64", "device": "'cpu'",
                                            "models": "['a b', 'c']"})  # fmt: skip
    assert 'stages run robustness -p n_tokens 64 -p device cpu -p models \'["a b", "c"]\'' in box
    assert "papermill book/_executed/01_robustness.ipynb rerun.ipynb -p n_tokens 64" in box
    assert box.startswith(":::{admonition} Run it yourself") and box.endswith(":::")
    assert "stages run robustness\n" in run_it_yourself("01_robustness", {})
