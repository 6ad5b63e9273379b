"""The twin phone's preview ISP: one 8-bit sRGB picture per RAW frame, at the CFA's full resolution.

Pipeline (DESIGN 5 step 5), in this order, each on linear data:

1. black level: ``v = (DN - black) / (white - black)``, negatives clipped to 0;
2. lens shading correction: the per-channel gain map the phone stores, in Android
   ``LENS_SHADING_MAP`` layout (``android.statistics.lensShadingCorrectionMap``): shape
   (rows, cols, 4) for R, G_even, G_odd, B (G_even: the green on the quad's first row, Gr
   for RGGB), gains >= 1, its corner samples on the corner pixels of the frame, bilinearly
   interpolated to every pixel of its channel; none when no map is stored;
3. white balance: R, G, B gains (default ``DEFAULT_WB_GAINS``, the phone's daylight tuning);
   the result clipped to 1 (a channel saturates like a real ISP's);
4. demosaic: OpenCV's bilinear Bayer interpolation (``cv2.cvtColor``) on 16-bit data; the
   preview has one RGB pixel per CFA sample, so CFA pixel (y, x) is preview pixel (y, x);
5. colour matrix: 3x3 camera RGB -> linear sRGB (default identity), clipped to [0, 1];
6. tone curve: the sRGB OETF (IEC 61966-2-1), rounded to 8 bits.

The stored calibration is plain JSON (``calibration.write``); ``sensor_calibration`` reads
what applies to one sensor (and mounted lens) and checks it. Frames are processed in bands of
rows, so a 50 MP frame never needs a float copy of itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import cv2
import numpy as np

#: White balance gains (R, G, B) the phone applies when none are stored: its daylight tuning,
#: the inverse of its sensor's channel response to a 5000 K blackbody (station/twin/sensor.py).
DEFAULT_WB_GAINS: tuple[float, float, float] = (1.766, 1.0, 1.656)
#: Colour matrix (camera RGB -> linear sRGB) when none is stored.
DEFAULT_CCM: tuple[tuple[float, ...], ...] = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0))
#: Keys of the calibration blob the ISP reads (top level, per sensor, per lens).
ISP_KEYS = ("lens_shading_map", "wb_gains", "ccm")
#: OpenCV names a Bayer pattern by the 2x2 block starting at pixel (1, 1), not (0, 0):
#: its ``BayerBG`` is the layout whose top-left quad is R G / G B (RGGB).
OPENCV_BAYER2RGB: dict[str, int] = {
    "RGGB": cv2.COLOR_BayerBG2RGB, "BGGR": cv2.COLOR_BayerRG2RGB,
    "GRBG": cv2.COLOR_BayerGB2RGB, "GBRG": cv2.COLOR_BayerGR2RGB,
}
#: Rows per processing band (even, so every band starts on a quad boundary).
BAND_ROWS = 512
_FULL16 = 65535.0


@dataclass(frozen=True)
class IspCalibration:
    """What the ISP uses from the phone's stored calibration for one sensor (and lens)."""

    lens_shading_map: np.ndarray | None = None  # (rows, cols, 4) float64, R G_even G_odd B, >= 1
    wb_gains: tuple[float, float, float] = DEFAULT_WB_GAINS
    ccm: np.ndarray = field(default_factory=lambda: np.array(DEFAULT_CCM))  # (3, 3)


def channel_sites(cfa: str) -> tuple[tuple[int, int], ...]:
    """(row, col) in the 2x2 quad of the shading map's channels R, G_even, G_odd, B."""
    if cfa not in OPENCV_BAYER2RGB:
        raise ValueError(f"CFA {cfa!r} not supported; allowed: {', '.join(OPENCV_BAYER2RGB)}")
    greens = [divmod(i, 2) for i, c in enumerate(cfa) if c == "G"]
    return (divmod(cfa.index("R"), 2), greens[0], greens[1], divmod(cfa.index("B"), 2))


def _floats(value: Any, name: str, shape: tuple[int, ...] | None) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"calibration {name}: expected numbers, got {type(value).__name__}") from None
    if shape is not None and array.shape != shape:
        raise ValueError(f"calibration {name}: expected shape {list(shape)}, got {list(array.shape)}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"calibration {name}: values must be finite numbers")
    return array


def parse_isp(entries: Mapping[str, Any], where: str = "") -> IspCalibration:
    """An ``IspCalibration`` from a dict with any of ``ISP_KEYS``; ValueError naming the bad key."""
    prefix = f"{where}." if where else ""
    lsm = None
    if entries.get("lens_shading_map") is not None:
        lsm = _floats(entries["lens_shading_map"], prefix + "lens_shading_map", None)
        if lsm.ndim != 3 or lsm.shape[2] != 4 or lsm.shape[0] < 2 or lsm.shape[1] < 2:
            raise ValueError(f"calibration {prefix}lens_shading_map: expected (rows >= 2, cols >= 2, 4) "
                             f"gains for R, G_even, G_odd, B, got shape {list(lsm.shape)}")
        if lsm.min() < 1.0:
            raise ValueError(f"calibration {prefix}lens_shading_map: gains must be >= 1 "
                             f"(Android LENS_SHADING_MAP), got {lsm.min():.4g}")
    wb = DEFAULT_WB_GAINS
    if entries.get("wb_gains") is not None:
        gains = _floats(entries["wb_gains"], prefix + "wb_gains", (3,))
        if gains.min() <= 0:
            raise ValueError(f"calibration {prefix}wb_gains: gains must be > 0, got {gains.tolist()}")
        wb = (float(gains[0]), float(gains[1]), float(gains[2]))
    ccm = np.array(DEFAULT_CCM)
    if entries.get("ccm") is not None:
        ccm = _floats(entries["ccm"], prefix + "ccm", (3, 3))
    return IspCalibration(lens_shading_map=lsm, wb_gains=wb, ccm=ccm)


def sensor_calibration(blob: Mapping[str, Any] | None, sensor: str,
                       lens: str | None = None) -> IspCalibration:
    """The ISP calibration for ``sensor`` (and mounted M ``lens``) from the phone's stored blob.

    The blob's top-level ``lens_shading_map`` / ``wb_gains`` / ``ccm`` apply to every sensor;
    ``blob["sensors"][sensor]`` overrides them, and ``blob["sensors"][sensor]["lenses"][lens]``
    overrides those for that lens. Other keys are the station's business and are ignored.
    """
    blob = blob or {}
    merged: dict[str, Any] = {k: blob[k] for k in ISP_KEYS if k in blob}
    where = ""
    sensors = blob.get("sensors")
    if isinstance(sensors, Mapping) and isinstance(sensors.get(sensor), Mapping):
        entry = sensors[sensor]
        merged.update({k: entry[k] for k in ISP_KEYS if k in entry})
        where = f"sensors.{sensor}"
        lenses = entry.get("lenses")
        if lens is not None and isinstance(lenses, Mapping) and isinstance(lenses.get(lens), Mapping):
            merged.update({k: lenses[lens][k] for k in ISP_KEYS if k in lenses[lens]})
            where = f"sensors.{sensor}.lenses.{lens}"
    return parse_isp(merged, where)


@lru_cache(maxsize=4)
def _tone_lut() -> np.ndarray:
    """16-bit linear code -> 8-bit sRGB code (IEC 61966-2-1 OETF, rounded)."""
    linear = np.arange(65536, dtype=np.float64) / _FULL16
    srgb = np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * np.power(linear, 1 / 2.4) - 0.055)
    return np.clip(np.rint(srgb * 255.0), 0, 255).astype(np.uint8)


def _interp_weights(n_out: int, n_map: int, full: int, offset: int) -> tuple[np.ndarray, np.ndarray]:
    """Map index and fraction for samples at pixel ``2 k + offset`` of ``full`` pixels, corner aligned."""
    position = (2 * np.arange(n_out, dtype=np.float64) + offset) * ((n_map - 1) / max(full - 1, 1))
    index = np.clip(np.floor(position).astype(np.intp), 0, n_map - 2)
    return index, (position - index).astype(np.float32)


class _ShadingGains:
    """Per-channel gains (shading x white balance x scale) on the quad grid, made band by band."""

    def __init__(self, cal: IspCalibration, cfa: str, height: int, width: int, scale: float,
                 shading: bool) -> None:
        sites = channel_sites(cfa)
        colour_of = {sites[0]: 0, sites[1]: 1, sites[2]: 1, sites[3]: 2}
        lsm = cal.lens_shading_map if shading else None
        self.sites = sites
        self.scalar = np.ones((1, 2, 1, 2), dtype=np.float32)
        for site in sites:
            self.scalar[0, site[0], 0, site[1]] = cal.wb_gains[colour_of[site]] * scale
        self.rows_x: list[np.ndarray] = []  # per channel: the map interpolated along x, (rows, W/2)
        self.y_weights: list[tuple[np.ndarray, np.ndarray]] = []
        if lsm is None:
            return
        n_rows, n_cols = lsm.shape[:2]
        for ch, (dy, dx) in enumerate(sites):
            xi, xf = _interp_weights(width // 2, n_cols, width, dx)
            grid = lsm[:, :, ch].astype(np.float32)
            along_x = grid[:, xi] * (1.0 - xf) + grid[:, xi + 1] * xf
            along_x *= self.scalar[0, dy, 0, dx]
            self.rows_x.append(along_x)
            self.y_weights.append(_interp_weights(height // 2, n_rows, height, dy))

    def apply(self, quads: np.ndarray, q0: int, q1: int) -> None:
        """Multiply ``quads`` (quad rows q0..q1 as (n, 2, W/2, 2) float32) by the gains in place."""
        if not self.rows_x:
            quads *= self.scalar
            return
        for ch, (dy, dx) in enumerate(self.sites):
            yi, yf = self.y_weights[ch]
            yi, yf = yi[q0:q1], yf[q0:q1, None]
            gain = self.rows_x[ch][yi]
            gain *= 1.0 - yf
            gain += self.rows_x[ch][yi + 1] * yf
            quads[:, dy, :, dx] *= gain


def render_preview(cfa: np.ndarray, cfa_order: str, black_level: float, white_level: float,
                   cal: IspCalibration | None = None, lens_shading: bool = True,
                   band_rows: int = BAND_ROWS) -> np.ndarray:
    """The 8-bit sRGB preview (H, W, 3) of a CFA frame (uint16 DN, H and W even).

    ``lens_shading=False`` skips step 2 even when a map is stored (the firmware regression).
    """
    if cfa.ndim != 2 or cfa.shape[0] % 2 or cfa.shape[1] % 2:
        raise ValueError(f"CFA frame must be 2-D with even sides, got shape {cfa.shape}")
    if not white_level > black_level:
        raise ValueError(f"white level {white_level} must exceed black level {black_level}")
    cal = cal or IspCalibration()
    height, width = cfa.shape
    gains = _ShadingGains(cal, cfa_order, height, width, _FULL16 / (white_level - black_level), lens_shading)
    code = OPENCV_BAYER2RGB[cfa_order]  # checked by channel_sites above
    ccm = np.asarray(cal.ccm, dtype=np.float32)
    identity = bool(np.array_equal(ccm, np.eye(3, dtype=np.float32)))
    lut = _tone_lut()
    out = np.empty((height, width, 3), dtype=np.uint8)
    band_rows = max(2, band_rows - band_rows % 2)
    margin = 2  # bilinear demosaic reads one row each side; two keeps the bands on quad boundaries
    for r0 in range(0, height, band_rows):
        r1 = min(r0 + band_rows, height)
        a, b = max(r0 - margin, 0), min(r1 + margin, height)
        band = cfa[a:b].astype(np.float32)
        band -= np.float32(black_level)
        gains.apply(band.reshape((b - a) // 2, 2, width // 2, 2), a // 2, b // 2)
        np.clip(band, 0.0, _FULL16, out=band)
        band += 0.5
        mosaic = band.astype(np.uint16)
        del band
        rgb = cv2.cvtColor(mosaic, code)
        if not identity:
            rgb = cv2.transform(rgb, ccm)  # float inside, saturated to 0..65535 on the way out
        np.take(lut, rgb[r0 - a: r0 - a + (r1 - r0)], out=out[r0:r1])
    return out

