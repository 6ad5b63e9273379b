"""``station analyze KIND FILE...``: the calibration maths on files from anywhere (DESIGN 7, 9).

Each kind lives in ``station.cli.analyze_<kind>`` with ``register(subparsers)``.
"""

from __future__ import annotations

import argparse
import importlib

KINDS = ("sfr", "geometry", "shading", "sensor", "color", "zebra", "peaking")


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("analyze", help="measure images from anywhere (PNG, TIFF, DNG); --json for JSON")
    kinds = parser.add_subparsers(dest="kind", metavar="KIND")
    for kind in KINDS:
        try:
            module = importlib.import_module(f"station.cli.analyze_{kind}")
        except ModuleNotFoundError as exc:
            if exc.name == f"station.cli.analyze_{kind}":
                continue
            raise
        module.register(kinds)
    parser.set_defaults(func=lambda args: parser.print_help() or 2)
