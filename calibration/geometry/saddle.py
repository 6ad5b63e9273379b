"""Corner refinement to the saddle point of the intensity surface (Lucchese & Mitra 2002, "Using saddle points
for subpixel feature detection in camera calibration targets"), in the image or on the board plane through a
model (after Datta et al. 2009), and OpenCV's cornerSubPix."""

from __future__ import annotations

import cv2
import numpy as np

from targets.charuco import CharucoSpec

#: Image-space smoothing before sampling board patches: this fraction of the half window, at most
#: ``MODEL_PATCH_SMOOTH_PX``. The patch is exactly symmetric on the board, but a wide image-space blur
#: turns non-symmetric there under perspective (measured: 0.012 px of bias at 3.3 px, none below 1 px).
MODEL_PATCH_SMOOTH_FRACTION = 0.33
MODEL_PATCH_SMOOTH_PX = 1.5
_TERM = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_COUNT, 100, 1e-12)


def as_gray_float(gray: np.ndarray) -> np.ndarray:
    img = np.asarray(gray)
    if img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY) if img.shape[2] == 3 else img[..., 0]
    return img.astype(np.float32, copy=False)


#: The 8-bit normalisation's 0.5 % and 99.5 % levels come from at most about this many samples (a strided
#: subsample of a larger image; a 2048 x 1536 frame is used whole): 4 M samples put them within a small
#: fraction of a code of the whole frame's.
QUANTILE_SAMPLES = 1 << 22
#: Rows converted at once by ``as_gray_u8`` (bounds its float32 temporaries on a 50 MP frame).
_BAND_ROWS = 512


def as_gray_u8(gray: np.ndarray) -> np.ndarray:
    """An 8-bit image of ``gray``: as it is when it holds 8-bit codes, else its 0.5 %..99.5 % levels stretched
    to 0..255 (rounded, clipped), converted in row bands with the levels from a strided subsample."""
    img = np.asarray(gray)
    if img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY) if img.shape[2] == 3 else img[..., 0]
    if img.dtype == np.uint8:
        return img
    if img.size == 0:
        return img.astype(np.uint8)
    if img.min() >= 0 and img.max() <= 255 and _integral(img):
        return img.astype(np.uint8)  # 8-bit codes held in a wider type: keep them as they are
    step = max(1, int(np.ceil(np.sqrt(img.size / QUANTILE_SAMPLES))))
    sample = img[::step, ::step].astype(np.float32)
    lo, hi = float(np.percentile(sample, 0.5)), float(np.percentile(sample, 99.5))
    scale = 255.0 / (hi - lo) if hi > lo else 1.0
    out = np.empty(img.shape, dtype=np.uint8)
    for r0 in range(0, img.shape[0], _BAND_ROWS):
        band = img[r0:r0 + _BAND_ROWS].astype(np.float32)
        band -= lo
        band *= scale
        band += 0.5
        np.clip(band, 0, 255, out=band)
        out[r0:r0 + _BAND_ROWS] = band
    return out


def _integral(img: np.ndarray) -> bool:
    """True when every value is a whole number (integer types always), checked band by band."""
    if not np.issubdtype(img.dtype, np.floating):
        return True
    return all(np.array_equal(img[r0:r0 + _BAND_ROWS], np.round(img[r0:r0 + _BAND_ROWS]))
               for r0 in range(0, img.shape[0], _BAND_ROWS))


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


def _reflect101(index: np.ndarray, size: int) -> np.ndarray:
    """Indices mirrored into 0 .. size-1 without repeating the edge (OpenCV's BORDER_REFLECT_101)."""
    if size == 1:
        return np.zeros_like(index)
    period = 2 * (size - 1)
    folded = np.mod(index, period)
    return np.where(folded > size - 1, period - folded, folded)


def _gauss_radius_px(sigma: float) -> int:
    """Half the float32 kernel ``cv2.GaussianBlur`` builds for ``sigma`` (its size: round(8 sigma + 1) | 1)."""
    return (int(round(sigma * 8 + 1)) | 1) // 2


def blurred_tile_atlas(gray: np.ndarray, centres_px: np.ndarray, radius_px: int,
                       sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """Square tiles (side ``2 radius + 1``) of ``gray`` around the pixels nearest ``centres_px`` (N,2), each
    Gaussian-smoothed (``sigma``) as the whole frame would be, laid out in a near-square float32 atlas.

    Only the tiles are converted and smoothed, never the whole frame (a 50 MP frame is 200 MB as float32).
    Returns the atlas and, per tile, the (x, y) offset that maps a frame position to its atlas position.
    """
    img = np.asarray(gray)
    if img.ndim == 3:
        img = as_gray_float(img)
    h, w = img.shape
    side = 2 * int(radius_px) + 1
    margin = _gauss_radius_px(sigma) if sigma > 0 else 0
    span = side + 2 * margin
    n = len(centres_px)
    base = np.rint(np.asarray(centres_px, dtype=np.float64).reshape(-1, 2)).astype(np.int64) - int(radius_px)
    steps = np.arange(span) - margin
    rows = _reflect101(base[:, 1, None] + steps, h)
    cols = _reflect101(base[:, 0, None] + steps, w)
    tiles = img[rows[:, :, None], cols[:, None, :]].astype(np.float32, copy=False)  # (n, span, span)
    if margin:  # stacked tiles smoothed at once: a tile's margin absorbs its neighbours' rows
        tiles = cv2.GaussianBlur(tiles.reshape(n * span, span), (0, 0), sigma).reshape(n, span, span)
        tiles = tiles[:, margin:margin + side, margin:margin + side]
    grid_cols = max(1, int(np.ceil(np.sqrt(n))))
    grid_rows = max(1, -(-n // grid_cols))
    atlas = np.zeros((grid_rows * grid_cols, side, side), dtype=np.float32)
    atlas[:n] = tiles
    atlas = atlas.reshape(grid_rows, grid_cols, side, side).swapaxes(1, 2).reshape(grid_rows * side, grid_cols * side)
    slot = np.arange(n)
    offset = np.column_stack([(slot % grid_cols) * side, (slot // grid_cols) * side]) - base
    return atlas, offset.astype(np.float64)


def saddle_points(gray: np.ndarray, corners: np.ndarray, half_window: np.ndarray | float, *,
                  smooth_sigma: float | None = None, iterations: int = 20,
                  tol_px: float = 1e-4) -> tuple[np.ndarray, np.ndarray]:
    """``refine_saddle`` that also returns each corner's saddle strength sqrt(b^2 - 4ac) of the fitted
    quadratic (intensity / px^2; 0 where no saddle was found): how corner-like the point is.

    The smoothing and sampling work on a tile around each corner (``blurred_tile_atlas``: twice the
    window plus a pixel), never on the whole frame; a corner that wanders out of its tile is clamped to
    it, and then lost (it moved further than its window).
    """
    pts = np.asarray(corners, dtype=np.float64).reshape(-1, 2).copy()
    strength = np.zeros(len(pts))
    if len(pts) == 0:
        return pts, strength
    halves = np.broadcast_to(np.asarray(half_window, dtype=np.float64), (len(pts),))
    halves = np.clip(np.round(halves), 2, 25).astype(int)
    shape = np.asarray(gray).shape[:2]
    sigma = float(smooth_sigma) if smooth_sigma is not None else max(0.5, float(np.median(halves)) / 3.0)
    start = pts.copy()
    ok = np.ones(len(pts), dtype=bool)
    for half in np.unique(halves):
        idx = np.flatnonzero(halves == half)
        solver, r = _saddle_design(int(half))
        n = len(r)
        reach = int(half) + 1  # how far a corner may go from its tile's centre with its window inside the tile
        atlas, offset = blurred_tile_atlas(gray, pts[idx], 2 * int(half) + 2, sigma)
        centre = np.rint(pts[idx])
        cur = pts[idx].copy()
        active = np.ones(len(idx), dtype=bool)
        for _ in range(iterations):
            if not active.any():
                break
            sel = np.flatnonzero(active)
            at = cur[sel] + offset[sel]
            # The active corners' windows stacked into a (len(sel)*n, n) map, remapped in chunks.
            map_x = (at[:, 0][:, None, None] + r[None, None, :]).astype(np.float32)
            map_y = (at[:, 1][:, None, None] + r[None, :, None]).astype(np.float32)
            map_x = np.broadcast_to(map_x, (len(sel), n, n)).reshape(-1, n)
            map_y = np.broadcast_to(map_y, (len(sel), n, n)).reshape(-1, n)
            patches = _remap_rows(atlas, map_x, map_y)
            coeffs = solver @ patches.reshape(len(sel), n * n).T.astype(np.float64)  # (6, m)
            step, saddle, strength[idx[sel]] = _saddle_step(coeffs)
            limit = 0.5 * half
            step = np.clip(step, -limit, limit)
            bad = ~saddle
            step[bad] = 0.0
            cur[sel] = np.clip(cur[sel] + step, centre[sel] - reach, centre[sel] + reach)
            moved = np.hypot(step[:, 0], step[:, 1])
            active[sel[bad | (moved < tol_px)]] = False
            ok[idx[sel[bad]]] = False
        pts[idx] = cur
    drift = np.hypot(*(pts - start).T)
    lost = ~ok | (drift > halves) | ~inside_frame(pts, halves + 1.0, shape)
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
    img = as_gray_float(gray)
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
    img = as_gray_u8(gray) if np.asarray(gray).dtype != np.float32 else np.asarray(gray)
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
