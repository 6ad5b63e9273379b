"""Lens distortion models and exact conversions between them: OpenCV Brown-Conrady, Android, DNG, lensfun.

Every model here answers the same question -- for a pixel of the *corrected* image, where is it in the
*distorted* (captured) image? -- through ``source_px(u, v)``, in OpenCV pixel coordinates (the centre of
pixel ``i`` at ``i``) and with the corrected image on the same pixel grid as the capture (OpenCV's
``newCameraMatrix = cameraMatrix``). Two models describe the same lens when their ``source_px`` agree;
``distortion_residual_px`` measures the largest gap over the frame.

- **OpenCV** (Brown-Conrady; OpenCV calib3d "Camera Calibration and 3D Reconstruction"):
  ``x = (u - cx) / fx``, ``y = (v - cy) / fy`` (less skew), ``r^2 = x^2 + y^2``,
  ``x_d = x (1 + k1 r^2 + k2 r^4 + k3 r^6) + 2 p1 x y + p2 (r^2 + 2 x^2)``,
  ``y_d = y (1 + k1 r^2 + k2 r^4 + k3 r^6) + p1 (r^2 + 2 y^2) + 2 p2 x y``, ``u_d = fx x_d + s y_d + cx``.
- **Android** (camera2 ``CameraCharacteristics.LENS_INTRINSIC_CALIBRATION`` ``[f_x, f_y, c_x, c_y, s]`` and
  ``LENS_DISTORTION`` ``[kappa_1 .. kappa_5]``): radial ``kappa_1..3`` then tangential ``kappa_4, kappa_5``
  with ``x_c = x_i (1 + kappa_1 r^2 + kappa_2 r^4 + kappa_3 r^6) + kappa_4 (2 x_i y_i) + kappa_5 (r^2 + 2 x_i^2)``:
  the Brown-Conrady model in the same normalised camera coordinates, ``kappa = [k1, k2, k3, p1, p2]`` (the
  order Camera ITS converts back with ``[d0, d1, d3, d4, d2]`` in ``camera_properties_utils.
  get_distortion_matrix``). Android puts pixel centres at half-integers (camera2 docs since Android 9),
  so ``c_android = c_opencv + 0.5``. Exact both ways.
- **DNG** ``WarpRectilinear`` (DNG 1.4 spec, "Opcode List Processing", opcode 1; DNG SDK
  ``dng_filter_warp::GetSrcPixelPosition``): centre ``(cx_n W, cy_n H)`` on the stage-3 image bounds,
  ``m`` the largest distance from the centre to a corner of the bounds ``(0, 0) .. (W, H)``,
  ``d = (p - c) / m``, ``src = c + m (d (kr0 + kr1 r^2 + kr2 r^4 + kr3 r^6) + t)`` with
  ``t_h = kt1 (r^2 + 2 d_h^2) + 2 kt0 d_h d_v``, ``t_v = kt0 (r^2 + 2 d_v^2) + 2 kt1 d_h d_v``. It acts in
  *pixel* space normalised by ``m`` and is isotropic, while Brown-Conrady divides by ``fx`` and ``fy``: for
  ``fx = fy = f`` (and no skew) it is an exact rescale with ``a = m / f``: ``kr0 = 1, kr1 = k1 a^2,
  kr2 = k2 a^4, kr3 = k3 a^6, kt0 = p1 a, kt1 = p2 a`` (as Android's DngCreator writes it). With
  ``fx != fy`` no coefficient set is exact: the six are fitted by linear least squares to the OpenCV map over
  the frame and the largest remaining gap is reported (``Conversion.residual_px``).
- **lensfun** (lensfun ``lensfun-database`` format, ``<distortion model="poly3|poly5|ptlens">``; the
  coordinate handling measured against lensfun 0.3.4 as lensfunpy 1.18 ships it): coordinates about the lens
  centre ``((W-1)/2, (H-1)/2) + (center.x, center.y) unit``, radius in units of
  ``unit = hypot(W-1, H-1) / 2 / sqrt(aspect^2 + 1)`` (half the shorter side for an image of the
  calibration's aspect ratio ``aspect``), corrected ``Ru`` -> distorted ``Rd``:
  poly3 ``Rd = Ru (1 - k1 + k1 Ru^2)``, poly5 ``Rd = Ru (1 + k1 Ru^2 + k2 Ru^4)``,
  ptlens ``Rd = Ru (a Ru^3 + b Ru^2 + c Ru + 1 - a - b - c)``. poly5 with ``k3 = p1 = p2 = 0`` and
  ``fx = fy = f`` is an exact rescale ``k1' = k1 (unit/f)^2``, ``k2' = k2 (unit/f)^4``; anything else is a
  least-squares fit over the frame with its residual reported.

Fits minimise the pixel gap on a grid over the whole frame (the models are linear in their coefficients
for a fixed centre, so the fit is one ``lstsq``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

import numpy as np

__all__ = [
    "DistortionModel", "BrownConrady", "AndroidLens", "DngWarpRectilinear", "LensfunDistortion", "Conversion",
    "opencv_to_android", "android_to_opencv", "opencv_to_dng", "dng_to_opencv", "opencv_to_lensfun",
    "lensfun_to_opencv", "distortion_residual_px", "frame_grid",
]

#: Relative tolerance under which fx and fy count as equal (an exact DNG / lensfun conversion).
SQUARE_PIXEL_RTOL = 1e-12
#: Fitting grid: points across the long side of the frame.
FIT_POINTS = 48
LENSFUN_MODELS = ("poly3", "poly5", "ptlens")


class DistortionModel(Protocol):
    """Anything that maps corrected pixels to where they are in the distorted capture."""

    image_size: tuple[int, int]

    def source_px(self, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


def _xy(u: Any, v: Any) -> tuple[np.ndarray, np.ndarray]:
    return np.asarray(u, dtype=np.float64), np.asarray(v, dtype=np.float64)


def _size(image_size: Sequence[int]) -> tuple[int, int]:
    w, h = (int(image_size[0]), int(image_size[1]))
    if w < 2 or h < 2:
        raise ValueError(f"image_size {list(image_size)}: expected [width, height] of at least 2 px each")
    return w, h


def _finite(values: Sequence[float], what: str, n: int) -> tuple[float, ...]:
    out = tuple(float(v) for v in np.asarray(values, dtype=np.float64).reshape(-1))
    if len(out) != n or not all(math.isfinite(v) for v in out):
        raise ValueError(f"{what}: expected {n} finite numbers, got {list(np.asarray(values).reshape(-1))}")
    return out


# ---------------------------------------------------------------------------------------------- models

@dataclass(frozen=True)
class BrownConrady:
    """OpenCV's camera model: K = [[fx, s, cx], [0, fy, cy], [0, 0, 1]], distortion [k1, k2, p1, p2, k3]."""

    fx: float
    fy: float
    cx: float
    cy: float
    k1: float = 0.0
    k2: float = 0.0
    p1: float = 0.0
    p2: float = 0.0
    k3: float = 0.0
    image_size: tuple[int, int] = (0, 0)
    skew: float = 0.0

    @classmethod
    def from_opencv(cls, camera_matrix: Any, dist_coeffs: Any, image_size: Sequence[int]) -> BrownConrady:
        """From OpenCV's ``cameraMatrix`` (3x3) and ``distCoeffs`` (k1 k2 p1 p2 [k3]) for ``image_size`` (w, h)."""
        k = np.asarray(camera_matrix, dtype=np.float64)
        if k.shape != (3, 3) or not np.all(np.isfinite(k)):
            raise ValueError(f"camera_matrix: expected a finite 3x3 matrix, got shape {k.shape}")
        if k[0, 0] <= 0 or k[1, 1] <= 0 or k[1, 0] != 0 or np.any(k[2] != (0.0, 0.0, 1.0)):
            raise ValueError("camera_matrix: expected [[fx, s, cx], [0, fy, cy], [0, 0, 1]] with fx, fy > 0")
        d = np.asarray(dist_coeffs, dtype=np.float64).reshape(-1)
        if d.size == 4:
            d = np.append(d, 0.0)
        k1, k2, p1, p2, k3 = _finite(d, "dist_coeffs [k1, k2, p1, p2, k3]", 5)
        return cls(float(k[0, 0]), float(k[1, 1]), float(k[0, 2]), float(k[1, 2]), k1, k2, p1, p2, k3,
                   _size(image_size), float(k[0, 1]))

    @property
    def camera_matrix(self) -> np.ndarray:
        return np.array([[self.fx, self.skew, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    @property
    def dist_coeffs(self) -> np.ndarray:
        """OpenCV order k1, k2, p1, p2, k3."""
        return np.array([self.k1, self.k2, self.p1, self.p2, self.k3])

    @property
    def square_pixels(self) -> bool:
        """fx = fy and no skew: the case DNG and lensfun (isotropic in pixels) represent exactly."""
        return abs(self.fx - self.fy) <= SQUARE_PIXEL_RTOL * self.fx and self.skew == 0.0

    def source_px(self, u: Any, v: Any) -> tuple[np.ndarray, np.ndarray]:
        u, v = _xy(u, v)
        y = (v - self.cy) / self.fy
        x = (u - self.cx - self.skew * y) / self.fx
        r2 = x * x + y * y
        radial = 1.0 + r2 * (self.k1 + r2 * (self.k2 + r2 * self.k3))
        xd = x * radial + 2.0 * self.p1 * x * y + self.p2 * (r2 + 2.0 * x * x)
        yd = y * radial + self.p1 * (r2 + 2.0 * y * y) + 2.0 * self.p2 * x * y
        return self.fx * xd + self.skew * yd + self.cx, self.fy * yd + self.cy


@dataclass(frozen=True)
class AndroidLens:
    """camera2 ``android.lens.intrinsicCalibration`` [fx, fy, cx, cy, s] and ``android.lens.distortion``
    [kappa_1, kappa_2, kappa_3, kappa_4, kappa_5] (half-integer pixel centres)."""

    intrinsic_calibration: tuple[float, float, float, float, float]
    distortion: tuple[float, float, float, float, float]
    image_size: tuple[int, int]

    def as_opencv(self) -> BrownConrady:
        fx, fy, cx, cy, s = self.intrinsic_calibration
        k1, k2, k3, p1, p2 = self.distortion
        return BrownConrady(fx, fy, cx - 0.5, cy - 0.5, k1, k2, p1, p2, k3, self.image_size, s)

    def source_px(self, u: Any, v: Any) -> tuple[np.ndarray, np.ndarray]:
        """Android's mapping equations, evaluated in Android coordinates (pixel centres at i + 0.5)."""
        fx, fy, cx, cy, s = self.intrinsic_calibration
        k1, k2, k3, k4, k5 = self.distortion
        u, v = _xy(u, v)
        yi = (v + 0.5 - cy) / fy
        xi = (u + 0.5 - cx - s * yi) / fx
        r2 = xi * xi + yi * yi
        radial = 1.0 + k1 * r2 + k2 * r2 * r2 + k3 * r2 * r2 * r2
        xc = xi * radial + k4 * (2.0 * xi * yi) + k5 * (r2 + 2.0 * xi * xi)
        yc = yi * radial + k5 * (2.0 * xi * yi) + k4 * (r2 + 2.0 * yi * yi)
        return fx * xc + s * yc + cx - 0.5, fy * yc + cy - 0.5


@dataclass(frozen=True)
class DngWarpRectilinear:
    """DNG ``WarpRectilinear`` parameters: per plane ``(kr0, kr1, kr2, kr3, kt0, kt1)``, centre normalised."""

    planes: tuple[tuple[float, float, float, float, float, float], ...]
    center: tuple[float, float]
    image_size: tuple[int, int]

    @property
    def center_px(self) -> tuple[float, float]:
        w, h = self.image_size
        return self.center[0] * w, self.center[1] * h

    @property
    def norm_radius_px(self) -> float:
        """``m``: the largest distance from the centre to a corner of the image bounds (0, 0)..(W, H)."""
        return _dng_norm_radius(self.center_px, self.image_size)

    def source_px(self, u: Any, v: Any, plane: int = 0) -> tuple[np.ndarray, np.ndarray]:
        kr0, kr1, kr2, kr3, kt0, kt1 = self.planes[plane]
        u, v = _xy(u, v)
        cx, cy = self.center_px
        m = self.norm_radius_px
        dh, dv = (u - cx) / m, (v - cy) / m
        r2 = np.minimum(dh * dh + dv * dv, 1.0)  # the SDK clamps at the normalising radius
        ratio = kr0 + r2 * (kr1 + r2 * (kr2 + r2 * kr3))
        th = kt1 * (r2 + 2.0 * dh * dh) + 2.0 * kt0 * dh * dv
        tv = kt0 * (r2 + 2.0 * dv * dv) + 2.0 * kt1 * dh * dv
        return cx + m * (dh * ratio + th), cy + m * (dv * ratio + tv)


def _dng_norm_radius(center_px: tuple[float, float], image_size: tuple[int, int]) -> float:
    w, h = image_size
    cx, cy = center_px
    return max(math.hypot(x - cx, y - cy) for x in (0.0, float(w)) for y in (0.0, float(h)))


@dataclass(frozen=True)
class LensfunDistortion:
    """A lensfun ``<distortion>`` entry with the lens ``<center>`` and ``<aspect-ratio>`` it is relative to."""

    model: str
    terms: tuple[float, ...]
    center: tuple[float, float]
    aspect_ratio: float
    image_size: tuple[int, int]

    def __post_init__(self) -> None:
        n = {"poly3": 1, "poly5": 2, "ptlens": 3}.get(self.model)
        if n is None:
            raise ValueError(f"lensfun distortion model {self.model!r}: expected one of {', '.join(LENSFUN_MODELS)}")
        if len(self.terms) != n:
            raise ValueError(f"lensfun {self.model}: expected {n} terms, got {len(self.terms)}")

    @property
    def unit_px(self) -> float:
        """Pixels per lensfun normalised unit (half the shorter side of a calibration-aspect image)."""
        return lensfun_unit_px(self.image_size, self.aspect_ratio)

    @property
    def center_px(self) -> tuple[float, float]:
        w, h = self.image_size
        return (w - 1) / 2.0 + self.center[0] * self.unit_px, (h - 1) / 2.0 + self.center[1] * self.unit_px

    def radial_ratio(self, ru: np.ndarray) -> np.ndarray:
        """Rd / Ru as a function of the corrected radius (normalised units)."""
        if self.model == "poly3":
            (k1,) = self.terms
            return 1.0 - k1 + k1 * ru * ru
        if self.model == "poly5":
            k1, k2 = self.terms
            r2 = ru * ru
            return 1.0 + r2 * (k1 + r2 * k2)
        a, b, c = self.terms
        return ru * (ru * (a * ru + b) + c) + 1.0 - a - b - c

    def source_px(self, u: Any, v: Any) -> tuple[np.ndarray, np.ndarray]:
        u, v = _xy(u, v)
        cx, cy = self.center_px
        unit = self.unit_px
        x, y = (u - cx) / unit, (v - cy) / unit
        ratio = self.radial_ratio(np.hypot(x, y))
        return cx + unit * x * ratio, cy + unit * y * ratio


def lensfun_unit_px(image_size: Sequence[int], aspect_ratio: float) -> float:
    """lensfun 0.3's normalising length: half-diagonal over pixel centres / sqrt(aspect^2 + 1)."""
    w, h = image_size
    return 0.5 * math.hypot(w - 1.0, h - 1.0) / math.sqrt(aspect_ratio * aspect_ratio + 1.0)


# ---------------------------------------------------------------------------------------------- residuals

def frame_grid(image_size: Sequence[int], points: int = FIT_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """A grid of pixel positions over the whole frame, corners included (``points`` across the long side)."""
    w, h = _size(image_size)
    nx = max(2, int(round(points * w / max(w, h))))
    ny = max(2, int(round(points * h / max(w, h))))
    u, v = np.meshgrid(np.linspace(0.0, w - 1.0, nx), np.linspace(0.0, h - 1.0, ny))
    return u.ravel(), v.ravel()


def distortion_residual_px(model_a: DistortionModel, model_b: DistortionModel, image_size: Sequence[int],
                           points: int = 4 * FIT_POINTS) -> float:
    """The largest gap (px) between where two models put a corrected pixel in the capture, over the frame."""
    u, v = frame_grid(image_size, points)
    ua, va = model_a.source_px(u, v)
    ub, vb = model_b.source_px(u, v)
    return float(np.max(np.hypot(ua - ub, va - vb)))


@dataclass(frozen=True)
class Conversion:
    """A converted model; ``exact`` when the target model represents the source exactly (closed form),
    else a least-squares fit whose largest gap over the frame is ``residual_px``."""

    model: Any
    exact: bool
    residual_px: float


def _fit_linear(make: Callable[[np.ndarray], DistortionModel], n_params: int, target: DistortionModel,
                image_size: tuple[int, int]) -> tuple[DistortionModel, float]:
    """Least squares for a model linear in its ``n_params`` coefficients (fixed centre): one ``lstsq``."""
    u, v = frame_grid(image_size)
    tu, tv = target.source_px(u, v)
    base_u, base_v = make(np.zeros(n_params)).source_px(u, v)
    columns = []
    for i in range(n_params):
        e = np.zeros(n_params)
        e[i] = 1.0
        bu, bv = make(e).source_px(u, v)
        columns.append(np.concatenate([bu - base_u, bv - base_v]))
    a = np.stack(columns, axis=1)
    b = np.concatenate([tu - base_u, tv - base_v])
    params, *_ = np.linalg.lstsq(a, b, rcond=None)
    model = make(params)
    return model, distortion_residual_px(model, target, image_size)


# ---------------------------------------------------------------------------------------------- Android

def opencv_to_android(model: BrownConrady) -> AndroidLens:
    """Exact: the same Brown-Conrady model, kappa = [k1, k2, k3, p1, p2], centre + 0.5 px."""
    return AndroidLens((model.fx, model.fy, model.cx + 0.5, model.cy + 0.5, model.skew),
                       (model.k1, model.k2, model.k3, model.p1, model.p2), model.image_size)


def android_to_opencv(model: AndroidLens) -> BrownConrady:
    """Exact inverse of ``opencv_to_android``."""
    return model.as_opencv()


# ---------------------------------------------------------------------------------------------- DNG

def opencv_to_dng(model: BrownConrady) -> Conversion:
    """DNG ``WarpRectilinear`` (one plane): closed form for square pixels, else a least-squares fit."""
    w, h = model.image_size
    center = (model.cx / w, model.cy / h)
    if model.square_pixels:
        a = _dng_norm_radius((model.cx, model.cy), model.image_size) / model.fx
        a2 = a * a
        coeffs = (1.0, model.k1 * a2, model.k2 * a2 * a2, model.k3 * a2 * a2 * a2, model.p1 * a, model.p2 * a)
        return Conversion(DngWarpRectilinear((coeffs,), center, model.image_size), True, 0.0)

    def make(p: np.ndarray) -> DngWarpRectilinear:
        return DngWarpRectilinear((tuple(float(x) for x in p),), center, model.image_size)  # type: ignore[arg-type]

    fitted, residual = _fit_linear(make, 6, model, model.image_size)
    return Conversion(fitted, False, residual)


def dng_to_opencv(model: DngWarpRectilinear, focal_px: float | tuple[float, float], plane: int = 0) -> Conversion:
    """Brown-Conrady from one ``WarpRectilinear`` plane, given the focal length (px) DNG does not carry.

    Exact for ``kr0 = 1`` and fx = fy; otherwise k1 k2 p1 p2 k3 are fitted with K fixed.
    """
    fx, fy = (focal_px, focal_px) if np.isscalar(focal_px) else focal_px  # type: ignore[misc]
    fx, fy = float(fx), float(fy)
    cx, cy = model.center_px
    kr0, kr1, kr2, kr3, kt0, kt1 = model.planes[plane]
    if kr0 == 1.0 and abs(fx - fy) <= SQUARE_PIXEL_RTOL * fx:
        b = fx / model.norm_radius_px
        b2 = b * b
        out = BrownConrady(fx, fy, cx, cy, kr1 * b2, kr2 * b2 * b2, kt0 * b, kt1 * b, kr3 * b2 * b2 * b2,
                           model.image_size)
        return Conversion(out, True, 0.0)
    single = DngWarpRectilinear((model.planes[plane],), model.center, model.image_size)

    def make(p: np.ndarray) -> BrownConrady:
        return BrownConrady(fx, fy, cx, cy, *(float(x) for x in p), image_size=model.image_size)

    fitted, residual = _fit_linear(make, 5, single, model.image_size)
    return Conversion(fitted, False, residual)


# ---------------------------------------------------------------------------------------------- lensfun

def lensfun_center(model: BrownConrady, aspect_ratio: float) -> tuple[float, float]:
    """lensfun ``<center x y>`` that puts the lens centre on the principal point."""
    w, h = model.image_size
    unit = lensfun_unit_px(model.image_size, aspect_ratio)
    return (model.cx - (w - 1) / 2.0) / unit, (model.cy - (h - 1) / 2.0) / unit


def default_aspect_ratio(image_size: Sequence[int]) -> float:
    """lensfun's calibration aspect ratio for an image: long side / short side."""
    w, h = image_size
    return max(w, h) / min(w, h)


def opencv_to_lensfun(model: BrownConrady, kind: str = "poly5", aspect_ratio: float | None = None) -> Conversion:
    """lensfun distortion about the principal point: exact poly5 rescale when k3 = p1 = p2 = 0 and fx = fy,
    else a least-squares fit of the lensfun terms (residual reported)."""
    if kind not in LENSFUN_MODELS:
        raise ValueError(f"lensfun distortion model {kind!r}: expected one of {', '.join(LENSFUN_MODELS)}")
    aspect = default_aspect_ratio(model.image_size) if aspect_ratio is None else float(aspect_ratio)
    center = lensfun_center(model, aspect)
    if kind == "poly5" and model.square_pixels and model.k3 == 0.0 and model.p1 == 0.0 and model.p2 == 0.0:
        a2 = (lensfun_unit_px(model.image_size, aspect) / model.fx) ** 2
        out = LensfunDistortion("poly5", (model.k1 * a2, model.k2 * a2 * a2), center, aspect, model.image_size)
        return Conversion(out, True, 0.0)
    n = {"poly3": 1, "poly5": 2, "ptlens": 3}[kind]

    def make(p: np.ndarray) -> LensfunDistortion:
        return LensfunDistortion(kind, tuple(float(x) for x in p), center, aspect, model.image_size)

    fitted, residual = _fit_linear(make, n, model, model.image_size)
    return Conversion(fitted, False, residual)


def lensfun_to_opencv(model: LensfunDistortion, focal_px: float | tuple[float, float]) -> Conversion:
    """Brown-Conrady from a lensfun entry, given the focal length (px): exact for poly5 with fx = fy,
    else k1 k2 k3 fitted (lensfun has no tangential terms)."""
    fx, fy = (focal_px, focal_px) if np.isscalar(focal_px) else focal_px  # type: ignore[misc]
    fx, fy = float(fx), float(fy)
    cx, cy = model.center_px
    if model.model == "poly5" and abs(fx - fy) <= SQUARE_PIXEL_RTOL * fx:
        b2 = (fx / model.unit_px) ** 2
        k1, k2 = model.terms
        return Conversion(BrownConrady(fx, fy, cx, cy, k1 * b2, k2 * b2 * b2, image_size=model.image_size), True, 0.0)

    def make(p: np.ndarray) -> BrownConrady:
        return BrownConrady(fx, fy, cx, cy, float(p[0]), float(p[1]), k3=float(p[2]), image_size=model.image_size)

    fitted, residual = _fit_linear(make, 3, model, model.image_size)
    return Conversion(fitted, False, residual)


def with_image_size(model: BrownConrady, image_size: Sequence[int]) -> BrownConrady:
    """The same model on another frame size (pixel grids sharing the top-left corner, half-pixel centres)."""
    w0, h0 = model.image_size
    w1, h1 = _size(image_size)
    sx, sy = w1 / w0, h1 / h0
    return replace(model, fx=model.fx * sx, fy=model.fy * sy, skew=model.skew * sx,
                   cx=(model.cx + 0.5) * sx - 0.5, cy=(model.cy + 0.5) * sy - 0.5, image_size=(w1, h1))
