"""The twin phone's firmware: the camera app's features as DESIGN 7's table specifies, and its builds.

Pure functions over arrays. The golden build does exactly what the table says; every other
build in ``FIRMWARE_BUILDS`` carries one regression that alters one feature and nothing else.

Which data each feature sees (the phone's own pipeline):

- the sensor's CFA frame (true black level, true CFA order) feeds the preview ISP
  (``station.twin.isp``), the raw zebra and the raw histogram;
- ``apply_raw_firmware`` turns it into what the phone sends as ``raw10`` / ``dng`` and the
  metadata it declares (``declared_meta``, also for ``info``); the RAW regressions live there.

Geometry: the preview has one RGB pixel per CFA sample, so CFA quad (i, j) (rows 2i, 2i+1,
columns 2j, 2j+1) is drawn on preview pixels (2i..2i+1, 2j..2j+1) (``quad_to_preview``).
Masks are uint8, 255 flagged and 0 not, in preview geometry; a disabled feature gives all zeros.

A regression can also be switched on over any build as a twin fault (``FIRMWARE_FAULTS``,
``--twin-fault NAME[=VALUE]``): ``build_for(name, faults)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import cv2
import numpy as np

from station.twin import isp

#: Default magnitudes of the regressions.
BLACK_OFFSET_DN = 8
TRUNCATED_BITS = 2
ZEBRA_SHIFT_LUMA = 8  # 8-bit luma codes
ZEBRA_SHIFT_RAW_PER_LUMA = 4  # raw DN per luma code of shift (10-bit vs 8-bit full scale)
ZEBRA_SHIFT_RAW_DN = ZEBRA_SHIFT_LUMA * ZEBRA_SHIFT_RAW_PER_LUMA
HISTOGRAM_BIN_SHIFT = 1
LUMA_BINS = 256
#: Exact-tie offset: a weighted sum sits at a multiple of 1e-4 from x.5, float32 errs < 2.5e-5, so
#: adding 6e-5 before OpenCV's round-to-nearest rounds every tie up and nothing else.
_LUMA_HALF_UP = 6e-5
_LUMA_MATRIX = np.array([[0.2126, 0.7152, 0.0722, _LUMA_HALF_UP]])
#: Pixels per cv2.calcHist call: its float32 bin counts stay exact below 2^24.
_HIST_CHUNK_PIXELS = 1 << 22
RAW_BINS = 1024

#: Regressions as twin faults (name -> what it does); a fault's value sets its magnitude.
FIRMWARE_FAULTS: dict[str, str] = {
    "black_level_offset": f"RAW data sit N DN (default {BLACK_OFFSET_DN}) above the declared black level",
    "raw_8bit_truncation": f"RAW samples lose their {TRUNCATED_BITS} least significant bits (8-bit data in "
                           "10-bit RAW)",
    "cfa_order_swap": "RAW metadata declare the CFA with R and B swapped (RGGB data declared BGGR)",
    "zebra_threshold_shift": f"zebra compares against T + N luma codes (default {ZEBRA_SHIFT_LUMA}) or "
                             f"T + {ZEBRA_SHIFT_RAW_PER_LUMA}N DN in raw mode",
    "peaking_off": "the peaking mask is always empty, even when peaking is enabled",
    "histogram_bin_shift": f"histogram counts land N bins (default {HISTOGRAM_BIN_SHIFT}) too high, the "
                           "excess piling into the last bin",
    "lens_shading_off": "the preview ISP skips lens shading correction although a map is stored",
}


@dataclass(frozen=True)
class FirmwareBuild:
    """One firmware build: its name, what it carries, and the parameters of its regression."""

    name: str
    description: str
    regression: str | None = None  # a FIRMWARE_FAULTS name; "a+b" when faults add more
    feature: str | None = None  # the feature the regression alters: raw, preview, zebra, peaking, histogram
    black_offset_dn: int = 0  # added to every RAW sample (clipped at the white level)
    raw_dropped_bits: int = 0  # least significant bits zeroed in RAW
    cfa_swap: bool = False  # declared CFA order has R and B swapped
    zebra_shift_luma: int = 0  # added to T_luma
    zebra_shift_raw_dn: int = 0  # added to T_raw
    peaking_off: bool = False
    histogram_bin_shift: int = 0  # counts of bin k reported in bin k + shift (clipped to the range)
    lens_shading: bool = True  # the preview applies the stored lens shading map


_GOLDEN = FirmwareBuild("golden", "the approved build: every feature as DESIGN 7's table specifies")

FIRMWARE_BUILDS: dict[str, FirmwareBuild] = {b.name: b for b in (
    _GOLDEN,
    replace(_GOLDEN, name="bl-offset", regression="black_level_offset", feature="raw",
            black_offset_dn=BLACK_OFFSET_DN,
            description=f"RAW (raw10, dng) samples sit {BLACK_OFFSET_DN} DN above the black level the phone "
                        f"declares (data at 72 DN while info, capture metadata and DNG say 64), clipped "
                        f"at the white level; preview, zebra and histograms unchanged"),
    replace(_GOLDEN, name="raw8-truncation", regression="raw_8bit_truncation", feature="raw",
            raw_dropped_bits=TRUNCATED_BITS,
            description=f"RAW (raw10, dng) is 8-bit data in a 10-bit container: the {TRUNCATED_BITS} least "
                        "significant bits of every sample are zero"),
    replace(_GOLDEN, name="cfa-swap", regression="cfa_order_swap", feature="raw", cfa_swap=True,
            description="RAW metadata (info, capture, DNG CFA tags) declare the CFA with R and B swapped "
                        "(RGGB data declared BGGR); the data and the preview are right"),
    replace(_GOLDEN, name="zebra-shift", regression="zebra_threshold_shift", feature="zebra",
            zebra_shift_luma=ZEBRA_SHIFT_LUMA, zebra_shift_raw_dn=ZEBRA_SHIFT_RAW_DN,
            description=f"zebra applies its threshold shifted up: Y' >= T + {ZEBRA_SHIFT_LUMA} in luma "
                        f"mode, a sample >= T + {ZEBRA_SHIFT_RAW_DN} DN in raw mode"),
    replace(_GOLDEN, name="peaking-off", regression="peaking_off", feature="peaking", peaking_off=True,
            description="the peaking mask is always empty, even when peaking is enabled"),
    replace(_GOLDEN, name="histogram-bin", regression="histogram_bin_shift", feature="histogram",
            histogram_bin_shift=HISTOGRAM_BIN_SHIFT,
            description="the histogram (preview and raw) is off by one bin: value v counted in bin v + 1, "
                        "the top bin keeping its own and the one below's counts"),
    replace(_GOLDEN, name="no-lens-shading", regression="lens_shading_off", feature="preview",
            lens_shading=False,
            description="the preview ISP does not apply the stored lens shading map (vignetting stays in "
                        "the preview, its luma zebra, peaking and histogram)"),
)}


def firmware_catalog() -> dict[str, dict[str, Any]]:
    """Every build: name -> {description, regression, feature} (JSON-able; ``station twin firmware``)."""
    return {name: {"description": b.description, "regression": b.regression, "feature": b.feature}
            for name, b in FIRMWARE_BUILDS.items()}


def get_build(name: str) -> FirmwareBuild:
    """The build called ``name``; ValueError listing the known builds otherwise."""
    try:
        return FIRMWARE_BUILDS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown firmware build {name!r}; allowed: {', '.join(FIRMWARE_BUILDS)}") from None


def _magnitude(name: str, value: Any, default: int) -> int:
    """A fault's value as a magnitude: True -> default, a whole number -> itself, False/0/None -> 0."""
    if value is None or value is False:
        return 0
    if value is True:
        return default
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int):
        return value
    raise ValueError(f"fault {name}={value!r}: expected true/false or a whole number")


#: The feature each firmware fault alters (as the builds carrying it declare).
_FAULT_FEATURE: dict[str, str] = {}


def build_for(name: str | FirmwareBuild, faults: Mapping[str, Any] | None = None) -> FirmwareBuild:
    """The build ``name`` with the regressions of ``FIRMWARE_FAULTS`` found in ``faults`` switched on.

    Values: ``true`` for the default magnitude, a whole number for another (DN of black offset, luma
    codes of zebra shift, bins of histogram shift); ``false``/0 leave the build as it is. Other fault
    names (other devices') are ignored.
    """
    build = name if isinstance(name, FirmwareBuild) else get_build(name)
    changes: dict[str, Any] = {}
    added: list[str] = []
    for fault, value in (faults or {}).items():
        if fault not in FIRMWARE_FAULTS or not _magnitude(fault, value, 1):
            continue  # another device's fault, or this one switched off
        if fault == "black_level_offset":
            changes["black_offset_dn"] = _magnitude(fault, value, BLACK_OFFSET_DN)
        elif fault == "raw_8bit_truncation":
            changes["raw_dropped_bits"] = TRUNCATED_BITS
        elif fault == "cfa_order_swap":
            changes["cfa_swap"] = True
        elif fault == "zebra_threshold_shift":
            shift = _magnitude(fault, value, ZEBRA_SHIFT_LUMA)
            changes["zebra_shift_luma"] = shift
            changes["zebra_shift_raw_dn"] = shift * ZEBRA_SHIFT_RAW_PER_LUMA
        elif fault == "peaking_off":
            changes["peaking_off"] = True
        elif fault == "histogram_bin_shift":
            changes["histogram_bin_shift"] = _magnitude(fault, value, HISTOGRAM_BIN_SHIFT)
        else:  # lens_shading_off
            changes["lens_shading"] = False
        added.append(fault)
    if not changes:
        return build
    regression = "+".join(([build.regression] if build.regression else []) + added) or None
    features = {build.feature} | {_FAULT_FEATURE[f] for f in added}
    features.discard(None)
    return replace(build, name="+".join([build.name, *added]), regression=regression,
                   feature="+".join(sorted(features)) or None,
                   description=build.description + "".join(f"; {FIRMWARE_FAULTS[f]}" for f in added),
                   **changes)


def _resolve(build: FirmwareBuild | str) -> FirmwareBuild:
    return build if isinstance(build, FirmwareBuild) else get_build(build)


# --- RAW ---------------------------------------------------------------------------------------

def swap_rb(cfa: str) -> str:
    """The CFA order with R and B exchanged (RGGB <-> BGGR, GRBG <-> GBRG)."""
    return cfa.translate(str.maketrans("RB", "BR"))


def declared_meta(meta: Mapping[str, Any], build: FirmwareBuild | str) -> dict[str, Any]:
    """The metadata the phone declares for RAW (capture, DNG tags, a sensor of ``info``): a copy."""
    out = dict(meta)
    if _resolve(build).cfa_swap and "cfa" in out:
        out["cfa"] = swap_rb(out["cfa"])
    return out


def apply_raw_firmware(cfa: np.ndarray, meta: Mapping[str, Any],
                       build: FirmwareBuild | str) -> tuple[np.ndarray, dict[str, Any]]:
    """What the phone sends as raw10/dng: (CFA uint16, declared metadata) from the sensor's frame.

    ``meta`` needs ``white_level`` (and ``cfa`` to be declared). The golden build returns ``cfa``
    itself (no copy); a RAW regression returns a new array.
    """
    build = _resolve(build)
    out = cfa
    if build.black_offset_dn:
        white = int(meta["white_level"])
        out = np.minimum(cfa.astype(np.int32) + build.black_offset_dn, white).clip(0).astype(np.uint16)
    if build.raw_dropped_bits:
        keep = np.uint16(0xFFFF ^ ((1 << build.raw_dropped_bits) - 1))
        out = np.bitwise_and(out, keep, out=None if out is cfa else out)
    return out, declared_meta(meta, build)


# --- preview ---------------------------------------------------------------------------------

def preview(cfa: np.ndarray, meta: Mapping[str, Any],
            calibration: isp.IspCalibration | Mapping[str, Any] | None,
            build: FirmwareBuild | str) -> np.ndarray:
    """The app's 8-bit sRGB preview (H, W, 3) of the sensor's frame (``station.twin.isp``).

    ``meta``: the sensor's true ``cfa``, ``black_level``, ``white_level`` (and ``sensor``, ``lens``
    to pick the stored calibration). ``calibration``: an ``IspCalibration``, or the phone's stored
    blob (read with ``isp.sensor_calibration``), or None for the defaults.
    """
    build = _resolve(build)
    if not isinstance(calibration, isp.IspCalibration):
        calibration = isp.sensor_calibration(calibration, str(meta.get("sensor", "")), meta.get("lens"))
    return isp.render_preview(cfa, str(meta["cfa"]), float(meta["black_level"]), float(meta["white_level"]),
                              calibration, lens_shading=build.lens_shading)


def luma(preview_rgb8: np.ndarray) -> np.ndarray:
    """Y' = 0.2126 R' + 0.7152 G' + 0.0722 B' of the 8-bit preview, rounded half up (uint8).

    ITU-R BT.709 luma weights, as DESIGN 7's table. Computed by ``cv2.transform`` in float with
    ``_LUMA_HALF_UP`` added, which equals the exact integer rounding for all 2^24 RGB values (the
    unit tests check every one). A 2-D uint8 input is taken as luma already.
    """
    if preview_rgb8.ndim == 2:
        return preview_rgb8
    if preview_rgb8.dtype != np.uint8 or preview_rgb8.shape[-1] != 3:
        raise ValueError(f"luma needs an 8-bit RGB preview (H, W, 3), got {preview_rgb8.dtype} "
                         f"{preview_rgb8.shape}")
    return cv2.transform(preview_rgb8, _LUMA_MATRIX)


def _mask(flags: np.ndarray) -> np.ndarray:
    """A bool array as a 0/255 uint8 mask, in place when the array is writable."""
    if not flags.flags.writeable:
        flags = flags.copy()
    out = flags.view(np.uint8)
    out *= 255
    return out


# --- zebra -----------------------------------------------------------------------------------

def quad_flags(cfa: np.ndarray, threshold_dn: int) -> np.ndarray:
    """(H/2, W/2) bool: quad (i, j) has any of its four samples >= ``threshold_dn``."""
    top = np.maximum(cfa[0::2, 0::2], cfa[0::2, 1::2])
    bottom = np.maximum(cfa[1::2, 0::2], cfa[1::2, 1::2])
    np.maximum(top, bottom, out=top)
    return top >= threshold_dn


def quad_to_preview(quads: np.ndarray) -> np.ndarray:
    """A quad-grid array (H/2, W/2) on the preview (H, W): quad (i, j) -> pixels (2i..2i+1, 2j..2j+1)."""
    h, w = quads.shape
    return np.broadcast_to(quads[:, None, :, None], (h, 2, w, 2)).reshape(2 * h, 2 * w)


def zebra_mask(preview_image: np.ndarray | None, cfa: np.ndarray | None, zebra: Mapping[str, Any],
               build: FirmwareBuild | str) -> np.ndarray:
    """Zebra mask (H, W) uint8 0/255 in preview geometry (DESIGN 7).

    ``zebra``: the app's setting ``{enabled, mode, threshold}``. Mode ``luma``: Y' >= T (8-bit
    code) on ``preview_image`` (RGB, or its luma). Mode ``raw``: a 2x2 CFA quad of ``cfa`` (the
    sensor's frame) with any sample >= T (absolute DN) is flagged on its four preview pixels.
    """
    build = _resolve(build)
    if preview_image is None and cfa is None:
        raise ValueError("zebra needs the preview (luma mode) or the CFA frame (raw mode)")
    shape = preview_image.shape[:2] if preview_image is not None else cfa.shape
    if not zebra.get("enabled"):
        return np.zeros(shape, dtype=np.uint8)
    mode, threshold = zebra.get("mode"), int(zebra["threshold"])
    if mode == "luma":
        if preview_image is None:
            raise ValueError("luma zebra needs the preview")
        return _mask(luma(preview_image) >= threshold + build.zebra_shift_luma)
    if mode == "raw":
        if cfa is None or cfa.ndim != 2 or cfa.shape[0] % 2 or cfa.shape[1] % 2:
            raise ValueError("raw zebra needs a 2-D CFA frame with even sides, got "
                             f"{None if cfa is None else cfa.shape}")
        return _mask(quad_to_preview(quad_flags(cfa, threshold + build.zebra_shift_raw_dn)))
    raise ValueError(f"zebra mode {mode!r}; allowed: luma, raw")


# --- peaking ---------------------------------------------------------------------------------

#: The 5-point Laplacian of DESIGN 7's peaking response (symmetric: correlation = convolution).
_LAPLACIAN_5 = np.array([[0, -1, 0], [-1, 4, -1], [0, -1, 0]], dtype=np.float32)


def peaking_response(luma_image: np.ndarray) -> np.ndarray:
    """P = |4 Y'(x,y) - Y'(x-1,y) - Y'(x+1,y) - Y'(x,y-1) - Y'(x,y+1)| (int16, 0..1020).

    The 5-point discrete Laplacian of the preview luma (DESIGN 7); at the frame's border the
    missing neighbour is the border pixel itself (edge replication), so a flat border gives 0.
    """
    p = cv2.filter2D(luma_image, cv2.CV_16S, _LAPLACIAN_5, borderType=cv2.BORDER_REPLICATE)
    return np.abs(p, out=p)


def peaking_mask(preview_image: np.ndarray, peaking: Mapping[str, Any], build: FirmwareBuild | str
                 ) -> np.ndarray:
    """Peaking mask (H, W) uint8 0/255: P >= T on the luma of ``preview_image`` (RGB, or its luma).

    ``peaking``: the app's setting ``{enabled, threshold}``.
    """
    build = _resolve(build)
    if not peaking.get("enabled") or build.peaking_off:
        return np.zeros(preview_image.shape[:2], dtype=np.uint8)
    return _mask(peaking_response(luma(preview_image)) >= int(peaking["threshold"]))


# --- histogram -------------------------------------------------------------------------------

def _counts(values: np.ndarray, bins: int) -> np.ndarray:
    """Occurrences of each integer 0..bins-1 in ``values`` (int64), by OpenCV in row bands."""
    if values.ndim != 2 or values.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"histogram needs a 2-D uint8 or uint16 image, got {values.dtype} {values.shape}")
    counts = np.zeros(bins, dtype=np.int64)
    step = max(1, _HIST_CHUNK_PIXELS // max(values.shape[1], 1))
    for r0 in range(0, values.shape[0], step):
        band = np.ascontiguousarray(values[r0:r0 + step])
        counts += cv2.calcHist([band], [0], None, [bins], [0, bins]).ravel().astype(np.int64)
    return counts


def histogram(source: str, image: np.ndarray, build: FirmwareBuild | str) -> list[int]:
    """The app's histogram: all pixels counted, 256 bins of Y' (``preview``: the RGB preview or its
    luma) or 1024 bins of raw DN (``raw``: the sensor's CFA frame)."""
    build = _resolve(build)
    if source == "preview":
        values, bins = luma(image), LUMA_BINS
    elif source == "raw":
        values, bins = image, RAW_BINS
    else:
        raise ValueError(f"histogram source {source!r}; allowed: preview, raw")
    counts = _counts(values, bins)
    if int(counts.sum()) != values.size:
        raise ValueError(f"{source} histogram: samples above {bins - 1}, the top bin")
    shift = max(-(bins - 1), min(bins - 1, build.histogram_bin_shift))
    if shift:
        shifted = np.zeros_like(counts)
        if shift > 0:
            shifted[shift:] = counts[:-shift]
            shifted[-1] += counts[-shift:].sum()
        else:
            shifted[:shift] = counts[-shift:]
            shifted[0] += counts[:-shift].sum()
        counts = shifted
    return counts.tolist()


_FAULT_FEATURE.update({b.regression: b.feature for b in FIRMWARE_BUILDS.values() if b.regression and b.feature})
