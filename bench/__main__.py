"""``python -m bench NAME [--json PATH] [--rounds N] [benchmark options]``.

An unknown NAME prints the valid ones and exits with status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from . import BENCHMARKS
from ._common import metadata, write_result


def _parser(add_help: bool) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        add_help=add_help,
        description="Run one of Forecode's benchmarks and print (and optionally save) its "
        f"result JSON. Benchmarks: {', '.join(sorted(BENCHMARKS))}.",
    )
    parser.add_argument(
        "name", metavar="NAME", nargs=None if add_help else "?", help="the benchmark to run"
    )
    parser.add_argument("--json", metavar="PATH", help="also write the result JSON to PATH")
    parser.add_argument(
        "--rounds",
        "--repeat",
        dest="rounds",
        type=int,
        default=None,
        metavar="N",
        help="interleaved rounds per candidate (median reported)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    first, _rest = _parser(add_help=False).parse_known_args(argv)
    if first.name is None:  # no NAME: argparse prints the usage (or the help) and exits
        _parser(add_help=True).parse_args(argv)
    if first.name not in BENCHMARKS:
        print(
            f"unknown benchmark {first.name!r}; valid benchmarks: {', '.join(sorted(BENCHMARKS))}",
            file=sys.stderr,
        )
        return 2
    module = importlib.import_module(BENCHMARKS[first.name])
    parser = _parser(add_help=True)
    module.add_arguments(parser)
    args = parser.parse_args(argv)
    if args.rounds is None:
        args.rounds = module.DEFAULT_ROUNDS
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    result = metadata(args.name)
    result.update(module.run(args))
    write_result(result, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
