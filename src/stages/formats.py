"""Numbers as the book writes them: three significant digits, intervals as ``a (b to c)``.

Used by the pages (:mod:`stages.book.present`) and by the sentences the claims compose
(:mod:`stages.claims.headlines`), so a number reads the same everywhere.
"""

from __future__ import annotations

import math

import numpy as np

DIGITS = 3
"""Significant digits of every number the book shows."""


def number(x: float, digits: int = DIGITS, *, scale: float | None = None) -> str:
    """``x`` with ``digits`` significant digits, plainly (no exponent between 1e-4 and 1e6).

    Args:
        x: the value.
        digits: significant digits.
        scale: a typical size of the quantity (e.g. the width of its interval): a value below
            ``1e-9`` of it is rounding error around 0 and is shown as ``0``.
    """
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return ""
    if math.isinf(x):
        return "∞" if x > 0 else "−∞"
    if x == 0 or (scale is not None and abs(x) < 1e-9 * abs(scale)):
        return "0"
    text = f"{x:.{digits}g}"
    if "e" in text and 1e-4 <= abs(x) < 1e6:
        decimals = max(0, digits - 1 - math.floor(math.log10(abs(x))))
        text = f"{x:.{decimals}f}"
    return text.replace("-", "−")


def estimate(value: float, lo: float, hi: float, digits: int = DIGITS) -> str:
    """``"value (lo to hi)"``, with more digits where ``digits`` would make ``lo`` and ``hi`` equal.

    An interval of true zero width is shown as such (``"0.5 (0.5 to 0.5)"``); the book's
    verdicts have none, and a narrow one is never printed as if it had.
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    scale = max(abs(lo), abs(hi), abs(value)) if np.isfinite([lo, hi]).all() else abs(value)
    for extra in range(0, 5):
        d = digits + extra
        a, b = number(lo, d, scale=scale), number(hi, d, scale=scale)
        if a != b or lo == hi:
            break
    return f"{number(value, d, scale=scale)} ({a} to {b})"


def percent(value: float, lo: float, hi: float) -> str:
    """A share with its interval in percent: ``"1.84% (1.55% to 2.13%)"``."""
    text = estimate(100 * value, 100 * lo, 100 * hi)
    head, _, bounds = text.partition(" (")
    a, _, b = bounds.rstrip(")").partition(" to ")
    return f"{head}% ({a}% to {b}%)"
