"""ArUco fiducials that locate the charts without a pattern of their own (SFR, steps, ColorChecker, star).

Four markers of ``DICT_4X4_50``, ids 0..3 at the top-left, top-right, bottom-right and bottom-left
corners of the sheet, each on a white quiet zone one cell wide. Detection: OpenCV's ArUco detector,
then each marker's four sides re-located to sub-pixel as the 50 % crossing of the edge profile
(unbiased under a symmetric blur), the corners as the sides' intersections, and the homography
chart mm -> image px from all the corners found (at least three markers).
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from targets.base import BLACK, WHITE, Chart, ChartNotFound, Detection, Painter, gray_for_detection

FIDUCIAL_DICTIONARY = "DICT_4X4_50"
FIDUCIAL_IDS = (0, 1, 2, 3)  # top-left, top-right, bottom-right, bottom-left
#: Cells across a marker, black border included (4x4 bits + 1-cell border each side).
_CELLS = 6


def fiducial_dictionary() -> cv2.aruco.Dictionary:
    return cv2.aruco.getPredefinedDictionary(cv2.aruco.DICT_4X4_50)


def marker_mask(marker_id: int, dictionary: cv2.aruco.Dictionary | None = None) -> np.ndarray:
    """Black cells (True) of an ArUco marker, border included, row 0 on top."""
    d = dictionary if dictionary is not None else fiducial_dictionary()
    cells = d.markerSize + 2
    return cv2.aruco.generateImageMarker(d, int(marker_id), cells, borderBits=1) < 128


def fiducial_corners_mm(width_mm: float, height_mm: float, size_mm: float,
                        margin_mm: float) -> dict[int, np.ndarray]:
    """Outer corners (4,2) mm of each fiducial (top-left, top-right, bottom-right, bottom-left, as OpenCV)."""
    s, m = size_mm, margin_mm
    tops = {0: (m, m), 1: (width_mm - m - s, m), 2: (width_mm - m - s, height_mm - m - s),
            3: (m, height_mm - m - s)}
    square = np.array([[0, 0], [s, 0], [s, s], [0, s]], dtype=np.float64)
    return {i: square + np.array(tops[i]) for i in FIDUCIAL_IDS}


def paint_fiducials(painter: Painter, corners: dict[int, np.ndarray], under: Any) -> None:
    """White quiet zone (one cell) and the black cells of each marker."""
    for marker_id, quad in corners.items():
        x, y = quad[0]
        size = quad[1, 0] - quad[0, 0]
        cell = size / _CELLS
        painter.rect(x - cell, y - cell, size + 2 * cell, size + 2 * cell, WHITE, under)
        painter.cells(marker_mask(marker_id), x, y, cell, BLACK, WHITE)


def _refine_quad(gray: np.ndarray, quad: np.ndarray) -> np.ndarray:
    """Sub-pixel marker corners: each side re-found as the 50 % crossing across it, lines intersected.

    Profiles are sampled (bilinear) along normals at points of the middle 60 % of each side, from
    the white quiet zone (outside) to the black border (inside, half a cell deep).
    """
    img = gray.astype(np.float32)
    side = float(np.mean(np.linalg.norm(quad - np.roll(quad, -1, axis=0), axis=1)))
    cell = side / _CELLS
    reach = 0.45 * cell
    if reach < 1.5:
        return quad
    centre = quad.mean(axis=0)
    lines = []
    t = np.linspace(0.2, 0.8, 16)
    s = np.linspace(-reach, reach, max(int(np.ceil(2 * reach * 4)), 9))
    for k in range(4):
        a, b = quad[k], quad[(k + 1) % 4]
        d = (b - a) / np.linalg.norm(b - a)
        n = np.array([-d[1], d[0]])
        if np.dot(centre - a, n) > 0:
            n = -n  # n points outwards (to the white quiet zone)
        pts = a + np.outer(t, b - a)  # (T,2)
        samp = pts[:, None, :] + s[None, :, None] * n  # (T,S,2)
        mapx = samp[..., 0].astype(np.float32)
        mapy = samp[..., 1].astype(np.float32)
        prof = cv2.remap(img, mapx, mapy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        lo = prof[:, :3].mean(axis=1, keepdims=True)  # inside, black
        hi = prof[:, -3:].mean(axis=1, keepdims=True)  # outside, white
        level = 0.5 * (lo + hi)
        found = []
        for i in range(len(t)):
            if hi[i, 0] - lo[i, 0] < 10:
                continue
            above = np.flatnonzero(prof[i] >= level[i, 0])
            if above.size == 0 or above[0] == 0:
                continue
            j = above[0]
            p0, p1 = prof[i, j - 1], prof[i, j]
            frac = (level[i, 0] - p0) / (p1 - p0) if p1 != p0 else 0.5
            found.append(pts[i] + (s[j - 1] + frac * (s[j] - s[j - 1])) * n)
        if len(found) < 4:
            return quad
        p = np.array(found)
        vx, vy, x0, y0 = cv2.fitLine(p.astype(np.float32), cv2.DIST_L2, 0, 0.01, 0.01).ravel()
        lines.append((np.array([x0, y0], dtype=np.float64), np.array([vx, vy], dtype=np.float64)))
    out = np.empty_like(quad)
    for k in range(4):
        (p1, d1), (p2, d2) = lines[(k - 1) % 4], lines[k]  # corner k joins sides k-1 and k
        A = np.array([d1, -d2]).T
        if abs(np.linalg.det(A)) < 1e-9:
            return quad
        u = np.linalg.solve(A, p2 - p1)
        out[k] = p1 + u[0] * d1
    if np.max(np.linalg.norm(out - quad, axis=1)) > cell:
        return quad
    return out


def locate_fiducials(image: np.ndarray, chart: str, corners_mm: dict[int, np.ndarray],
                     min_markers: int = 3) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """Homography chart mm -> image px from the fiducials found, and the markers' corners px."""
    gray = gray_for_detection(chart, image)
    try:
        return _locate(gray, chart, corners_mm, min_markers)
    except cv2.error as exc:
        raise ChartNotFound(chart, f"OpenCV failed: {str(exc).strip().splitlines()[-1]}") from None


def _locate(gray: np.ndarray, chart: str, corners_mm: dict[int, np.ndarray],
            min_markers: int) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    found: dict[int, np.ndarray] = {}
    for attempt in range(2):  # OpenCV's defaults, then a finer threshold ladder and full error correction
        params = cv2.aruco.DetectorParameters()
        params.cornerRefinementMethod = cv2.aruco.CORNER_REFINE_SUBPIX
        if attempt:
            params.errorCorrectionRate = 1.0
            params.adaptiveThreshWinSizeStep = 4
            params.adaptiveThreshWinSizeMax = 53
        quads, ids, _ = cv2.aruco.ArucoDetector(fiducial_dictionary(), params).detectMarkers(gray)
        ids = np.asarray(ids if ids is not None else [], dtype=np.int64).reshape(-1)
        for quad, marker_id in zip(quads, ids, strict=True):
            marker_id = int(marker_id)
            if marker_id in corners_mm and marker_id not in found:
                found[marker_id] = _refine_quad(gray, np.asarray(quad, dtype=np.float64).reshape(4, 2))
        if len(found) == len(corners_mm):
            break
    if len(found) < min_markers:
        raise ChartNotFound(
            chart,
            f"{len(found)} of 4 ArUco fiducials ({FIDUCIAL_DICTIONARY} ids 0-3) found, need {min_markers}",
        )
    order = sorted(found)
    src = np.concatenate([corners_mm[i] for i in order])
    dst = np.concatenate([found[i] for i in order])
    keep = _inliers(src, dst)
    inset = _common_inset(src[keep], dst[keep])
    grown = _grow(dst, inset)
    H, _ = cv2.findHomography(src[keep], grown[keep], 0)
    if H is None or not np.all(np.isfinite(H)):
        raise ChartNotFound(chart, "the fiducials found give no homography")
    return H / H[2, 2], {i: grown[4 * k:4 * k + 4] for k, i in enumerate(order)}


def _residuals(H: np.ndarray, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    proj = src @ H[:, :2].T + H[:, 2]
    return np.linalg.norm(proj[:, :2] / proj[:, 2:] - dst, axis=1)


def _inliers(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Corners consistent with one homography: drop those 4x the median residual and over 0.75 px."""
    keep = np.ones(len(src), dtype=bool)
    for _ in range(2):
        H, _ = cv2.findHomography(src[keep], dst[keep], 0)
        if H is None:
            break
        res = _residuals(H, src, dst)
        new = (res <= max(4 * float(np.median(res[keep])), 0.75))
        if new.sum() < 8 or np.array_equal(new, keep):
            break
        keep = new
    return keep


def _grow(quads: np.ndarray, inset_px: float) -> np.ndarray:
    """Move each marker's sides outwards by ``inset_px`` (corners along the diagonals by inset * sqrt 2)."""
    q = quads.reshape(-1, 4, 2)
    centre = q.mean(axis=1, keepdims=True)
    d = q - centre
    return (q + d / np.linalg.norm(d, axis=2, keepdims=True) * inset_px * np.sqrt(2)).reshape(-1, 2)


def _common_inset(src: np.ndarray, dst: np.ndarray) -> float:
    """The inset (px) shared by all markers' sides that best fits one homography.

    A tone curve (gamma-encoded previews, JPEGs) moves the 50 % crossing of every blurred marker
    side the same way, so all markers shrink or grow alike; one homography cannot explain that,
    so the inset is found as the one leaving the least reprojection error (grid, then parabola).
    """
    def rms(inset: float) -> float:
        grown = _grow(dst, inset)
        H, _ = cv2.findHomography(src, grown, 0)
        if H is None:
            return np.inf
        return float(np.sqrt(np.mean(_residuals(H, src, grown) ** 2)))

    grid = np.linspace(-2.0, 2.0, 41)
    errs = np.array([rms(v) for v in grid])
    k = int(np.clip(np.argmin(errs), 1, grid.size - 2))
    e0, e1, e2 = errs[k - 1:k + 2]
    den = e0 - 2 * e1 + e2
    step = grid[1] - grid[0]
    best = grid[k] + (0.5 * (e0 - e2) / den * step if den > 0 else 0.0)
    return float(np.clip(best, grid[0], grid[-1]))


class FiducialChart(Chart):
    """A chart located by four corner fiducials; subclasses paint their content and list their ROIs."""

    #: Fiducial side and its distance from the sheet edges, as fractions of the sheet's shorter side.
    fiducial_fraction = 0.07
    margin_fraction = 0.03
    #: Reflectance of the sheet the fiducials sit on (before the shapes exist); each chart sets its own.
    sheet_reflectance_value: float

    @property
    def fiducial_size_mm(self) -> float:
        return self.fiducial_fraction * min(self.width_mm, self.height_mm)

    @property
    def fiducial_margin_mm(self) -> float:
        return self.margin_fraction * min(self.width_mm, self.height_mm)

    def fiducial_corners_mm(self) -> dict[int, np.ndarray]:
        size, margin = self.fiducial_size_mm, self.fiducial_margin_mm
        return fiducial_corners_mm(self.width_mm, self.height_mm, size, margin)

    def fiducial_keepout_mm(self) -> float:
        """Distance from a sheet edge that the fiducials and their quiet zones occupy."""
        return self.fiducial_margin_mm + self.fiducial_size_mm * (1 + 1 / _CELLS)

    def paint_fiducials(self, painter: Painter) -> None:
        paint_fiducials(painter, self.fiducial_corners_mm(), self.sheet_reflectance_value)

    def features_mm(self) -> dict[str, Any]:
        return {"fiducials": self.fiducial_corners_mm()}

    def info(self) -> dict[str, Any]:
        d = super().info()
        corners = {str(k): v.round(4).tolist() for k, v in self.fiducial_corners_mm().items()}
        d["fiducials"] = {"dictionary": FIDUCIAL_DICTIONARY, "size_mm": round(self.fiducial_size_mm, 4),
                          "corners_mm": corners}
        return d

    def detect(self, image: np.ndarray) -> Detection:
        H, markers = locate_fiducials(image, self.name, self.fiducial_corners_mm())
        detection = Detection(self.name, True, H, markers=markers)
        self.locate_rois(detection, np.asarray(image).shape)
        return detection

    def locate_rois(self, detection: Detection, image_shape: tuple[int, ...]) -> None:
        """Fill the chart-specific parts of ``detection`` from its homography."""
