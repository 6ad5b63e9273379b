"""Lateral chromatic aberration: the radial magnification of the R and B planes relative to G.

Model: lensfun's ``linear`` TCA model (``r_R = k_r r_G``, ``r_B = k_b r_G`` about the centre), i.e. the
first-order lateral CA of Imatest and of the DNG ``WarpRectilinear`` per-plane radial terms: a feature
imaged at ``p_G`` in the green plane appears in plane C at

    p_C = c + s_C (p_G - c) + t_C

with ``c`` the optical centre (default the frame centre), ``s_C`` the plane's magnification relative to
green (reported as ``(s_C - 1)`` in ppm and %), and ``t_C`` a plain translation (plane misregistration,
e.g. half-pixel CFA offsets; not CA, reported apart). The fit is linear least squares in ``s_C`` and
``t_C``. The CA displacement at a point is ``(s_C - 1) |p - c|``: its largest value over the frame is at
the corner farthest from ``c`` (``corner_shift_px``).

Inputs are matched point sets per plane (ChArUco corners, dot centroids measured separately on each
colour plane), or, from slanted edges, each edge's position, its unit normal and the per-plane shift of
the edge along that normal (``edge_shifts`` measures the shift as the LSF-centroid difference per row):
then only the normal component is observed, ``d_n = ((s_C - 1)(p - c) + t_C) . n``, again linear.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["CaError", "PlaneCa", "LateralCaResult", "lateral_ca", "lateral_ca_from_edges", "edge_shifts"]

#: Fewer matched points than this per plane cannot give a fit with its residual.
MIN_POINTS = 4


class CaError(ValueError):
    """The inputs cannot give a lateral CA fit (too few points, mismatched sets, no edge); one line."""


@dataclass
class PlaneCa:
    """One plane against green: magnification ``scale`` about the centre, translation, residual."""

    plane: str
    scale: float
    translation_px: tuple[float, float]
    rms_px: float
    n_points: int

    @property
    def scale_ppm(self) -> float:
        return (self.scale - 1.0) * 1e6

    @property
    def scale_pct(self) -> float:
        return (self.scale - 1.0) * 100.0


@dataclass
class LateralCaResult:
    """R/G and B/G magnifications about ``center_px`` and the largest CA shift at the frame corners."""

    center_px: tuple[float, float]
    image_size: tuple[int, int] | None
    planes: dict[str, PlaneCa]

    def corner_radius_px(self) -> float | None:
        """Distance from the centre to the farthest frame corner (None without an image size)."""
        if self.image_size is None:
            return None
        w, h = self.image_size
        cx, cy = self.center_px
        return max(math.hypot(x - cx, y - cy) for x in (0.0, w - 1.0) for y in (0.0, h - 1.0))

    def corner_shift_px(self, plane: str) -> float | None:
        """``|s - 1|`` times the corner radius: the plane's CA displacement at the farthest corner, px."""
        r = self.corner_radius_px()
        return None if r is None else abs(self.planes[plane].scale - 1.0) * r

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"center_px": [float(v) for v in self.center_px],
                               "image_size": list(self.image_size) if self.image_size else None, "planes": {}}
        for name, p in self.planes.items():
            out["planes"][name] = {
                "scale": p.scale, "scale_ppm": p.scale_ppm, "scale_pct": p.scale_pct,
                "translation_px": [float(v) for v in p.translation_px], "rms_px": p.rms_px,
                "n_points": p.n_points, "corner_shift_px": self.corner_shift_px(name),
            }
        return out

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps(self.to_dict(), **kwargs)


def _centre(center_px: tuple[float, float] | None, image_size: tuple[int, int] | None,
            fallback: np.ndarray) -> np.ndarray:
    if center_px is not None:
        return np.asarray(center_px, float)
    if image_size is not None:
        return np.array([(image_size[0] - 1) / 2.0, (image_size[1] - 1) / 2.0])
    return fallback.mean(axis=0)


def lateral_ca(points: Mapping[str, np.ndarray], *, reference: str = "G",
               center_px: tuple[float, float] | None = None,
               image_size: tuple[int, int] | None = None) -> LateralCaResult:
    """Magnification of every plane against ``reference`` from matched point sets (N, 2) px per plane.

    Row i of every array is the same feature (NaN rows are dropped per plane). The centre defaults to
    the frame centre (``image_size`` = (width, height)), else to the centroid of the reference points.
    """
    if reference not in points:
        raise CaError(f"no points for the reference plane {reference!r} (planes given: {', '.join(points)})")
    ref = np.asarray(points[reference], float).reshape(-1, 2)
    c = _centre(center_px, image_size, ref[np.isfinite(ref).all(axis=1)])
    planes: dict[str, PlaneCa] = {}
    for name, pts in points.items():
        if name == reference:
            continue
        p = np.asarray(pts, float).reshape(-1, 2)
        if p.shape != ref.shape:
            raise CaError(f"plane {name}: {len(p)} points, expected {len(ref)} matched to plane {reference}")
        ok = np.isfinite(p).all(axis=1) & np.isfinite(ref).all(axis=1)
        if ok.sum() < MIN_POINTS:
            raise CaError(f"plane {name}: {int(ok.sum())} matched points, need at least {MIN_POINTS}")
        g, q = ref[ok] - c, p[ok] - c
        # unknowns (s, tx, ty): q = s g + t, stacked x then y rows
        n = len(g)
        a = np.zeros((2 * n, 3))
        a[:n, 0], a[n:, 0] = g[:, 0], g[:, 1]
        a[:n, 1], a[n:, 2] = 1.0, 1.0
        b = np.concatenate([q[:, 0], q[:, 1]])
        sol, *_ = np.linalg.lstsq(a, b, rcond=None)
        if np.linalg.matrix_rank(a) < 3:
            raise CaError(f"plane {name}: the points do not span the field (all at one place)")
        res = (a @ sol - b).reshape(2, n)
        planes[name] = PlaneCa(name, float(sol[0]), (float(sol[1]), float(sol[2])),
                               float(np.sqrt(np.mean(np.sum(res ** 2, axis=0)))), int(n))
    return LateralCaResult((float(c[0]), float(c[1])), image_size, planes)


def lateral_ca_from_edges(positions_px: np.ndarray, normals: np.ndarray,
                          shifts_px: Mapping[str, np.ndarray], *,
                          center_px: tuple[float, float] | None = None,
                          image_size: tuple[int, int] | None = None) -> LateralCaResult:
    """Magnifications from edges: centres (N, 2), unit normals (N, 2), per-plane shifts along the normal (N,).

    ``shifts_px[plane]`` is plane position minus green position along ``normals`` (``edge_shifts``).
    """
    pos = np.asarray(positions_px, float).reshape(-1, 2)
    nrm = np.asarray(normals, float).reshape(-1, 2)
    if nrm.shape != pos.shape:
        raise CaError(f"{len(nrm)} normals for {len(pos)} edge positions")
    nrm = nrm / np.linalg.norm(nrm, axis=1, keepdims=True)
    c = _centre(center_px, image_size, pos)
    planes: dict[str, PlaneCa] = {}
    for name, d in shifts_px.items():
        d = np.asarray(d, float).ravel()
        if d.shape[0] != len(pos):
            raise CaError(f"plane {name}: {d.shape[0]} shifts for {len(pos)} edges")
        ok = np.isfinite(d)
        if ok.sum() < MIN_POINTS:
            raise CaError(f"plane {name}: {int(ok.sum())} edges, need at least {MIN_POINTS}")
        radial = np.sum((pos[ok] - c) * nrm[ok], axis=1)
        a = np.column_stack([radial, nrm[ok, 0], nrm[ok, 1]])
        if np.linalg.matrix_rank(a) < 3:
            raise CaError(f"plane {name}: edges in too few orientations/places to separate scale from shift")
        sol, *_ = np.linalg.lstsq(a, d[ok], rcond=None)
        res = a @ sol - d[ok]
        planes[name] = PlaneCa(name, 1.0 + float(sol[0]), (float(sol[1]), float(sol[2])),
                               float(np.sqrt(np.mean(res ** 2))), int(ok.sum()))
    return LateralCaResult((float(c[0]), float(c[1])), image_size, planes)


def _row_centroids(roi: np.ndarray) -> np.ndarray:
    """Per row, the centroid (px, column coordinate) of |d/dx| of the row (the LSF), NaN without an edge."""
    d = np.abs(np.diff(roi.astype(np.float64), axis=1))
    x = np.arange(d.shape[1]) + 0.5
    # keep the LSF's main lobe: a window of the strongest part, so far-off noise does not bias the centroid
    thr = d.max(axis=1, keepdims=True) * 0.1
    d = np.where(d >= thr, d, 0.0)
    total = d.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        cen = (d * x).sum(axis=1) / total
    cen[total <= 0] = np.nan
    return cen


def edge_shifts(roi: np.ndarray, *, reference: int = 1, vertical: bool = True) -> dict[int, float]:
    """Shift (px, along the edge normal) of each channel's edge relative to ``reference`` in an (h, w, C) ROI.

    ``vertical``: the edge runs down the rows (near-vertical, shift measured along +x); else along the
    columns (shift along +y). Per row, the LSF centroid of each channel (ISO 12233's per-row edge
    location); the per-row differences to the reference channel are averaged (a slant cancels out, as
    each row compares the channels at the same row) and projected on the edge normal (times the cosine
    of the slant fitted to the reference channel's centroids).
    """
    a = np.asarray(roi, float)
    if a.ndim != 3 or a.shape[2] < 2:
        raise CaError(f"edge ROI must be (h, w, channels>=2), got {a.shape}")
    if not vertical:
        a = a.transpose(1, 0, 2)
    if a.shape[1] < 4 or a.shape[0] < 2:
        raise CaError(f"edge ROI {a.shape[1]}x{a.shape[0]} is too small")
    ref = _row_centroids(a[..., reference])
    ok = np.isfinite(ref)
    if ok.sum() < 2:
        raise CaError("no edge found in the ROI")
    rows = np.arange(len(ref))
    slope = np.polyfit(rows[ok], ref[ok], 1)[0]
    cos_slant = 1.0 / math.sqrt(1.0 + slope * slope)
    out: dict[int, float] = {}
    for ch in range(a.shape[2]):
        if ch == reference:
            continue
        diff = _row_centroids(a[..., ch]) - ref
        if not np.isfinite(diff).any():
            raise CaError(f"no edge found in channel {ch} of the ROI")
        out[ch] = float(np.nanmean(diff)) * cos_slant
    return out
