"""Helpers shared by subcommands: the station to use, JSON output, atomic writes."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from station.atomic import atomic_write_bytes
from station.config import StationConfig, TwinConfig, load_config
from station.errors import ConfigError, InputError
from station.twin.faults import parse_fault_args


def add_station_options(parser: argparse.ArgumentParser) -> None:
    """``--station FILE`` (a bench; default: start a twin) and the twin's own options."""
    parser.add_argument("--station", metavar="FILE", help="station TOML of a bench (default: run on a twin)")
    parser.add_argument("--twin-fault", metavar="NAME[=VALUE]", action="append", default=[],
                        help="inject a twin fault (repeatable; `station twin faults` lists them)")
    parser.add_argument("--firmware", metavar="BUILD", help="the twin's firmware build (default golden)")
    parser.add_argument("--seed", type=int, default=None, help="the twin's seed (default 1)")
    parser.add_argument("--resolution", choices=("ci", "full"), default=None,
                        help="the twin's sensor resolution (default ci: 2048x1536 binned)")


def twin_settings(args: argparse.Namespace, time_scale: float = 0.0) -> TwinConfig:
    faults = parse_fault_args(getattr(args, "twin_fault", None))
    return TwinConfig(seed=args.seed if getattr(args, "seed", None) is not None else 1,
                      firmware=getattr(args, "firmware", None) or "golden",
                      resolution=getattr(args, "resolution", None) or "ci",
                      time_scale=time_scale, faults=faults)


@contextlib.contextmanager
def station_config(args: argparse.Namespace, time_scale: float = 0.0) -> Iterator[StationConfig]:
    """The bench named by ``--station``, or a twin started for the command's duration."""
    if getattr(args, "station", None):
        if getattr(args, "twin_fault", None):
            raise ConfigError("--twin-fault applies to the twin only; drop it or drop --station")
        yield load_config(args.station)
        return
    from station.twin.runner import Twin

    with Twin(twin_settings(args, time_scale)) as twin:
        assert twin.config is not None
        yield twin.config


def analyze_outputs(parser: argparse.ArgumentParser, run: Callable[[argparse.Namespace], int], *,
                    plot: str | None = None, plot_metavar: str = "FILE.png", linear: bool = False) -> None:
    """The options an analyze command ends with: ``--linear`` (when it reads 8-bit images), ``--plot``
    (when it draws ``plot``), ``--json``; and the function that runs it."""
    if linear:
        parser.add_argument("--linear", action="store_true", help="8-bit images are linear already (no sRGB decoding)")
    if plot:
        parser.add_argument("--plot", metavar=plot_metavar, help=f"write {plot} here")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=run)


def print_json(obj: Any) -> None:
    json.dump(obj, sys.stdout, indent=2, sort_keys=False, default=_json_default)
    sys.stdout.write("\n")


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON-serialisable: {type(obj).__name__}")


def check_output_folder(option: str, path: str | Path | None) -> None:
    """Fail before any work when an output option names a folder that does not exist."""
    if path is not None and not Path(path).resolve().parent.is_dir():
        raise InputError(f"{option} {path}: folder {Path(path).parent} does not exist")


def write_plot(doc: dict[str, Any], path: str | Path | None, render: Callable[[], bytes]) -> None:
    """Write the plot ``render()`` makes to ``path`` (atomically) and note it in ``doc``; no path, no plot."""
    if path:
        atomic_write_bytes(path, render())
        doc["plot"] = str(path)


def emit(doc: dict[str, Any], as_json: bool, text: Callable[[dict[str, Any]], str]) -> int:
    """Print a measurement: one JSON object with ``--json``, else the human summary. Returns 0."""
    if as_json:
        print_json(doc)
    else:
        print(text(doc))
    return 0
