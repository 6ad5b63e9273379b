"""The ``station`` command: one entry point, a subcommand per module in this package.

Each subcommand module defines ``register(subparsers)`` which adds its parser and sets
``func`` (taking the parsed ``argparse.Namespace``, returning an exit code). Errors the
user can act on are ``StationError``s: printed as one line on stderr, exit code from the
error (DESIGN 8: 2 usage or config, 3 station fault); never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from station import __version__
from station.errors import StationError

#: Subcommand modules, in the order ``station --help`` lists them.
COMMANDS = ("run", "twin", "capture", "chart", "analyze", "profile", "report", "bench", "baseline", "soak", "db",
            "stats", "msa", "line")


def register_modules(sub: argparse._SubParsersAction, prefix: str, names: tuple[str, ...]) -> None:
    """Let each module ``<prefix><name>`` add its parser (``register(sub)``); a missing one is an error."""
    for name in names:
        importlib.import_module(f"{prefix}{name}").register(sub)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="station",
        description="M-Station: camera test and calibration station (bench or twin).",
    )
    parser.add_argument("--version", action="version", version=f"m-station {__version__}")
    register_modules(parser.add_subparsers(dest="command", metavar="COMMAND"), "station.cli.", COMMANDS)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except StationError as exc:
        print(f"station {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"station {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
