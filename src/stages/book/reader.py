"""Reader mode: a page's code folded behind a toggle, or shown for teaching.

The executed notebooks are the book's pages. In reader mode (the default of ``stages book``)
every code cell gets Jupyter Book's ``hide-input`` tag: its outputs (charts, tables, answers)
are shown and its source sits behind a "Show code cell source" toggle. The ``parameters`` cell
stays visible (a reader sees what ran and how to change it), as do the "Run it yourself" box
(a Markdown cell) and the exercises' solutions (``hide-cell``: folded whole, as the author
chose). ``stages book --show-code`` removes the tags again, for a class that reads the code.

The tag is set when the book is rendered, not when a page is executed, so switching mode
re-executes nothing; an executed notebook's stamp (:func:`stages.book.execute.stamp`) does not
cover tags.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

FOLD = "hide-input"
"""The tag that folds a cell's source behind a toggle (myst-nb)."""

KEEP_AS_IS = frozenset({"parameters", "hide-cell", "remove-cell", "remove-input"})
"""Tags of cells whose visibility the author chose: never folded or unfolded here."""


def _fold(nb: object, show_code: bool) -> bool:
    """Fold (or unfold) ``nb``'s code cells in place; whether anything changed."""
    dirty = False
    for cell in nb.cells:
        tags = list(cell.metadata.get("tags", []))
        if cell.cell_type != "code" or KEEP_AS_IS.intersection(tags):
            continue
        if show_code == (FOLD in tags):  # to unfold and folded, or to fold and not folded
            tags = [t for t in tags if t != FOLD] if show_code else [*tags, FOLD]
            if tags:
                cell.metadata["tags"] = tags
            else:
                cell.metadata.pop("tags", None)
            dirty = True
    return dirty


def set_code_visibility(notebooks: Iterable[Path], *, show_code: bool) -> list[Path]:
    """Fold (or unfold) the source of every code cell of ``notebooks``.

    Args:
        notebooks: executed notebooks (``book/_executed/NN_name.ipynb``).
        show_code: True: remove :data:`FOLD` from every cell; False: add it to every code
            cell without a tag of :data:`KEEP_AS_IS`.

    Returns:
        The notebooks that changed (the others are not rewritten).
    """
    import nbformat

    changed = []
    for path in notebooks:
        nb = nbformat.read(path, as_version=4)
        if _fold(nb, show_code):
            nbformat.write(nb, path)
            changed.append(Path(path))
    return changed


def in_reader_mode(notebook: Path) -> bool:
    """Whether an executed notebook's code is folded as the default book folds it."""
    import nbformat

    return not _fold(nbformat.read(notebook, as_version=4), show_code=False)
