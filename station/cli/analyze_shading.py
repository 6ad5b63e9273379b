"""``station analyze shading FILE...``: the lens shading gain map and radial vignetting fit from flat fields.

Flat-field DNGs (CFA, black and white level honoured) or linear 16-bit / float images (8-bit ones are
sRGB-decoded unless ``--linear``); several files of the same size are averaged. Prints the map in
Android's ``LENS_SHADING_MAP`` layout ([rows][cols][R, G_even, G_odd, B], gains >= 1), each channel's
corner falloff (% and EV) and its radial fit (lensfun ``pa`` coefficients and the fitted centre).
``--plot FILE.png`` writes the heat maps and the radial profile.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

from calibration.shading import DEFAULT_GRID, ShadingError, lens_shading
from station.cli.common import analyze_outputs, check_output_folder, emit, write_plot
from station.errors import InputError
from station.imageio import LoadedImage, load_image

_GRID_RE = re.compile(r"^\s*(\d+)\s*[xX]\s*(\d+)\s*$")


def register(kinds: argparse._SubParsersAction) -> None:
    parser = kinds.add_parser(
        "shading",
        help="lens shading gain map (Android LENS_SHADING_MAP) and radial vignetting from flat fields",
        description="Per-channel shading gain map (gains >= 1, Android [rows][cols][R, G_even, G_odd, B]) "
                    "and a radial vignetting fit from flat-field frames (averaged).",
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help="flat-field frames (DNG, 16-bit PNG/TIFF)")
    parser.add_argument("--grid", default=f"{DEFAULT_GRID[0]}x{DEFAULT_GRID[1]}", metavar="ROWSxCOLS",
                        help="map size, rows x columns (default %(default)s)")
    analyze_outputs(parser, run, plot="the shading map plot", linear=True)


def parse_grid(text: str) -> tuple[int, int]:
    m = _GRID_RE.match(text)
    if not m or int(m[1]) < 2 or int(m[2]) < 2:
        raise InputError(f"--grid {text!r}: expected ROWSxCOLS with at least 2 of each, e.g. 13x17")
    return int(m[1]), int(m[2])


def _check_same(images: list[LoadedImage]) -> None:
    first = images[0]
    for im in images[1:]:
        if im.data.shape != first.data.shape or im.kind != first.kind:
            raise InputError(f"{im.path}: {im.kind} {im.data.shape[1]}x{im.data.shape[0]}, expected "
                             f"{first.kind} {first.data.shape[1]}x{first.data.shape[0]} like {first.path}")
        if im.cfa != first.cfa or im.black_level != first.black_level:
            raise InputError(f"{im.path}: CFA {im.cfa} black {im.black_level:g}, expected CFA {first.cfa} "
                             f"black {first.black_level:g} like {first.path}")


def analyze(files: list[str], grid: tuple[int, int], linear: bool = False) -> dict[str, Any]:
    """The shading document for ``files`` (InputError on bad input); ``result`` holds the ShadingResult."""
    images = [load_image(f, linear=linear) for f in files]
    _check_same(images)
    first = images[0]
    who = first.path if len(files) == 1 else f"{first.path} (+{len(files) - 1} more)"
    if first.kind == "cfa" and not first.cfa:
        raise InputError(f"{first.path}: a CFA image without its CFA pattern")
    # float images have no clip level of their own; integer ones clip at their white level
    white = None if (first.kind != "cfa" and first.bit_depth >= 32) else first.white_level
    try:
        result = lens_shading([im.data for im in images], cfa=first.cfa if first.kind == "cfa" else None,
                              black_level=first.black_level, white_level=white, grid=grid)
    except ShadingError as exc:
        raise InputError(f"{who}: {exc}") from None
    doc = {"files": [str(f) for f in files], "kind": first.kind, **result.to_dict()}
    return {"doc": doc, "result": result}


def run(args: argparse.Namespace) -> int:
    grid = parse_grid(args.grid)
    for name in args.files:
        if not Path(name).is_file():
            raise InputError(f"{name}: no such file (expected a flat-field DNG or image)")
    check_output_folder("--plot", args.plot)
    out = analyze(args.files, grid, linear=args.linear)
    doc = out["doc"]
    from calibration.plots import shading_png

    write_plot(doc, args.plot, lambda: shading_png(out["result"]))
    return emit(doc, args.json, _text)


def _text(doc: dict[str, Any]) -> str:
    rows, cols = doc["grid"]
    w, h = doc["image_size"]
    lines = [f"shading map {rows}x{cols} (Android [rows][cols][R, G_even, G_odd, B]) from "
             f"{len(doc['files'])} frame(s), {w}x{h} {doc['kind']}{' ' + doc['cfa'] if doc['cfa'] else ''}; "
             f"flat residual {doc['flat_residual_pct']:.2f}% RMS",
             f"{'channel':<9}{'max gain':>9}{'corner falloff':>16}{'EV':>7}{'worst':>8}"
             f"{'radial k1, k2, k3':>30}{'centre px':>20}"]
    seen = set()
    for k, name in enumerate(doc["channels"]):
        if name in seen:
            continue
        seen.add(name)
        fall = doc["corner_falloff"][name]
        fit = doc["radial_fit"][name]
        gmax = max(row[k] for line in doc["gain_map"] for row in line)
        ks = ", ".join(f"{v:+.4f}" for v in fit["k"])
        cx, cy = fit["center_px"]
        lines.append(f"{name:<9}{gmax:>9.3f}{fall['mean_pct']:>15.1f}%{fall['mean_ev']:>7.2f}"
                     f"{fall['max_pct']:>7.1f}%{ks:>30}{f'{cx:.1f}, {cy:.1f}':>20}")
    if "plot" in doc:
        lines.append(f"plot: {doc['plot']}")
    return "\n".join(lines)
