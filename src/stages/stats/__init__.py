"""The book's inference: bootstrap intervals over independent units, and verdicts from them.

- :mod:`.bootstrap`: :func:`bootstrap` (paired, over units), :func:`interval` (a percentile
  interval of any statistic of the means; :func:`defined_percentile` where some resamples leave
  it undefined), :func:`simultaneous` (a sup-t band over ``k`` quantities);
- :mod:`.bands`: :func:`gap`, :func:`lowest`, :func:`highest` (claims decided item by item);
- :mod:`.tests`: :func:`clopper_pearson`, :func:`mcnemar`, :func:`holm`;
- :mod:`.verdicts`: :class:`Verdict`, :func:`verdict` (:func:`mean_verdict` on one mean,
  :func:`every_verdict` on every item of several),
  :func:`decide` and its kin;
- :mod:`.words`: the bootstrap over words, each word weighted once (:func:`class_effects`,
  :func:`selection_half`).

Everything but :mod:`.words` is re-exported here: ``from stages import stats`` then
``stats.interval(...)``.
"""

from stages.stats.bands import gap, highest, lowest
from stages.stats.bootstrap import (
    LEVEL,
    MIN_UNITS,
    N_BOOT,
    Statistic,
    bootstrap,
    defined_percentile,
    interval,
    mean_intervals,
    means,
    percentile,
    simultaneous,
    two_sample,
)
from stages.stats.tests import clopper_pearson, holm, mcnemar
from stages.stats.verdicts import (
    SOURCES,
    VERDICTS,
    Verdict,
    decide,
    decide_against_null,
    decide_within,
    every_verdict,
    mean_verdict,
    missing,
    rule_text,
    table,
    verdict,
)

__all__ = [
    "LEVEL", "MIN_UNITS", "N_BOOT", "SOURCES", "VERDICTS", "Statistic", "Verdict", "bootstrap",
    "clopper_pearson", "decide", "decide_against_null", "decide_within", "defined_percentile",
    "every_verdict",
    "gap", "highest", "holm", "interval", "lowest", "mcnemar", "mean_intervals", "mean_verdict",
    "means",
    "missing", "percentile", "rule_text", "simultaneous", "table", "two_sample", "verdict",
]  # fmt: skip
