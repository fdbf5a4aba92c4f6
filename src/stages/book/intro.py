"""The introduction's conclusions, drawn from the What holds page when the book is built.

The What holds page (``notebooks/13_what_holds.py``) glues its computed conclusions
(:func:`stages.claims.conclusions`) under the key :data:`KEY` (``myst_nb.glue``, not
displayed there a second time). :func:`write_conclusions` copies that Markdown into
``book/_generated/conclusions.md``, which ``book/intro.md`` includes, so the introduction states
the verdicts of this very build. myst-nb can paste glued text across pages only as plain text,
not as Markdown with its emphasis and numbers, hence the generated file.
"""

from __future__ import annotations

from pathlib import Path

from stages.book.sections import EXECUTED_DIR, discover_sections

KEY = "conclusions"
"""The glue key of the What holds page's conclusions."""

SECTION = "what_holds"
"""The section that glues them."""

CONCLUSIONS = Path("book") / "_generated" / "conclusions.md"
"""Where the introduction finds them, relative to the book's root (git-ignored)."""


def read_glued(notebook: Path, key: str) -> str | None:
    """The Markdown glued under ``key`` in an executed notebook (``myst_nb.glue``), or None."""
    import nbformat
    from myst_nb.ext.glue import GLUE_PREFIX  # glue(..., display=False) prefixes its types

    nb = nbformat.read(notebook, as_version=4)
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if output.get("metadata", {}).get("scrapbook", {}).get("name") != key:
                continue
            data = output.get("data", {})
            for mime in (f"{GLUE_PREFIX}text/markdown", "text/markdown"):
                if mime in data:
                    return "".join(data[mime])
    return None


def write_conclusions(root: Path) -> Path:
    """Write ``<root>/book/_generated/conclusions.md`` from the executed What holds page.

    When that page has not been executed (a partial build), the file says so and names the
    command that executes it; the introduction still builds.

    Returns:
        The file written.
    """
    root = Path(root)
    stems = [s.stem for s in discover_sections(root) if s.name == SECTION]
    executed = root / EXECUTED_DIR / f"{stems[0]}.ipynb" if stems else None
    text = read_glued(executed, KEY) if executed is not None and executed.exists() else None
    if text is None:
        text = (
            "*The conclusions are computed by the What holds page, and this build holds none "
            "from it (the page was not executed, or was executed by older code): "
            f"`stages book --sections {SECTION}` executes it.*"
        )
    out = root / CONCLUSIONS
    out.parent.mkdir(parents=True, exist_ok=True)
    if not out.exists() or out.read_text() != text + "\n":
        out.write_text(text + "\n")
    return out
