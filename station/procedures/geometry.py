"""Camera geometry from a ChArUco board at several pan/tilt poses, and how far away a chart must sit.

Framing: the lens's datasheet (focal length, focus ring) and the sensor's size (``info``) give, by the thin
lens (``1/f = 1/s + 1/v``, magnification ``f / (s - f)``), the rail distance at which a chart spans a wanted
fraction of the frame, and the ring angle that focuses there. The datasheet is the station's lens
catalogue (``station.lens_catalog``: focal length, apertures, focus throw, close focus as a lens maker publishes them);
nothing here reads a capture's ground truth.

Geometry (Zhang's method, ``calibration.geometry``): ``BOARD`` at ``POSES_DEG`` (the gimbal's pan and tilt),
the board about 1.3 frame widths wide so that every pose fills the view; each RAW frame becomes the G channel
of OpenCV's bilinear demosaic above black (the lens's model is the G image's: lateral CA magnifies R and B);
corners saddle-refined, calibrated, re-refined from the model once, outliers rejected.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from station.errors import ConfigError, InputError
from station.measurements import Declared, measures
from station.procedures import ProcedureError
from station.procedures.captures import auto_exposure_us, capture_shot, png_bytes

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
#: OpenCV's Bayer code for each CFA order (OpenCV names a pattern from its second row).
BAYER_TO_RGB = {"RGGB": cv2.COLOR_BayerBG2RGB, "BGGR": cv2.COLOR_BayerRG2RGB,
                "GRBG": cv2.COLOR_BayerGB2RGB, "GBRG": cv2.COLOR_BayerGR2RGB}


class ChartNotFoundError(ProcedureError):
    """A chart the step needs is not in the capture (not on the holder, or not framed): a station fault,
    with the capture as a PNG in ``attachments`` for the report."""

    def __init__(self, message: str, attachments: dict[str, bytes] | None = None) -> None:
        super().__init__(message)
        self.attachments = dict(attachments or {})


# --- datasheet and framing ---------------------------------------------------------------------------

def lens_datasheet(sensor: str, lens: str | None) -> Any:
    """The datasheet of the lens in front of ``sensor``: the phone's own lens for ``main``, the M lens
    ``lens`` for ``m`` (None: the bare sensor has no lens)."""
    from station.lens_catalog import get_lens  # the station's catalogue: published lens data, not the twin's

    if sensor == "main":
        return get_lens("main")
    if lens is None:
        return None
    try:
        return get_lens(lens)
    except ConfigError as exc:
        raise InputError(str(exc)) from None


@dataclass(frozen=True)
class SensorGeometry:
    """A sensor's readout as the phone declares it (``info``)."""

    width_px: int
    height_px: int
    pixel_pitch_um: float

    @property
    def width_mm(self) -> float:
        return self.width_px * self.pixel_pitch_um * 1e-3

    @property
    def height_mm(self) -> float:
        return self.height_px * self.pixel_pitch_um * 1e-3


def sensor_geometry(station: Station, sensor: str) -> SensorGeometry:
    """Width, height and pixel pitch of ``sensor`` from the phone's ``info``."""
    entry = (station.dut.info().get("sensors") or {}).get(sensor) or {}
    try:
        return SensorGeometry(int(entry["width"]), int(entry["height"]), float(entry["pixel_pitch_um"]))
    except (KeyError, TypeError, ValueError):
        raise ProcedureError(f"dut: info does not give sensor {sensor!r}'s width, height and pixel_pitch_um") from None


def framing_distance_mm(station: Station, sensor: str, lens: str | None, width_mm: float, fill: float = 1.0) -> float:
    """Rail distance at which an object ``width_mm`` wide spans ``fill`` of the frame's width (thin lens:
    the image is ``width f / (s - f)``), within the rail's soft limits."""
    sheet = lens_datasheet(sensor, lens)
    if sheet is None:
        raise InputError("framing needs a lens: the bare M sensor images no chart")
    f = float(sheet.focal_length_mm)
    geometry = sensor_geometry(station, sensor)
    distance = f + f * float(width_mm) / (float(fill) * geometry.width_mm)
    return rail_limits(station, distance)


def rail_limits(station: Station, distance_mm: float) -> float:
    """``distance_mm`` clamped into the rail's soft limits (the mount's ``distance`` axis)."""
    axis = station.config.mount.axes.get("distance")
    if axis is None:
        raise ProcedureError("mount: no 'distance' axis configured: the chart rail cannot be driven")
    return float(min(max(distance_mm, float(axis.min)), float(axis.max)))


def ring_for_distance_deg(lens: str, distance_mm: float) -> float:
    """The M lens's focus ring angle (deg from infinity) that focuses at ``distance_mm`` (its datasheet)."""
    return float(lens_datasheet("m", lens).ring_for_distance_deg(float(distance_mm)))


def frame_scene(station: Station, sensor: str, lens: str | None, distance_mm: float, *, pan_deg: float = 0.0,
                tilt_deg: float = 0.0, focus_deg: float | None = None) -> dict[str, float]:
    """Rail at ``distance_mm``, gimbal at (pan, tilt), focus on the chart: the M lens's ring by the mount
    (``focus_deg``, default its datasheet angle for the distance), the main camera by its autofocus.
    Returns the mount's position."""
    moves: dict[str, float] = {"distance": float(distance_mm), "pan": float(pan_deg), "tilt": float(tilt_deg)}
    if sensor == "m" and lens is not None:
        moves["focus"] = float(ring_for_distance_deg(lens, distance_mm) if focus_deg is None else focus_deg)
    if sensor == "main":
        station.dut.configure("main", focus_m=None)  # autofocus on the chart
    return station.mount.move_to(**moves)


# --- images --------------------------------------------------------------------------------------------

def demosaic_rgb16(data: np.ndarray, cfa: str, black_level: float, white_level: float) -> np.ndarray:
    """OpenCV's bilinear demosaic of a RAW frame above black, scaled to 16 bits: (H, W, 3) uint16 RGB."""
    scale = np.float32(65535.0 / max(float(white_level) - float(black_level), 1.0))
    dn = np.clip((data.astype(np.float32) - np.float32(black_level)) * scale, 0, 65535).astype(np.uint16)
    return cv2.cvtColor(dn, BAYER_TO_RGB.get(cfa, cv2.COLOR_BayerBG2RGB))


def green_image(frame: Any) -> np.ndarray:
    """The G channel of the bilinear demosaic above black (float32): the image the lens model is of."""
    return demosaic_rgb16(frame.data, frame.cfa, frame.black_level, frame.white_level)[:, :, 1].astype(np.float32)


def preview_of_raw(frame: Any, max_side: int = 1024) -> bytes:
    """A downscaled PNG of a RAW frame for a person: demosaiced, stretched to its 99.5th percentile, sRGB."""
    rgb = demosaic_rgb16(frame.data, frame.cfa, frame.black_level, frame.white_level).astype(np.float32)
    top = max(float(np.percentile(rgb[::4, ::4], 99.5)), 1.0)
    from station.frame import srgb8

    return png_bytes(srgb8(rgb / top), max_side)


# --- geometry calibration --------------------------------------------------------------------------------

@dataclass
class GeometryMeasurement:
    """The camera model of one (sensor, lens) and how it was made."""

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

    def attachments(self) -> dict[str, bytes]:
        """The pictures to attach to the report (name -> PNG), as every procedure result gives them."""
        return dict(self.pictures)

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

    def distortion_png(self) -> bytes:
        return distortion_field_png(self.result, title=f"Distortion field: {case_name(self.sensor, self.lens)}")


def case_name(sensor: str, lens: str | None) -> str:
    """The capture-matrix case: ``main``, ``m`` (bare) or ``m/<lens>``."""
    return sensor if lens is None or sensor == "main" else f"{sensor}/{lens}"


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
    attachments: dict[str, bytes] = {}
    images: list[tuple[str, np.ndarray]] = []
    try:
        auto_exposure_us(station, sensor, target_fraction=BOARD_LEVEL, statistic="p99")
        for pan, tilt in poses_deg:
            name = f"pan {pan:+g} tilt {tilt:+g}"
            station.mount.move_to(pan=float(pan), tilt=float(tilt))
            frame = capture_shot(station, sensor, ("raw10",)).frame
            if not attachments:
                attachments[f"{case_name(sensor, lens)}: ChArUco view ({name})"] = preview_of_raw(frame, 768)
            images.append((name, green_image(frame)))
    finally:
        station.mount.move_to(pan=0.0, tilt=0.0)
    found = 0
    try:  # calibration.geometry's one pipeline: detect, calibrate, re-refine from the model, calibrate again
        calibrated = calibrate_images(images, spec)
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
