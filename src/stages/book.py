"""The book pipeline: Jupytext notebooks -> papermill -> Jupyter Book 1.x -> a browser check.

One command builds the book (``stages book``, see :mod:`stages.cli`):

1. every section notebook ``notebooks/NN_name.py`` (Jupytext py:percent, found by glob, never
   by a hand-kept list) is converted to ``.ipynb`` and executed by papermill with the chosen
   parameters into ``book/_executed/NN_name.ipynb`` (git-ignored);
2. ``_static/vega-offline.js`` is written, so the Altair charts render with no network;
3. ``_toc.yml`` is regenerated from the discovered sections;
4. ``jupyter-book build <root> -W -n --keep-going`` renders ``_build/html``.

:mod:`stages.browser` then checks a built page the way a reader would.

This module is light on purpose: it imports neither torch nor the analysis modules, and it
imports jupytext, papermill, altair and playwright only inside the functions that need them.
Every function takes the book's ``root`` so that tests can run on temporary copies.
"""

from __future__ import annotations

import ast
import contextlib
import io
import json
import math
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import tokenize
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stages.store import repo_root

__all__ = [
    "SECTIONS",
    "BookBuildError",
    "NotebookExecutionError",
    "Parameter",
    "Section",
    "build_book",
    "coerce_parameters",
    "discover_sections",
    "execute_notebook",
    "find_root",
    "get_section",
    "read_parameters",
    "render_toc",
    "split_global_parameters",
    "write_toc",
    "write_vega_bundle",
]

NOTEBOOK_GLOB = "notebooks/[0-9][0-9]_*.py"
"""Where the section notebooks live, relative to the book root."""

EXECUTED_DIR = Path("book") / "_executed"
"""Where papermill writes the executed notebooks (git-ignored), relative to the root."""

VEGA_BUNDLE = Path("_static") / "vega-offline.js"
"""The offline Vega/Vega-Lite/vega-embed bundle, relative to the root (git-ignored)."""

BUILD_LOG = Path("_build") / "build.log"
"""The full output of the last ``jupyter-book build``, kept for failed builds."""

TOC_ROOT = "book/intro"
SECTIONS_CAPTION = "Robustness and stages of inference"
REFERENCE_CAPTION = "Reference"
REFERENCE_PAGES = ("book/methods", "book/references")

KERNEL_NAME = "python3"


class NotebookExecutionError(RuntimeError):
    """A section's notebook raised while papermill executed it.

    Attributes:
        section: the section's short name (``robustness``).
        output_path: the executed notebook, written up to and including the failing cell.
    """

    def __init__(self, section: str, output_path: Path, detail: str):
        self.section = section
        self.output_path = Path(output_path)
        super().__init__(
            f"section {section!r} failed: {detail} (executed notebook: {self.output_path})"
        )


class BookBuildError(RuntimeError):
    """``jupyter-book build`` failed (or, with ``-W``, warned).

    Attributes:
        log_path: the full build log.
        returncode: the exit code of ``jupyter-book build``.
    """

    def __init__(self, returncode: int, log_path: Path, excerpt: str = ""):
        self.returncode = returncode
        self.log_path = Path(log_path)
        message = f"jupyter-book build failed (exit code {returncode}); full log: {self.log_path}"
        if excerpt:
            message += f"; first problem: {excerpt}"
        super().__init__(message)


# --------------------------------------------------------------------------------------------
# sections


@dataclass(frozen=True)
class Section:
    """One notebook of the book, found by :func:`discover_sections`.

    Attributes:
        number: the two-digit prefix, ``"01"``.
        name: the short name after the number, ``"robustness"``.
        path: the Jupytext source, ``<root>/notebooks/01_robustness.py``.
    """

    number: str
    name: str
    path: Path

    @property
    def stem(self) -> str:
        """The file stem, ``"01_robustness"``; also the executed notebook's stem."""
        return self.path.stem

    @property
    def docname(self) -> str:
        """The executed copy's document name in the TOC, ``"book/_executed/01_robustness"``."""
        return (EXECUTED_DIR / self.stem).as_posix()


def discover_sections(root: Path) -> list[Section]:
    """Find the section notebooks ``notebooks/[0-9][0-9]_*.py`` under ``root``, sorted.

    Args:
        root: the book's root folder (the one holding ``_config.yml``).

    Returns:
        The sections in book order (sorted by file name).

    Raises:
        ValueError: if two notebooks share a short name (``01_a.py`` and ``02_a.py``).
    """
    root = Path(root)
    sections: list[Section] = []
    seen: dict[str, Path] = {}
    for path in sorted(root.glob(NOTEBOOK_GLOB)):
        number, name = path.stem.split("_", 1)
        if name in seen:
            raise ValueError(
                f"two notebooks have the section name {name!r}: {seen[name].name}, {path.name}"
            )
        seen[name] = path
        sections.append(Section(number=number, name=name, path=path))
    return sections


def _package_root() -> Path | None:
    """The repository root of a source checkout (src layout), when this file lives in one."""
    candidate = repo_root()
    return candidate if (candidate / "notebooks").is_dir() else None


def find_root(start: Path | None = None) -> Path:
    """Find the book's root: the nearest folder at or above ``start`` with ``_config.yml``.

    Falls back to the source checkout this package was installed from (editable installs).

    Args:
        start: where to start looking; the current working directory by default.

    Raises:
        FileNotFoundError: if no book root is found.
    """
    start = Path.cwd() if start is None else Path(start)
    start = start.resolve()
    for folder in (start, *start.parents):
        if (folder / "_config.yml").is_file() and (folder / "notebooks").is_dir():
            return folder
    fallback = _package_root()
    if fallback is not None:
        return fallback
    raise FileNotFoundError(
        f"no book found at or above {start} (a folder with _config.yml and notebooks/); "
        "run from the book's folder or pass --root"
    )


_ROOT = _package_root()
SECTIONS: tuple[str, ...] = tuple(s.name for s in discover_sections(_ROOT)) if _ROOT else ()
"""Short names of this checkout's sections, discovered by glob at import time (book order).

Functions never rely on this constant: they call :func:`discover_sections` on their ``root``.
"""


def get_section(section: str | Section, root: Path) -> Section:
    """Look a section up by short name (``robustness``) or file stem (``01_robustness``).

    Raises:
        ValueError: naming the valid sections, if there is no such section.
    """
    if isinstance(section, Section):
        return section
    sections = discover_sections(root)
    for s in sections:
        if section in (s.name, s.stem):
            return s
    valid = ", ".join(s.name for s in sections) or "(none: no notebooks/NN_*.py found)"
    raise ValueError(f"unknown section {section!r}; valid sections: {valid}")


# --------------------------------------------------------------------------------------------
# parameters


class _Unknown:
    """The default of a parameter whose value is not a Python literal."""

    def __repr__(self) -> str:
        return "<expression>"


UNKNOWN = _Unknown()


@dataclass(frozen=True)
class Parameter:
    """One name assigned in a notebook's ``parameters`` cell.

    Attributes:
        name: the variable name.
        default: its literal value in the cell (``UNKNOWN`` for an expression).
        source: the right-hand side as written.
        help: the trailing comment on the assignment's line, without ``#``.
    """

    name: str
    default: Any
    source: str
    help: str = ""

    @property
    def type(self) -> type | None:
        """The default's type; None when the default is None or not a literal."""
        if self.default is None or self.default is UNKNOWN:
            return None
        return type(self.default)

    @property
    def type_name(self) -> str:
        """``int``, ``float``, ``bool``, ``str``, ... or ``any``."""
        return self.type.__name__ if self.type is not None else "any"


def _read_notebook(path: Path):
    """Read a Jupytext py:percent file as an nbformat notebook."""
    import jupytext

    return jupytext.read(path, fmt="py:percent")


def _parameters_cell_source(nb) -> str | None:
    for cell in nb.cells:
        if cell.cell_type == "code" and "parameters" in cell.metadata.get("tags", []):
            return cell.source
    return None


def _parse_parameters_source(source: str, where: str) -> dict[str, Parameter]:
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise ValueError(f"{where}: the parameters cell is not valid Python: {exc}") from exc
    comments: dict[int, str] = {}
    with contextlib.suppress(tokenize.TokenError, IndentationError):
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type == tokenize.COMMENT:
                comments[tok.start[0]] = tok.string.lstrip("#").strip()
    params: dict[str, Parameter] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        else:
            continue
        if not isinstance(target, ast.Name):
            continue
        try:
            default = ast.literal_eval(value)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            default = UNKNOWN
        end = node.end_lineno or node.lineno
        params[target.id] = Parameter(
            name=target.id,
            default=default,
            source=ast.get_source_segment(source, value) or "",
            help=comments.get(end, ""),
        )
    return params


def read_parameters(section: str | Section, root: Path) -> dict[str, Parameter]:
    """Parse the ``parameters`` cell of a section's notebook.

    The cell is the first code cell tagged ``parameters`` (Jupytext keeps the tag from
    ``# %% tags=["parameters"]``). Every top-level ``name = literal`` in it is a parameter.

    Returns:
        Parameters by name, in the cell's order; empty if the notebook has no such cell.
    """
    s = get_section(section, root)
    source = _parameters_cell_source(_read_notebook(s.path))
    if source is None:
        return {}
    return _parse_parameters_source(source, where=str(s.path))


_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def _infer_like_papermill(value: str) -> Any:
    """Type a value as papermill's ``-p`` does, for a parameter with no typed default."""
    if value in ("True", "False"):
        return value == "True"
    if value == "None":
        return None
    for convert in (int, float):
        try:
            return convert(value)
        except ValueError:
            pass
    return value


def _coerce(param: Parameter, value: Any) -> Any:
    expected = param.type
    bad = ValueError(
        f"parameter {param.name!r}: {value!r} is not a valid {param.type_name} "
        f"(the notebook's default is {param.source})"
    )
    if expected is None:
        return _infer_like_papermill(value) if isinstance(value, str) else value
    if not isinstance(value, str):
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if expected is int and isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, expected) and not (expected is int and isinstance(value, bool)):
            return value
        raise bad
    text = value.strip()
    if expected is bool:
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise bad
    if expected is int:
        try:
            return int(text)
        except ValueError:
            pass
        try:
            number = float(text)  # "1e6" is an integer written as a float
        except ValueError:
            raise bad from None
        if math.isfinite(number) and number.is_integer():
            return int(number)
        raise bad
    if expected is float:
        try:
            return float(text)
        except ValueError:
            raise bad from None
    if expected is str:
        return value
    try:  # lists, tuples, dicts: a Python literal of the same type
        parsed = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        raise bad from None
    if not isinstance(parsed, expected):
        raise bad
    return parsed


def coerce_parameters(
    section: str | Section, parameters: Mapping[str, Any] | None, root: Path
) -> dict[str, Any]:
    """Check parameter names against a section's ``parameters`` cell and type their values.

    Values given as strings (from the command line) are converted to the type of the default
    in the cell: ``"20000"`` -> ``20000`` for an int default (``"1e6"`` too), ``"true"`` /
    ``"false"`` (also ``1/0``, ``yes/no``) for a bool, any text for a str. A parameter whose
    default is None or an expression is typed like papermill's ``-p``. Non-string values must
    already have the default's type (an int is accepted for a float).

    Returns:
        The typed values, in the order given.

    Raises:
        ValueError: for a name the cell does not assign (listing the valid names), or for a
            value that does not convert (naming the parameter, the value and the type).
    """
    s = get_section(section, root)
    parameters = dict(parameters or {})
    declared = read_parameters(s, root)
    unknown = [name for name in parameters if name not in declared]
    if unknown:
        valid = ", ".join(declared) or "(none: the notebook has no parameters cell)"
        raise ValueError(
            f"section {s.name!r} has no parameter {', '.join(map(repr, unknown))}; "
            f"valid parameters: {valid}"
        )
    return {name: _coerce(declared[name], value) for name, value in parameters.items()}


def split_global_parameters(
    parameters: Mapping[str, Any] | None, sections: Iterable[str | Section], root: Path
) -> dict[str, dict[str, Any]]:
    """Give every section the global parameters it declares, typed for that section.

    Sections that do not declare a parameter skip it; a parameter that no section declares is
    an error (most likely a typo).

    Returns:
        ``{section name: {parameter: typed value}}`` for every section given.

    Raises:
        ValueError: for a parameter no section declares, or a value that does not convert.
    """
    parameters = dict(parameters or {})
    resolved = [get_section(s, root) for s in sections]
    declared = {s.name: read_parameters(s, root) for s in resolved}
    everywhere = {name for params in declared.values() for name in params}
    unknown = [name for name in parameters if name not in everywhere]
    if unknown:
        valid = ", ".join(sorted(everywhere)) or "(none)"
        raise ValueError(
            f"no section has a parameter {', '.join(map(repr, unknown))}; valid parameters: {valid}"
        )
    return {
        s.name: coerce_parameters(
            s, {k: v for k, v in parameters.items() if k in declared[s.name]}, root
        )
        for s in resolved
    }


# --------------------------------------------------------------------------------------------
# execution


def _values_used(injected_source: str) -> dict[str, str]:
    """``name -> source text of the value`` for papermill's literal assignments."""
    values = {}
    for node in ast.parse(injected_source).body:
        target = node.targets[0] if isinstance(node, ast.Assign) else None
        if isinstance(target, ast.Name):
            values[target.id] = ast.get_source_segment(injected_source, node.value)
    return values


def _shell_value(source: str) -> str:
    """A parameter's Python literal as one shell word (strings unquoted first)."""
    value = ast.literal_eval(source)
    if isinstance(value, (list, dict)):
        return shlex.quote(json.dumps(value))  # '["a", "b"]' reads back as a Python literal
    return shlex.quote(value if isinstance(value, str) else repr(value))


def run_it_yourself(stem: str, used: Mapping[str, str]) -> str:
    """The "Run it yourself" box of a page: the exact commands that re-run it.

    Args:
        stem: the notebook's file stem (``01_robustness``).
        used: parameter name to the source text of the value this page ran with (those that
            differ from the notebook's defaults).
    """
    name = stem.split("_", 1)[1]
    args = "".join(f" -p {k} {_shell_value(v)}" for k, v in used.items())
    return "\n".join([
        ":::{admonition} Run it yourself",
        ":class: tip",
        "This page is a notebook executed when the book was built. To run it again, with these "
        "parameters or others (any name of the parameters cell above, `-p NAME VALUE`):",
        "",
        "```bash",
        f"stages run {name}{args}",
        f"papermill book/_executed/{stem}.ipynb rerun.ipynb{args}",
        "```",
        "",
        "The first writes `book/_executed/` for the book (`stages book` renders it); the second "
        "runs the executed notebook (download it with the button at the top of the page) "
        "anywhere `stages` is installed. `stages sections` lists every parameter.",
        ":::",
    ])  # fmt: skip


def _tidy_executed(output_path: Path, source: Path, root: Path) -> None:
    """Record the real source in an executed notebook, show its parameters once, add a box.

    papermill runs an ``injected-parameters`` cell after the author's ``parameters`` cell. The
    page shows a single parameters cell: the author's, with its comments, each value replaced by
    the one actually used (so a reader sees what ran, and what each parameter means), followed
    by the :func:`run_it_yourself` box.
    """
    import nbformat

    if not output_path.exists():
        return
    nb = nbformat.read(output_path, as_version=4)
    with contextlib.suppress(ValueError):
        nb.metadata.setdefault("papermill", {})["input_path"] = source.relative_to(root).as_posix()
    original = next((c for c in nb.cells if "parameters" in c.metadata.get("tags", [])), None)
    injected = next(
        (c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])), None
    )
    used = _values_used(injected.source) if injected is not None else {}
    if original is not None and not any("run-it-yourself" in c.metadata.get("tags", [])
                                        for c in nb.cells):  # fmt: skip
        box = nbformat.v4.new_markdown_cell(
            run_it_yourself(source.stem, used), metadata={"tags": ["run-it-yourself"]}
        )
        nb.cells.insert(nb.cells.index(original) + 1, box)
    if original is not None and injected is not None:
        lines = []
        for line in original.source.splitlines():
            match = re.match(r"^(\w+)(\s*=\s*)(.*?)(\s+#.*)?$", line)
            if match and match.group(1) in used:
                name, eq, _, comment = match.groups()
                line = f"{name}{eq}{used[name]}{comment or ''}"
            lines.append(line)
        original.source = "\n".join(lines)
        nb.cells.remove(injected)
    nbformat.write(nb, output_path)


def execute_notebook(
    section: str | Section,
    parameters: Mapping[str, Any] | None = None,
    *,
    root: Path,
    out_dir: Path | None = None,
    log_output: bool = False,
    progress_bar: bool = True,
) -> Path:
    """Execute one section's notebook with papermill.

    The Jupytext source is converted to a temporary ``.ipynb``, the parameters are checked and
    typed (:func:`coerce_parameters`), and papermill runs it with the ``python3`` kernel in the
    book's root folder, writing ``<out_dir>/NN_name.ipynb``.

    Args:
        section: short name (``robustness``) or file stem (``01_robustness``).
        parameters: values overriding the ``parameters`` cell (strings are converted).
        root: the book's root folder; also the kernel's working directory.
        out_dir: where to write the executed notebook; ``<root>/book/_executed`` by default.
        log_output: stream the cells' outputs to the ``papermill`` logger as they run.
        progress_bar: show papermill's per-cell progress bar.

    Returns:
        The executed notebook's path.

    Raises:
        ValueError: unknown section or parameter, or a value that does not convert.
        NotebookExecutionError: a cell raised; the executed notebook (with the traceback) is
            still written and its path is in the message.
    """
    import nbformat
    import papermill

    root = Path(root).resolve()
    s = get_section(section, root)
    typed = coerce_parameters(s, parameters, root)
    out_dir = root / EXECUTED_DIR if out_dir is None else Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    output_path = out_dir / f"{s.stem}.ipynb"

    nb = _read_notebook(s.path)
    nb.metadata.setdefault(
        "kernelspec", {"name": KERNEL_NAME, "display_name": "Python 3", "language": "python"}
    )
    with tempfile.TemporaryDirectory(prefix="stages-nb-") as tmp:
        input_path = Path(tmp) / f"{s.stem}.ipynb"
        nbformat.write(nb, input_path)
        try:
            papermill.execute_notebook(
                input_path,
                output_path,
                parameters=typed,
                kernel_name=KERNEL_NAME,
                language="python",
                cwd=root,
                progress_bar=progress_bar,
                log_output=log_output,
            )
        except papermill.PapermillExecutionError as exc:
            _tidy_executed(output_path, s.path, root)
            detail = f"{exc.ename}: {exc.evalue} (cell {exc.exec_count})"
            raise NotebookExecutionError(s.name, output_path, detail) from exc
        except Exception as exc:  # kernel death, timeouts, ...
            _tidy_executed(output_path, s.path, root)
            detail = f"{type(exc).__name__}: {exc}".strip()
            raise NotebookExecutionError(s.name, output_path, detail) from exc
    _tidy_executed(output_path, s.path, root)
    return output_path


# --------------------------------------------------------------------------------------------
# book assets


def write_vega_bundle(root: Path) -> Path:
    """Write ``<root>/_static/vega-offline.js`` so Altair charts render without a network.

    The file is vl-convert's bundle of vega, vega-lite and vega-embed for the installed
    Vega-Lite version (major.minor), wrapped in ``(function(){ ... })();`` so its minified
    top-level names do not collide with Sphinx's scripts, followed by a ``window.VEGA_DEBUG``
    assignment with Altair's versions, which makes Altair's output use the global
    ``vegaEmbed`` instead of fetching it from a CDN. Jupyter Book adds every ``_static/*.js``
    to every page. About 900 KB.

    Returns:
        The bundle's path.
    """
    import altair as alt
    import vl_convert as vlc

    vl_version = ".".join(alt.VEGALITE_VERSION.split(".")[:2])
    bundle = vlc.javascript_bundle(vl_version=vl_version)
    debug = (
        "window.VEGA_DEBUG = Object.assign(window.VEGA_DEBUG || {}, {"
        f'vega_version: "{alt.VEGA_VERSION}", '
        f'vegalite_version: "{alt.VEGALITE_VERSION}", '
        f'vegaembed_version: "{alt.VEGAEMBED_VERSION}"'
        "});\n"
    )
    text = (
        f"/* vega, vega-lite {alt.VEGALITE_VERSION} and vega-embed, bundled by vl-convert for "
        "offline pages; generated by stages.book.write_vega_bundle */\n"
        "(function(){\n" + bundle + "\n})();\n" + debug
    )
    path = Path(root) / VEGA_BUNDLE
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        tmp = path.with_suffix(".js.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    return path


_TOC_HEADER = (
    "# Generated by stages.book.write_toc from notebooks/[0-9][0-9]_*.py: do not edit by hand.\n"
    "# `stages book` rewrites it; tests/test_book.py checks it is in sync.\n"
)


def render_toc(sections: Iterable[Section]) -> str:
    """The ``_toc.yml`` text for these sections (executed copies in ``book/_executed/``)."""
    lines = [_TOC_HEADER.rstrip("\n"), "format: jb-book", f"root: {TOC_ROOT}", "parts:"]
    chapters = [s.docname for s in sections]
    if chapters:
        lines += [f"  - caption: {SECTIONS_CAPTION}", "    chapters:"]
        lines += [f"      - file: {doc}" for doc in chapters]
    lines += [f"  - caption: {REFERENCE_CAPTION}", "    chapters:"]
    lines += [f"      - file: {doc}" for doc in REFERENCE_PAGES]
    return "\n".join(lines) + "\n"


def write_toc(root: Path, sections: Iterable[Section] | None = None, path: Path | None = None):
    """Write the TOC generated from the discovered sections (or those given).

    Args:
        root: the book's root.
        sections: the sections to list; all discovered sections by default.
        path: where to write; ``<root>/_toc.yml`` by default. Rewritten only when it differs.

    Returns:
        The TOC's path.
    """
    root = Path(root)
    sections = discover_sections(root) if sections is None else list(sections)
    path = root / "_toc.yml" if path is None else Path(path)
    text = render_toc(sections)
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return path


# --------------------------------------------------------------------------------------------
# Sphinx extension: MathJax served by the book itself


MATHJAX_CDN = "https://cdn.jsdelivr.net/npm/mathjax@3"
"""Sphinx's default ``mathjax_path`` starts with this; pages with math fetch it from the CDN."""

LOCAL_MATHJAX = "mathjax/tex-mml-svg.js"
"""``mathjax_path`` when a local MathJax 3 is installed (relative to ``_static``)."""


def mathjax_source() -> Path | None:
    """The ``es5`` folder of an installed MathJax 3, or None.

    MathJax comes from the PyPI package ``django-static-mathjax`` (pure data, no Django needed;
    it installs the module ``mathjax`` with ``static/mathjax/es5``).
    """
    import importlib.resources

    try:
        base = Path(str(importlib.resources.files("mathjax"))) / "static" / "mathjax" / "es5"
    except (ModuleNotFoundError, TypeError):
        return None
    return base if (base / Path(LOCAL_MATHJAX).name).is_file() else None


def _use_local_mathjax(app, config) -> None:
    if str(config.mathjax_path).startswith(MATHJAX_CDN) and mathjax_source() is not None:
        config.mathjax_path = LOCAL_MATHJAX


def _copy_local_mathjax(app, exception) -> None:
    if exception is not None or getattr(app.builder, "format", "") != "html":
        return
    if app.config.mathjax_path != LOCAL_MATHJAX:
        return
    source = mathjax_source()
    if source is None:
        return
    dest = Path(app.outdir) / "_static" / Path(LOCAL_MATHJAX).parent
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source / Path(LOCAL_MATHJAX).name, dest / Path(LOCAL_MATHJAX).name)
    # TeX packages that MathJax's autoload fetches on first use (\color, \cancel, ...)
    extensions = Path("input") / "tex" / "extensions"
    shutil.copytree(source / extensions, dest / extensions, dirs_exist_ok=True)


def setup(app) -> dict[str, Any]:
    """Sphinx extension (``sphinx: extra_extensions: [stages.book]`` in ``_config.yml``).

    Pages with math load MathJax from a CDN by default, which fails offline. When MathJax 3 is
    installed locally (:func:`mathjax_source`), this points ``mathjax_path`` at a copy in the
    built book's ``_static/mathjax/`` (SVG output: no web fonts to fetch). The copy is made
    after the build, outside the source ``_static/``, because Jupyter Book adds every
    ``_static/**.js`` of the source to every page. Without a local MathJax nothing changes.
    """
    app.connect("config-inited", _use_local_mathjax)
    app.connect("build-finished", _copy_local_mathjax)
    return {"parallel_read_safe": True, "parallel_write_safe": True}


# --------------------------------------------------------------------------------------------
# build


def _jupyter_book_command() -> list[str]:
    script = Path(sys.executable).parent / "jupyter-book"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from jupyter_book.cli.main import main; main()"]


_PROBLEM = re.compile(r"(WARNING|ERROR|CRITICAL|Traceback|Exception)")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _run_logged(cmd: list[str], log_path: Path, cwd: Path, echo: bool) -> tuple[int, str]:
    """Run ``cmd``, echoing its output and writing it to ``log_path``; return (code, excerpt)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    first_problem = ""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    with open(log_path, "w", encoding="utf-8") as log:
        log.write("$ " + " ".join(cmd) + "\n")
        proc = subprocess.Popen(
            cmd,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            encoding="utf-8",
            errors="replace",
            env=env,
        )
        assert proc.stdout is not None
        colour = sys.stdout.isatty()
        for line in proc.stdout:
            plain = _ANSI.sub("", line)
            log.write(plain)
            if echo:
                sys.stdout.write(line if colour else plain)
                sys.stdout.flush()
            if not first_problem and _PROBLEM.search(plain):
                first_problem = plain.strip()
        code = proc.wait()
    return code, first_problem


def build_book(
    root: Path,
    parameters: Mapping[str, Any] | None = None,
    sections: Iterable[str] | None = None,
    *,
    warnings_as_errors: bool = True,
    execute: bool = True,
    echo: bool = True,
    log_output: bool = False,
    progress_bar: bool = True,
) -> Path:
    """Execute the sections' notebooks and build the HTML book.

    Steps: check every parameter first (nothing runs if one is wrong), execute each chosen
    section with papermill (global parameters go to every section declaring them), write the
    offline Vega bundle, regenerate ``_toc.yml``, then run
    ``jupyter-book build <root> -n --keep-going`` (plus ``-W`` by default).

    When only some sections are chosen, the others keep their earlier executed copies; a
    section that was never executed is left out of this build's TOC (a partial TOC is written
    to ``_build/_toc.partial.yml``; ``_toc.yml`` always lists every section).

    Args:
        root: the book's root folder.
        parameters: global parameters, ``{"n_tokens": 512}``; strings are converted.
        sections: short names to execute; all sections by default.
        warnings_as_errors: pass ``-W`` (any Sphinx warning fails the build).
        execute: execute the notebooks (False: build from the existing executed copies).
        echo: echo jupyter-book's output (it is always written to ``_build/build.log``).
        log_output: stream the notebooks' cell outputs while they run.
        progress_bar: show papermill's per-cell progress bar.

    Returns:
        ``<root>/_build/html``.

    Raises:
        ValueError: unknown section or parameter, or a value that does not convert.
        NotebookExecutionError: a notebook failed (names the section and the executed copy).
        BookBuildError: ``jupyter-book build`` failed (names the log).
    """
    root = Path(root).resolve()
    all_sections = discover_sections(root)
    chosen = all_sections if sections is None else [get_section(name, root) for name in sections]
    per_section = split_global_parameters(parameters, chosen, root)

    if execute:
        for s in chosen:
            print(
                f"[stages] executing {s.path.relative_to(root)} {per_section[s.name]}",
                file=sys.stderr,
                flush=True,
            )
            execute_notebook(
                s,
                per_section[s.name],
                root=root,
                log_output=log_output,
                progress_bar=progress_bar,
            )

    write_vega_bundle(root)
    toc_path = write_toc(root, all_sections)
    available = [s for s in all_sections if (root / f"{s.docname}.ipynb").exists()]
    missing = [s.name for s in all_sections if s not in available]
    cmd = [*_jupyter_book_command(), "build", str(root), "-n", "--keep-going"]
    if warnings_as_errors:
        cmd.append("-W")
    if missing:
        print(
            f"[stages] not executed yet, left out of this build: {', '.join(missing)}",
            file=sys.stderr,
            flush=True,
        )
        toc_path = write_toc(root, available, root / "_build" / "_toc.partial.yml")
        cmd += ["--toc", str(toc_path)]
    log_path = root / BUILD_LOG
    code, excerpt = _run_logged(cmd, log_path, cwd=root, echo=echo)
    if code != 0:
        raise BookBuildError(code, log_path, excerpt)
    html = root / "_build" / "html"
    if not (html / "index.html").exists():
        raise BookBuildError(code, log_path, "no _build/html/index.html was written")
    return html
