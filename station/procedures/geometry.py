"""Camera geometry from a ChArUco board at several pan/tilt poses.

Framing (the rail distance, the ring angle, the demosaiced views) is ``station.procedures.framing``.

Geometry (Zhang's method, ``calibration.geometry``): ``BOARD`` at ``POSES_DEG`` (the gimbal's pan and tilt),
the board about 1.3 frame widths wide so that every pose fills the view; each RAW frame becomes the G channel
of OpenCV's bilinear demosaic above black (the lens's model is the G image's: lateral CA magnifies R and B);
corners saddle-refined, calibrated, re-refined from the model once, outliers rejected.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from station.measurements import Declared, measures
from station.pipeline import analysis_pool
from station.procedures import ProcedureError
from station.procedures.captures import auto_exposure_us, capture_shot
from station.procedures.framing import (
    ChartNotFoundError,
    case_name,
    frame_scene,
    framing_distance_mm,
    green_image,
    lens_datasheet,
    preview_of_raw,
    sensor_geometry,
)
from station.procedures.result import ResultParts

if TYPE_CHECKING:
    from station.station import Station

#: The calibration board: 24 x 18 squares of 30 mm (720 x 540 mm), 22 mm markers.
BOARD = "charuco:16x12:45:33:DICT_5X5_100"
#: Board width over frame width at the calibration distance: the board overfills every pose's view.
BOARD_FILL = 1.3
#: Gimbal poses (pan, tilt) in degrees: straight on, then the four diagonals.
POSES_DEG: tuple[tuple[float, float], ...] = ((0.0, 0.0), (10.5, 8.4), (-10.5, 8.4), (10.5, -8.4), (-10.5, -8.4))
#: The board's white at this fraction of full scale (auto-exposure on its 99th percentile).
BOARD_LEVEL = 0.75
#: Views a usable calibration needs.
MIN_VIEWS = 3
# --- geometry calibration --------------------------------------------------------------------------------

@dataclass
class GeometryMeasurement(ResultParts):
    """The camera model of one (sensor, lens) and how it was made."""

    PROFILE_SECTION = "geometry"

    sensor: str
    lens: str | None
    f_number: float | None
    distance_mm: float
    board: str
    poses_deg: list[tuple[float, float]]
    result: Any  # calibration.geometry.GeometryResult
    not_found: list[str]
    pixel_pitch_um: float
    pictures: dict[str, bytes] = field(default_factory=dict)  # what a person would rather look at

    @property
    def rms_px(self) -> float:
        return float(self.result.rms_px)

    @property
    def views_used(self) -> int:
        return int(sum(1 for v in self.result.views if v.used))

    @property
    def image_distance_mm(self) -> float:
        """Lens-to-sensor distance the model says: ``fx`` times the pixel pitch."""
        return float(self.result.camera_matrix[0, 0]) * self.pixel_pitch_um * 1e-3

    def corner_distortion_px(self) -> float:
        """How far the lens moves the frame's farthest corner from where a pinhole would put it, px."""
        from calibration.geometry import pixels_to_rays

        k = np.asarray(self.result.camera_matrix, dtype=np.float64)
        w, h = self.result.image_size
        corners = np.array([[0.0, 0.0], [w - 1.0, 0.0], [0.0, h - 1.0], [w - 1.0, h - 1.0]])
        rays = pixels_to_rays(corners, k, self.result.dist_coeffs)
        ideal = rays * np.array([k[0, 0], k[1, 1]]) + np.array([k[0, 2], k[1, 2]])
        return float(np.max(np.hypot(*(ideal - corners).T)))

    @measures(Declared("geometry_rms_px", "px"), Declared("geometry_views_used", "1"),
              Declared("geometry_image_distance_error_pct", "%",
                       description="fx times the pixel pitch against the thin lens's image distance"),
              Declared("geometry_corner_distortion_px", "px"))
    def measurements(self) -> dict[str, float]:
        sheet = lens_datasheet(self.sensor, self.lens)
        expected = thin_lens_image_distance_mm(sheet.focal_length_mm, self.distance_mm)
        return {"geometry_rms_px": self.rms_px, "geometry_views_used": self.views_used,
                "geometry_image_distance_error_pct": (self.image_distance_mm / expected - 1.0) * 100.0,
                "geometry_corner_distortion_px": self.corner_distortion_px()}

    def profile_section(self) -> dict[str, Any]:
        r = self.result
        return {"camera_matrix": np.asarray(r.camera_matrix, dtype=float).tolist(),
                "dist_coeffs": np.asarray(r.dist_coeffs, dtype=float).reshape(-1)[:5].tolist(),
                "rms_px": float(r.rms_px), "views_used": self.views_used, "board": self.board,
                "distance_mm": self.distance_mm, "f_number": self.f_number,
                "poses_deg": [list(p) for p in self.poses_deg],
                "views": [v.to_dict() for v in r.views]}

    def figures(self) -> dict[str, bytes]:
        label = case_name(self.sensor, self.lens)
        return {f"{label}: distortion field": distortion_field_png(self.result, title=f"Distortion field: {label}")}


def calibrate_geometry(station: Station, sensor: str, lens: str | None = None, *, f_number: float | None = None,
                       poses_deg: tuple[tuple[float, float], ...] = POSES_DEG, board: str = BOARD,
                       distance_mm: float | None = None) -> GeometryMeasurement:
    """Intrinsics and distortion of ``sensor`` (with M lens ``lens``) from ``board`` at ``poses_deg``.

    Expects the board on the holder and the light on. Moves the rail to frame the board (``BOARD_FILL``),
    focuses on it, exposes its white at ``BOARD_LEVEL``, captures one RAW frame per pose and calibrates.
    The gimbal is back at (0, 0) afterwards. ``ChartNotFoundError`` when fewer than ``MIN_VIEWS`` views
    show the board; ``ProcedureError`` when the calibration fails.
    """
    from calibration.geometry import calibrate_images
    from targets.charuco import parse_board_spec

    spec = parse_board_spec(board)
    board_w_mm = spec.squares_x * spec.square_mm
    sensor_info = sensor_geometry(station, sensor)
    distance = distance_mm if distance_mm is not None else framing_distance_mm(
        station, sensor, lens, board_w_mm, BOARD_FILL)
    frame_scene(station, sensor, lens, distance)
    attachments: dict[str, bytes] = {}  # the first view's picture, drawn on the pool
    # calibration.geometry's one pipeline (detect, calibrate, re-refine from the model, calibrate again) takes the
    # views as they come: each view's board is found on the analysis pool while the gimbal moves to the next pose
    with analysis_pool(station).stream(
            f"{case_name(sensor, lens)}: geometry calibration",
            lambda views: calibrate_images(_green_views(views, case_name(sensor, lens), attachments), spec)) as stream:
        try:
            auto_exposure_us(station, sensor, target_fraction=BOARD_LEVEL, statistic="p99")
            for pan, tilt in poses_deg:
                station.mount.move_to(pan=float(pan), tilt=float(tilt))
                stream.put((f"pan {pan:+g} tilt {tilt:+g}", capture_shot(station, sensor, ("raw10",)).frame))
        finally:
            station.mount.move_to(pan=0.0, tilt=0.0)
    found = 0
    try:
        calibrated = stream.finish()
        found = len(calibrated.views)
    except (ValueError, cv2.error) as exc:
        if not str(exc).startswith("board found in"):
            raise ProcedureError(f"{case_name(sensor, lens)}: geometry calibration failed: "
                                 f"{str(exc).splitlines()[0]}") from None
    if found < MIN_VIEWS:
        raise ChartNotFoundError(f"{case_name(sensor, lens)}: board {board} found in {found} of "
                                 f"{len(poses_deg)} views (needs {MIN_VIEWS}); is it on the holder, lit, framed?",
                                 attachments)
    result, not_found = calibrated.result, calibrated.not_found
    return GeometryMeasurement(sensor=sensor, lens=lens, f_number=f_number, distance_mm=float(distance),
                               board=board, poses_deg=[tuple(map(float, p)) for p in poses_deg], result=result,
                               not_found=not_found, pixel_pitch_um=sensor_info.pixel_pitch_um,
                               pictures=attachments)


def _green_views(views: Iterator[tuple[str, Any]], case: str, pictures: dict[str, bytes]
                 ) -> Iterator[tuple[str, np.ndarray]]:
    """(name, RAW frame) -> (name, its green image), one at a time (the RAW let go here as soon as it is
    converted); the first view's picture for a person goes into ``pictures``."""
    for name, frame in views:
        if not pictures:
            pictures[f"{case}: ChArUco view ({name})"] = preview_of_raw(frame, 768)
        green = green_image(frame)
        del frame  # not held by this generator while the view is detected
        yield name, green
        del green


def distortion_field_png(result: Any, *, title: str = "Distortion field", grid: int = 13) -> bytes:
    """Arrows from where a pinhole puts each point to where the lens puts it (exaggerated), over the frame,
    with the displacement's magnitude as a colour map (OpenCV's model, ``result.camera_matrix`` / ``dist_coeffs``)."""
    from calibration.figures import figure_png, new_figure
    from calibration.geometry import rays_to_pixels

    k = np.asarray(result.camera_matrix, dtype=np.float64)
    dist = np.asarray(result.dist_coeffs, dtype=np.float64).reshape(-1)
    w, h = result.image_size
    gx, gy = np.meshgrid(np.linspace(0, w - 1, 64), np.linspace(0, h - 1, 48))
    ideal = np.column_stack([gx.ravel(), gy.ravel()])
    rays = (ideal - k[:2, 2]) / np.array([k[0, 0], k[1, 1]])
    moved = rays_to_pixels(rays, k, dist) - ideal
    magnitude = np.hypot(*moved.T).reshape(gx.shape)
    sx, sy = np.meshgrid(np.linspace(0, w - 1, grid), np.linspace(0, h - 1, max(3, round(grid * h / w))))
    pts = np.column_stack([sx.ravel(), sy.ravel()])
    arrows = rays_to_pixels((pts - k[:2, 2]) / np.array([k[0, 0], k[1, 1]]), k, dist) - pts
    longest = float(np.max(np.hypot(*arrows.T))) or 1.0
    scale = 0.06 * w / longest
    fig, ax = new_figure(figsize=(7.5, 5.6), dpi=100)
    im = ax.imshow(magnitude, extent=(-0.5, w - 0.5, h - 0.5, -0.5), cmap="magma", interpolation="bilinear")
    ax.quiver(pts[:, 0], pts[:, 1], arrows[:, 0] * scale, arrows[:, 1] * scale, angles="xy", scale_units="xy",
              scale=1.0, color="cyan", width=0.003)
    fig.colorbar(im, ax=ax, shrink=0.85, label="displacement by the lens (px)")
    k1, k2, p1, p2, k3 = (dist.tolist() + [0.0] * 5)[:5]
    ax.set_title(f"{title}\nk1 {k1:+.4g} k2 {k2:+.4g} p1 {p1:+.3g} p2 {p2:+.3g} k3 {k3:+.3g}; "
                 f"arrows x{scale:.3g}", fontsize=9)
    ax.set_xlabel("x (px)")
    ax.set_ylabel("y (px)")
    ax.set_xlim(-0.5, w - 0.5)
    ax.set_ylim(h - 0.5, -0.5)
    return figure_png(fig, tight=True)


def thin_lens_image_distance_mm(focal_mm: float, object_mm: float) -> float:
    """``v = f s / (s - f)`` (thin lens); inf when the object is inside the focal length."""
    return math.inf if object_mm <= focal_mm else focal_mm * object_mm / (object_mm - focal_mm)
