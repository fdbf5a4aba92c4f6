"""A page of the book, inside its notebook: one call opens it, one call writes its footer.

::

    page = open_page("detokenization", globals())   # after the parameters cell
    res = page.results()                           # the pack, checked, or computed now
    ...
    page.footer(res)                               # provenance, from the parameters that ran

:func:`open_page` reads the names of the section's ``parameters`` cell (papermill's inspection,
:func:`stages.book.read_parameters`) and takes their values from the notebook's namespace, so
they are the values papermill injected (or the defaults): no page retypes its parameters. It
also starts the page's timer and enables the book's figure style
(:func:`stages.plots.use_book_style`).
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from stages.book.downloads import link, write_download
from stages.book.parameters import read_parameters
from stages.book.present import fold, markdown
from stages.book.sections import find_root
from stages.plots import use_book_style
from stages.provenance import provenance_markdown
from stages.results.opening import open_results
from stages.results.parts import WINDOW_PARTS


@dataclass
class Page:
    """An open page: its section, the parameters it runs with, and its timer.

    Attributes:
        section: the section's short name (``"robustness"``).
        parameters: every name of the ``parameters`` cell with the value this run uses.
        started: ``time.time()`` when the page opened.
    """

    section: str
    parameters: dict[str, Any]
    started: float = field(default_factory=time.time)

    @property
    def elapsed(self) -> float:
        """Seconds since the page opened."""
        return time.time() - self.started

    def results(self, **overrides: Any) -> Any:
        """:func:`stages.results.opening.open_results` with the page's parameters it accepts.

        ``overrides`` replace or add arguments (``window_batch=batch_size``).
        """
        accepted = inspect.signature(open_results).parameters
        kwargs = {k: v for k, v in self.parameters.items() if k in accepted} | overrides
        return open_results(**kwargs)

    def footer(self, source: Any) -> None:
        """Display the provenance footer.

        Args:
            source: a :class:`stages.results.source.Results` (its record for this page's parameters
                and time is shown) or a ready provenance record (a dict).
        """
        from IPython.display import HTML, display


        record = source if isinstance(source, Mapping) else source.provenance(
            self.parameters, seconds=self.elapsed
        )  # fmt: skip
        table = provenance_markdown(dict(record)).split("\n", 2)[2]  # the table, no heading
        display(HTML(fold("Provenance: the model, data, parameters, versions and machine "
                          "that produced this page", markdown(table))))  # fmt: skip

    def download(self, frame: Any, name: str, label: str) -> str:
        """Write ``frame`` for the reader to download; return the HTML link.

        Args:
            frame: a DataFrame (a figure's data, a pack part's rows).
            name: the file name (``figure-3.csv``, ``sweep.parquet``).
            label: the link's text.
        """
        href = write_download(find_root(), self.section, name, frame)
        return link(href, label)

    def chart(self, chart: Any, data: Any, name: str) -> None:
        """Display a chart with a link to its data as CSV under it.

        Args:
            chart: the Altair chart.
            data: the DataFrame it draws (the figure's numbers).
            name: the figure's file name without extension (``figure-3``).
        """
        from IPython.display import HTML, display

        display(chart)
        link = self.download(data, f"{name}.csv", "the figure's data (CSV)")
        display(HTML(f'<p class="stages-downloads">Download {link}.</p>'))

    def source(self, results: Any) -> None:
        """Display under the title where the page's numbers come from, in one sentence.

        The parts read, their dates and commits, and the live slice check behind a fold.

        Args:
            results: the page's :class:`stages.results.source.Results`, after every part the
                page reads was asked for (the check covers those parts).
        """
        from IPython.display import HTML, display


        parts = [p for p in results.used if p != "neurons"]
        links = ", ".join(
            self.download(results.window_rows(p, progress=False) if p in WINDOW_PARTS
                          else results.sums(p, progress=False), f"{p}.parquet", p)
            for p in parts
        )  # fmt: skip
        rows = (f"<p>The rows this page read, one per sequence (or window), as parquet: {links}."
                "</p>" if links else "")  # fmt: skip
        display(HTML(f'<p class="stages-source">{results.headline()}</p>'
                     + fold("Where these numbers come from", markdown(results.report()) + rows)))

    def footer_for_models(self, records: Mapping[str, Mapping[str, Any]]) -> None:
        """Display one provenance footer for a page over several models.

        Args:
            records: each model's provenance record
            (:meth:`stages.results.source.Results.provenance`),
                by model name; what they share (corpus, date, machine, versions) is shown once.
        """
        record = {"parameters": ", ".join(f"{k}={v!r}" for k, v in self.parameters.items()),
                  "run time": f"{self.elapsed:.0f} s"}  # fmt: skip
        record |= {
            name: f"{r['model source']}; weights {r['weights hash']}; {r['tokens']}; "
            f"{r['dtype']} on {r['device']}; {r['numbers']}"
            for name, r in records.items()
        }
        shared = next(iter(records.values()))
        record |= {k: v for k, v in shared.items()
                   if k.startswith(("corpus", "date", "machine", "version"))}  # fmt: skip
        self.footer(record)


def open_page(section: str, namespace: Mapping[str, Any]) -> Page:
    """Open a page: its parameters from ``namespace`` (the notebook's ``globals()``), a timer.

    Raises:
        NameError: a parameter of the section's cell is not defined in ``namespace`` (the
            parameters cell did not run).
    """
    names = list(read_parameters(section, find_root()))
    missing = [name for name in names if name not in namespace]
    if missing:
        raise NameError(f"run the parameters cell first: {', '.join(missing)} not defined")
    use_book_style()
    return Page(section, {name: namespace[name] for name in names})
