"""``station bench NAME --json``: benchmarks that print the figure and its in-run reference.

Each benchmark lives in ``station.cli.bench_<name>`` with ``register(subparsers)``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

from station.cli import register_modules

BENCHES = ("raw10", "render", "sfr", "plan", "all")


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("bench", help="benchmarks (JSON with --json)")
    names = parser.add_subparsers(dest="bench", metavar="NAME")
    register_modules(names, "station.cli.bench_", BENCHES)
    parser.set_defaults(func=lambda args: parser.print_help() or 2)


def bench_parser(sub: argparse._SubParsersAction, name: str, help_text: str, run: Callable[[argparse.Namespace], int],
                 *, repeats: int | None = None, repeats_help: str = "runs; the best counts") -> argparse.ArgumentParser:
    """The parser of ``station bench NAME``: ``--json`` as every benchmark has it and, with ``repeats``, the
    ``--repeats`` of a timed benchmark (the best run counts: timeit's rule); the caller adds its own options."""
    parser = sub.add_parser(name, help=help_text)
    if repeats is not None:
        parser.add_argument("--repeats", type=int, default=repeats, help=repeats_help)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=run)
    return parser


def print_bench(args: argparse.Namespace, name: str, result: dict[str, Any],
                summary: Callable[[dict[str, Any]], str]) -> int:
    """A benchmark's figures: one JSON object ``{name: result}`` with ``--json``, else its ``summary`` lines."""
    print(json.dumps({name: result}) if args.json else summary(result))
    return 0
