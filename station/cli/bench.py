"""``station bench NAME --json``: benchmarks that print the figure and its in-run reference.

Each benchmark lives in ``station.cli.bench_<name>`` with ``register(subparsers)``.
"""

from __future__ import annotations

import argparse
import importlib

BENCHES = ("raw10", "render", "sfr", "plan")


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("bench", help="benchmarks (JSON with --json)")
    names = parser.add_subparsers(dest="bench", metavar="NAME")
    for name in BENCHES:
        try:
            module = importlib.import_module(f"station.cli.bench_{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"station.cli.bench_{name}":
                continue
            raise
        module.register(names)
    parser.set_defaults(func=lambda args: parser.print_help() or 2)
