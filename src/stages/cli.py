"""The ``stages`` command: build the book, run one section, list the sections.

Examples::

    stages sections                                  # sections, their parameters and defaults
    stages run robustness -p n_tokens 20000          # execute one notebook, print its path
    stages book                                      # execute every notebook, build the book
    stages book -p n_tokens 512 --sections robustness
    stages book --no-execute --show-code             # re-render with every code cell open
    stages book --no-execute --pdf                   # and print the book to _build/pdf/book.pdf
    stages pack build gemma-3-270m                   # (continue to) build a model's results pack
    stages pack verify gemma-3-270m                  # check its files and its live slice

Exit codes: 0 success, 1 a notebook, the book build or the PDF failed, 2 bad usage, an unknown
section or parameter, or a value of the wrong type. Errors are one line on stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from stages import book
from stages.store import StorageError, cache_dir, ensure_writable

__all__ = ["main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """A mistake on the command line (exit code 2)."""


def _parameters(pairs: list[list[str]] | None) -> dict[str, str]:
    """``[["n_tokens", "512"], ...]`` -> ``{"n_tokens": "512"}`` (a later value wins)."""
    params: dict[str, str] = {}
    for name, value in pairs or []:
        if not name.isidentifier():
            raise UsageError(f"-p {name} {value}: {name!r} is not a parameter name")
        params[name] = value
    return params


@contextlib.contextmanager
def _usage_errors() -> Iterator[None]:
    """Turn validation's ValueErrors (unknown section or parameter, bad value) into usage errors.

    ValueErrors raised later, while running, are bugs and keep their traceback.
    """
    try:
        yield
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _root(args: argparse.Namespace) -> Path:
    if args.root is not None:
        root = Path(args.root)
        if not (root / "notebooks").is_dir():
            raise UsageError(f"--root {root}: no notebooks/ folder there")
        return root.resolve()
    try:
        return book.find_root()
    except FileNotFoundError as exc:
        raise UsageError(str(exc)) from None


def _cmd_sections(args: argparse.Namespace) -> int:
    root = _root(args)
    sections = book.discover_sections(root)
    if not sections:
        print(f"no sections: {root / book.NOTEBOOK_GLOB} matches nothing", file=sys.stderr)
        return EXIT_OK
    for s in sections:
        print(f"{s.name}  ({s.path.relative_to(root).as_posix()})")
        try:
            params = book.read_parameters(s, root)
        except ValueError as exc:
            print(f"    (cannot read the parameters cell: {exc})")
            continue
        if not params:
            print("    (no parameters cell)")
            continue
        width = max(len(p.name) for p in params.values())
        value_width = max(len(p.source) for p in params.values())
        for p in params.values():
            line = f"    {p.name:<{width}}  {p.type_name:<5}  default {p.source:<{value_width}}"
            if p.help:
                line += f"  # {p.help}"
            print(line.rstrip())
    return EXIT_OK


def _cmd_run(args: argparse.Namespace) -> int:
    root = _root(args)
    ensure_writable(cache_dir())
    params = _parameters(args.parameter)
    with _usage_errors():  # check everything before starting a kernel
        section = book.get_section(args.section, root)
        book.coerce_parameters(section, params, root)
    with book.book_lock(root) if args.out_dir is None else contextlib.nullcontext():
        out = book.execute_notebook(
            section,
            params,
            root=root,
            out_dir=args.out_dir,
            log_output=args.log_output,
            progress_bar=not args.no_progress,
        )
    print(out)
    return EXIT_OK


def _cmd_book(args: argparse.Namespace) -> int:
    root = _root(args)
    ensure_writable(cache_dir())
    params = _parameters(args.parameter)
    if args.jobs < 1:
        raise UsageError(f"--jobs must be at least 1 (got {args.jobs})")
    sections = None
    if args.sections is not None:
        sections = [name.strip() for name in args.sections.split(",") if name.strip()]
        if not sections:
            raise UsageError("--sections needs at least one section name")
    with _usage_errors():  # check everything before the first notebook runs
        chosen = (
            book.discover_sections(root)
            if sections is None
            else [book.get_section(name, root) for name in sections]
        )
        book.split_global_parameters(params, chosen, root)
    html = book.build_book(
        root,
        params,
        sections,
        warnings_as_errors=not args.no_warnings_as_errors,
        execute=not args.no_execute,
        log_output=args.log_output,
        progress_bar=not args.no_progress,
        show_code=args.show_code,
        jobs=args.jobs,
    )
    print(html / "index.html")
    if args.pdf:
        with book.book_lock(root):
            print(book.build_pdf(root, warnings_as_errors=not args.no_warnings_as_errors))
    return EXIT_OK


def _cmd_cache(args: argparse.Namespace) -> int:
    from stages import cache, store

    if args.action == "clear":
        print(f"removed {cache.clear(args.analysis)} cache entries from {store.results_dir()}")
        return EXIT_OK
    entries = cache.list_entries()
    if args.analysis is not None:
        entries = entries[entries["analysis"] == args.analysis]
    if entries.empty:
        print(f"no cached results in {store.results_dir()}")
    else:
        print(entries.to_string(index=False))
        size = entries["bytes"].sum() / 1e6
        print(f"{len(entries)} entries, {size:.1f} MB in {store.results_dir()}")
    return EXIT_OK


def _cmd_pack(args: argparse.Namespace) -> int:
    from stages.results.build import build_pack
    from stages.results.check import slice_check
    from stages.results.pack import Pack, PackError, Recipe, shipped_pack

    try:
        if args.action == "build":
            ensure_writable(cache_dir())
            recipe = Recipe(
                model=args.model, n_seq=args.n_seq, seq_len=args.seq_len, seed=args.seed,
                corpus=args.corpus, dtype=args.dtype, n_per_class=args.n_per_class,
            )  # fmt: skip
            parts = tuple(args.parts.split(",")) if args.parts else None
            pack = build_pack(recipe, args.out, parts=parts, up_to=args.up_to, device=args.device)
            print(pack.path)
            return EXIT_OK
        folder = Path(args.out) if args.out else shipped_pack(args.model)
        pack = Pack.open(folder)
        print(f"{pack.path}: every checksum matches; {pack.describe()}")
        if not pack.usable:
            print("the pack is incomplete: continue it with `stages pack build`")
            return EXIT_FAILED
        if not pack.complete:
            print(f"the pack is in progress: a page uses its first {pack.sequences_done} "
                  "sequences; continue it with `stages pack build`")  # fmt: skip
        from stages.models import load_model

        model = load_model(pack.recipe.model, device=args.device, dtype=pack.recipe.dtype)
        check = slice_check(pack, model)
        print(check.to_string(index=False))
        return EXIT_OK if check["ok"].all() else EXIT_FAILED
    except PackError as exc:
        _error(str(exc))
        return EXIT_FAILED


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--root",
        metavar="PATH",
        default=None,
        help="the book's folder (default: the nearest folder above with _config.yml)",
    )
    param = argparse.ArgumentParser(add_help=False)
    param.add_argument(
        "-p",
        "--parameter",
        nargs=2,
        action="append",
        metavar=("NAME", "VALUE"),
        help="set a notebook parameter (repeatable); the value is converted to the type of "
        "the default in the notebook's parameters cell",
    )
    param.add_argument(
        "--log-output", action="store_true", help="stream the notebook cells' output"
    )
    param.add_argument("--no-progress", action="store_true", help="hide papermill's progress bar")

    parser = argparse.ArgumentParser(
        prog="stages",
        description="Companion to 'The Remarkable Robustness of LLMs: Stages of Inference?' "
        "(arXiv 2406.19384): run the notebooks and build the book.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p_book = sub.add_parser(
        "book",
        parents=[common, param],
        help="execute the notebooks and build the HTML book",
        description="Execute every section's notebook (or those given) with papermill, then "
        "run `jupyter-book build . -W -n --keep-going`. A -p parameter goes to every section "
        "that declares it.",
    )
    p_book.add_argument(
        "--sections", metavar="A,B", help="execute only these sections (comma-separated)"
    )
    p_book.add_argument(
        "--no-warnings-as-errors",
        action="store_true",
        help="do not pass -W to jupyter-book (warnings are reported, not fatal)",
    )
    p_book.add_argument(
        "--no-execute",
        action="store_true",
        help="build from the executed notebooks already in book/_executed/",
    )
    p_book.add_argument(
        "--show-code",
        action="store_true",
        help="show every page's code (for teaching); by default it is folded behind a toggle",
    )
    p_book.add_argument(
        "--jobs",
        type=int,
        default=1,
        metavar="N",
        help="sections executed at once after the first (default 1: one after the other, with "
        "papermill's progress bars; more helps only with more cores than a page's torch threads)",
    )
    p_book.add_argument(
        "--pdf",
        action="store_true",
        help="also print the whole book to one PDF, _build/pdf/book.pdf (offline, with the "
        "system's chromium)",
    )
    p_book.set_defaults(func=_cmd_book)

    p_run = sub.add_parser(
        "run",
        parents=[common, param],
        help="execute one section's notebook and print the executed notebook's path",
        description="Execute one section's notebook with papermill into book/_executed/.",
    )
    p_run.add_argument("section", metavar="SECTION", help="a section name (see `stages sections`)")
    p_run.add_argument(
        "--out-dir", type=Path, default=None, help="where to write the executed notebook"
    )
    p_run.set_defaults(func=_cmd_run)

    p_sections = sub.add_parser(
        "sections",
        parents=[common],
        help="list the sections with their parameters and defaults",
    )
    p_sections.set_defaults(func=_cmd_sections)

    p_pack = sub.add_parser(
        "pack",
        help="build or verify a results pack (the book's numbers at a size that decides)",
        description="`stages pack build MODEL` computes every analysis the book shows, per "
        "sequence, into data/results/<model>/ (or --out), chunk by chunk: an interrupted build "
        "continues where it stopped. `stages pack verify MODEL` checks every file's sha256 and "
        "recomputes the live slice.",
    )
    p_pack.add_argument("action", choices=["build", "verify"])
    p_pack.add_argument("model", help="an embedded model name, a Hugging Face name or a folder")
    p_pack.add_argument("--out", default=None, help="the pack's folder (default: data/results/)")
    p_pack.add_argument("--n-seq", type=int, default=256, help="sequences (default 256)")
    p_pack.add_argument("--seq-len", type=int, default=128, help="tokens per sequence (128)")
    p_pack.add_argument("--seed", type=int, default=0, help="which sequences and windows (0)")
    p_pack.add_argument("--corpus", default="default", help="the text (default: shipped prose)")
    p_pack.add_argument("--dtype", default="float32", help="the model's dtype (float32)")
    p_pack.add_argument("--n-per-class", type=int, default=1024, help="case-study windows (1024)")
    p_pack.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    p_pack.add_argument("--parts", default=None, help="only these parts (comma-separated)")
    p_pack.add_argument(
        "--up-to", type=int, default=None, metavar="N",
        help="a round: the neurons and case studies, and only the first N sequences of the "
        "sequence parts (a page can use the pack from then on; rerun with a larger N or none)",
    )  # fmt: skip
    p_pack.set_defaults(func=_cmd_pack)

    p_cache = sub.add_parser(
        "cache",
        help="inspect or clear the result cache ($STAGES_CACHE_DIR/results)",
        description="`stages cache ls` lists the cached results (checkpoints of interrupted "
        "runs included); `stages cache clear [ANALYSIS]` deletes them.",
    )
    p_cache.add_argument("action", choices=["ls", "clear"])
    p_cache.add_argument("analysis", nargs="?", default=None, help="only this analysis")
    p_cache.set_defaults(func=_cmd_cache)
    return parser


def _error(message: str) -> None:
    print(f"stages: error: {message}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``stages`` command line; returns the exit code (0, 1 or 2).

    The console script ``stages`` calls ``sys.exit(main())``.
    """
    parser = _parser()
    try:
        args = parser.parse_args(None if argv is None else list(argv))
    except SystemExit as exc:  # --help (0) or a usage error (2), already printed
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    if getattr(args, "log_output", False):
        logging.basicConfig(level=logging.WARNING, format="%(message)s")
        logging.getLogger("papermill").setLevel(logging.INFO)
    try:
        return args.func(args)
    except UsageError as exc:
        _error(str(exc))
        return EXIT_USAGE
    except (
        book.NotebookExecutionError,
        book.BookBuildError,
        book.BookBusyError,
        book.PdfBuildError,
        StorageError,
    ) as exc:
        _error(str(exc))
        return EXIT_FAILED
    except KeyboardInterrupt:
        _error("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
