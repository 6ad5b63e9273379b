"""Lens shading from flat fields: a per-CFA-channel gain map in Android's layout and a radial vignetting fit.

The gain map follows Android's ``android.statistics.lensShadingCorrectionMap`` / ``LENS_SHADING_MAP``
(camera2 ``CaptureResult`` docs, ``params.LensShadingMap``): a ``[rows][cols][4]`` float map, channels in
the order ``[R, G_even, G_odd, B]`` (G_even the green on the even rows of the Bayer pattern, G_odd on the
odd rows); entry ``(x, y)`` of an N-column, M-row map is the gain at active-array pixel
``((W-1)/(N-1) * x, (H-1)/(M-1) * y)`` -- the corners of the map sit on the corner pixels -- and the map is
bilinearly interpolated between its points; it multiplies the image (above black); the least shaded point
has gain 1 and every gain is >= 1 (``LensShadingMap.MINIMUM_GAIN_FACTOR``). Each channel is normalised on
its own (colour balance at the centre is white balance's job), so each channel's minimum gain is 1.

How it is measured:

1. the flats are averaged and the black level subtracted; each CFA plane is kept at half resolution with
   its pixels' true sensor coordinates;
2. each plane is cut into blocks (about 64 across); a block's level is its mean after one 3-sigma clip
   (dust, hot pixels and defects do not pull it);
3. a smooth surface -- the log of the level as a 2-D Legendre polynomial of total degree 6 over the
   sensor (log: falloffs like cos^4 are far smoother, and relative noise is uniform; total degree: no
   wild high-order cross terms at the corners) -- is fitted to the block levels by least squares and
   evaluated at the map's sample points, so the corner points (which no block is centred on) are not
   biased inward; the fit's RMS residual says how flat the "flat" was (a chart or a scene in front of
   the lens fails here);
4. the radial fit is lensfun's ``pa`` vignetting model (Adobe camera model):
   ``I(r) = I0 (1 + k1 r^2 + k2 r^4 + k3 r^6)`` with ``r`` the distance from the optical centre divided by
   the half-diagonal of the frame, the centre fitted (variable projection: the model is linear in
   ``I0, I0 k1, I0 k2, I0 k3`` for a given centre, the centre by ``scipy.optimize.least_squares``);
5. corner falloff: ``1 - 1/gain`` (%) and ``log2(gain)`` (EV) of the map's four corner points,
   i.e. the corner's illumination relative to the channel's brightest point.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.polynomial import legendre
from scipy.optimize import least_squares

from calibration.cfa import ANDROID_CHANNELS, CfaError, android_offsets, android_to_station

__all__ = [
    "ANDROID_CHANNELS", "DEFAULT_GRID", "ShadingError", "RadialFit", "ShadingResult", "lens_shading",
    "android_channels", "apply_shading", "gain_at", "fit_radial_vignetting", "radial_model",
]

#: Android's channel order in the map.
#: Map size (rows, cols): a common camera HAL size (17 x 13 points, landscape).
DEFAULT_GRID = (13, 17)
#: Default total degree of the log-surface polynomial.
DEFAULT_DEGREE = 6
#: Blocks across the long side of a plane.
DEFAULT_BLOCKS = 48
#: A "flat" whose block levels scatter more than this (RMS, fraction) around the smooth surface is not flat.
MAX_FLAT_RESIDUAL = 0.03
#: A flat needs this much signal above black in its brightest block (fraction of white - black).
MIN_SIGNAL_FRACTION = 0.01
#: More than this fraction of samples at or above the white level: the flat is clipped.
MAX_CLIPPED_FRACTION = 0.001
#: Peak/minimum illumination above this: not a flat field (or a lens that does not cover the sensor).
MAX_FALLOFF_RATIO = 64.0

_CORNERS = ("top_left", "top_right", "bottom_left", "bottom_right")


class ShadingError(ValueError):
    """The frames cannot give a shading map (not flat, too dark, clipped, mismatched); one line."""


@dataclass
class RadialFit:
    """lensfun ``pa`` vignetting ``I0 (1 + k1 r^2 + k2 r^4 + k3 r^6)`` about ``center_px`` (sensor px).

    ``r`` is the distance from the centre in units of ``radius_norm_px`` (the frame's half-diagonal);
    ``rms_pct`` the fit's RMS residual on the block levels; ``corner_falloff_pct`` / ``_ev`` the model's
    mean illumination loss at the four frame corners relative to the centre.
    """

    center_px: tuple[float, float]
    k: tuple[float, float, float]
    i0: float
    radius_norm_px: float
    rms_pct: float
    corner_falloff_pct: float
    corner_falloff_ev: float

    def relative_illumination(self, x_px: np.ndarray, y_px: np.ndarray) -> np.ndarray:
        """The model at sensor positions, relative to the centre (1 at the centre)."""
        r = np.hypot(np.asarray(x_px, float) - self.center_px[0],
                     np.asarray(y_px, float) - self.center_px[1]) / self.radius_norm_px
        return radial_model(r, self.k)

    def to_dict(self) -> dict[str, Any]:
        return {"center_px": [float(self.center_px[0]), float(self.center_px[1])],
                "k": [float(v) for v in self.k], "radius_norm_px": float(self.radius_norm_px),
                "i0_dn": float(self.i0), "rms_pct": float(self.rms_pct),
                "corner_falloff_pct": float(self.corner_falloff_pct),
                "corner_falloff_ev": float(self.corner_falloff_ev)}


@dataclass
class ShadingResult:
    """A shading calibration: Android map ``gain_map`` (rows, cols, 4), per-channel falloff, radial fits.

    ``channels`` names the map's four channels (Android order R, G_even, G_odd, B) as the station does
    (``R``, ``Gr``/``Gb``, ``B``; ``G`` for an RGB input, ``Y`` for a gray one).
    """

    gain_map: np.ndarray
    channels: tuple[str, str, str, str]
    image_size: tuple[int, int]  # (width, height) px
    cfa: str | None
    corner_gain: dict[str, dict[str, float]]  # channel -> corner -> gain
    radial: dict[str, RadialFit]
    flat_residual_pct: float
    peak_signal_dn: dict[str, float]
    frames: int
    degree: int
    block_px: int
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def grid(self) -> tuple[int, int]:
        """(rows, cols) of the map."""
        return int(self.gain_map.shape[0]), int(self.gain_map.shape[1])

    def corner_falloff(self, channel: str) -> dict[str, Any]:
        """Illumination loss at the map's corners relative to the channel's brightest point: % and EV."""
        gains = self.corner_gain[channel]
        pct = {c: 100.0 * (1.0 - 1.0 / g) for c, g in gains.items()}
        ev = {c: math.log2(g) for c, g in gains.items()}
        return {"corners_pct": pct, "corners_ev": ev,
                "mean_pct": float(np.mean(list(pct.values()))), "max_pct": float(max(pct.values())),
                "mean_ev": float(np.mean(list(ev.values()))), "max_ev": float(max(ev.values()))}

    def to_dict(self, *, include_map: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "grid": list(self.grid), "image_size": list(self.image_size), "cfa": self.cfa,
            "layout": "android.statistics.lensShadingCorrectionMap [rows][cols][R, G_even, G_odd, B]",
            "channels": list(self.channels),
            "frames": self.frames,
            "corner_falloff": {ch: self.corner_falloff(ch) for ch in self.channels},
            "radial_fit": {ch: fit.to_dict() for ch, fit in self.radial.items()},
            "flat_residual_pct": float(self.flat_residual_pct),
            "peak_signal_dn": {ch: float(v) for ch, v in self.peak_signal_dn.items()},
            "surface_degree": self.degree, "block_px": self.block_px,
        }
        if include_map:
            out["gain_map"] = np.round(self.gain_map.astype(np.float64), 6).tolist()
        out.update(self.extra)
        return out

    def to_json(self, **kwargs: Any) -> str:
        """``to_dict()`` as one JSON text."""
        return json.dumps(self.to_dict(), **kwargs)


# --------------------------------------------------------------------------------------------- channels

def android_channels(cfa: str | None, *, rgb: bool = False) -> list[tuple[str, int, int]]:
    """The map's four channels in Android order as (station name, row, col) in the 2x2 tile.

    ``cfa`` None: a full-resolution image, ``rgb`` True for (H, W, 3) (channel index in ``col``) and
    False for gray (row/col -1: the whole image).
    """
    if cfa is None:
        if rgb:
            return [("R", -1, 0), ("G", -1, 1), ("G", -1, 1), ("B", -1, 2)]
        return [("Y", -1, -1)] * 4
    try:
        tile, names = android_offsets(cfa), android_to_station(cfa)
    except CfaError as exc:
        raise ShadingError(str(exc)) from None
    return [(names[a], *tile[a]) for a in ANDROID_CHANNELS]


def _planes(shape: tuple[int, ...], cfa: str | None) -> list[tuple[str, Any, np.ndarray, np.ndarray]]:
    """Per Android channel: (name, the function that takes its plane view of a frame, sensor x of the
    plane's columns, sensor y of its rows)."""
    h, w = shape[:2]
    out = []
    for name, r, c in android_channels(cfa, rgb=len(shape) == 3):
        if cfa is not None:
            def view(image: np.ndarray, r: int = r, c: int = c) -> np.ndarray:
                return image[r::2, c::2]
            xs, ys = np.arange(c, w, 2, dtype=float), np.arange(r, h, 2, dtype=float)
            out.append((name, view, xs, ys))
        else:
            def view(image: np.ndarray, c: int = c) -> np.ndarray:
                return image[..., c] if image.ndim == 3 else image
            out.append((name, view, np.arange(w, dtype=float), np.arange(h, dtype=float)))
    return out


# --------------------------------------------------------------------------------------------- the map

def _clipped_means(blocks: np.ndarray) -> np.ndarray:
    """Mean of each block (..., n samples) after one 3-sigma clip about its mean."""
    mean = blocks.mean(axis=-1, dtype=np.float64)
    std = blocks.std(axis=-1, dtype=np.float64)
    limit = (3.0 * std[..., None] + 1e-6).astype(np.float32)
    keep = np.abs(blocks - mean[..., None].astype(np.float32)) <= limit
    count = keep.sum(axis=-1)
    clipped = np.where(keep, blocks, 0.0).sum(axis=-1, dtype=np.float64) / np.maximum(count, 1)
    return np.where(count > 0, clipped, mean)


def _block_levels(stack: Sequence[np.ndarray], view: Any, block: int,
                  black_level: float) -> tuple[np.ndarray, slice, slice]:
    """3-sigma-clipped block means of one channel plane of the flats' mean above black (blocks centred in
    the plane); the row/col slices they cover. One row of blocks at a time: the mean of a 50 MP stack is
    never held whole (each block is averaged exactly as on the whole mean)."""
    ph, pw = view(stack[0]).shape
    nby, nbx = ph // block, pw // block
    if nby < 3 or nbx < 3:
        raise ShadingError(f"a {pw}x{ph} channel plane is too small for a shading map (need 3x3 blocks of {block} px)")
    y0, x0 = (ph - nby * block) // 2, (pw - nbx * block) // 2
    rows, cols = slice(y0, y0 + nby * block), slice(x0, x0 + nbx * block)
    levels = np.empty((nby, nbx))
    mean = np.empty((block, nbx * block), np.float32)
    for by in range(nby):
        band = slice(y0 + by * block, y0 + (by + 1) * block)
        mean[...] = 0.0
        for f in stack:
            mean += view(f)[band, cols]
        mean *= np.float32(1.0 / len(stack))
        mean -= np.float32(black_level)
        levels[by] = _clipped_means(mean.reshape(block, nbx, block).swapaxes(0, 1).reshape(nbx, -1))
    return levels, rows, cols


def _norm(coord: np.ndarray, size: int) -> np.ndarray:
    """Sensor coordinate -> [-1, 1] over the pixel centres 0 .. size-1."""
    half = (size - 1) / 2.0
    return (np.asarray(coord, float) - half) / half


def _fit_surface(x: np.ndarray, y: np.ndarray, v: np.ndarray, size: tuple[int, int],
                 degree: int) -> np.ndarray:
    """Legendre coefficients (degree+1, degree+1; total degree <= degree) of v(x, y) by least squares."""
    w, h = size
    vander = legendre.legvander2d(_norm(y, h), _norm(x, w), [degree, degree])
    keep = _total_degree_mask(degree).ravel()
    coef = np.zeros((degree + 1) ** 2)
    coef[keep], *_ = np.linalg.lstsq(vander[:, keep], v, rcond=None)
    return coef.reshape(degree + 1, degree + 1)


def _total_degree_mask(degree: int) -> np.ndarray:
    """Terms P_i(y) P_j(x) with i + j <= degree (no wild high-order cross terms at the corners)."""
    i, j = np.indices((degree + 1, degree + 1))
    return (i + j) <= degree


def _eval_surface(coef: np.ndarray, x: np.ndarray, y: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    w, h = size
    return legendre.leggrid2d(_norm(y, h), _norm(x, w), coef)


def map_sample_positions(image_size: tuple[int, int], grid: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Sensor x of the map's columns and y of its rows (Android: ``(W-1)/(N-1) * x``)."""
    w, h = image_size
    rows, cols = grid
    return np.linspace(0.0, w - 1.0, cols), np.linspace(0.0, h - 1.0, rows)


def _checked_stack(frames: np.ndarray | Sequence[np.ndarray], cfa: str | None, grid: tuple[int, int],
                   degree: int) -> tuple[list[np.ndarray], tuple[int, int]]:
    """The flats as a list of same-shape arrays and the map's (rows, cols); ``ShadingError`` otherwise."""
    stack = [frames] if isinstance(frames, np.ndarray) else list(frames)
    if not stack:
        raise ShadingError("no flat-field frames given")
    shape = stack[0].shape
    for i, f in enumerate(stack[1:], start=1):
        if f.shape != shape:
            raise ShadingError(f"frame {i} is {f.shape[1]}x{f.shape[0]}, "
                               f"expected {shape[1]}x{shape[0]} like frame 0")
    rows, cols = (int(v) for v in grid)
    if rows < 2 or cols < 2:
        raise ShadingError(f"shading grid must be at least 2x2, got {rows}x{cols}")
    if degree < 2:
        raise ShadingError(f"surface degree must be >= 2, got {degree}")
    if cfa is not None and (len(shape) != 2 or shape[0] % 2 or shape[1] % 2):
        raise ShadingError(f"a CFA frame must be 2-D with even width and height, got {shape}")
    return stack, (rows, cols)


def _check_clipping(stack: Sequence[np.ndarray], white_level: float | None) -> None:
    """``ShadingError`` when more than ``MAX_CLIPPED_FRACTION`` of the samples reach ``white_level``."""
    if white_level is None:
        return
    band_rows = 256
    clipped = sum(int(np.count_nonzero(f[r0:r0 + band_rows] >= white_level))
                  for f in stack for r0 in range(0, f.shape[0], band_rows))
    total = stack[0].size * len(stack)
    if clipped > MAX_CLIPPED_FRACTION * total:
        raise ShadingError(f"{100.0 * clipped / total:.2f}% of the samples are at the white level "
                           f"{white_level:g}: the flat is clipped, lower the exposure")


def _channel_surface(name: str, levels: np.ndarray, bx: np.ndarray, by: np.ndarray, size: tuple[int, int],
                     degree: int, max_residual: float, signal_range: float | None) -> tuple[np.ndarray, float]:
    """The log-Legendre surface's coefficients fitted to one channel's block levels, and its RMS residual
    (fraction); ``ShadingError`` when the channel is too dark or not flat."""
    top = float(levels.max())
    if top <= 0 or (signal_range is not None and top < MIN_SIGNAL_FRACTION * signal_range):
        raise ShadingError(f"channel {name}: brightest block is {top:.4g} above black: too dark for a flat")
    if levels.min() <= 0.05 * top:
        raise ShadingError(f"channel {name}: the light falls to zero inside the frame: not a flat field")
    gx, gy = np.meshgrid(bx, by)
    deg = int(min(degree, levels.shape[0] - 1, levels.shape[1] - 1))
    coef = _fit_surface(gx.ravel(), gy.ravel(), np.log(levels.ravel()), size, deg)
    fitted = np.exp(_eval_surface(coef, bx, by, size))
    residual = float(np.sqrt(np.mean((levels / fitted - 1.0) ** 2)))
    if residual > max_residual:
        raise ShadingError(f"the frame is not a flat field: channel {name}'s block levels scatter "
                           f"{100 * residual:.1f}% RMS around a smooth surface (at most "
                           f"{100 * max_residual:.1f}%)")
    return coef, residual


def lens_shading(frames: np.ndarray | Sequence[np.ndarray], *, cfa: str | None, black_level: float = 0.0,
                 white_level: float | None = None, grid: tuple[int, int] = DEFAULT_GRID,
                 degree: int = DEFAULT_DEGREE, blocks: int = DEFAULT_BLOCKS,
                 max_residual: float = MAX_FLAT_RESIDUAL) -> ShadingResult:
    """The shading map and radial fits from flat-field frames (averaged); see the module doc.

    ``frames``: one array or a sequence of same-shape arrays -- CFA mosaics (H, W) in DN with ``cfa`` the
    2x2 pattern at (0, 0), or full-resolution linear images (H, W, 3) / (H, W) with ``cfa=None``.
    ``black_level`` is subtracted; samples at or above ``white_level`` count as clipped.
    ``grid`` = (rows, cols) of the map (each >= 2). Raises ``ShadingError``.
    """
    stack, (rows, cols) = _checked_stack(frames, cfa, grid, degree)
    _check_clipping(stack, white_level)
    shape = stack[0].shape
    h, w = shape[:2]
    size = (w, h)
    block = max(2, max(h, w) // (2 if cfa is not None else 1) // max(8, int(blocks)))
    xs_map, ys_map = map_sample_positions(size, (rows, cols))
    signal_range = (white_level - black_level) if white_level is not None else None
    gain_map = np.empty((rows, cols, 4), np.float64)
    names: list[str] = []
    radial: dict[str, RadialFit] = {}
    peak: dict[str, float] = {}
    corner_gain: dict[str, dict[str, float]] = {}
    residuals = []
    done: dict[str, int] = {}
    for k, (name, view, xs, ys) in enumerate(_planes(shape, cfa)):
        names.append(name)
        if name in done:  # RGB / gray inputs: the same channel twice
            gain_map[..., k] = gain_map[..., done[name]]
            continue
        done[name] = k
        levels, rsl, csl = _block_levels(stack, view, block, black_level)
        bx = xs[csl].reshape(-1, block).mean(axis=1)
        by = ys[rsl].reshape(-1, block).mean(axis=1)
        coef, residual = _channel_surface(name, levels, bx, by, size, degree, max_residual, signal_range)
        residuals.append(residual)
        surface = np.exp(_eval_surface(coef, xs_map, ys_map, size))
        if surface.max() / surface.min() > MAX_FALLOFF_RATIO:
            raise ShadingError(f"channel {name}: illumination varies more than {MAX_FALLOFF_RATIO:g}x "
                               "over the frame: not a flat field")
        gain_map[..., k] = surface.max() / surface
        peak[name] = float(surface.max())
        corner = gain_map[[0, 0, -1, -1], [0, -1, 0, -1], k]
        corner_gain[name] = {c: float(g) for c, g in zip(_CORNERS, corner, strict=True)}
        gx, gy = np.meshgrid(bx, by)
        radial[name] = fit_radial_vignetting(gx.ravel(), gy.ravel(), levels.ravel(), size)
    return ShadingResult(gain_map=gain_map.astype(np.float32), channels=tuple(names),  # type: ignore[arg-type]
                         image_size=size, cfa=cfa, corner_gain=corner_gain, radial=radial,
                         flat_residual_pct=100.0 * max(residuals), peak_signal_dn=peak, frames=len(stack),
                         degree=int(degree), block_px=block)


def radial_model(r: np.ndarray, k: Sequence[float]) -> np.ndarray:
    """lensfun ``pa`` vignetting: ``1 + k1 r^2 + k2 r^4 + k3 r^6``."""
    r2 = np.asarray(r, float) ** 2
    return 1.0 + r2 * (k[0] + r2 * (k[1] + r2 * k[2]))


def fit_radial_vignetting(x_px: np.ndarray, y_px: np.ndarray, level: np.ndarray,
                          image_size: tuple[int, int], *,
                          center_px: tuple[float, float] | None = None) -> RadialFit:
    """Fit ``I0 (1 + k1 r^2 + k2 r^4 + k3 r^6)`` to levels at sensor positions; centre fitted unless given.

    ``r`` = distance to the centre / half-diagonal of the ``image_size`` (width, height) frame (lensfun).
    """
    x = np.asarray(x_px, float).ravel()
    y = np.asarray(y_px, float).ravel()
    v = np.asarray(level, float).ravel()
    w, h = image_size
    norm = math.hypot(w, h) / 2.0
    scale = float(np.max(np.abs(v))) or 1.0
    vn = v / scale

    def solve(c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        r2 = ((x - c[0]) ** 2 + (y - c[1]) ** 2) / norm ** 2
        a = np.stack([np.ones_like(r2), r2, r2 ** 2, r2 ** 3], axis=1)
        p, *_ = np.linalg.lstsq(a, vn, rcond=None)
        return p, a @ p - vn

    c0 = np.array([(w - 1) / 2.0, (h - 1) / 2.0])
    if center_px is None:
        fit = least_squares(lambda c: solve(c)[1], c0, bounds=([0.0, 0.0], [w - 1.0, h - 1.0]),
                            x_scale=[w / 10.0, h / 10.0])
        centre = fit.x
    else:
        centre = np.asarray(center_px, float)
    p, resid = solve(centre)
    i0 = p[0]
    k = (p[1] / i0, p[2] / i0, p[3] / i0)
    model = vn + resid
    rms = 100.0 * float(np.sqrt(np.mean((resid / np.maximum(np.abs(model), 1e-12)) ** 2)))
    corners_x = np.array([0.0, w - 1.0, 0.0, w - 1.0])
    corners_y = np.array([0.0, 0.0, h - 1.0, h - 1.0])
    ri = radial_model(np.hypot(corners_x - centre[0], corners_y - centre[1]) / norm, k)
    ri = np.clip(ri, 1e-9, None)
    return RadialFit(center_px=(float(centre[0]), float(centre[1])),
                     k=(float(k[0]), float(k[1]), float(k[2])), i0=float(i0 * scale),
                     radius_norm_px=norm, rms_pct=rms,
                     corner_falloff_pct=float(100.0 * (1.0 - ri.mean())),
                     corner_falloff_ev=float(np.mean(-np.log2(ri))))


# --------------------------------------------------------------------------------------------- applying

def _interp_matrix(pos: np.ndarray, n: int, last: float) -> np.ndarray:
    """(len(pos), n) bilinear weights of samples at ``last/(n-1) * i`` for positions ``pos``."""
    u = np.clip(np.asarray(pos, float) * (n - 1) / last, 0.0, n - 1.0)
    i0 = np.minimum(np.floor(u).astype(int), n - 2)
    t = u - i0
    m = np.zeros((len(u), n))
    idx = np.arange(len(u))
    m[idx, i0] = 1.0 - t
    m[idx, i0 + 1] = t
    return m


def gain_at(gain_map: np.ndarray, channel: int, x_px: np.ndarray, y_px: np.ndarray,
            image_size: tuple[int, int]) -> np.ndarray:
    """Map channel ``channel`` bilinearly interpolated on the sensor columns ``x_px`` x rows ``y_px``."""
    w, h = image_size
    rows, cols = gain_map.shape[:2]
    ry = _interp_matrix(y_px, rows, h - 1.0)
    cx = _interp_matrix(x_px, cols, w - 1.0)
    return (ry @ gain_map[..., channel].astype(np.float64) @ cx.T).astype(np.float32)


def apply_shading(image: np.ndarray, gain_map: np.ndarray, *, cfa: str | None,
                  black_level: float = 0.0) -> np.ndarray:
    """``(image - black) * gain``: the map applied as a camera applies it (bilinear between its points).

    ``image`` a CFA mosaic (with ``cfa``) or a full-resolution (H, W, 3) / (H, W) image (``cfa=None``:
    R, the mean of the two greens, B; gray uses the mean of all four). Returns float32 above black.
    """
    gain_map = np.asarray(gain_map)
    if gain_map.ndim != 3 or gain_map.shape[2] != 4:
        raise ShadingError(f"gain map must be (rows, cols, 4), got {gain_map.shape}")
    h, w = image.shape[:2]
    out = np.asarray(image, np.float32) - np.float32(black_level)
    if cfa is not None:
        for k, (_, r, c) in enumerate(android_channels(cfa)):
            ys, xs = np.arange(r, h, 2), np.arange(c, w, 2)
            out[r::2, c::2] *= gain_at(gain_map, k, xs, ys, (w, h))
        return out
    ys, xs = np.arange(h), np.arange(w)
    if out.ndim == 3:
        g = gain_map.astype(np.float64)
        merged = np.stack([g[..., 0], (g[..., 1] + g[..., 2]) / 2.0, g[..., 3]], axis=-1)
        for c in range(3):
            out[..., c] *= gain_at(merged, c, xs, ys, (w, h))
        return out
    mono = gain_map.astype(np.float64).mean(axis=2, keepdims=True)
    out *= gain_at(mono, 0, xs, ys, (w, h))
    return out
