"""``station analyze KIND FILE...``: the calibration maths on files from anywhere (DESIGN 7, 9).

Each kind lives in ``station.cli.analyze_<kind>`` with ``register(subparsers)``.
"""

from __future__ import annotations

import argparse

from station.cli import register_modules

KINDS = ("sfr", "geometry", "shading", "sensor", "color", "zebra", "peaking", "defects")


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("analyze", help="measure images from anywhere (PNG, TIFF, DNG); --json for JSON")
    kinds = parser.add_subparsers(dest="kind", metavar="KIND")
    register_modules(kinds, "station.cli.analyze_", KINDS)
    parser.set_defaults(func=lambda args: parser.print_help() or 2)
