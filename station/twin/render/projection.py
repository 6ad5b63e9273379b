"""Geometry of the twin's render: chart polygons carried into a channel's sensor pixels (DESIGN 5, step 2).

The pose (rail distance, pan, tilt), the pinhole at the lens-to-sensor distance, OpenCV's Brown-Conrady
distortion and tilted-sensor term, and the channel's lateral CA magnification. Straight chart edges are
straight in the undistorted normalized plane, so polygons are clipped there (Sutherland-Hodgman), their
edges subdivided, then distorted and rasterized with exact area coverage (``targets.polygons``).
"""

from __future__ import annotations

import numpy as np

from station.twin import optics
from station.twin.coverage import coverage_raster
from station.twin.lenses import sensor_pose_truth
from station.twin.render.charts import ChartPolygons, next_in_polygon
from station.twin.render.state import CHANNELS, CLIP_MARGIN_PX, SEGMENT_PX, OpticalState
from station.twin.sensor import SensorSpec


def sensor_to_normalized(u: np.ndarray, v: np.ndarray, state: OpticalState, channel: str
                          ) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates of a channel -> undistorted normalized coordinates (inverse model, float64)."""
    s = state.ca(channel)
    xt = (np.asarray(u, np.float64) - state.cx) / (state.fx * s)
    yt = (np.asarray(v, np.float64) - state.cy) / (state.fy * s)
    if state.tilt_x_deg or state.tilt_y_deg:
        inv = np.linalg.inv(optics.tilt_matrix(state.tilt_x_deg, state.tilt_y_deg))
        w = inv[2, 0] * xt + inv[2, 1] * yt + inv[2, 2]
        xt, yt = (inv[0, 0] * xt + inv[0, 1] * yt + inv[0, 2]) / w, (inv[1, 0] * xt + inv[1, 1] * yt + inv[1, 2]) / w
    return optics.undistort(xt, yt, state.distortion)


def _normalized_to_sensor(x: np.ndarray, y: np.ndarray, state: OpticalState, channel: str
                          ) -> tuple[np.ndarray, np.ndarray]:
    """Undistorted normalized coordinates -> a channel's pixel coordinates (forward model)."""
    xd, yd = optics.distort(x, y, state.distortion)
    if state.tilt_x_deg or state.tilt_y_deg:
        h = optics.tilt_matrix(state.tilt_x_deg, state.tilt_y_deg)
        w = h[2, 0] * xd + h[2, 1] * yd + h[2, 2]
        xd, yd = (h[0, 0] * xd + h[0, 1] * yd + h[0, 2]) / w, (h[1, 0] * xd + h[1, 1] * yd + h[1, 2]) / w
    s = state.ca(channel)
    return state.cx + state.fx * s * xd, state.cy + state.fy * s * yd


def _window_border(width: int, height: int, margin: int, n: int = 64) -> tuple[np.ndarray, np.ndarray]:
    lo_x, hi_x, lo_y, hi_y = -margin - 0.5, width - 0.5 + margin, -margin - 0.5, height - 0.5 + margin
    t = np.linspace(0.0, 1.0, n)
    u = np.concatenate([lo_x + t * (hi_x - lo_x), np.full(n, hi_x), hi_x - t * (hi_x - lo_x), np.full(n, lo_x)])
    v = np.concatenate([np.full(n, lo_y), lo_y + t * (hi_y - lo_y), np.full(n, hi_y), hi_y - t * (hi_y - lo_y)])
    return u, v


def clip_region(state: OpticalState, spec: SensorSpec, margin: int) -> tuple[float, float, float, float]:
    """Rectangle of the undistorted normalized plane holding the rendered window of every channel."""
    xs, ys = [], []
    for channel in CHANNELS:
        u, v = _window_border(spec.width, spec.height, margin)
        x, y = sensor_to_normalized(u, v, state, channel)
        xs.append(x)
        ys.append(y)
    x, y = np.concatenate(xs), np.concatenate(ys)
    pad = CLIP_MARGIN_PX / state.fx
    return float(x.min() - pad), float(y.min() - pad), float(x.max() + pad), float(y.max() + pad)


def chart_pose(state: OpticalState, chart_width_mm: float, chart_height_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """Chart mm -> camera mm. The mount's pose puts the M camera on the rail's axis; the main camera sits
    beside it at the unit's own pose (``lenses.sensor_pose_truth``): ``X_main = R^T (X_m - T)``."""
    rotation, translation = optics.chart_extrinsics(state.pan_deg, state.tilt_deg, state.chart_distance_mm,
                                                    chart_width_mm, chart_height_mm)
    if state.sensor == "main" and state.unit_serial:
        pose = sensor_pose_truth(state.unit_serial)
        r_t = np.asarray(pose["rotation"]).T
        rotation, translation = r_t @ rotation, r_t @ (translation - np.asarray(pose["translation_mm"]))
    return rotation, translation


def _clip_polygon(points: np.ndarray, inside: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Sutherland-Hodgman against one half-space: ``values`` >= 0 inside (signed distance per vertex)."""
    out = []
    n = len(points)
    for i in range(n):
        j = (i + 1) % n
        if inside[i]:
            out.append(points[i])
        if inside[i] != inside[j]:
            t = values[i] / (values[i] - values[j])
            out.append(points[i] + t * (points[j] - points[i]))
    return np.asarray(out, dtype=np.float64).reshape(-1, points.shape[1])


def project_chart(chart: ChartPolygons, state: OpticalState, region: tuple[float, float, float, float]
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Chart shapes -> closed polygons in the undistorted normalized plane, clipped to ``region``.

    Returns vertices (M,2), each vertex's successor index (M,) and shape index (M,). Edges are
    subdivided so that none is longer than ``SEGMENT_PX`` (they curve once distorted).
    """
    rotation, translation = chart_pose(state, *chart.size_mm)
    x0, y0, x1, y1 = region
    z_min = 1e-3 * state.chart_distance_mm
    cam = chart.vertices @ rotation[:, :2].T + translation
    if len(chart.start) == 0:
        return np.zeros((0, 2)), np.zeros(0, np.int64), np.zeros(0, np.int64)
    z_low = np.minimum.reduceat(cam[:, 2], chart.start) < z_min
    with np.errstate(divide="ignore", invalid="ignore"):
        q = cam[:, :2] / cam[:, 2:3]
    qx_lo, qx_hi = np.minimum.reduceat(q[:, 0], chart.start), np.maximum.reduceat(q[:, 0], chart.start)
    qy_lo, qy_hi = np.minimum.reduceat(q[:, 1], chart.start), np.maximum.reduceat(q[:, 1], chart.start)
    outside = ~z_low & ((qx_hi < x0) | (qx_lo > x1) | (qy_hi < y0) | (qy_lo > y1))
    inside = ~z_low & ~outside & (qx_lo >= x0) & (qx_hi <= x1) & (qy_lo >= y0) & (qy_hi <= y1)
    pieces: list[np.ndarray] = []
    shape_of: list[np.ndarray] = []
    keep = np.flatnonzero(inside)
    if keep.size:
        idx = np.repeat(chart.start[keep], chart.count[keep]) + (
            np.arange(int(chart.count[keep].sum())) - np.repeat(np.cumsum(chart.count[keep]) - chart.count[keep],
                                                                 chart.count[keep]))
        pieces.append(q[idx])
        shape_of.append(np.repeat(keep, chart.count[keep]))
    for shape in np.flatnonzero(~inside & ~outside):  # few: the sheet, shapes crossing the view's edge
        sl = slice(chart.start[shape], chart.start[shape] + chart.count[shape])
        pts = cam[sl]
        if z_low[shape]:
            pts = _clip_polygon(pts, pts[:, 2] >= z_min, pts[:, 2] - z_min)
            if len(pts) < 3:
                continue
        poly = pts[:, :2] / pts[:, 2:3]
        for axis, bound, sign in ((0, x0, 1.0), (0, x1, -1.0), (1, y0, 1.0), (1, y1, -1.0)):
            d = sign * (poly[:, axis] - bound)
            poly = _clip_polygon(poly, d >= 0, d)
            if len(poly) < 3:
                break
        if len(poly) >= 3:
            pieces.append(poly)
            shape_of.append(np.full(len(poly), shape, dtype=np.int64))
    if not pieces:
        return np.zeros((0, 2)), np.zeros(0, np.int64), np.zeros(0, np.int64)
    points = np.concatenate(pieces)
    shapes = np.concatenate(shape_of)
    # polygons are contiguous runs of one shape index (a shape gives at most one clipped polygon)
    start = np.flatnonzero(np.concatenate(([True], shapes[1:] != shapes[:-1])))
    count = np.diff(np.concatenate((start, [len(points)])))
    nxt = next_in_polygon(start, count)
    # subdivide: straight here, the edges bend once distorted
    seg = SEGMENT_PX / state.fx
    n_piece = np.maximum(np.ceil(np.hypot(*(points[nxt] - points).T) / seg).astype(np.int64), 1)
    if n_piece.max() > 1:
        edge = np.repeat(np.arange(len(points)), n_piece)
        frac = (np.arange(edge.size) - np.repeat(np.cumsum(n_piece) - n_piece, n_piece)) / n_piece[edge]
        points = points[edge] + frac[:, None] * (points[nxt] - points)[edge]
        shapes = shapes[edge]
        start = np.flatnonzero(np.concatenate(([True], shapes[1:] != shapes[:-1])))
        count = np.diff(np.concatenate((start, [len(points)])))
        nxt = next_in_polygon(start, count)
    return points, nxt, shapes


def rasterize_channel(chart: ChartPolygons, projected: tuple[np.ndarray, np.ndarray, np.ndarray],
                       state: OpticalState, channel: str, width: int, height: int, margin: int,
                       scale: float = 1.0) -> np.ndarray:
    """Exact area-average reflectance of one channel over the window's pixels, times ``scale``:
    (H+2m, W+2m) float32."""
    k = CHANNELS.index(channel)
    points, nxt, shapes = projected
    out_w, out_h = width + 2 * margin, height + 2 * margin
    if len(points) == 0:
        return np.full((out_h, out_w), chart.background[k] * scale, dtype=np.float32)
    u, v = _normalized_to_sensor(points[:, 0], points[:, 1], state, channel)
    # raster coordinates: pixel (r, c) covers [c, c+1) x [r, r+1); sensor pixel u is centred at u
    u += margin + 0.5
    v += margin + 0.5
    weight = -chart.orientation[shapes] * chart.delta[shapes, k]
    return coverage_raster(u, v, u[nxt], v[nxt], weight, out_w, out_h, float(chart.background[k]), scale)
