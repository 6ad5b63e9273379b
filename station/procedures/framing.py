"""The scene in front of a sensor, for the procedures: how far away a chart must sit and which ring angle focuses
there (the station's lens catalogue by the thin lens, ``1/f = 1/s + 1/v``, magnification ``f / (s - f)``),
moving the rail and ring there, the RAW frame demosaiced for a person or a detector, the capture-matrix case
names, and the error a missing chart raises. Nothing here reads a capture's ground truth.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from calibration.cfa import BAYER_TO_RGB
from station.errors import ConfigError, InputError
from station.procedures import ProcedureError

if TYPE_CHECKING:
    from station.station import Station


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

#: Rows demosaiced at once by ``green_image`` (even, so every band starts on the CFA's phase).
_BAND_ROWS = 512
#: Rows of context above and below a band (even): OpenCV's bilinear demosaic reads a 3 x 3 neighbourhood.
_BAND_CONTEXT = 2


def demosaic_rgb16(data: np.ndarray, cfa: str, black_level: float, white_level: float) -> np.ndarray:
    """OpenCV's bilinear demosaic of a RAW frame above black, scaled to 16 bits: (H, W, 3) uint16 RGB."""
    scale = np.float32(65535.0 / max(float(white_level) - float(black_level), 1.0))
    dn = data.astype(np.float32)
    dn -= np.float32(black_level)
    dn *= scale
    np.clip(dn, 0, 65535, out=dn)
    return cv2.cvtColor(dn.astype(np.uint16), BAYER_TO_RGB.get(cfa, cv2.COLOR_BayerBG2RGB))


def green_image(frame: Any) -> np.ndarray:
    """The G channel of the bilinear demosaic above black, scaled to 16 bits (H, W) uint16: the image the
    lens model is of. Demosaiced in row bands with two rows of context, so it equals the whole frame's G
    plane without its 300 MB RGB (at 50 MP) or any whole-frame float copy."""
    data = frame.data
    height = data.shape[0]
    out = np.empty(data.shape[:2], dtype=np.uint16)
    for r0 in range(0, height, _BAND_ROWS):
        r1 = min(height, r0 + _BAND_ROWS)
        lo, hi = max(0, r0 - _BAND_CONTEXT), min(height, r1 + _BAND_CONTEXT)
        rgb = demosaic_rgb16(data[lo:hi], frame.cfa, frame.black_level, frame.white_level)
        out[r0:r1] = rgb[r0 - lo:r1 - lo, :, 1]
    return out


def preview_of_raw(frame: Any, max_side: int = 1024) -> bytes:
    """A downscaled PNG of a RAW frame for a person: white-balanced, exposed to its white (``capture_preview``)."""
    from station.capture_preview import capture_png

    return capture_png(frame, max_side=max_side)


def case_name(sensor: str, lens: str | None) -> str:
    """The capture-matrix case: ``main``, ``m`` (bare) or ``m/<lens>``."""
    return sensor if lens is None or sensor == "main" else f"{sensor}/{lens}"
