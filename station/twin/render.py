"""The twin's image formation (DESIGN 5): chart -> lens -> sensor, one RAW CFA frame and its ground truth.

Per capture, per colour channel:

1. radiance: the chart's linear reflectance (``targets``) lit by the light's illuminance; the
   channel's response to the light's blackbody spectrum comes from ``station.twin.sensor``;
2. geometry: every polygon of the chart (its exact definition in mm) is carried into the sensor's
   pixel coordinates by the pose (rail distance, pan, tilt), the pinhole at the lens-to-sensor
   distance, OpenCV's Brown-Conrady distortion (and tilted-sensor term), and the channel's lateral
   CA magnification: straight chart edges are straight lines in the undistorted image plane, so
   polygons are clipped there exactly, their edges subdivided finely (<= 1/8 px sagitta), then
   distorted. The projected polygons are rasterized with exact area coverage
   (``targets.polygons``): each pixel is the mean of the irradiance over its area, no holes, no
   point-sampling aliasing, no resampling of a raster;
3. lens: the PSF, a defocus pillbox whose diameter is the thin-lens blur circle for the chart depth
   each pixel sees (uniform, or blended between a few levels when pan/tilt or the adapter's tilt
   make it vary across the field), convolved with the lens's Gaussian base PSF (Lindeberg's discrete
   Gaussian on the area-sampled image: ``optics.PSF_MODEL``, its MTF ``optics.system_mtf``); the relative
   illumination ``cos^4 * (1 + a2 r^2 + a4 r^4)``; the irradiance ``E = rho E_chart T / (4 N_w^2)``
   with the working f-number ``N_w = N v / f``;
4. sensor: the RGGB mosaic of mean electrons goes through ``station.twin.sensor.expose``.

Per unit (seeded by the phone's or sensor's serial): the main lens's voice-coil actuator (``configure``
``focus_code``: ``lenses.actuator_truth``); switched on as twin faults (so that other tests keep their
frames): ``unit_variation``, the channels' sensitivities against the golden module (``sensor.channel_gains``)
and the main camera's pose beside the M camera (``chart_pose``: ``lenses.sensor_pose_truth``; without it both
cameras sit on the rail's axis), and ``sensor_defects``, the sensor's defect pixels (``sensor.defect_map``).

The M sensor without a lens is lit by the whole light box through its sapphire cover glass: a
uniform irradiance ``T rho E_chart sin^2(alpha)`` (alpha: half-angle the chart subtends) with a small
cos^4 falloff of the microlenses' acceptance. The twin never imports ``calibration``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import cv2
import numpy as np

from station.errors import ConfigError
from station.twin import line, optics
from station.twin.coverage import coverage_raster
from station.twin.lenses import (
    MAIN_LENS,
    Lens,
    actuator_extension_mm,
    catalog_truth,
    get_lens,
    sensor_pose_truth,
)
from station.twin.sensor import (
    CFA_SITES,
    SENSORS,
    SensorSpec,
    channel_gains,
    defect_map,
    electrons_per_lux_s_m2,
    expose,
    noise_seed,
    sensor_catalog,
    sensor_params,
    sensor_spec,
)

MODEL = "physical-v1"
CHANNELS = ("r", "g", "b")
#: Sapphire cover glass of the bare M sensor: n = 1.77, two uncoated faces (Fresnel, normal incidence).
SAPPHIRE_INDEX = 1.77
SAPPHIRE_TRANSMISSION = (1.0 - ((SAPPHIRE_INDEX - 1.0) / (SAPPHIRE_INDEX + 1.0)) ** 2) ** 2
#: The bare sensor's falloff: cos^4 of the angle to a virtual exit pupil this far (microlens shift), mm.
BARE_PUPIL_DISTANCE_MM = 40.0
#: Offset of the optical axis from the sensor centre (x, y mm): the phone module, and the M adapter.
CENTRE_OFFSET_MM = {"main": (0.012, -0.008), "m": (-0.006, 0.010)}
#: Acceptable circle of confusion for "in focus" (DESIGN 7: 2 preview pixels).
COC_PX = 2.0
#: Longest projected polygon segment in the undistorted plane, px (distortion sagitta << 0.01 px).
SEGMENT_PX = 12.0
#: A defocus that varies across the field: levels of PSF width at most this ratio apart, at most this many.
BLUR_LEVEL_RATIO = 1.2
MAX_BLUR_LEVELS = 10
#: One PSF for the whole frame when its RMS width varies less than this over the field, px.
PSF_UNIFORM_PX = 0.05
#: Extra margin (px) of the clip region beyond the rendered window.
CLIP_MARGIN_PX = 2.0 * SEGMENT_PX


# --- what the optics are for one capture ---------------------------------------------------------

@dataclass(frozen=True)
class OpticalState:
    """The true optics of one capture (lengths mm, pixels of the readout mode)."""

    sensor: str
    lens: Lens | None  # None: the bare M sensor
    f_number: float
    image_distance_mm: float  # lens to sensor (pinhole focal length)
    focus_distance_mm: float  # object distance in focus on the axis (inf possible)
    chart_distance_mm: float
    pan_deg: float
    tilt_deg: float
    focus_ring_deg: float | None
    extension_mm: float
    back_focus_error_mm: float
    tilt_x_deg: float  # adapter (sensor) tilt, OpenCV tauX
    tilt_y_deg: float
    fx: float
    fy: float
    cx: float
    cy: float
    pitch_mm: float
    unit_serial: str = ""  # the phone's serial when its unit variation is on: the main camera's pose

    @property
    def distortion(self) -> tuple[float, float, float, float, float]:
        return self.lens.distortion if self.lens else (0.0, 0.0, 0.0, 0.0, 0.0)

    @property
    def pupil_mm(self) -> float:
        return self.lens.pupil_diameter_mm(self.f_number) if self.lens else 0.0

    def ca(self, channel: str) -> float:
        if self.lens is None or channel == "g":
            return 1.0
        return self.lens.ca_scale[channel]

    def camera_matrix(self, channel: str = "g") -> np.ndarray:
        s = self.ca(channel)
        return np.array([[self.fx * s, 0.0, self.cx], [0.0, self.fy * s, self.cy], [0.0, 0.0, 1.0]])


def _option(world: Any, settings: dict[str, Any], name: str, default: Any) -> Any:
    """A capture option: the settings first, then ``world.optics[name]``, then ``world.<name>``."""
    if name in settings and settings[name] is not None:
        return settings[name]
    extra = getattr(world, "optics", None)
    if isinstance(extra, dict) and extra.get(name) is not None:
        return extra[name]
    value = getattr(world, name, None)
    return default if value is None else value


def optical_state(world: Any, sensor: str, settings: dict[str, Any], spec: SensorSpec) -> OpticalState:
    """Lens, aperture, focus and intrinsics of a capture from the world and the phone's settings."""
    if sensor not in SENSORS:
        raise ConfigError(f"twin render: unknown sensor {sensor!r}; allowed: {', '.join(SENSORS)}")
    pose = world.pose()
    distance = line.true_distance_mm(world, float(pose["distance"]))
    if not distance > 0:
        raise ConfigError(f"twin render: the chart must be in front of the lens, rail distance {distance} mm")
    pitch = spec.pixel_pitch_mm
    off_x, off_y = CENTRE_OFFSET_MM[sensor]
    cx = (spec.width - 1) / 2.0 + off_x / pitch
    cy = (spec.height - 1) / 2.0 + off_y / pitch
    varies = bool(getattr(world, "faults", {}).get("unit_variation"))  # else the main camera sits on the axis
    serial = world.phone_serial() if varies and hasattr(world, "phone_serial") else ""
    common = {"sensor": sensor, "chart_distance_mm": distance, "pan_deg": float(pose["pan"]),
              "tilt_deg": line.true_tilt_deg(world, float(pose["tilt"])), "cx": cx, "cy": cy, "pitch_mm": pitch,
              "unit_serial": serial}
    if sensor == "main":
        lens = line.unit_lens(world, MAIN_LENS)
        f = lens.focal_length_mm
        focus_m = settings.get("focus_m")
        focus_mm = distance if focus_m is None else float(focus_m) * 1000.0  # None: autofocus on the chart
        focus_mm = max(focus_mm, lens.close_focus_mm)
        v = float(optics.image_distance_mm(f, focus_mm))
        if settings.get("focus_code") is not None:  # the voice coil's DAC code: this unit's own actuator
            v = f + actuator_extension_mm(float(settings["focus_code"]), world.phone_serial())
            focus_mm = optics.object_distance_mm(f, v) if v > f else math.inf
        return OpticalState(lens=lens, f_number=lens.widest_f_number, image_distance_mm=v,
                            focus_distance_mm=focus_mm, focus_ring_deg=None, extension_mm=v - f,
                            back_focus_error_mm=0.0, tilt_x_deg=0.0, tilt_y_deg=0.0,
                            fx=v / pitch, fy=v / pitch, **common)
    lens_id = getattr(world, "m_lens", None)
    back_focus = float(_option(world, settings, "adapter_back_focus_mm", 0.0))
    tilt_x = float(_option(world, settings, "adapter_tilt_x_deg", 0.0))
    tilt_y = float(_option(world, settings, "adapter_tilt_y_deg", 0.0))
    if lens_id is None:
        return OpticalState(lens=None, f_number=math.inf, image_distance_mm=BARE_PUPIL_DISTANCE_MM,
                            focus_distance_mm=math.inf, focus_ring_deg=None, extension_mm=0.0,
                            back_focus_error_mm=back_focus, tilt_x_deg=tilt_x, tilt_y_deg=tilt_y,
                            fx=BARE_PUPIL_DISTANCE_MM / pitch, fy=BARE_PUPIL_DISTANCE_MM / pitch, **common)
    lens = get_lens(lens_id)
    n = lens.check_f_number(float(_option(world, settings, "aperture", lens.widest_f_number)))
    ring = min(max(float(pose["focus"]), 0.0), float(lens.focus_throw_deg or 0.0))
    extension = lens.extension_for_ring_mm(ring)
    v = lens.focal_length_mm + extension + back_focus
    return OpticalState(lens=lens, f_number=n, image_distance_mm=v,
                        focus_distance_mm=optics.object_distance_mm(lens.focal_length_mm, v),
                        focus_ring_deg=ring, extension_mm=extension, back_focus_error_mm=back_focus,
                        tilt_x_deg=tilt_x, tilt_y_deg=tilt_y, fx=v / pitch, fy=v / pitch, **common)


# --- geometry: chart polygons into the sensor -----------------------------------------------------

def _sensor_to_normalized(u: np.ndarray, v: np.ndarray, state: OpticalState, channel: str
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


def _clip_region(state: OpticalState, spec: SensorSpec, margin: int) -> tuple[float, float, float, float]:
    """Rectangle of the undistorted normalized plane holding the rendered window of every channel."""
    xs, ys = [], []
    for channel in CHANNELS:
        u, v = _window_border(spec.width, spec.height, margin)
        x, y = _sensor_to_normalized(u, v, state, channel)
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


@dataclass(frozen=True)
class ChartPolygons:
    """A chart's shapes as flat arrays: vertices (N,2) mm, per shape start/count, step and orientation."""

    vertices: np.ndarray
    start: np.ndarray
    count: np.ndarray
    delta: np.ndarray  # (S,3) reflectance step each shape paints over what lies under it
    orientation: np.ndarray  # (S,) sign of the shoelace area in chart coordinates
    background: np.ndarray  # (3,) the holder around the chart
    size_mm: tuple[float, float]


@lru_cache(maxsize=16)
def chart_polygons(name: str, size: tuple[float, float] | None = None) -> ChartPolygons:
    """The flat polygon arrays of chart ``name`` (``targets.registry``), cached."""
    chart = _chart(name, size)
    shapes = chart.shapes
    polys = [np.asarray(shape.polygon, dtype=np.float64).reshape(-1, 2) for shape in shapes]
    count = np.array([len(p) for p in polys], dtype=np.int64)
    start = np.concatenate(([0], np.cumsum(count)[:-1])).astype(np.int64)
    vertices = np.concatenate(polys) if polys else np.zeros((0, 2))
    x, y = vertices[:, 0], vertices[:, 1]
    nxt = _next_in_polygon(start, count)
    cross = x * y[nxt] - x[nxt] * y
    area = np.add.reduceat(cross, start) if len(polys) else np.zeros(0)
    delta = np.array([shape.reflectance - shape.under for shape in shapes], dtype=np.float64).reshape(-1, 3)
    return ChartPolygons(vertices, start, count, delta, np.sign(area), np.asarray(chart.background, np.float64),
                         (float(chart.width_mm), float(chart.height_mm)))


def _next_in_polygon(start: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Index of each vertex's successor, cyclic within its polygon (polygons stored contiguously)."""
    n = int(count.sum())
    nxt = np.arange(1, n + 1)
    nxt[start + count - 1] = start
    return nxt


def _project_chart(chart: ChartPolygons, state: OpticalState, region: tuple[float, float, float, float]
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
    nxt = _next_in_polygon(start, count)
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
        nxt = _next_in_polygon(start, count)
    return points, nxt, shapes


def _rasterize_channel(chart: ChartPolygons, projected: tuple[np.ndarray, np.ndarray, np.ndarray],
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


# --- defocus -----------------------------------------------------------------------------------

def _blur_diameter_px(state: OpticalState, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Thin-lens blur circle diameter (px) at sensor pixels (u, v), for the chart depth each one sees."""
    lens = state.lens
    x, y = _sensor_to_normalized(u, v, state, "g")
    rotation, translation = optics.chart_extrinsics(state.pan_deg, state.tilt_deg, state.chart_distance_mm, 0, 0)
    normal = rotation[:, 2]  # chart plane normal in the camera frame
    plane = float(normal @ translation)
    denom = normal[0] * x + normal[1] * y + normal[2]
    with np.errstate(divide="ignore", invalid="ignore"):
        depth = np.where(denom > 1e-9, plane / denom, np.inf)  # axial object distance, mm
    image = optics.image_distance_mm(lens.focal_length_mm, depth)
    sensor_z = np.full_like(x, state.image_distance_mm)
    if state.tilt_x_deg or state.tilt_y_deg:
        n = optics.sensor_normal(state.tilt_x_deg, state.tilt_y_deg)
        sensor_z = state.image_distance_mm * n[2] / (n[0] * x + n[1] * y + n[2])
    diameter = optics.blur_circle_mm(state.pupil_mm, sensor_z, image) / state.pitch_mm
    return np.where(np.isfinite(diameter), diameter, 0.0)


def _blur_field(state: OpticalState, width: int, height: int, margin: int, step: int = 16) -> np.ndarray:
    """Blur circle diameter (px) on a coarse grid over the window (H+2m, W+2m), every ``step`` px.

    Grid node (i, j) sits where ``cv2.resize`` by the integer factor ``step`` puts its source sample
    (``_upsample``), window pixel ``(i + 0.5) * step - 0.5``.
    """
    out_w, out_h = width + 2 * margin, height + 2 * margin
    nu, nv = -(-out_w // step), -(-out_h // step)
    gu = np.arange(nu) * step + (step - 1) / 2.0 - margin
    gv = np.arange(nv) * step + (step - 1) / 2.0 - margin
    uu, vv = np.meshgrid(gu, gv)
    return _blur_diameter_px(state, uu, vv).astype(np.float32)


def _upsample(coarse: np.ndarray, step: int, width: int, height: int) -> np.ndarray:
    """A smooth field on ``_blur_field``'s grid, bilinearly resized to (height, width) float32."""
    fine = cv2.resize(coarse, (coarse.shape[1] * step, coarse.shape[0] * step), interpolation=cv2.INTER_LINEAR)
    return fine[:height, :width]


def _psf_width_px(sigma_px: float, diameter_px: float) -> float:
    """RMS width (px, per axis) of the Gaussian * pillbox PSF: a disc of diameter d has variance d^2/16."""
    return math.sqrt(sigma_px * sigma_px + diameter_px * diameter_px / 16.0)


def _blur_range(state: OpticalState, width: int, height: int, step: int = 64) -> tuple[float, float]:
    """Smallest and largest blur circle diameter (px) over the frame."""
    uu, vv = np.meshgrid(np.linspace(-0.5, width - 0.5, width // step + 2),
                         np.linspace(-0.5, height - 0.5, height // step + 2))
    d = _blur_diameter_px(state, uu, vv)
    return float(d.min()), float(d.max())


@dataclass(frozen=True)
class BlurLevels:
    """A field-varying defocus as a few blur-circle levels and each pixel's blend weights."""

    diameters: tuple[float, ...]
    weights: tuple[np.ndarray | None, ...]  # float32 like the window; None where a level has no pixel


def blur_levels(coarse_px: np.ndarray, sigma_px: float, step: int, width: int, height: int) -> BlurLevels:
    """Levels of blur circle diameter spanning a coarse field, evenly spaced in log PSF RMS width.

    Adjacent levels differ by at most ``BLUR_LEVEL_RATIO`` in RMS width (at most ``MAX_BLUR_LEVELS``);
    each pixel blends its two neighbouring levels linearly in log width (weights computed on the
    coarse grid of ``_blur_field`` and resized to the window, (height, width)).
    """
    field = np.asarray(coarse_px, dtype=np.float64)
    log_width = np.log(np.sqrt(sigma_px * sigma_px + field * field / 16.0 + 1e-6))
    lo, hi = float(log_width.min()), float(log_width.max())
    n = int(min(MAX_BLUR_LEVELS, max(2, math.ceil((hi - lo) / math.log(BLUR_LEVEL_RATIO)) + 1)))
    levels = np.linspace(lo, hi, n)
    diameters = tuple(float(4.0 * math.sqrt(max(math.exp(2 * w) - 1e-6 - sigma_px * sigma_px, 0.0)))
                      for w in levels)
    position = (log_width - lo) * ((n - 1) / max(hi - lo, 1e-12))
    weights: list[np.ndarray | None] = []
    for i in range(n):
        weight = np.maximum(1.0 - np.abs(position - i), 0.0).astype(np.float32)
        weights.append(_upsample(weight, step, width, height) if weight.any() else None)
    return BlurLevels(diameters, tuple(weights))


def _apply_psf(image: np.ndarray, sigma_px: float, blur: float | BlurLevels) -> np.ndarray:
    """PSF on a window: one kernel for a uniform defocus, else the blend of the levels' blurs."""
    if not isinstance(blur, BlurLevels):
        return optics.blur(image, sigma_px, float(blur))
    out = np.zeros_like(image)
    for diameter, weight in zip(blur.diameters, blur.weights, strict=True):
        if weight is not None:
            out += weight * optics.blur(image, sigma_px, diameter)
    return out


# --- radiometry ------------------------------------------------------------------------------------

@lru_cache(maxsize=16)
def _chart(name: str, size: tuple[float, float] | None) -> Any:
    from targets.registry import get_chart

    try:
        return get_chart(name) if size is None else get_chart(name, *size)
    except ValueError as exc:
        raise ConfigError(f"twin chart holder: {exc}") from None


@lru_cache(maxsize=16)
def _mean_reflectance(name: str, size: tuple[float, float] | None) -> tuple[float, float, float]:
    chart = _chart(name, size)
    ppm = 512.0 / max(chart.width_mm, chart.height_mm)
    raster = chart.raster(0.0, 0.0, ppm, int(chart.width_mm * ppm), int(chart.height_mm * ppm))
    return tuple(float(v) for v in raster.reshape(-1, 3).mean(axis=0))


def _uniform_reflectance(chart: Any) -> np.ndarray | None:
    """The reflectance if the chart is uniform over the whole view (the flat diffuser), else None."""
    if all(np.allclose(s.reflectance, chart.background) for s in chart.shapes):
        return np.asarray(chart.background, dtype=np.float64)
    return None


def _relative_illumination(state: OpticalState, width: int, height: int, step: int = 8
                           ) -> tuple[np.ndarray, float, float]:
    """V(u, v) over the frame (float32) and the falloff coefficients (a2, a4).

    Exact on a grid every ``step`` px, bilinear in between (V is smooth: error ~ step^2 V'' / 8 < 1e-5).
    """
    a2, a4 = state.lens.falloff_coefficients(state.f_number) if state.lens else (0.0, 0.0)
    return _relative_map(state.cx, state.cy, state.fx, state.fy, a2, a4, width, height, step), a2, a4


@lru_cache(maxsize=2)
def _relative_map(cx: float, cy: float, fx: float, fy: float, a2: float, a4: float, width: int, height: int,
                  step: int) -> np.ndarray:
    """``_relative_illumination``'s map (read-only, kept: it changes only with the lens state)."""
    pad = 1  # grid nodes beyond the frame: the interpolation never extrapolates
    nu, nv = -(-width // step) + 2 * pad, -(-height // step) + 2 * pad
    gu = (np.arange(nu) - pad) * step + (step - 1) / 2.0
    gv = (np.arange(nv) - pad) * step + (step - 1) / 2.0
    u = ((gu - cx) / fx)[None, :]
    v = ((gv - cy) / fy)[:, None]
    coarse = optics.relative_illumination(np.sqrt(u * u + v * v), a2, a4).astype(np.float32)
    fine = cv2.resize(coarse, (nu * step, nv * step), interpolation=cv2.INTER_LINEAR)
    fine = fine[pad * step:pad * step + height, pad * step:pad * step + width]
    fine.setflags(write=False)
    return fine


def _electron_rates(world: Any, state: OpticalState, spec: SensorSpec, chart_name: str,
                    chart_size: tuple[float, float] | None, serial: str) -> tuple[dict[str, float], dict[str, Any]]:
    """Electrons per second per pixel, per channel, for reflectance 1 on the axis (and the sums behind)."""
    lux = float(world.illuminance_lux())
    cct = float(getattr(world.light, "cct_k", 5000.0))
    unit = (channel_gains(serial) if getattr(world, "faults", {}).get("unit_variation")  # this unit's, or
            else {"r": 1.0, "g": 1.0, "b": 1.0})  # the golden module's channel sensitivities
    eta = {c: v * unit[c] for c, v in electrons_per_lux_s_m2(round(cct, 1)).items()}
    if state.lens is None:
        chart = _chart(chart_name, chart_size)
        half_angle_sin2 = (chart.width_mm * chart.height_mm / math.pi) / (
            chart.width_mm * chart.height_mm / math.pi + state.chart_distance_mm**2)
        reflectance = _mean_reflectance(chart_name, chart_size)
        sensor_lux = {c: lux * SAPPHIRE_TRANSMISSION * reflectance[k] * half_angle_sin2
                      for k, c in enumerate(CHANNELS)}
        info = {"model": "bare sensor: T_sapphire * rho_mean * E * sin^2(alpha)", "sin2_alpha": half_angle_sin2,
                "transmission": SAPPHIRE_TRANSMISSION, "mean_reflectance": list(reflectance)}
    else:
        working = state.f_number * state.image_distance_mm / state.lens.focal_length_mm
        factor = state.lens.transmission / (4.0 * working * working)
        sensor_lux = {c: lux * factor for c in CHANNELS}
        info = {"model": "rho * E * T / (4 N_w^2)", "working_f_number": working,
                "transmission": state.lens.transmission}
    rates = {c: sensor_lux[c] * eta[c] * spec.pixel_area_m2 for c in CHANNELS}
    info.update({"illuminance_lux": lux, "cct_k": cct, "sensor_illuminance_lux": sensor_lux, "channel_gains": unit,
                 "electrons_per_lux_s_m2": eta, "electrons_per_s": rates})
    return rates, info


# --- the frame -------------------------------------------------------------------------------------

def _chart_spec(world: Any, settings: dict[str, Any]) -> tuple[str, tuple[float, float] | None]:
    name = str(getattr(world, "chart", "flat") or "flat")
    size = _option(world, settings, "chart_size_mm", None)
    return name, (None if size is None else (float(size[0]), float(size[1])))


def _sensor_serial(world: Any, settings: dict[str, Any], sensor: str) -> str:
    """The serial that seeds the sensor's PRNU/DSNU: the settings' override, else the world's."""
    serial = settings.get("sensor_serial")
    if isinstance(serial, dict):
        serial = serial.get(sensor)
    return str(serial) if serial else world.sensor_serial_for(sensor)


def render_mean_electrons(world: Any, sensor: str, settings: dict[str, Any]) -> tuple[np.ndarray, dict]:
    """The noise-free RGGB mosaic of mean photo-electrons (float32 H x W) and the optics truth."""
    spec = sensor_spec(world.resolution)
    state = optical_state(world, sensor, settings, spec)
    chart_name, chart_size = _chart_spec(world, settings)
    exposure_s = float(settings["exposure_us"]) * 1e-6
    rates, radiometry = _electron_rates(world, state, spec, chart_name, chart_size,
                                        _sensor_serial(world, settings, sensor))
    width, height = spec.width, spec.height
    relative, a2, a4 = _relative_illumination(state, width, height)
    light = line.light_field(world, width, height)
    if light is not None:  # a line station's light box is not flat
        relative = relative * light  # the cached map is read-only: a new one
    mean_e = np.empty((height, width), dtype=np.float32)
    sigma_px = {c: (state.lens.psf_sigma_um(state.f_number, c) / spec.pixel_pitch_um if state.lens else 0.0)
                for c in CHANNELS}
    blur_info: dict[str, Any] = {}
    chart = _chart(chart_name, chart_size)
    uniform = _uniform_reflectance(chart) if state.lens is not None else np.ones(3)
    if state.lens is not None:
        centre = float(_blur_diameter_px(state, np.array([state.cx]), np.array([state.cy]))[0])
        blur_info = {"blur_circle_px": centre}
    if uniform is not None:
        for k, channel in enumerate(CHANNELS):
            scale = float(uniform[k]) * rates[channel] * exposure_s
            for row, col in CFA_SITES[channel]:
                np.multiply(relative[row::2, col::2], scale, out=mean_e[row::2, col::2])
        if state.lens is not None:
            blur_info["blur_circle_px_range"] = list(_blur_range(state, width, height))
    else:
        lo, hi = _blur_range(state, width, height)
        blur_info["blur_circle_px_range"] = [lo, hi]
        margin = int(math.ceil(hi / 2.0 + 4.0 * max(sigma_px.values()) + 3.0))
        region = _clip_region(state, spec, margin)
        polygons = chart_polygons(chart_name, chart_size)
        projected = _project_chart(polygons, state, region)
        blur: float | BlurLevels = centre
        sigma_g = sigma_px["g"]
        if _psf_width_px(sigma_g, hi) - _psf_width_px(sigma_g, lo) > PSF_UNIFORM_PX:
            step = 16
            blur = blur_levels(_blur_field(state, width, height, margin, step), sigma_g, step,
                               width + 2 * margin, height + 2 * margin)
        for channel in CHANNELS:  # mean electrons before the falloff: the PSF is linear
            image = _rasterize_channel(polygons, projected, state, channel, width, height, margin,
                                       rates[channel] * exposure_s)
            image = _apply_psf(image, sigma_px[channel], blur)
            for row, col in CFA_SITES[channel]:
                site = image[margin + row:margin + height:2, margin + col:margin + width:2]
                np.multiply(site, relative[row::2, col::2], out=mean_e[row::2, col::2])
            del image
    np.maximum(mean_e, 0.0, out=mean_e)
    truth = _optics_truth(state, spec, a2, a4, sigma_px, blur_info, chart_name, chart, radiometry)
    truth["exposure_s"] = exposure_s
    return mean_e, truth


def render_raw(world: Any, sensor: str, settings: dict[str, Any], seq: int) -> tuple[np.ndarray, dict]:
    """Render one RGGB CFA frame (uint16, H x W, 10-bit DN) and its ground truth (JSON-able dict).

    ``settings``: ``exposure_us``, ``analog_gain``, ``focus_m`` (main; None autofocuses on the chart),
    and optionally ``aperture`` (M lens f-number), ``adapter_back_focus_mm``, ``adapter_tilt_x_deg``,
    ``adapter_tilt_y_deg``, ``chart_size_mm``, ``sensor_serial`` (else read from ``world.optics`` or
    world attributes of those names). Noise is seeded by ``(world.seed, sensor, seq)``, the PRNU/DSNU
    patterns by the sensor serial: the same arguments give the same frame.
    """
    spec = sensor_spec(world.resolution)
    analog_gain = float(settings.get("analog_gain", 1.0))
    mean_e, truth = render_mean_electrons(world, sensor, settings)
    serial = _sensor_serial(world, settings, sensor)
    g_centre = _centre_value(mean_e, truth)
    defects = bool(getattr(world, "faults", {}).get("sensor_defects"))
    raw = expose(mean_e, spec, analog_gain, truth["exposure_s"], serial,
                 noise_seed(line.noise_seed(world), sensor, seq), defects=defects)
    truth["defect_pixels"] = defect_map(serial, spec.resolution).truth() if defects else []
    params = sensor_params(spec, analog_gain)
    gain = params["conversion_gain_dn_per_e"]
    expected = {c: min(spec.black_level + gain * min(e, spec.full_well_e), float(spec.white_level))
                for c, e in g_centre.items()}
    truth.update({k: params[k] for k in ("conversion_gain_dn_per_e", "read_noise_dn", "read_noise_e",
                                         "full_well_e", "black_level", "white_level", "clip_level_dn",
                                         "dark_current_e_per_s", "prnu_pct", "dsnu_e")})
    truth.update({"model": MODEL, "sensor_params": params, "sensor_serial": serial, "seed": int(world.seed),
                  "seq": int(seq), "analog_gain": analog_gain, "mean_signal_e": g_centre["g"],
                  "mean_signal_e_rgb": g_centre, "expected_mean_dn": expected["g"],
                  "expected_mean_dn_rgb": expected})
    return raw, truth


def _centre_value(mean_e: np.ndarray, truth: dict[str, Any]) -> dict[str, float]:
    """Mean electrons per channel in the 8x8 block at the principal point (the white-flat reading)."""
    cx, cy = truth["intrinsics"]["cx"], truth["intrinsics"]["cy"]
    r0, c0 = int(round(cy)) // 2 * 2 - 4, int(round(cx)) // 2 * 2 - 4
    block = mean_e[max(r0, 0):r0 + 8, max(c0, 0):c0 + 8]
    return {c: float(np.mean([block[r::2, k::2].mean() for r, k in CFA_SITES[c]])) for c in CHANNELS}


def _optics_truth(state: OpticalState, spec: SensorSpec, a2: float, a4: float, sigma_px: dict[str, float],
                  blur_info: dict[str, Any], chart_name: str, chart: Any, radiometry: dict[str, Any]
                  ) -> dict[str, Any]:
    rotation, translation = chart_pose(state, chart.width_mm, chart.height_mm)
    rvec = cv2.Rodrigues(rotation)[0].reshape(3)
    lens = state.lens
    truth: dict[str, Any] = {
        "sensor": state.sensor, "resolution": spec.resolution, "width": spec.width, "height": spec.height,
        "pixel_pitch_um": spec.pixel_pitch_um,
        "lens": lens.id if lens else None, "lens_name": lens.name if lens else "bare (sapphire cover glass)",
        "f_number": state.f_number if lens else None,
        "intrinsics": {"fx": state.fx, "fy": state.fy, "cx": state.cx, "cy": state.cy,
                       "camera_matrix": state.camera_matrix().tolist(),
                       "focal_length_mm": lens.focal_length_mm if lens else None,
                       "image_distance_mm": state.image_distance_mm if lens else None},
        "distortion": list(state.distortion),
        "distortion_opencv": optics.opencv_distortion(state.distortion, state.tilt_x_deg, state.tilt_y_deg),
        "adapter": ({"back_focus_error_mm": state.back_focus_error_mm, "tilt_x_deg": state.tilt_x_deg,
                     "tilt_y_deg": state.tilt_y_deg} if state.sensor == "m" else None),
        "ca_scale": {"r": state.ca("r"), "g": 1.0, "b": state.ca("b")},
        "vignetting": {"model": "cos^4(atan r) * (1 + a2 r^2 + a4 r^4), r = hypot(u - cx, v - cy) / r_scale_px",
                       "cx": state.cx, "cy": state.cy, "r_scale_px": state.fx, "a2": a2, "a4": a4},
        "psf": {"model": optics.PSF_MODEL, "sigma_px": sigma_px,
                "gaussian": "Lindeberg's discrete Gaussian exp(-t) I_n(t), t = sigma_px^2, separable, on the "
                            "area-sampled image: transfer ~exp(t (cos 2 pi fx - 1)) exp(t (cos 2 pi fy - 1)), "
                            "not the continuous exp(-2 pi^2 t f^2)",
                "pillbox": "disc of diameter blur_circle_px, each tap its area fraction over the pixel; under "
                           f"{optics.SMALL_BLUR_PX:g} px folded into the Gaussian's variance (d^2 / 16)",
                "pixel_aperture": "square, 100 % fill (exact area coverage): sinc(fx) sinc(fy)",
                "mtf": "station.twin.optics.system_mtf(fx, fy, sigma_px[channel], blur_circle_px)"},
        "pose": {"distance_mm": state.chart_distance_mm, "pan_deg": state.pan_deg, "tilt_deg": state.tilt_deg,
                 "focus_deg": state.focus_ring_deg},
        "extrinsics": {"frame": "chart mm (origin top-left, x right, y down) -> camera mm",
                       "rvec": rvec.tolist(), "tvec": translation.tolist(), "rotation": rotation.tolist()},
        "chart": chart_name, "chart_size_mm": [chart.width_mm, chart.height_mm],
        "illuminance_lux": radiometry["illuminance_lux"], "cct_k": radiometry["cct_k"],
        "radiometry": radiometry,
    }
    if lens is not None:
        coc_mm = COC_PX * state.pitch_mm
        near, far = optics.depth_of_field_mm(lens.focal_length_mm, state.f_number, state.image_distance_mm, coc_mm)
        blur = blur_info.get("blur_circle_px", 0.0)
        truth["focus"] = {
            "focus_distance_mm": state.focus_distance_mm, "chart_distance_mm": state.chart_distance_mm,
            "image_distance_mm": state.image_distance_mm, "extension_mm": state.extension_mm,
            "focus_ring_deg": state.focus_ring_deg, "back_focus_error_mm": state.back_focus_error_mm,
            "blur_circle_px": blur, "blur_circle_px_range": blur_info.get("blur_circle_px_range", [blur, blur]),
            "coc_px": COC_PX, "depth_of_field_mm": [near, far], "in_focus": bool(blur <= COC_PX),
        }
    else:
        truth["focus"] = None
        truth["vignetting"].update({"model": "cos^4(atan r), r = hypot(u - cx, v - cy) / r_scale_px (bare sensor)",
                                    "r_scale_px": BARE_PUPIL_DISTANCE_MM / state.pitch_mm})
    return _jsonable(truth)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.floating, float)):
        v = float(value)
        return v if math.isfinite(v) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    return value


# --- catalog truth -------------------------------------------------------------------------------

def lens_truth() -> dict[str, Any]:
    """The lens catalog's truth (``station twin lenses --json``), with the mounts' optical centres."""
    truth = catalog_truth()
    truth["optical_centre_offset_mm"] = {k: list(v) for k, v in CENTRE_OFFSET_MM.items()}
    truth["bare_m_sensor"] = {"cover_glass": "sapphire", "refractive_index": SAPPHIRE_INDEX,
                              "transmission": SAPPHIRE_TRANSMISSION,
                              "falloff": f"cos^4(atan(r_mm / {BARE_PUPIL_DISTANCE_MM:g}))"}
    return truth


def sensor_truth() -> dict[str, Any]:
    """The sensors' truth per readout mode at analog gain 1 (``station twin sensors --json``)."""
    return sensor_catalog()
