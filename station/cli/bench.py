"""``station bench NAME --json``: benchmarks that print the figure and its in-run reference.

Each benchmark lives in ``station.cli.bench_<name>`` with ``register(subparsers)``.
"""

from __future__ import annotations

import argparse

from station.cli import register_modules

BENCHES = ("raw10", "render", "sfr", "plan", "all")


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("bench", help="benchmarks (JSON with --json)")
    names = parser.add_subparsers(dest="bench", metavar="NAME")
    register_modules(names, "station.cli.bench_", BENCHES)
    parser.set_defaults(func=lambda args: parser.print_help() or 2)
