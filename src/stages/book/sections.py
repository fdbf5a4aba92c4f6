"""The book's sections: the notebooks ``notebooks/NN_name.py``, found by glob, not by a list."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from stages.store import repo_root

NOTEBOOK_GLOB = "notebooks/[0-9][0-9]_*.py"
"""Where the section notebooks live, relative to the book root."""

EXECUTED_DIR = Path("book") / "_executed"
"""Where papermill writes the executed notebooks (git-ignored), relative to the root."""

KERNEL_NAME = "python3"


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


def read_notebook(path: Path):
    """Read a Jupytext py:percent file as an nbformat notebook for the ``python3`` kernel."""
    import jupytext

    nb = jupytext.read(path, fmt="py:percent")
    nb.metadata.setdefault(
        "kernelspec", {"name": KERNEL_NAME, "display_name": "Python 3", "language": "python"}
    )
    return nb
