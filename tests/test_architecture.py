"""The package's floors: each layer imports only from the layers below it (no cycle, no upward).

Read from the source (:mod:`ast`), imports inside functions included, so a cycle cannot hide
behind a function-level import.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "stages"

LAYERS: tuple[tuple[str, ...], ...] = (
    ("store", "formats", "shapes", "depth", "stats", "cache"),
    ("models",),
    ("text",),
    ("provenance",),
    ("engine",),
    ("analyses",),
    ("claims",),
    ("results",),
    ("plots",),
    ("book",),
    ("cli", "__init__"),
)
"""Every module or subpackage of ``stages``, bottom floor first."""

FLOOR = {name: k for k, names in enumerate(LAYERS) for name in names}

FUNCTION_LEVEL_ALLOWED = {
    ("cli", "*"),  # the command line imports each command's machinery when it runs
    ("__init__", "*"),  # the public names load on first use
    ("provenance", "text"),  # the corpus pulls in torch; `stages cache ls` and stamps do not
}
"""``(importer, imported)`` unit pairs whose imports may sit inside functions."""


def _unit(module: str) -> str:
    """``stages.engine.sweep`` -> ``engine``; ``stages.stats`` -> ``stats``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports() -> list[tuple[str, str, bool, str]]:
    """``(importer unit, imported unit, inside a function, where)`` for every stages import."""
    found = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC.parent).with_suffix("")
        module = ".".join(rel.parts).removesuffix(".__init__")
        unit = "__init__" if module == "stages" else _unit(module)
        tree = ast.parse(path.read_text())
        top = {id(node) for node in tree.body}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("stages"):
                names = [node.module] if node.module != "stages" else [
                    f"stages.{a.name}" for a in node.names
                ]  # fmt: skip
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names if a.name.startswith("stages")]
            else:
                continue
            for name in names:
                target = _unit(name) if name != "stages" else "__init__"
                if target != unit and target in FLOOR:
                    where = f"{rel}:{node.lineno}"
                    found.append((unit, target, id(node) not in top, where))
    return found


def test_every_unit_has_a_floor():
    units = {p.stem if p.is_file() else p.name for p in SRC.iterdir()
             if p.suffix == ".py" or (p.is_dir() and (p / "__init__.py").exists())}  # fmt: skip
    assert units == set(FLOOR), units ^ set(FLOOR)


def test_no_import_goes_up_a_floor():
    upward = [f"{where}: {a} imports {b}" for a, b, _, where in _imports()
              if FLOOR[b] > FLOOR[a]]  # fmt: skip
    assert not upward, "\n".join(upward)


@pytest.mark.parametrize("floor", [k for k, names in enumerate(LAYERS) if len(names) > 1])
def test_units_of_one_floor_form_no_cycle(floor):
    edges = {(a, b) for a, b, _, _ in _imports() if FLOOR[a] == FLOOR[b] == floor}
    cycles = [(a, b) for a, b in edges if (b, a) in edges]
    assert not cycles, cycles


def test_imports_inside_functions_are_only_for_the_lazy_top():
    lazy = [f"{where}: {a} imports {b} inside a function" for a, b, inside, where in _imports()
            if inside and not {(a, "*"), (a, b)} & FUNCTION_LEVEL_ALLOWED]  # fmt: skip
    assert not lazy, "\n".join(lazy)
