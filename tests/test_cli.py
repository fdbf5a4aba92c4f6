"""Tests for the ``stages`` command line (stages.cli)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from stages import cli

NOTEBOOK = """\
# %% [markdown]
# # Demo

# %% tags=["parameters"]
n_tokens = 3  # tokens to score
model = "tiny"
fail = False

# %%
if fail:
    raise RuntimeError("asked to fail")
print(f"n_tokens={n_tokens} model={model}")
"""


@pytest.fixture
def root(tmp_path):
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / "01_demo.py").write_text(NOTEBOOK)
    (tmp_path / "notebooks" / "02_other.py").write_text("# %%\nx = 1\n")
    return tmp_path


def run(argv, capsys):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_sections_lists_parameters_and_defaults(root, capsys):
    code, out, err = run(["sections", "--root", root], capsys)
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0] == "demo  (notebooks/01_demo.py)"
    assert any(
        "n_tokens" in line and "int" in line and "default 3" in line and "# tokens to score" in line
        for line in lines
    )
    assert any("model" in line and 'default "tiny"' in line for line in lines)
    assert "other  (notebooks/02_other.py)" in lines
    assert "    (no parameters cell)" in lines


def test_unknown_section_is_a_usage_error(root, capsys):
    code, out, err = run(["run", "nope", "--root", root], capsys)
    assert code == 2 and out == ""
    assert err == "stages: error: unknown section 'nope'; valid sections: demo, other\n"


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["run", "demo", "-p", "n_tokens", "many"], "'n_tokens': 'many' is not a valid int"),
        (["run", "demo", "-p", "n_tokens", "2.5"], "'2.5' is not a valid int"),
        (["run", "demo", "-p", "fail", "perhaps"], "'perhaps' is not a valid bool"),
        (["run", "demo", "-p", "seq_len", "8"], "valid parameters: n_tokens, model, fail"),
        (["run", "demo", "-p", "1x", "8"], "'1x' is not a parameter name"),
        (["book", "-p", "seq_len", "8"], "no section has a parameter 'seq_len'"),
        (["book", "-p", "n_tokens", "x"], "'x' is not a valid int"),
        (["book", "--sections", "demo,nope"], "unknown section 'nope'"),
        (["book", "--sections", ","], "--sections needs at least one section name"),
    ],
)
def test_bad_parameters_exit_2_with_one_line(root, capsys, argv, expected):
    code, out, err = run([*argv, "--root", root], capsys)
    assert code == 2 and out == ""
    assert err.startswith("stages: error: ") and expected in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not (root / "book").exists()  # nothing ran


def test_argparse_errors_and_help(root, capsys):
    assert run([], capsys)[0] == 2
    assert run(["run"], capsys)[0] == 2  # SECTION missing
    assert run(["run", "demo", "-p", "n_tokens"], capsys)[0] == 2  # -p needs NAME VALUE
    assert run(["frobnicate"], capsys)[0] == 2
    code, out, _ = run(["--help"], capsys)
    assert code == 0 and "book" in out and "sections" in out
    code, out, _ = run(["book", "--help"], capsys)
    assert code == 0 and "--no-warnings-as-errors" in out and "--sections" in out
    assert run(["sections", "--root", root / "nowhere"], capsys)[0] == 2


def test_p_pairs_are_collected_and_the_last_value_wins():
    assert cli._parameters([["n_tokens", "5"], ["model", "gpt2"], ["n_tokens", "6"]]) == {
        "n_tokens": "6",
        "model": "gpt2",
    }
    assert cli._parameters(None) == {}
    with pytest.raises(cli.UsageError):
        cli._parameters([["not-a-name", "1"]])


@pytest.mark.book
def test_run_executes_one_section_and_prints_its_path(root, capsys):
    code, out, err = run(
        [
            "run",
            "demo",
            "-p",
            "n_tokens",
            "20000",
            "-p",
            "model",
            "gpt2",
            "--root",
            root,
            "--no-progress",
        ],
        capsys,
    )
    assert code == 0, err
    path = Path(out.strip().splitlines()[-1])
    assert path == root / "book" / "_executed" / "01_demo.ipynb"
    nb = nbformat.read(path, as_version=4)
    text = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    assert "n_tokens=20000 model=gpt2" in text


@pytest.mark.book
def test_failing_run_exits_1_naming_section_and_notebook(root, capsys):
    code, out, err = run(
        ["run", "demo", "-p", "fail", "true", "--root", root, "--no-progress"], capsys
    )
    failed = root / "book" / "_executed" / "01_demo.failed.ipynb"
    assert code == 1 and out == ""
    last = err.strip().splitlines()[-1]
    assert last.startswith("stages: error: section 'demo' failed: RuntimeError: asked to fail")
    assert str(failed) in last and failed.exists()
    assert not (root / "book" / "_executed" / "01_demo.ipynb").exists()
    assert "Traceback" not in err


def test_console_script_returns_the_exit_code(root):
    script = Path(sys.executable).parent / "stages"
    if not script.exists():
        pytest.skip("the stages console script is not installed (pip install -e .)")
    ok = subprocess.run([script, "sections", "--root", root], capture_output=True, text=True)
    assert ok.returncode == 0 and "demo" in ok.stdout
    bad = subprocess.run([script, "run", "nope", "--root", root], capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown section 'nope'" in bad.stderr


def test_listing_the_cache_does_not_load_torch(tmp_path):
    code = (
        "import sys; from stages.cli import main; rc = main(['cache', 'ls']); "
        "print(rc, 'torch' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True,
        env={"STAGES_CACHE_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"},
    ).stdout  # fmt: skip
    assert out.strip().endswith("0 False"), out


def test_every_public_name_resolves():
    import stages

    assert stages.__all__ == sorted(stages._API)
    for name in stages.__all__:
        assert getattr(stages, name) is not None, name
    with pytest.raises(AttributeError, match="no attribute"):
        stages.not_a_name  # noqa: B018


@pytest.mark.book
def test_book_show_code_and_pdf_flags(tmp_path, capsys, monkeypatch):
    """Reader mode by default, every cell open with --show-code, the print edition with --pdf."""
    from tests.book.test_book import make_demo_book
    from tests.conftest import require_browser

    require_browser()
    root = make_demo_book(tmp_path)
    executed = root / "book" / "_executed" / "01_demo.ipynb"

    def folded() -> list[bool]:
        cells = nbformat.read(executed, as_version=4).cells
        return ["hide-input" in c.metadata.get("tags", []) for c in cells if c.cell_type == "code"]

    code, _, err = run(["book", "--root", root, "--no-progress"], capsys)
    assert code == 0, err
    assert folded() == [True, False, True, True]  # the parameters cell stays in view
    code, _, err = run(["book", "--root", root, "--no-execute", "--show-code"], capsys)
    assert code == 0 and folded() == [False, False, False, False], err
    code, out, err = run(["book", "--root", root, "--no-execute", "--pdf"], capsys)
    assert code == 0, err
    assert out.strip().splitlines()[-1] == str(root / "_build" / "pdf" / "book.pdf")
    assert folded() == [True, False, True, True]

    monkeypatch.setenv("PATH", str(Path(sys.executable).parent))  # no chromium on PATH
    code, _, err = run(["book", "--root", root, "--no-execute", "--pdf"], capsys)
    assert code == 1
    assert err.strip().splitlines()[-1].startswith("stages: error: no chromium on PATH")
