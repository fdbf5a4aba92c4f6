"""Building the book: execute the chosen sections, then ``jupyter-book build``."""

from __future__ import annotations

import multiprocessing
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any

from stages.book.assets import write_vega_bundle
from stages.book.downloads import publish
from stages.book.execute import execute_notebook
from stages.book.intro import write_conclusions
from stages.book.lock import book_lock
from stages.book.parameters import split_global_parameters
from stages.book.reader import set_code_visibility
from stages.book.sections import EXECUTED_DIR, discover_sections, get_section
from stages.book.toc import write_toc

BUILD_LOG = Path("_build") / "build.log"
"""The full output of the last ``jupyter-book build``, kept for failed builds."""


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


def toc_of_executed(root: Path, sections: list[Any]) -> list[str]:
    """The ``--toc`` arguments of a build of the sections executed so far ([] when all are).

    A section never executed is left out (named on stderr) through a partial TOC,
    ``_build/_toc.partial.yml``; ``_toc.yml`` always lists every section.
    """
    available = [s for s in sections if (root / f"{s.docname}.ipynb").exists()]
    missing = [s.name for s in sections if s not in available]
    if not missing:
        return []
    print(f"[stages] not executed yet, left out of this build: {', '.join(missing)}",
          file=sys.stderr, flush=True)  # fmt: skip
    return ["--toc", str(write_toc(root, available, root / "_build" / "_toc.partial.yml"))]


def _execute_one(section: Any, parameters: Mapping[str, Any], root: Path, **options: Any) -> float:
    """Execute one section, announcing it on stderr; returns the seconds it took."""
    print(f"[stages] executing {section.path.relative_to(root)} {dict(parameters)}",
          file=sys.stderr, flush=True)  # fmt: skip
    start = time.perf_counter()
    execute_notebook(section, parameters, root=root, **options)
    seconds = time.perf_counter() - start
    print(f"[stages] {section.name} done in {seconds:.0f} s", file=sys.stderr, flush=True)
    return seconds


def execute_sections(
    sections: list[Any],
    per_section: Mapping[str, Mapping[str, Any]],
    root: Path,
    *,
    jobs: int = 1,
    **options: Any,
) -> None:
    """Execute ``sections`` in order: the first alone, the middle ``jobs`` at a time, the last.

    The first section runs before the others start, so that what every page reads first (the
    default model's one-time conversion and processing, and the slices the first page keeps in
    the result cache) is made once. The middle ones then run in ``jobs`` worker processes,
    each starting its own kernel: a page spends much of its time in one-threaded work (the
    kernel's start and imports, loading the model, tokenizing, drawing), which overlaps with
    another page's arithmetic. Two pages that need the same conversion, processing or cached
    per-sequence result compute it once (the others wait for it: :mod:`stages.store`'s locks).
    The last section runs after all the others: the changelog reads the verdict ledger the
    What holds page writes. ``jobs=1`` runs them one after the other, with papermill's
    progress bars.

    Raises:
        NotebookExecutionError: the first section, in book order, that failed; sections not
            yet handed to a worker are not started.
    """
    if not sections:
        return
    _execute_one(sections[0], per_section[sections[0].name], root, **options)
    middle, last = sections[1:-1], sections[1:][-1:]
    if jobs <= 1 or len(middle) <= 1:
        for s in sections[1:]:
            _execute_one(s, per_section[s.name], root, **options)
        return
    options = dict(options, progress_bar=False)  # two bars on one terminal would interleave
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
        futures = [pool.submit(_execute_one, s, per_section[s.name], root, **options)
                   for s in middle]  # fmt: skip
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        if any(f.exception() is not None for f in done):
            for future in futures:
                future.cancel()
        wait(futures)
    for future in futures:
        if not future.cancelled() and future.exception() is not None:
            raise future.exception()
    for s in last:
        _execute_one(s, per_section[s.name], root, **options)


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
    show_code: bool = False,
    jobs: int = 1,
) -> Path:
    """Execute the sections' notebooks and build the HTML book.

    Steps: check every parameter first (nothing runs if one is wrong), execute the chosen
    sections with papermill, ``jobs`` at a time after the first (global parameters go to every
    section declaring them), write the offline Vega bundle, fold or unfold every page's code
    (:mod:`stages.book.reader`), write the introduction's conclusions
    (:mod:`stages.book.intro`), regenerate ``_toc.yml``, then
    run ``jupyter-book build <root> -n --keep-going`` (plus ``-W`` by default).

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
        show_code: show every code cell (for teaching); by default a page's code is folded
            behind a toggle, its parameters cell and outputs shown.
        jobs: sections executed at once after the first (:func:`execute_sections`).

    Returns:
        ``<root>/_build/html``.

    Raises:
        ValueError: unknown section or parameter, or a value that does not convert.
        NotebookExecutionError: a notebook failed (names the section and the executed copy).
        BookBuildError: ``jupyter-book build`` failed (names the log).
        BookBusyError: another build holds this checkout's lock (:mod:`stages.book.lock`).
    """
    root = Path(root).resolve()
    all_sections = discover_sections(root)
    chosen = all_sections if sections is None else [get_section(name, root) for name in sections]
    per_section = split_global_parameters(parameters, chosen, root)

    with book_lock(root):
        if execute:
            execute_sections(chosen, per_section, root, jobs=jobs, log_output=log_output,
                             progress_bar=progress_bar)  # fmt: skip

        write_vega_bundle(root)
        executed = sorted((root / EXECUTED_DIR).glob("[0-9][0-9]_*.ipynb"))
        set_code_visibility([p for p in executed if not p.name.endswith(".failed.ipynb")],
                            show_code=show_code)  # fmt: skip
        write_conclusions(root)
        write_toc(root, all_sections)
        cmd = [*_jupyter_book_command(), "build", str(root), "-n", "--keep-going"]
        if warnings_as_errors:
            cmd.append("-W")
        cmd += toc_of_executed(root, all_sections)
        log_path = root / BUILD_LOG
        code, excerpt = _run_logged(cmd, log_path, cwd=root, echo=echo)
        if code != 0:
            raise BookBuildError(code, log_path, excerpt)
        html = root / "_build" / "html"
        if not (html / "index.html").exists():
            raise BookBuildError(code, log_path, "no _build/html/index.html was written")
        publish(root)
        return html
