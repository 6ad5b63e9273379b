"""``station chart``: the chart library. A printable file (SVG, PNG, PDF by the extension), the chart's
geometry (``--info [--json]``), or the list of charts (``--list`` or ``station chart list``)."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from station.errors import InputError


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("chart", help="a printable chart (SVG/PNG/PDF) or its geometry",
                            description="Write a chart at physical size, show its geometry, list charts.")
    parser.add_argument("name", nargs="?", metavar="NAME",
                        help="chart name (`station chart list`), or charuco:SXxSY:SQUARE_MM:MARKER_MM:DICT")
    parser.add_argument("--list", action="store_true", dest="list_charts", help="list the charts")
    parser.add_argument("--size-mm", nargs=2, metavar=("W", "H"), help="sheet width and height, mm")
    parser.add_argument("--dpi", default="300", help="PNG resolution, dots per inch (default 300)")
    parser.add_argument("-o", "--output", metavar="FILE", help="file to write: .svg, .png or .pdf")
    parser.add_argument("--info", action="store_true", help="print the chart's geometry")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    parser.set_defaults(func=run)


def _number(text: str, what: str, low: float, high: float) -> float:
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise InputError(f"{what} {text!r}: expected a number") from None
    if not (math.isfinite(value) and low < value <= high):
        raise InputError(f"{what} {text!r}: expected a number above {low:g} and at most {high:g}")
    return value


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _list(args: argparse.Namespace) -> int:
    from targets.registry import CHARTS

    if args.json:
        print(json.dumps({"charts": [{"name": n, "title": c.title} for n, c in CHARTS.items()]}))
    else:
        width = max(len(n) for n in CHARTS)
        for name, cls in CHARTS.items():
            print(f"{name:<{width}}  {cls.title}")
    return 0


def _print_info(info: dict[str, Any]) -> None:
    for key, value in info.items():
        if isinstance(value, list) and value and isinstance(value[0], dict):
            print(f"{key}: {len(value)} entries (--json for all)")
        elif isinstance(value, dict):
            print(f"{key}: {json.dumps(_jsonable(value))}")
        else:
            print(f"{key}: {value}")


def run(args: argparse.Namespace) -> int:
    if args.list_charts or args.name == "list":
        return _list(args)
    if not args.name:
        raise InputError("give a chart NAME (station chart list), or --list")
    from targets.printing import write_chart
    from targets.registry import get_chart

    width_mm = height_mm = None
    if args.size_mm is not None:
        width_mm = _number(args.size_mm[0], "--size-mm width", 0.0, 10_000.0)
        height_mm = _number(args.size_mm[1], "--size-mm height", 0.0, 10_000.0)
    dpi = _number(args.dpi, "--dpi", 0.0, 4800.0)
    if args.output is not None:
        suffix = Path(args.output).suffix.lower()
        if suffix not in (".svg", ".png", ".pdf"):
            raise InputError(f"{args.output}: unknown file type {suffix!r}; expected .svg, .png or .pdf")
        if not Path(args.output).resolve().parent.is_dir():
            raise InputError(f"{args.output}: its folder does not exist")
    try:
        chart = get_chart(args.name, width_mm, height_mm)
        if args.output is None or args.info:
            info = _jsonable(chart.info())
        written = write_chart(chart, args.output, dpi) if args.output is not None else None
    except ValueError as exc:
        raise InputError(str(exc)) from None
    except OSError as exc:
        raise InputError(f"{args.output}: cannot write ({exc.strerror or exc})") from None
    if args.json:
        out = dict(info) if (args.output is None or args.info) else {}
        if written is not None:
            out["written"] = _jsonable(written)
        print(json.dumps(out))
        return 0
    if args.output is None or args.info:
        _print_info(info)
    if written is not None:
        size = f"{written['width_mm']:g} x {written['height_mm']:g} mm"
        if written["format"] == "png":
            size += f", {written['width_px']} x {written['height_px']} px at {written['dpi']:g} dpi"
        print(f"wrote {written['file']} ({written['chart']}, {written['format'].upper()}, {size})")
    return 0
