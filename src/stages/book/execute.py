"""Executing one section: papermill runs the notebook; the executed copy shows what ran."""

from __future__ import annotations

import ast
import contextlib
import hashlib
import json
import re
import shlex
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from stages.book.parameters import coerce_parameters
from stages.book.sections import EXECUTED_DIR, KERNEL_NAME, Section, get_section, read_notebook
from stages.provenance import package_fingerprint
from stages.store import data_dir


class NotebookExecutionError(RuntimeError):
    """A section's notebook raised while papermill executed it.

    Attributes:
        section: the section's short name (``robustness``).
        output_path: the executed notebook up to and including the failing cell,
            ``<out_dir>/NN_name.failed.ipynb`` (never rendered: the book renders
            ``NN_name.ipynb`` only).
    """

    def __init__(self, section: str, output_path: Path, detail: str):
        self.section = section
        self.output_path = Path(output_path)
        self.detail = detail
        super().__init__(
            f"section {section!r} failed: {detail} (executed notebook: {self.output_path})"
        )

    def __reduce__(self) -> tuple[type, tuple[str, Path, str]]:
        """Pickled with its three arguments (a worker process of a book build raises it)."""
        return type(self), (self.section, self.output_path, self.detail)


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


def _inputs_digest(root: Path) -> str:
    """sha256 of the committed inputs a page reads: packs' manifests and benchmark results.

    A pack's manifest holds the sha256 of every file of the pack.
    """
    digest = hashlib.sha256()
    files = sorted((data_dir() / "results").glob("*/manifest.json"))
    files += sorted((Path(root) / "benchmarks" / "results").glob("*.json"))
    for path in files:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def stamp(source: Path, parameters: Mapping[str, Any], root: Path) -> dict[str, Any]:
    """What an executed notebook was made from: source, code, committed inputs, parameters.

    The inputs are those :func:`_inputs_digest` hashes. Taken before the notebook runs and
    stored as its ``metadata.stages``; a copy whose stamp differs from
    ``stamp(source, parameters, root)`` now is stale (:func:`is_current`).
    """
    return {
        "source_sha256": hashlib.sha256(Path(source).read_bytes()).hexdigest(),
        "package": package_fingerprint(),
        "inputs": _inputs_digest(root),
        "parameters": json.loads(json.dumps(dict(parameters), default=str)),
    }


def is_current(executed: Path, source: Path, parameters: Mapping[str, Any], root: Path) -> bool:
    """Whether ``executed`` was made from ``source``, today's code and today's inputs."""
    import nbformat

    try:
        nb = nbformat.read(executed, as_version=4)
    except (OSError, ValueError):
        return False
    return nb.metadata.get("stages") == stamp(source, parameters, root)


def _tidy_executed(
    output_path: Path, source: Path, root: Path, made_from: Mapping[str, Any] | None = None
) -> None:
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
    if made_from is not None:  # a complete run: what it was made from
        nb.metadata["stages"] = dict(made_from)
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
        NotebookExecutionError: a cell raised; the notebook up to the failing cell (with the
            traceback) is written beside, as ``NN_name.failed.ipynb``, and its path is in the
            message. A failed or interrupted run leaves no ``NN_name.ipynb``: the book shows no
            page that looks complete and is not.
    """
    import nbformat
    import papermill

    root = Path(root).resolve()
    s = get_section(section, root)
    typed = coerce_parameters(s, parameters, root)
    out_dir = root / EXECUTED_DIR if out_dir is None else Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    output_path = out_dir / f"{s.stem}.ipynb"

    nb = read_notebook(s.path)
    made_from = stamp(s.path, typed, root)  # before it runs: an edit meanwhile makes it stale
    # papermill saves the notebook after every cell: it writes a hidden working copy, renamed
    # into place only once every cell has run, so an interrupted or failed run never leaves a
    # page that looks complete. The earlier copy is removed first: it is being redone.
    output_path.unlink(missing_ok=True)
    running = out_dir / f".{s.stem}.running.ipynb"
    failed = out_dir / f"{s.stem}.failed.ipynb"
    failed.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="stages-nb-") as tmp:
        input_path = Path(tmp) / f"{s.stem}.ipynb"
        nbformat.write(nb, input_path)
        try:
            papermill.execute_notebook(
                input_path,
                running,
                parameters=typed,
                kernel_name=KERNEL_NAME,
                language="python",
                cwd=root,
                progress_bar=progress_bar,
                log_output=log_output,
            )
        except Exception as exc:  # a cell raised, the kernel died, a timeout, ...
            _tidy_executed(running, s.path, root)
            if running.exists():
                running.replace(failed)
            if isinstance(exc, papermill.PapermillExecutionError):
                detail = f"{exc.ename}: {exc.evalue} (cell {exc.exec_count})"
            else:
                detail = f"{type(exc).__name__}: {exc}".strip()
            raise NotebookExecutionError(s.name, failed, detail) from exc
        except BaseException:  # interrupted (Ctrl-C): nothing is kept
            running.unlink(missing_ok=True)
            raise
    _tidy_executed(running, s.path, root, made_from)
    running.replace(output_path)
    return output_path
