"""The system's chromium, driven by Python playwright: for the print edition and the tests.

Never a browser download (``playwright install`` needs the internet): Debian's ``chromium`` on
PATH (``apt-get install chromium``; ``setup.sh`` installs it), headless, with the flags that keep
it offline and quiet (``shared/BOOK-RECIPE.md``).
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from typing import Any

BROWSER_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
"""chromium's command-line flags: no sandbox (root in a container), no GPU, no network chatter."""


@contextlib.contextmanager
def system_chromium(chromium: str | None = None) -> Iterator[Any]:
    """The system's chromium, headless, as a playwright ``Browser``; closed on exit.

    Args:
        chromium: the executable; ``shutil.which("chromium")`` by default.

    Raises:
        FileNotFoundError: no chromium is installed (the message says how to install it).
    """
    from playwright.sync_api import sync_playwright

    executable = chromium or shutil.which("chromium")
    if not executable:
        raise FileNotFoundError(
            "no chromium on PATH: install Debian's package (apt-get install -y chromium)"
        )
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=list(BROWSER_ARGS))
        try:
            yield browser
        finally:
            browser.close()
