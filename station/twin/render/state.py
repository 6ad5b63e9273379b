"""The twin's optics for one capture (DESIGN 5): lens, aperture, focus, pose and intrinsics from the world.

The render's constants live here too: the bare M sensor's sapphire cover glass, the optical centres,
the acceptable circle of confusion, and the geometry and defocus tolerances of the other render modules.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from station.errors import ConfigError
from station.twin import line, optics
from station.twin.lenses import MAIN_LENS, Lens, actuator_extension_mm, get_lens
from station.twin.sensor import SENSORS, SensorSpec

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


def capture_option(world: Any, settings: dict[str, Any], name: str, default: Any) -> Any:
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
    back_focus = float(capture_option(world, settings, "adapter_back_focus_mm", 0.0))
    tilt_x = float(capture_option(world, settings, "adapter_tilt_x_deg", 0.0))
    tilt_y = float(capture_option(world, settings, "adapter_tilt_y_deg", 0.0))
    if lens_id is None:
        return OpticalState(lens=None, f_number=math.inf, image_distance_mm=BARE_PUPIL_DISTANCE_MM,
                            focus_distance_mm=math.inf, focus_ring_deg=None, extension_mm=0.0,
                            back_focus_error_mm=back_focus, tilt_x_deg=tilt_x, tilt_y_deg=tilt_y,
                            fx=BARE_PUPIL_DISTANCE_MM / pitch, fy=BARE_PUPIL_DISTANCE_MM / pitch, **common)
    lens = get_lens(lens_id)
    n = lens.check_f_number(float(capture_option(world, settings, "aperture", lens.widest_f_number)))
    ring = min(max(float(pose["focus"]), 0.0), float(lens.focus_throw_deg or 0.0))
    extension = lens.extension_for_ring_mm(ring)
    v = lens.focal_length_mm + extension + back_focus
    return OpticalState(lens=lens, f_number=n, image_distance_mm=v,
                        focus_distance_mm=optics.object_distance_mm(lens.focal_length_mm, v),
                        focus_ring_deg=ring, extension_mm=extension, back_focus_error_mm=back_focus,
                        tilt_x_deg=tilt_x, tilt_y_deg=tilt_y, fx=v / pitch, fy=v / pitch, **common)
