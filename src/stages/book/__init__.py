"""The book pipeline: Jupytext notebooks -> papermill -> Jupyter Book 1.x.

One command builds the book (``stages book``, see :mod:`stages.cli`):

1. every section notebook ``notebooks/NN_name.py`` (Jupytext py:percent, found by glob, never
   by a hand-kept list: :mod:`.sections`) is converted to ``.ipynb`` and executed by papermill
   with the chosen parameters (:mod:`.parameters`, :mod:`.execute`) into
   ``book/_executed/NN_name.ipynb`` (git-ignored);
2. ``_static/vega-offline.js`` is written, so the Altair charts render with no network
   (:mod:`.assets`);
3. ``_toc.yml`` is regenerated from the discovered sections (:mod:`.toc`);
4. every page's code is folded behind a toggle, or shown (:mod:`.reader`), and the
   introduction's conclusions are copied from the What holds page (:mod:`.intro`);
5. ``jupyter-book build <root> -W -n --keep-going`` renders ``_build/html`` (:mod:`.build`),
   with the Sphinx extension :mod:`.sphinx` serving MathJax offline;
6. with ``--pdf``, the one-page edition is printed to ``_build/pdf/book.pdf`` by the system's
   chromium (:mod:`.pdf`, :mod:`.browser`).

One build writes a checkout at a time (:mod:`.lock`); a notebook that fails or is interrupted
leaves no executed copy that looks complete (:func:`.execute.execute_notebook`).

Inside a notebook, :mod:`.page` opens and closes a page. The browser check of a built book
lives with the tests (``tests/support/browser.py``).

This package is light on purpose: it imports neither torch nor the analysis modules (only
:mod:`.page` does, and nothing here imports it), and it imports jupytext, papermill and altair
only inside the functions that need them. Every function takes the book's ``root`` so that
tests can run on temporary copies.
"""

from stages.book.assets import VEGA_BUNDLE, write_vega_bundle
from stages.book.build import BUILD_LOG, BookBuildError, build_book, execute_sections
from stages.book.execute import NotebookExecutionError, execute_notebook, run_it_yourself
from stages.book.lock import BookBusyError, book_lock
from stages.book.parameters import (
    UNKNOWN,
    Parameter,
    coerce_parameters,
    read_parameters,
    split_global_parameters,
)
from stages.book.pdf import PDF, PdfBuildError, build_pdf
from stages.book.sections import (
    EXECUTED_DIR,
    NOTEBOOK_GLOB,
    SECTIONS,
    Section,
    discover_sections,
    find_root,
    get_section,
)
from stages.book.sphinx import LOCAL_MATHJAX, mathjax_source
from stages.book.toc import REFERENCE_PAGES, SECTIONS_CAPTION, render_toc, write_toc

__all__ = [
    "BUILD_LOG",
    "EXECUTED_DIR",
    "LOCAL_MATHJAX",
    "NOTEBOOK_GLOB",
    "REFERENCE_PAGES",
    "SECTIONS",
    "SECTIONS_CAPTION",
    "UNKNOWN",
    "VEGA_BUNDLE",
    "BookBuildError",
    "BookBusyError",
    "NotebookExecutionError",
    "PDF",
    "PdfBuildError",
    "Parameter",
    "Section",
    "book_lock",
    "build_book",
    "build_pdf",
    "coerce_parameters",
    "discover_sections",
    "execute_notebook",
    "execute_sections",
    "find_root",
    "get_section",
    "mathjax_source",
    "read_parameters",
    "render_toc",
    "run_it_yourself",
    "split_global_parameters",
    "write_toc",
    "write_vega_bundle",
]
