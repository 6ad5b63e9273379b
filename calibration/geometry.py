"""Camera geometry: intrinsics and distortion from chessboard or ChArUco views (OpenCV's pinhole model).

Model: OpenCV's pinhole camera with the 5-term Brown-Conrady distortion ``[k1, k2, p1, p2, k3]`` (OpenCV
order, normalised coordinates), pixel centres at integer coordinates. Calibration is Zhang's method as
``cv2.calibrateCamera`` implements it, with three additions over OpenCV's samples:

- corners refined to the saddle point of the intensity surface (Lucchese & Mitra 2002, "Using saddle
  points for subpixel feature detection in camera calibration targets"): a quadratic fitted by weighted
  least squares to a window whose size follows the local square size, re-centred until it stops moving;
  a chessboard corner is point-symmetric, so the fixed point sits on the corner for any local affine
  view and any symmetric blur;
- views that disagree with the others (per-view RMS error far above the median, or too few points) are
  rejected with a reason and the model is re-fitted;
- ``calibrate_images`` iterates: calibrate, re-refine every corner from its reprojected position with a
  window sized from the projected board (and, on ChArUco, pick up the corners the detector missed
  near the frame edges), re-calibrate. ``on_model=True`` instead fits each saddle on the board plane
  through the model (after Datta et al. 2009); on the renders tried here it did no better on average.
- corners whose refinement window would leave the frame are dropped (a reflected border fakes a saddle).

``model_gap_px`` measures how far apart two camera models put the same ray anywhere in the frame: the
figure of merit for a recovered model against a true one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from targets.charuco import CharucoSpec

#: Fewest points a view needs to be used (a homography needs 4; 6 keep the pose well conditioned).
MIN_POINTS_PER_VIEW = 6
#: A view is an outlier when its RMS error is above this many times the median of the views...
OUTLIER_FACTOR = 3.0
#: ... and above this floor (px), so that a set of excellent views does not reject a merely good one.
OUTLIER_FLOOR_PX = 0.3
#: Fewest views kept when rejecting outliers.
MIN_VIEWS = 3

#: Image-space smoothing before sampling board patches: this fraction of the half window, at most
#: ``MODEL_PATCH_SMOOTH_PX``. The patch is exactly symmetric on the board, but a wide image-space blur
#: turns non-symmetric there under perspective (measured: 0.012 px of bias at 3.3 px, none below 1 px).
MODEL_PATCH_SMOOTH_FRACTION = 0.33
MODEL_PATCH_SMOOTH_PX = 1.5
_TERM = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_COUNT, 100, 1e-12)


# --------------------------------------------------------------------------------------------------
# Boards and views
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ChessboardSpec:
    """A plain chessboard: inner corners across (cols) and down (rows), square side in mm."""

    cols: int
    rows: int
    square_mm: float

    def __post_init__(self) -> None:
        if self.cols < 2 or self.rows < 2:
            raise ValueError(f"chessboard needs at least 2x2 inner corners, got {self.cols}x{self.rows}")
        if not self.square_mm > 0:
            raise ValueError(f"chessboard square side must be > 0 mm, got {self.square_mm}")

    def object_points(self) -> np.ndarray:
        """Inner corners (N,3) in mm, row-major from the top-left corner, as findChessboardCorners orders them."""
        grid = np.mgrid[0 : self.cols, 0 : self.rows].T.reshape(-1, 2).astype(np.float64)
        return np.column_stack([grid * self.square_mm, np.zeros(len(grid))])

    def to_text(self) -> str:
        return f"chessboard:{self.cols}x{self.rows}:{self.square_mm:g}"


Board = ChessboardSpec | CharucoSpec


@dataclass(frozen=True)
class ViewPoints:
    """One view of a planar target: board points (N,3) in board units and their image points (N,2) in px."""

    name: str
    object_points: np.ndarray
    image_points: np.ndarray
    ids: np.ndarray | None = None

    def __post_init__(self) -> None:
        obj = np.asarray(self.object_points, dtype=np.float64).reshape(-1, 3)
        img = np.asarray(self.image_points, dtype=np.float64).reshape(-1, 2)
        if len(obj) != len(img):
            raise ValueError(f"view {self.name}: {len(obj)} object points but {len(img)} image points")
        object.__setattr__(self, "object_points", obj)
        object.__setattr__(self, "image_points", img)
        if self.ids is not None:
            object.__setattr__(self, "ids", np.asarray(self.ids, dtype=np.int32).reshape(-1))


@dataclass(frozen=True)
class ViewReport:
    """How one view fared: used or not, its RMS reprojection error (px) and why it was left out."""

    name: str
    used: bool
    error_px: float | None
    n_points: int
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "used": self.used, "error_px": self.error_px,
                               "n_points": self.n_points}
        if self.reason:
            out["reason"] = self.reason
        return out


@dataclass
class GeometryResult:
    """A calibrated camera: K (3,3), distortion [k1, k2, p1, p2, k3], RMS over used views, per-view reports."""

    camera_matrix: np.ndarray
    dist_coeffs: np.ndarray
    rms_px: float
    views: list[ViewReport]
    image_size: tuple[int, int]
    #: Pose (rvec, tvec) of every used view, by name.
    poses: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    fix_aspect: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "image_size": [int(self.image_size[0]), int(self.image_size[1])],
            "camera_matrix": np.asarray(self.camera_matrix, dtype=float).tolist(),
            "dist_coeffs": np.asarray(self.dist_coeffs, dtype=float).reshape(-1).tolist(),
            "rms_px": float(self.rms_px),
            "views": [v.to_dict() for v in self.views],
        }


# --------------------------------------------------------------------------------------------------
# Distortion model (numpy, vectorised) and the model gap
# --------------------------------------------------------------------------------------------------
def _dist5(dist_coeffs: Sequence[float] | np.ndarray) -> np.ndarray:
    d = np.zeros(5)
    src = np.asarray(dist_coeffs, dtype=np.float64).reshape(-1)
    if len(src) > 5 and np.any(src[5:] != 0):
        raise ValueError("only the 5-term model [k1, k2, p1, p2, k3] is supported")
    d[: min(5, len(src))] = src[:5]
    return d


def distort_normalized(xy: np.ndarray, dist_coeffs: Sequence[float] | np.ndarray) -> np.ndarray:
    """OpenCV's 5-term distortion of normalised points (N,2) -> distorted normalised points (N,2)."""
    k1, k2, p1, p2, k3 = _dist5(dist_coeffs)
    x, y = xy[:, 0], xy[:, 1]
    r2 = x * x + y * y
    radial = 1 + r2 * (k1 + r2 * (k2 + r2 * k3))
    xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
    yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
    return np.column_stack([xd, yd])


def undistort_normalized(xy_d: np.ndarray, dist_coeffs: Sequence[float] | np.ndarray,
                         iterations: int = 30) -> np.ndarray:
    """Invert ``distort_normalized`` by Newton's method (to ~1e-14), vectorised over points (N,2)."""
    k1, k2, p1, p2, k3 = _dist5(dist_coeffs)
    xy = np.array(xy_d, dtype=np.float64, copy=True)
    for _ in range(iterations):
        x, y = xy[:, 0], xy[:, 1]
        r2 = x * x + y * y
        radial = 1 + r2 * (k1 + r2 * (k2 + r2 * k3))
        g = 2 * k1 + r2 * (4 * k2 + 6 * k3 * r2)  # d(radial)/dx = g x
        fx = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x) - xy_d[:, 0]
        fy = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y - xy_d[:, 1]
        a = radial + g * x * x + 2 * p1 * y + 6 * p2 * x
        b = g * x * y + 2 * p1 * x + 2 * p2 * y
        d = radial + g * y * y + 6 * p1 * y + 2 * p2 * x
        det = a * d - b * b
        det = np.where(np.abs(det) < 1e-12, 1e-12, det)
        dx = (d * fx - b * fy) / det
        dy = (a * fy - b * fx) / det
        xy[:, 0] -= dx
        xy[:, 1] -= dy
        if max(np.max(np.abs(dx), initial=0.0), np.max(np.abs(dy), initial=0.0)) < 1e-15:
            break
    return xy


def monotonic_radius(dist_coeffs: Sequence[float] | np.ndarray) -> float:
    """Largest undistorted normalised radius r up to which the radial model's distorted radius
    ``r (1 + k1 r^2 + k2 r^4 + k3 r^6)`` keeps growing (inf when it always does).

    Beyond it the polynomial folds back: rays from far outside the field land inside the frame.
    """
    k1, k2, _p1, _p2, k3 = _dist5(dist_coeffs)
    # d r_d / d r = 1 + 3 k1 s + 5 k2 s^2 + 7 k3 s^3, s = r^2: its smallest positive root
    roots = np.roots(np.trim_zeros([7 * k3, 5 * k2, 3 * k1, 1.0], "f"))
    real = roots[np.abs(roots.imag) < 1e-12 * np.maximum(np.abs(roots), 1.0)].real
    positive = real[real > 0]
    return float(np.sqrt(positive.min())) if positive.size else float("inf")


def plausible_projections(object_points: np.ndarray, rvec: np.ndarray, tvec: np.ndarray,
                          camera_matrix: np.ndarray, dist_coeffs: Sequence[float] | np.ndarray,
                          image_size: tuple[int, int], grow: float = 0.05) -> np.ndarray:
    """Mask of board points (N,3) whose projection under the model can be trusted to be theirs: in front of
    the camera, with a distortion-free projection inside the frame grown by ``grow`` of its size on every
    side, and within the radius where the distortion polynomial is monotonic (``monotonic_radius``).

    A fitted polynomial is only constrained where the views had points; beyond, a large k3 can fold a
    point from far outside the field back into the frame, on top of some other corner."""
    obj = np.asarray(object_points, dtype=np.float64).reshape(-1, 3)
    R, _ = cv2.Rodrigues(np.asarray(rvec, dtype=np.float64).reshape(3))
    cam = obj @ R.T + np.asarray(tvec, dtype=np.float64).reshape(1, 3)
    z = cam[:, 2]
    front = z > 1e-9
    with np.errstate(divide="ignore", invalid="ignore"):
        x, y = cam[:, 0] / z, cam[:, 1] / z
    K = np.asarray(camera_matrix, dtype=np.float64)
    u = K[0, 0] * x + K[0, 1] * y + K[0, 2]
    v = K[1, 1] * y + K[1, 2]
    w, h = image_size
    gw, gh = grow * w, grow * h
    in_frame = (u >= -0.5 - gw) & (u <= w - 0.5 + gw) & (v >= -0.5 - gh) & (v <= h - 0.5 + gh)
    monotonic = np.hypot(x, y) < monotonic_radius(dist_coeffs)
    return front & np.nan_to_num(in_frame & monotonic, nan=False).astype(bool)


def pixels_to_rays(points_px: np.ndarray, camera_matrix: np.ndarray,
                   dist_coeffs: Sequence[float] | np.ndarray) -> np.ndarray:
    """Pixel positions (N,2) -> undistorted normalised coordinates (N,2) (the rays, z = 1)."""
    K = np.asarray(camera_matrix, dtype=np.float64)
    pts = np.asarray(points_px, dtype=np.float64).reshape(-1, 2)
    yn = (pts[:, 1] - K[1, 2]) / K[1, 1]
    xn = (pts[:, 0] - K[0, 2] - K[0, 1] * yn) / K[0, 0]
    return undistort_normalized(np.column_stack([xn, yn]), dist_coeffs)


def rays_to_pixels(rays: np.ndarray, camera_matrix: np.ndarray,
                   dist_coeffs: Sequence[float] | np.ndarray) -> np.ndarray:
    """Undistorted normalised coordinates (N,2) -> pixel positions (N,2) (as cv2.projectPoints)."""
    K = np.asarray(camera_matrix, dtype=np.float64)
    xd = distort_normalized(np.asarray(rays, dtype=np.float64).reshape(-1, 2), dist_coeffs)
    return np.column_stack([K[0, 0] * xd[:, 0] + K[0, 1] * xd[:, 1] + K[0, 2], K[1, 1] * xd[:, 1] + K[1, 2]])


def model_gap_px(K1: np.ndarray, d1: Sequence[float] | np.ndarray, K2: np.ndarray,
                 d2: Sequence[float] | np.ndarray, image_size: tuple[int, int], step: float = 16, *,
                 align_rotation: bool = False) -> float:
    """Largest distance (px) anywhere in the frame between where two camera models put the same ray.

    A grid over the whole image (every ``step`` px, edges included) is mapped to rays with one model
    and back to pixels with the other, both ways; the largest displacement is returned.

    ``align_rotation``: first turn model 2's camera frame by the rotation that best matches the two
    (least squares over the grid), and measure what is left. Views of a planar target cannot tell a
    small principal-point shift from a small rotation of every pose, so this is the part of the gap
    calibration data can observe.
    """
    w, h = image_size
    xs = np.unique(np.append(np.arange(0.0, w - 1, step), w - 1.0))
    ys = np.unique(np.append(np.arange(0.0, h - 1, step), h - 1.0))
    grid = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2)
    rays_1 = pixels_to_rays(grid, K1, d1)
    rays_2 = pixels_to_rays(grid, K2, d2)
    R = _best_rotation(rays_1, grid, K2, d2) if align_rotation else np.eye(3)
    gap_12 = np.linalg.norm(rays_to_pixels(_rotate_rays(rays_1, R), K2, d2) - grid, axis=1)
    gap_21 = np.linalg.norm(rays_to_pixels(_rotate_rays(rays_2, R.T), K1, d1) - grid, axis=1)
    return float(max(gap_12.max(), gap_21.max()))


def _rotate_rays(rays: np.ndarray, R: np.ndarray) -> np.ndarray:
    v = np.column_stack([rays, np.ones(len(rays))]) @ R.T
    return v[:, :2] / v[:, 2:3]


def _best_rotation(rays: np.ndarray, pixels: np.ndarray, K: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Rotation R minimising |project_K,d(R ray) - pixel|^2 over the points (Gauss-Newton, 3 parameters)."""
    rvec = np.zeros(3)
    eps = 1e-7
    for _ in range(10):
        R, _ = cv2.Rodrigues(rvec)
        base = rays_to_pixels(_rotate_rays(rays, R), K, d) - pixels
        J = np.empty((base.size, 3))
        for k in range(3):
            dr = rvec.copy()
            dr[k] += eps
            Rk, _ = cv2.Rodrigues(dr)
            J[:, k] = ((rays_to_pixels(_rotate_rays(rays, Rk), K, d) - pixels) - base).ravel() / eps
        delta, *_ = np.linalg.lstsq(J, -base.ravel(), rcond=None)
        rvec = rvec + delta
        if np.abs(delta).max() < 1e-12:
            break
    R, _ = cv2.Rodrigues(rvec)
    return R


# --------------------------------------------------------------------------------------------------
# Corner refinement
# --------------------------------------------------------------------------------------------------
def _as_gray_float(gray: np.ndarray) -> np.ndarray:
    img = np.asarray(gray)
    if img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY) if img.shape[2] == 3 else img[..., 0]
    return img.astype(np.float32, copy=False)


def _as_gray_u8(gray: np.ndarray) -> np.ndarray:
    img = np.asarray(gray)
    if img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY) if img.shape[2] == 3 else img[..., 0]
    if img.dtype == np.uint8:
        return img
    f = img.astype(np.float32)
    if f.size and f.min() >= 0 and f.max() <= 255 and np.array_equal(f, np.round(f)):
        return f.astype(np.uint8)  # 8-bit codes held as floats: keep them as they are
    lo, hi = float(np.percentile(f, 0.5)), float(np.percentile(f, 99.5))
    scale = 255.0 / (hi - lo) if hi > lo else 1.0
    return np.clip((f - lo) * scale + 0.5, 0, 255).astype(np.uint8)


def nearest_neighbour_px(points: np.ndarray) -> np.ndarray:
    """Distance from each point (N,2) to its nearest other point (inf for a single point)."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if len(pts) < 2:
        return np.full(len(pts), np.inf)
    d2 = np.sum((pts[:, None, :] - pts[None, :, :]) ** 2, axis=2)
    np.fill_diagonal(d2, np.inf)
    return np.sqrt(d2.min(axis=1))


def inside_frame(points: np.ndarray, margin_px: np.ndarray | float, shape: tuple[int, ...]) -> np.ndarray:
    """Mask of points (N,2) at least ``margin_px`` (scalar or per point) inside an image of ``shape``."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    m = np.broadcast_to(np.asarray(margin_px, dtype=np.float64), (len(pts),))
    h, w = shape[:2]
    return (pts[:, 0] >= m) & (pts[:, 0] <= w - 1 - m) & (pts[:, 1] >= m) & (pts[:, 1] <= h - 1 - m)


def _saddle_design(half: int) -> tuple[np.ndarray, np.ndarray]:
    """Weighted least-squares solver for f = a x^2 + b xy + c y^2 + d x + e y + g on a (2h+1)^2 window."""
    r = np.arange(-half, half + 1, dtype=np.float64)
    yy, xx = np.meshgrid(r, r, indexing="ij")
    x, y = xx.ravel(), yy.ravel()
    sigma = max(half / 1.5, 1.0)
    w = np.exp(-(x * x + y * y) / (2 * sigma * sigma))
    A = np.column_stack([x * x, x * y, y * y, x, y, np.ones_like(x)])
    Aw = A * w[:, None]
    solver = np.linalg.solve(A.T @ Aw, Aw.T)  # (6, n): coefficients = solver @ patch
    return solver, r


#: ``cv2.remap`` takes maps of fewer than SHRT_MAX rows (and columns): stacked windows are cut into chunks.
REMAP_MAX_ROWS = 32767 - 1


def _remap_rows(img: np.ndarray, map_x: np.ndarray, map_y: np.ndarray) -> np.ndarray:
    """``cv2.remap`` (bilinear, reflected border) of float32 maps (R, n) holding windows of n rows each,
    in chunks of whole windows under OpenCV's SHRT_MAX limit on a map's size."""
    rows, n = map_x.shape
    chunk = max(1, REMAP_MAX_ROWS // n) * n
    out = np.empty((rows, n), dtype=img.dtype)
    for lo in range(0, rows, chunk):
        hi = min(lo + chunk, rows)
        out[lo:hi] = cv2.remap(img, np.ascontiguousarray(map_x[lo:hi], dtype=np.float32),
                               np.ascontiguousarray(map_y[lo:hi], dtype=np.float32),
                               cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    return out


def refine_saddle(gray: np.ndarray, corners: np.ndarray, half_window: np.ndarray | float, *,
                  smooth_sigma: float | None = None, iterations: int = 20, tol_px: float = 1e-4) -> np.ndarray:
    """Move each corner (N,2) to the saddle point of the intensity surface (Lucchese & Mitra 2002).

    ``half_window`` (scalar or per corner, px) sets the fitting window; the image is first smoothed
    with a Gaussian of ``smooth_sigma`` (default: a third of the median window) so that the surface is
    a hyperbolic paraboloid near the corner. Corners whose fit is not a saddle, or which wander further
    than a window, keep their input position.
    """
    return saddle_points(gray, corners, half_window, smooth_sigma=smooth_sigma, iterations=iterations,
                         tol_px=tol_px)[0]


def saddle_points(gray: np.ndarray, corners: np.ndarray, half_window: np.ndarray | float, *,
                  smooth_sigma: float | None = None, iterations: int = 20,
                  tol_px: float = 1e-4) -> tuple[np.ndarray, np.ndarray]:
    """``refine_saddle`` that also returns each corner's saddle strength sqrt(b^2 - 4ac) of the fitted
    quadratic (intensity / px^2; 0 where no saddle was found): how corner-like the point is."""
    pts = np.asarray(corners, dtype=np.float64).reshape(-1, 2).copy()
    strength = np.zeros(len(pts))
    if len(pts) == 0:
        return pts, strength
    halves = np.broadcast_to(np.asarray(half_window, dtype=np.float64), (len(pts),))
    halves = np.clip(np.round(halves), 2, 25).astype(int)
    img = _as_gray_float(gray)
    sigma = float(smooth_sigma) if smooth_sigma is not None else max(0.5, float(np.median(halves)) / 3.0)
    if sigma > 0:
        img = cv2.GaussianBlur(img, (0, 0), sigma)
    start = pts.copy()
    ok = np.ones(len(pts), dtype=bool)
    for half in np.unique(halves):
        idx = np.flatnonzero(halves == half)
        solver, r = _saddle_design(int(half))
        n = len(r)
        cur = pts[idx].copy()
        active = np.ones(len(idx), dtype=bool)
        for _ in range(iterations):
            if not active.any():
                break
            sel = np.flatnonzero(active)
            # The active corners' windows stacked into a (len(sel)*n, n) map, remapped in chunks.
            map_x = (cur[sel, 0][:, None, None] + r[None, None, :]).astype(np.float32)
            map_y = (cur[sel, 1][:, None, None] + r[None, :, None]).astype(np.float32)
            map_x = np.broadcast_to(map_x, (len(sel), n, n)).reshape(-1, n)
            map_y = np.broadcast_to(map_y, (len(sel), n, n)).reshape(-1, n)
            patches = _remap_rows(img, map_x, map_y)
            coeffs = solver @ patches.reshape(len(sel), n * n).T.astype(np.float64)  # (6, m)
            a, b, c, d, e = coeffs[0], coeffs[1], coeffs[2], coeffs[3], coeffs[4]
            det = 4 * a * c - b * b
            saddle = det < 0
            safe = np.where(np.abs(det) < 1e-12, -1e-12, det)
            dx = (b * e - 2 * c * d) / safe
            dy = (b * d - 2 * a * e) / safe
            step = np.column_stack([dx, dy])
            limit = 0.5 * half
            step = np.clip(step, -limit, limit)
            bad = ~saddle
            step[bad] = 0.0
            cur[sel] += step
            strength[idx[sel]] = np.sqrt(np.maximum(-det, 0.0))
            moved = np.hypot(step[:, 0], step[:, 1])
            active[sel[bad | (moved < tol_px)]] = False
            ok[idx[sel[bad]]] = False
        pts[idx] = cur
    drift = np.hypot(*(pts - start).T)
    lost = ~ok | (drift > halves) | ~inside_frame(pts, halves + 1.0, img.shape)
    pts[lost] = start[lost]
    strength[lost] = 0.0
    return pts, strength


def _saddle_step(coeffs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """From quadratic coefficients (6, m): the step to the stationary point (m, 2), saddle flags, strength."""
    a, b, c, d, e = coeffs[0], coeffs[1], coeffs[2], coeffs[3], coeffs[4]
    det = 4 * a * c - b * b
    safe = np.where(np.abs(det) < 1e-12, -1e-12, det)
    step = np.column_stack([(b * e - 2 * c * d) / safe, (b * d - 2 * a * e) / safe])
    return step, det < 0, np.sqrt(np.maximum(-det, 0.0))


def saddle_points_on_model(gray: np.ndarray, object_points: np.ndarray, rvec: np.ndarray, tvec: np.ndarray,
                           camera_matrix: np.ndarray, dist_coeffs: np.ndarray, half_window_mm: float, *,
                           samples: int = 7, smooth_sigma: float = 1.0, iterations: int = 10,
                           tol_mm: float = 1e-5) -> tuple[np.ndarray, np.ndarray]:
    """Saddle points found on the board plane, through the current camera model (after Datta et al.
    2009, "Accurate camera calibration using iterative refinement of control points", done per corner).

    Around each board corner a (2 samples + 1)^2 grid on the board (half side ``half_window_mm``) is
    projected with the model and the (smoothed) image sampled there: in that patch the corner is a
    right-angled, point-symmetric saddle whatever the perspective and the lens distortion, so the
    saddle fit is free of the bias their curvature gives a window in the image. The corner moves on
    the board until the saddle is centred; its image point is the model's projection of where it ends.
    Returns image points (N,2) and saddle strengths (N,) (0 where no saddle was found).
    """
    obj = np.asarray(object_points, dtype=np.float64).reshape(-1, 3)
    n_pts = len(obj)
    solver, r = _saddle_design(int(samples))
    n = len(r)
    unit = half_window_mm / samples  # board mm per sample
    img = _as_gray_float(gray)
    if smooth_sigma > 0:
        img = cv2.GaussianBlur(img, (0, 0), smooth_sigma)
    offset = np.zeros((n_pts, 2))
    strength = np.zeros(n_pts)
    ok = np.ones(n_pts, dtype=bool)
    active = np.ones(n_pts, dtype=bool)
    gy, gx = np.meshgrid(r * unit, r * unit, indexing="ij")
    for _ in range(iterations):
        sel = np.flatnonzero(active)
        if len(sel) == 0:
            break
        centres = obj[sel, :2] + offset[sel]
        grid = np.empty((len(sel), n, n, 3))
        grid[..., 0] = centres[:, 0, None, None] + gx[None]
        grid[..., 1] = centres[:, 1, None, None] + gy[None]
        grid[..., 2] = 0.0
        px, _ = cv2.projectPoints(grid.reshape(-1, 3), rvec, tvec, camera_matrix, dist_coeffs)
        px = px.reshape(len(sel) * n, n, 2).astype(np.float32)
        patches = _remap_rows(img, px[..., 0], px[..., 1])
        coeffs = solver @ patches.reshape(len(sel), n * n).T.astype(np.float64)
        step, saddle, strength[sel] = _saddle_step(coeffs)
        step = np.clip(step, -0.5 * samples, 0.5 * samples) * unit
        step[~saddle] = 0.0
        offset[sel] += step
        ok[sel[~saddle]] = False
        active[sel[~saddle | (np.hypot(step[:, 0], step[:, 1]) < tol_mm)]] = False
    moved = obj.copy()
    moved[:, :2] += offset
    px, _ = cv2.projectPoints(moved, rvec, tvec, camera_matrix, dist_coeffs)
    px = px.reshape(-1, 2)
    # The patch's four side midpoints and corners must lie in the frame (no reflected border in the fit).
    ring = np.array([[1, 0], [-1, 0], [0, 1], [0, -1], [1, 1], [1, -1], [-1, 1], [-1, -1]]) * half_window_mm
    around = np.concatenate([moved[:, None, :2] + ring[None], np.zeros((n_pts, len(ring), 1))], axis=2)
    edge, _ = cv2.projectPoints(around.reshape(-1, 3), rvec, tvec, camera_matrix, dist_coeffs)
    in_frame = inside_frame(edge.reshape(-1, 2), 1.0, img.shape).reshape(n_pts, len(ring)).all(axis=1)
    lost = ~ok | (np.hypot(offset[:, 0], offset[:, 1]) > half_window_mm) | ~in_frame
    strength[lost] = 0.0
    return px, strength


def refine_subpix(gray: np.ndarray, corners: np.ndarray, half_window: np.ndarray | float) -> np.ndarray:
    """cv2.cornerSubPix with a per-corner window (grouped by size) and tight termination."""
    pts = np.asarray(corners, dtype=np.float32).reshape(-1, 1, 2).copy()
    img = _as_gray_u8(gray) if np.asarray(gray).dtype != np.float32 else np.asarray(gray)
    halves = np.broadcast_to(np.asarray(half_window, dtype=np.float64), (len(pts),))
    halves = np.clip(np.round(halves), 2, 25).astype(int)
    for half in np.unique(halves):
        idx = np.flatnonzero(halves == half)
        sub = np.ascontiguousarray(pts[idx])
        cv2.cornerSubPix(img, sub, (int(half), int(half)), (-1, -1), (_TERM[0], 100, 1e-4))
        pts[idx] = sub
    return pts.reshape(-1, 2).astype(np.float64)


def half_window_for(corners: np.ndarray, fraction: float) -> np.ndarray:
    """Refinement half-window per corner: ``fraction`` of the distance to its nearest neighbour corner."""
    nn = nearest_neighbour_px(corners)
    nn = np.where(np.isfinite(nn), nn, 20.0)
    return np.clip(fraction * nn, 2.0, 25.0)


#: Window fraction for a plain chessboard: well inside the square, clear of neighbouring corners.
CHESSBOARD_WINDOW_FRACTION = 0.3


def charuco_window_fraction(spec: CharucoSpec) -> float:
    """Window fraction that stays within the white margin between a corner and the markers beside it."""
    margin = 0.5 * (spec.square_mm - spec.marker_mm) / spec.square_mm
    return float(min(CHESSBOARD_WINDOW_FRACTION, 0.6 * margin))


def refine_corners(gray: np.ndarray, corners: np.ndarray, fraction: float = CHESSBOARD_WINDOW_FRACTION,
                   method: str = "saddle") -> np.ndarray:
    """Refine corners (N,2) with a window sized from the local corner spacing: ``saddle`` or ``subpix``."""
    halves = half_window_for(corners, fraction)
    if method == "saddle":
        return refine_saddle(gray, corners, halves)
    if method == "subpix":
        return refine_subpix(gray, corners, halves)
    raise ValueError(f"unknown corner refinement {method!r}: expected saddle or subpix")


# --------------------------------------------------------------------------------------------------
# Detection
# --------------------------------------------------------------------------------------------------
def detect_chessboard(gray: np.ndarray, cols: int, rows: int, *, method: str = "saddle") -> np.ndarray | None:
    """Inner corners (N,2) of a ``cols`` x ``rows`` chessboard, row-major, or None when not found.

    ``method``: ``saddle`` (default; saddle-point refinement, window from the local square size),
    ``subpix`` (cornerSubPix, same adaptive window), or ``opencv`` (OpenCV's calibration.cpp sample:
    findChessboardCorners then cornerSubPix 11x11, eps 0.1, 30 iterations) to reproduce its results.
    """
    img = _as_gray_u8(gray)
    flags = cv2.CALIB_CB_ADAPTIVE_THRESH | cv2.CALIB_CB_NORMALIZE_IMAGE
    found, corners = cv2.findChessboardCorners(img, (cols, rows), flags=flags | cv2.CALIB_CB_FAST_CHECK)
    if not found:
        found, corners = cv2.findChessboardCorners(img, (cols, rows), flags=flags)
    if not found and method != "opencv":
        found, corners = cv2.findChessboardCornersSB(img, (cols, rows), flags=cv2.CALIB_CB_EXHAUSTIVE)
    if not found or corners is None:
        return None
    corners = np.asarray(corners, dtype=np.float32).reshape(-1, 1, 2)
    if method == "opencv":
        criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_COUNT, 30, 0.1)
        cv2.cornerSubPix(img, corners, (11, 11), (-1, -1), criteria)
        return corners.reshape(-1, 2).astype(np.float64)
    pts = corners.reshape(-1, 2).astype(np.float64)
    return refine_corners(gray, pts, CHESSBOARD_WINDOW_FRACTION, method)


def detect_charuco(gray: np.ndarray, spec: CharucoSpec, *, method: str = "saddle",
                   min_corners: int = 4) -> tuple[np.ndarray, np.ndarray] | None:
    """ChArUco corners (N,2) and their ids (N,) found by OpenCV's CharucoDetector, or None.

    ``method``: ``saddle`` (default) or ``subpix`` re-refine OpenCV's corners with a window kept inside
    the white margin around each corner; ``opencv`` returns CharucoDetector's corners as they are
    (plain OpenCV, default parameters).
    """
    img = _as_gray_u8(gray)
    detector = cv2.aruco.CharucoDetector(spec.cv_board())
    corners, ids, _marker_corners, _marker_ids = detector.detectBoard(img)
    if corners is None or ids is None:
        return None
    pts = np.asarray(corners, dtype=np.float64).reshape(-1, 2)  # OpenCV 5: (N,2); 4.x: (N,1,2)
    ids = np.asarray(ids, dtype=np.int32).reshape(-1)
    if len(ids) < min_corners:
        return None
    if method != "opencv":
        board_xy, _ = spec.chessboard_corners_mm()
        pts = _refine_on_board(gray, pts, board_xy[ids], charuco_window_fraction(spec), method)
    return pts, ids


def _refine_on_board(gray: np.ndarray, pts: np.ndarray, board_xy: np.ndarray, fraction: float,
                     method: str) -> np.ndarray:
    """Refine with windows from the local board scale: px per square from a homography of the view."""
    halves = _local_square_px(pts, board_xy) * fraction
    if method == "saddle":
        return refine_saddle(gray, pts, halves)
    if method == "subpix":
        return refine_subpix(gray, pts, halves)
    raise ValueError(f"unknown corner refinement {method!r}: expected saddle, subpix or opencv")


def _local_square_px(pts: np.ndarray, board_xy: np.ndarray) -> np.ndarray:
    """Image size (px) of one square at each corner: through a homography board -> image, the distance
    to the nearest of the four board neighbours one square away (with < 4 points: the nearest point)."""
    nn = nearest_neighbour_px(pts)
    fallback = np.where(np.isfinite(nn), nn, 20.0)
    if len(pts) < 4:
        return fallback
    bnn = nearest_neighbour_px(board_xy)
    square = float(np.min(bnn)) if np.isfinite(bnn).any() else 1.0
    H, _ = cv2.findHomography(board_xy.astype(np.float64), pts.astype(np.float64), 0)
    if H is None:
        return fallback
    offsets = np.array([[square, 0], [-square, 0], [0, square], [0, -square]])
    around = (board_xy[:, None, :] + offsets[None, :, :]).reshape(-1, 2)
    proj = cv2.perspectiveTransform(around.reshape(-1, 1, 2), H).reshape(len(pts), 4, 2)
    centre = cv2.perspectiveTransform(board_xy.reshape(-1, 1, 2).astype(np.float64), H).reshape(-1, 2)
    dist = np.linalg.norm(proj - centre[:, None, :], axis=2).min(axis=1)
    return np.where(np.isfinite(dist) & (dist > 0), dist, fallback)


def detect_board(gray: np.ndarray, board: Board, *, method: str = "saddle") -> tuple[np.ndarray, np.ndarray,
                                                                                      np.ndarray] | None:
    """Detect ``board`` in an image: (object points (N,3) mm, image points (N,2) px, ids (N,)) or None."""
    if isinstance(board, ChessboardSpec):
        pts = detect_chessboard(gray, board.cols, board.rows, method=method)
        if pts is None:
            return None
        obj, ids, fraction = board.object_points(), np.arange(len(pts), dtype=np.int32), CHESSBOARD_WINDOW_FRACTION
    else:
        found = detect_charuco(gray, board, method=method)
        if found is None:
            return None
        pts, ids = found
        board_xy, _ = board.chessboard_corners_mm()
        obj, fraction = np.column_stack([board_xy[ids], np.zeros(len(ids))]), charuco_window_fraction(board)
    if method != "opencv":
        # A corner whose refinement window leaves the frame was fitted on a reflected border: drop it.
        keep = inside_frame(pts, half_window_for(pts, fraction) + 1.0, np.asarray(gray).shape)
        obj, pts, ids = obj[keep], pts[keep], ids[keep]
    return obj, pts, ids


# --------------------------------------------------------------------------------------------------
# Calibration
# --------------------------------------------------------------------------------------------------
def _flags(fix_aspect: bool, extra: int) -> int:
    return (cv2.CALIB_FIX_ASPECT_RATIO if fix_aspect else 0) | extra


def _fit(views: list[ViewPoints], image_size: tuple[int, int], fix_aspect: bool, extra_flags: int,
         camera_matrix: np.ndarray | None) -> tuple[float, np.ndarray, np.ndarray, list, list, np.ndarray]:
    obj = [v.object_points.astype(np.float32) for v in views]
    img = [v.image_points.astype(np.float32) for v in views]
    flags = _flags(fix_aspect, extra_flags)
    if camera_matrix is not None:
        K0 = np.asarray(camera_matrix, dtype=np.float64).copy()
        flags |= cv2.CALIB_USE_INTRINSIC_GUESS
    else:
        K0 = np.eye(3)  # with FIX_ASPECT_RATIO, fx/fy of the guess fixes the ratio (1, as OpenCV's sample)
    d0 = np.zeros(5)
    rms, K, d, rvecs, tvecs, _si, _se, per_view = cv2.calibrateCameraExtended(
        obj, img, (int(image_size[0]), int(image_size[1])), K0, d0, flags=flags,
        criteria=(cv2.TERM_CRITERIA_COUNT + cv2.TERM_CRITERIA_EPS, 100, 1e-12),
    )
    return float(rms), K, np.asarray(d, dtype=np.float64).reshape(-1)[:5], list(rvecs), list(tvecs), \
        np.asarray(per_view, dtype=np.float64).reshape(-1)


def reprojection_errors_px(view: ViewPoints, camera_matrix: np.ndarray, dist_coeffs: np.ndarray,
                           rvec: np.ndarray, tvec: np.ndarray) -> np.ndarray:
    """Per-point reprojection error (N,) px of a view under a model and pose."""
    proj, _ = cv2.projectPoints(view.object_points, rvec, tvec, camera_matrix, dist_coeffs)
    return np.linalg.norm(proj.reshape(-1, 2) - view.image_points, axis=1)


def calibrate(views: list[ViewPoints], image_size: tuple[int, int], *, fix_aspect: bool = False,
              reject: bool = True, outlier_factor: float = OUTLIER_FACTOR,
              outlier_floor_px: float = OUTLIER_FLOOR_PX, min_points: int = MIN_POINTS_PER_VIEW,
              extra_flags: int = 0, camera_matrix: np.ndarray | None = None) -> GeometryResult:
    """Intrinsics and distortion [k1, k2, p1, p2, k3] from views of a planar target (Zhang; cv2.calibrateCamera).

    Views with fewer than ``min_points`` points are left out. With ``reject``, the view whose RMS error
    is above ``outlier_factor`` x the median view error and above ``outlier_floor_px`` is rejected and
    the model re-fitted, one view at a time, until none is (keeping at least ``MIN_VIEWS``).
    ``fix_aspect`` keeps fx = fy (CALIB_FIX_ASPECT_RATIO with a unit-aspect start).
    Raises ValueError when fewer than two usable views remain.
    """
    reports: dict[str, ViewReport] = {}
    usable: list[ViewPoints] = []
    names = [v.name for v in views]
    if len(set(names)) != len(names):
        raise ValueError("view names must be unique")
    for v in views:
        if len(v.image_points) < min_points:
            reports[v.name] = ViewReport(v.name, False, None, len(v.image_points),
                                         f"too few points ({len(v.image_points)} < {min_points})")
        else:
            usable.append(v)
    if len(usable) < 2:
        raise ValueError(f"need at least two views with >= {min_points} points, got {len(usable)}")
    while True:
        rms, K, d, rvecs, tvecs, per_view = _fit(usable, image_size, fix_aspect, extra_flags, camera_matrix)
        if not reject or len(usable) <= MIN_VIEWS:
            break
        median = float(np.median(per_view))
        threshold = max(outlier_factor * median, outlier_floor_px)
        worst = int(np.argmax(per_view))
        if per_view[worst] <= threshold:
            break
        v = usable.pop(worst)
        reports[v.name] = ViewReport(
            v.name, False, float(per_view[worst]), len(v.image_points),
            f"disagrees with the other views: error {per_view[worst]:.3f} px > {outlier_factor:g} x median"
            f" {median:.3f} px",
        )
    poses = {}
    for v, e, rv, tv in zip(usable, per_view, rvecs, tvecs, strict=True):
        reports[v.name] = ViewReport(v.name, True, float(e), len(v.image_points))
        poses[v.name] = (np.asarray(rv, dtype=np.float64).reshape(3), np.asarray(tv, dtype=np.float64).reshape(3))
    return GeometryResult(K, d, rms, [reports[n] for n in names], (int(image_size[0]), int(image_size[1])),
                          poses, fix_aspect)


# --------------------------------------------------------------------------------------------------
# From images: detect, calibrate, refine from the model, re-calibrate
# --------------------------------------------------------------------------------------------------
@dataclass
class ImageCalibration:
    """``calibrate_images`` output: the model, the views it used, and names of images without a board."""

    result: GeometryResult
    views: list[ViewPoints]
    not_found: list[str]


def _check_size(name: str, gray: np.ndarray, size: tuple[int, int] | None) -> tuple[int, int]:
    h, w = np.asarray(gray).shape[:2]
    if size is not None and (w, h) != size:
        raise ValueError(f"{name}: image is {w}x{h}, the others are {size[0]}x{size[1]}")
    return (w, h)


def refine_views_from_model(images: dict[str, np.ndarray], views: list[ViewPoints], result: GeometryResult,
                            board: Board, method: str = "saddle", *, on_model: bool = False) -> list[ViewPoints]:
    """Re-refine every used view's corners starting at their reprojection under ``result``.

    The window of each corner comes from the projected board (the image distance to the corners one
    square away), which stays right on oblique and distorted views. Corners whose refinement ends more
    than a third of a square from their reprojection are dropped as unreliable. On a ChArUco board
    (``saddle``), inner corners the detector missed (markers cut by the frame edge, low contrast) are
    looked for where the model puts them, and kept when they are saddles at least half as strong as
    the detected ones and lie within a sixth of a square of the prediction: they bring points near the
    frame edges, where the distortion is least constrained. Only missing corners the model can place are
    looked for (``plausible_projections``: in front, distortion-free projection within the frame grown by
    5 %, inside the distortion polynomial's monotonic radius): a fitted k3 of -0.67 folded corners from
    far outside the field back into the frame, onto other corners. ``on_model``: fit the saddles on the board
    plane through the model (``saddle_points_on_model``) rather than in the image.
    """
    fraction = charuco_window_fraction(board) if isinstance(board, CharucoSpec) else CHESSBOARD_WINDOW_FRACTION
    square = board.square_mm
    K, d = result.camera_matrix, result.dist_coeffs
    offsets = np.array([[square, 0, 0], [-square, 0, 0], [0, square, 0], [0, -square, 0]])
    out: list[ViewPoints] = []
    for v in views:
        pose = result.poses.get(v.name)
        if pose is None:
            out.append(v)
            continue
        rvec, tvec = pose
        obj, ids = v.object_points, v.ids
        n_found = len(obj)
        if isinstance(board, CharucoSpec) and ids is not None and method == "saddle":
            all_xy, all_ids = board.chessboard_corners_mm()
            missing = np.setdiff1d(all_ids, ids)
            extra = np.column_stack([all_xy[missing], np.zeros(len(missing))])
            trusted = plausible_projections(extra, rvec, tvec, K, d, result.image_size)
            obj = np.vstack([obj, extra[trusted]])
            ids = np.concatenate([ids, missing[trusted]]).astype(np.int32)
        start, _ = cv2.projectPoints(obj, rvec, tvec, K, d)
        start = start.reshape(-1, 2)
        around = (obj[:, None, :] + offsets[None]).reshape(-1, 3)
        proj, _ = cv2.projectPoints(around, rvec, tvec, K, d)
        spacing = np.linalg.norm(proj.reshape(len(start), 4, 2) - start[:, None, :], axis=2).min(axis=1)
        halves = np.clip(fraction * spacing, 2.0, 25.0)
        image = images[v.name]
        if method == "saddle" and not on_model:
            refined, strength = saddle_points(image, start, halves)
        elif method == "saddle":
            half_px = float(np.median(halves))
            refined, strength = saddle_points_on_model(
                image, obj, rvec, tvec, K, d, fraction * square, samples=int(np.clip(round(half_px), 3, 8)),
                smooth_sigma=float(np.clip(MODEL_PATCH_SMOOTH_FRACTION * half_px, 0.5, MODEL_PATCH_SMOOTH_PX)))
        else:
            refined, strength = refine_subpix(image, start, halves), np.ones(len(start))
        drift = np.linalg.norm(refined - start, axis=1)
        keep = (drift < spacing / 3.0) & (strength > 0)
        keep[n_found:] = False
        if len(start) > n_found and keep[:n_found].any():
            inside = inside_frame(start, np.ceil(halves) + 2, np.asarray(image).shape)
            floor = 0.5 * float(np.median(strength[:n_found][keep[:n_found]]))
            new = inside & (strength >= floor) & (drift < spacing / 6.0)
            keep[n_found:] = new[n_found:]
        out.append(ViewPoints(v.name, obj[keep], refined[keep], None if ids is None else ids[keep]))
    return out


def calibrate_images(images: Iterable[tuple[str, np.ndarray]], board: Board, *, fix_aspect: bool = False,
                     reject: bool = True, method: str = "saddle", iterations: int = 1,
                     on_model: bool = False) -> ImageCalibration:
    """Detect ``board`` in each (name, image), calibrate, then (``iterations`` times) re-refine the corners
    from the model's reprojection and re-calibrate (``refine_views_from_model``). ``method="opencv"`` is
    plain OpenCV: its detector's corners, one calibration, no re-refinement (pass ``reject=False`` too
    for OpenCV's defaults).

    Raises ValueError when fewer than two images show the board.
    """
    size: tuple[int, int] | None = None
    grays: dict[str, np.ndarray] = {}
    views: list[ViewPoints] = []
    not_found: list[str] = []
    for name, image in images:
        size = _check_size(name, image, size)
        gray = _as_gray_float(image) if method != "opencv" else _as_gray_u8(image)
        found = detect_board(image, board, method=method)
        if found is None:
            not_found.append(name)
            continue
        obj, pts, ids = found
        grays[name] = gray
        views.append(ViewPoints(name, obj, pts, ids))
    if len(views) < 2 or size is None:
        raise ValueError(f"board found in {len(views)} image(s); calibration needs at least two")
    result = calibrate(views, size, fix_aspect=fix_aspect, reject=reject)
    if method != "opencv":
        for _ in range(iterations):
            views = refine_views_from_model(grays, views, result, board, method, on_model=on_model)
            result = calibrate(views, size, fix_aspect=fix_aspect, reject=reject)
    return ImageCalibration(result, views, not_found)
