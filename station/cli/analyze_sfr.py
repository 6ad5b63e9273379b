"""``station analyze sfr FILE... [--roi X,Y,W,H] [--plane Y|R|G|B|Gr|Gb] [--flat FILE] [--plateau-slope]``: slanted-edge
MTF (ISO 12233 e-SFR).

Without ``--roi`` every usable slanted edge in each image is found (``calibration.edges``) and
measured (``calibration.sfr``); a file holding one edge gives one. Inputs: 8-bit images are sRGB-decoded
unless ``--linear``, 16-bit PNG/TIFF are linear, a DNG is a CFA mosaic (black level removed; ``--plane Y``
measures the luminance of a bilinear demosaic, ``R``/``G``/``B``/``Gr``/``Gb`` one colour plane).

The e-SFR is ISO 12233:2023's by default: the edge is fitted by a polynomial whose order (up to 5, as sfrmat5)
is chosen per edge (``--fit-order 1`` for ISO 12233:2017's line), Tukey-windowed. Every edge carries ISO
12233's quality checks (``flags`` and ``quality`` in ``--json``: contrast, angle, length, noise, clipping,
straightness) and its direction in the field (sagittal or tangential). Edges found in the image that fail a
check are refused (a photo without a chart gives none: one line naming the file, exit 2) unless
``--keep-flagged``; ROIs given with ``--roi`` are always measured, their flags reported.

Frequencies are always in cycles per image (sensor) pixel: a CFA plane, sampled every 2 px, is measured
in its own pixels and reported here halved (so its curve reaches 0.5 c/px, its own Nyquist being 0.25).

Shading across an edge (vignetting, an uneven light) tilts its ESF plateaus and biases the MTF (on the
twin's f/0.95 chart, G planes of 44 edges: mean |MTF50 error| 0.49 %, up to 1.25 % at the field edge).
Two remedies: ``--flat FILE`` divides the image by a flat field of the same size and kind taken at the
same settings (both linear, above black; ISO 12233 practice, which also divides out the PRNU; average
several flats to keep their noise out), edges still found on the undivided image; ``--plateau-slope``
fits one shading plane to both plateaus of each ROI and divides it out (``calibration.sfr``; no flat
needed, a little noise added). Both bring the twin's noise-free chart to 0.11 % mean, 0.27-0.28 % largest;
on one raw frame 1.21 % / 2.75 % with the flat, 1.15 % / 2.95 % with the plateau fit, 1.56 % / 5.00 %
with neither.
"""

from __future__ import annotations

import argparse
import io
import math
import re
from pathlib import Path
from typing import Any

import numpy as np

from calibration.edges import find_edges
from calibration.sfr import LUMA_WEIGHTS, SfrError, SfrResult, sfr
from calibration.sfr_cfa import cfa_at, sfr_cfa
from calibration.sfr_quality import GATE_FLAGS, field_direction
from station.atomic import atomic_write_bytes
from station.cli.common import analyze_outputs, print_json
from station.errors import InputError
from station.imageio import LoadedImage, load_image

_ROI_RE = re.compile(r"^\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*$")
PLANES = ("Y", "R", "G", "B", "Gr", "Gb")
MIN_ROI_PX = 8


def register(kinds: argparse._SubParsersAction) -> None:
    parser = kinds.add_parser(
        "sfr", help="slanted-edge MTF (ISO 12233 e-SFR): MTF50, MTF at Nyquist/2, per edge",
        description="Measure the MTF of every slanted edge in each image (or of --roi), ISO 12233 e-SFR.",
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help="images (PNG, JPEG, TIFF, DNG)")
    parser.add_argument("--roi", action="append", default=[], metavar="X,Y,W,H",
                        help="measure this region (pixels; repeatable) instead of finding the edges")
    parser.add_argument("--plane", choices=PLANES, default="Y",
                        help="Y luminance (default), or a colour channel / CFA plane")
    parser.add_argument("--fit-order", type=_fit_order, default="auto", metavar="N|auto",
                        help="edge polynomial: auto (default, ISO 12233:2023: order up to 5 chosen per edge), "
                             "or a fixed order 1..5 (1: the linear fit of ISO 12233:2017)")
    parser.add_argument("--keep-flagged", action="store_true",
                        help="report found edges that fail ISO 12233's checks too (flagged in --json) "
                             "instead of refusing them")
    parser.add_argument("--flat", metavar="FILE",
                        help="flat field (same size and kind, same settings) to divide each image by before "
                             "measuring: removes vignetting and uneven light")
    parser.add_argument("--plateau-slope", action="store_true",
                        help="fit the shading of each ROI's two plateaus and divide it out (no flat needed)")
    analyze_outputs(parser, run, plot="the MTF curves", linear=True)


def _fit_order(text: str) -> int | str:
    if text == "auto":
        return text
    if text in ("1", "2", "3", "4", "5"):
        return int(text)
    raise argparse.ArgumentTypeError(f"expected auto or 1..5, got {text!r}")


def parse_roi(text: str) -> tuple[int, int, int, int]:
    """``"X,Y,W,H"`` -> ints; InputError (one line) when it does not parse."""
    m = _ROI_RE.match(text)
    if not m:
        raise InputError(f"--roi {text!r}: expected X,Y,W,H (non-negative integers, pixels), e.g. 100,40,64,128")
    x, y, w, h = (int(g) for g in m.groups())
    if w < MIN_ROI_PX or h < MIN_ROI_PX:
        raise InputError(f"--roi {text!r}: width and height must be at least {MIN_ROI_PX} px")
    return x, y, w, h


def flat_gain(image: LoadedImage, flat: LoadedImage) -> np.ndarray:
    """The flat field as a relative illumination to divide ``image`` by: above black, over its mean
    (per colour channel for RGB; one mean for a mosaic, whose colour balance the edges do not need).
    InputError (one line, naming the flat) when it does not match the image or is not lit everywhere."""
    name = flat.path
    if flat.kind != image.kind or flat.data.shape != image.data.shape:
        raise InputError(f"--flat {name}: a {flat.kind} image of {flat.data.shape}, expected a {image.kind} image "
                         f"of {image.data.shape} like {image.path}")
    if image.kind == "cfa" and (flat.cfa or "RGGB") != (image.cfa or "RGGB"):
        raise InputError(f"--flat {name}: CFA {flat.cfa}, expected {image.cfa} like {image.path}")
    lit = flat.data - np.float32(flat.black_level) if image.kind == "cfa" else flat.data
    mean = lit.reshape(-1, 3).mean(axis=0) if image.kind == "rgb" else np.float32(lit.mean())
    if np.any(mean <= 0) or not np.all(lit > 0):
        raise InputError(f"--flat {name}: expected a lit flat field (every pixel above black)")
    return (lit / mean).astype(np.float32)


class _Measurer:
    """The image of one file prepared for edge finding and measurement on the chosen plane."""

    def __init__(self, image: LoadedImage, plane: str, fit_order: int | str, flat: LoadedImage | None = None,
                 plateau_slope: bool = False) -> None:
        self.image = image
        self.plane = plane
        self.fit_order = fit_order
        self.plateau_slope = plateau_slope
        name = image.path
        data = image.data
        gain = flat_gain(image, flat) if flat is not None else None
        self.freq_scale = 1.0
        if image.kind == "gray":
            if plane != "Y":
                raise InputError(f"{name}: --plane {plane} needs a colour or raw (DNG) image; this one is gray")
            self.detect = data
            self.channel = data if gain is None else data / gain
            self.clip = float(image.white_level)
        elif image.kind == "rgb":
            if plane in ("Gr", "Gb"):
                raise InputError(f"{name}: --plane {plane} needs a raw (DNG) image; use R, G or B for RGB")
            weights = np.asarray(LUMA_WEIGHTS, dtype=np.float32)
            luma = data @ weights
            flattened = data if gain is None else data / gain
            self.channel = (flattened @ weights if gain is not None else luma) if plane == "Y" else \
                flattened[..., "RGB".index(plane)]
            self.detect = luma
            self.clip = float(image.white_level)
        else:  # CFA mosaic in DN
            above = data - np.float32(image.black_level)
            self.mosaic = above if gain is None else above / gain
            self.clip = float(image.white_level - image.black_level)
            h2, w2 = (data.shape[0] // 2) * 2, (data.shape[1] // 2) * 2
            m = above[:h2, :w2]
            self.detect = 0.25 * (m[0::2, 0::2] + m[0::2, 1::2] + m[1::2, 0::2] + m[1::2, 1::2])
            if plane != "Y":
                self.freq_scale = 0.5  # plane pixels are 2 sensor pixels

    @property
    def shape(self) -> tuple[int, int]:
        return self.image.data.shape[:2]

    def find(self) -> list[tuple[int, int, int, int]]:
        if self.image.kind == "cfa":
            # Found on the 2x2-binned mosaic (no demosaic needed), mapped back to even sensor coordinates.
            edges = find_edges(self.detect, roi_along_px=64, roi_across_px=32, min_along_px=12,
                               clip_level=0.999 * self.clip)
            return [(2 * e.x, 2 * e.y, 2 * e.w, 2 * e.h) for e in edges]
        edges = find_edges(self.detect, clip_level=0.999 * self.clip)
        return [e.roi for e in edges]

    def measure(self, roi: tuple[int, int, int, int]) -> SfrResult:
        x, y, w, h = roi
        options = {"fit_order": self.fit_order, "plateau_slope": self.plateau_slope, "roi_xywh": roi,
                   "clip_level": 0.999 * self.clip}
        if self.image.kind in ("gray", "rgb"):
            return sfr(self.channel[y:y + h, x:x + w], **options)
        cfa = cfa_at(self.image.cfa or "RGGB", x, y)
        return sfr_cfa(self.mosaic[y:y + h, x:x + w], cfa, self.plane, **options)


def _edge_json(res: SfrResult, roi: tuple[int, int, int, int], plane: str, freq_scale: float,
               image_wh: tuple[int, int]) -> dict[str, Any]:
    freq = res.freq_cy_px * freq_scale
    q = res.quality
    field = field_direction(roi, res.orientation, image_wh)
    nyq2 = res.mtf_nyq2 if freq_scale == 1.0 else res.mtf_at(0.25 / freq_scale)
    curve = [[round(float(f), 5), round(float(m), 5)] for f, m in zip(freq, res.mtf, strict=True)]
    return {
        "mtf50_cy_px": _num(res.mtf50_cy_px * freq_scale),
        "mtf_nyq2": _num(nyq2),
        "angle_deg": round(float(res.angle_deg), 3),
        "orientation": res.orientation,
        "plane": plane,
        "roi": [int(v) for v in roi],
        "direction": field["direction"],
        "radius_fraction": round(field["radius_fraction"], 4),
        "fit_order": int(res.extra.get("fit_order", len(res.edge_fit) - 1)),
        "flags": list(res.flags),
        "quality": {"modulation": _num(q.get("modulation", math.nan)),
                    "contrast_to_noise": _num(min(q.get("contrast_to_noise", math.nan), 1e9)),
                    "rows": q.get("rows"), "clipped_fraction": _num(q.get("clipped_fraction") or 0.0),
                    "fit_rms_px": _num(res.fit_rms_px)},
        "mtf": curve,
    }


def _num(value: float) -> float | None:
    return round(float(value), 5) if math.isfinite(value) else None


def analyze_file(path: str, rois: list[tuple[int, int, int, int]], plane: str, linear: bool,
                 fit_order: int | str = "auto", flat: LoadedImage | None = None,
                 plateau_slope: bool = False, keep_flagged: bool = False) -> dict[str, Any]:
    """Measure one file: the given ROIs (measured whatever their quality, flags in the result), or every
    usable edge -- found edges failing ISO 12233's checks (``calibration.sfr_quality.GATE_FLAGS``) are
    refused unless ``keep_flagged`` (``flat``: divide by it first, see the module's notes;
    ``plateau_slope``: ``calibration.sfr``'s shading correction). InputError names the file."""
    image = load_image(path, linear=linear)
    meas = _Measurer(image, plane, fit_order, flat, plateau_slope)
    height, width = meas.shape
    edges: list[dict[str, Any]] = []
    if rois:
        for roi in rois:
            x, y, w, h = roi
            if x + w > width or y + h > height:
                raise InputError(f"{path}: --roi {x},{y},{w},{h} lies outside the {width}x{height} image")
            try:
                res = meas.measure(roi)
            except SfrError as exc:
                raise InputError(f"{path}: --roi {x},{y},{w},{h}: {exc}") from None
            edges.append(_edge_json(res, roi, plane, meas.freq_scale, (width, height)))
        return {"file": path, "edges": edges}
    refused: dict[str, int] = {}
    found = meas.find()
    for roi in found:
        try:
            res = meas.measure(roi)
        except SfrError:
            continue  # found on the detection image but not measurable on this plane
        failed = [f for f in res.flags if f in GATE_FLAGS]
        for flag in failed:
            refused[flag] = refused.get(flag, 0) + 1
        if failed and not keep_flagged:
            continue
        edges.append(_edge_json(res, roi, plane, meas.freq_scale, (width, height)))
    if not edges:
        why = ", ".join(f"{n} {flag}" for flag, n in sorted(refused.items(), key=lambda kv: -kv[1]))
        detail = f": {len(found)} candidate(s), none passing ISO 12233's edge checks ({why})" if refused else ""
        raise InputError(f"{path}: no usable slanted edge found{detail}")
    return {"file": path, "edges": edges}


def _plot(result: dict[str, Any], out: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=100)
    for entry in result["files"]:
        name = Path(entry["file"]).name
        for edge in entry["edges"]:
            curve = np.asarray(edge["mtf"], dtype=float)
            x, y, w, h = edge["roi"]
            ax.plot(curve[:, 0], curve[:, 1], lw=1.2, label=f"{name} [{x},{y},{w},{h}] MTF50 {edge['mtf50_cy_px']}")
    ax.axvline(0.5, color="0.5", ls="--", lw=0.8)
    ax.axhline(0.5, color="0.8", lw=0.8)
    ax.set_xlim(0, 1.0)
    ax.set_ylim(0, None)
    ax.set_xlabel("spatial frequency, cycles/pixel (Nyquist 0.5)")
    ax.set_ylabel("MTF (e-SFR, ISO 12233)")
    ax.grid(alpha=0.3)
    if sum(len(e["edges"]) for e in result["files"]) <= 12:
        ax.legend(fontsize=7)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(out, buf.getvalue())


def _print_table(result: dict[str, Any]) -> None:
    print(f"{'file':<32} {'roi x,y,w,h':<20} {'edge':<10} {'angle':>7} {'MTF50 c/px':>11} {'MTF@Nyq/2':>10} "
          f"{'field':<10} flags")
    for entry in result["files"]:
        name = entry["file"] if len(entry["file"]) <= 32 else "..." + entry["file"][-29:]
        for edge in entry["edges"]:
            roi = ",".join(str(v) for v in edge["roi"])
            mtf50 = "n/a" if edge["mtf50_cy_px"] is None else f"{edge['mtf50_cy_px']:.4f}"
            nyq2 = "n/a" if edge["mtf_nyq2"] is None else f"{edge['mtf_nyq2']:.3f}"
            flags = ",".join(edge["flags"]) or "-"
            print(f"{name:<32} {roi:<20} {edge['orientation']:<10} {edge['angle_deg']:>7.2f} {mtf50:>11} {nyq2:>10} "
                  f"{edge['direction']:<10} {flags}")


def run(args: argparse.Namespace) -> int:
    rois = [parse_roi(text) for text in args.roi]
    flat = load_image(args.flat, linear=args.linear) if args.flat else None
    result = {"files": [analyze_file(path, rois, args.plane, args.linear, args.fit_order, flat, args.plateau_slope,
                                     args.keep_flagged)
                        for path in args.files]}
    if args.plot:
        _plot(result, args.plot)
    if args.json:
        print_json(result)
    else:
        _print_table(result)
    return 0
