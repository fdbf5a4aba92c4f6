"""The Sphinx extension of the book (``stages.book.sphinx`` in ``_config.yml``).

Offline MathJax, and one of each script per page.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

MATHJAX_CDN = "https://cdn.jsdelivr.net/npm/mathjax@3"
"""Sphinx's default ``mathjax_path`` starts with this; pages with math fetch it from the CDN."""

LOCAL_MATHJAX = "mathjax/tex-mml-svg.js"
"""``mathjax_path`` when a local MathJax 3 is installed (relative to ``_static``)."""


def mathjax_source() -> Path | None:
    """The ``es5`` folder of an installed MathJax 3, or None.

    MathJax comes from the PyPI package ``django-static-mathjax`` (pure data, no Django needed;
    it installs the module ``mathjax`` with ``static/mathjax/es5``).
    """
    import importlib.resources

    try:
        base = Path(str(importlib.resources.files("mathjax"))) / "static" / "mathjax" / "es5"
    except (ModuleNotFoundError, TypeError):
        return None
    return base if (base / Path(LOCAL_MATHJAX).name).is_file() else None


def _use_local_mathjax(app, config) -> None:
    if str(config.mathjax_path).startswith(MATHJAX_CDN) and mathjax_source() is not None:
        config.mathjax_path = LOCAL_MATHJAX


def _copy_local_mathjax(app, exception) -> None:
    if exception is not None or getattr(app.builder, "format", "") != "html":
        return
    if app.config.mathjax_path != LOCAL_MATHJAX:
        return
    source = mathjax_source()
    if source is None:
        return
    dest = Path(app.outdir) / "_static" / Path(LOCAL_MATHJAX).parent
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source / Path(LOCAL_MATHJAX).name, dest / Path(LOCAL_MATHJAX).name)
    # TeX packages that MathJax's autoload fetches on first use (\color, \cancel, ...)
    extensions = Path("input") / "tex" / "extensions"
    shutil.copytree(source / extensions, dest / extensions, dirs_exist_ok=True)


def _one_of_each_script(app, pagename, templatename, context, doctree) -> None:
    """Drop a page's repeated ``<script>`` entries (same file, same attributes and body).

    Jupyter Book 1.0.4 registers sphinx-thebe's inline configuration twice, so every page
    declared ``const THEBE_JS_URL`` twice and its browser console logged an error.
    """
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, kept = set(), []
    for js in scripts:
        # the same inline script is registered once with filename "" and once with None
        key = (getattr(js, "filename", None) or None,
               repr(sorted(getattr(js, "attributes", {}).items())))  # fmt: skip
        if key not in seen:
            seen.add(key)
            kept.append(js)
    scripts[:] = kept


def setup(app) -> dict[str, Any]:
    """Sphinx extension (``sphinx: extra_extensions: [stages.book.sphinx]`` in ``_config.yml``).

    Pages with math load MathJax from a CDN by default, which fails offline. When MathJax 3 is
    installed locally (:func:`mathjax_source`), this points ``mathjax_path`` at a copy in the
    built book's ``_static/mathjax/`` (SVG output: no web fonts to fetch). The copy is made
    after the build, outside the source ``_static/``, because Jupyter Book adds every
    ``_static/**.js`` of the source to every page. Without a local MathJax nothing changes.
    It also keeps one of each ``<script>`` a page would load twice (:func:`_one_of_each_script`).
    """
    app.connect("config-inited", _use_local_mathjax)
    app.connect("html-page-context", _one_of_each_script, priority=900)  # after the others
    app.connect("build-finished", _copy_local_mathjax)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
