"""Hook points the engine and the analyses read or write, and a check that each one fired.

TransformerLens's bridge exposes its hook points by name; an architecture (or a version of the
library) where a name exists but is never called would turn an intervention into a silent no-op
and a reading into nothing, and the table would still look plausible. :func:`checked_hooks`
is the only way ``stages`` adds hooks: it counts every call and, when the block exits without
an error, raises :class:`HookNotFiredError` naming each hook that never fired.
``tests/engine/test_hooks.py`` runs every point of :data:`stages.shapes.HOOK_POINTS` on every
supported architecture.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from stages.shapes import Model


class HookNotFiredError(RuntimeError):
    """A hook point was registered but never called during the forward pass."""


@contextmanager
def checked_hooks(
    model: Model, fwd_hooks: Sequence[tuple[str, Callable[..., Any]]]
) -> Iterator[None]:
    """``model.hooks(fwd_hooks=...)`` that checks, on a clean exit, that every hook fired.

    Raises:
        HookNotFiredError: a hook was never called inside the block (names them all).
    """
    calls: Counter[str] = Counter()

    def counted(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def hook(*args: Any, **kwargs: Any) -> Any:
            calls[name] += 1
            return fn(*args, **kwargs)

        return hook

    with model.hooks(fwd_hooks=[(name, counted(name, fn)) for name, fn in fwd_hooks]):
        yield
    silent = sorted({name for name, _ in fwd_hooks if calls[name] == 0})
    if silent:
        raise HookNotFiredError(
            f"{len(silent)} hook point(s) never fired on {type(model).__name__} "
            f"({model.cfg.model_name if hasattr(model, 'cfg') else ''}): {', '.join(silent[:6])}"
            f"{' ...' if len(silent) > 6 else ''}. The result would be silently wrong, so it is "
            "refused; please report the model and the transformer-lens version"
        )
