"""The camera model in numpy: Brown-Conrady distortion and its inverse, rays <-> pixels, the distortion
polynomial's monotonic radius, and ``model_gap_px``: how far apart two models put the same ray anywhere in the
frame (the figure of merit for a recovered model against a true one)."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np


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
