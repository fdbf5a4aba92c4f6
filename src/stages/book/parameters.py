"""A section's parameters: read with papermill's own inspection, checked and typed for papermill.

The ``parameters`` cell is the first code cell tagged ``parameters``; papermill's
:func:`papermill.inspect_notebook` names its assignments, their source text and their trailing
comments, read as literals here. Values from the command line are typed like the defaults.
"""

from __future__ import annotations

import ast
import functools
import math
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stages.book.sections import Section, get_section, read_notebook


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


@functools.lru_cache(maxsize=64)
def _inspect(path: str, modified_ns: int) -> tuple[tuple[str, str, str], ...]:
    """``(name, source, help)`` of each parameter of a Jupytext notebook, by papermill."""
    import nbformat
    import papermill

    with tempfile.TemporaryDirectory(prefix="stages-params-") as tmp:
        ipynb = Path(tmp) / "notebook.ipynb"
        nbformat.write(read_notebook(Path(path)), ipynb)
        found = papermill.inspect_notebook(str(ipynb))
    return tuple((p["name"], p["default"], p["help"]) for p in found.values())


def _literal(source: str) -> Any:
    try:
        return ast.literal_eval(source)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return UNKNOWN


def read_parameters(section: str | Section, root: Path) -> dict[str, Parameter]:
    """The ``parameters`` cell of a section's notebook, as papermill reads it.

    Returns:
        Parameters by name, in the cell's order; empty if the notebook has no such cell.
    """
    path = get_section(section, root).path
    found = _inspect(str(path), path.stat().st_mtime_ns)
    return {
        name: Parameter(name=name, default=_literal(source), source=source, help=help)
        for name, source, help in found
    }


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
