"""The twin's lens catalog: the phone's main lens and the M lenses of DESIGN 5, with their true optics.

Representative simulation parameters, NOT measured data of the real lenses: focal lengths,
distortion, vignetting, lateral CA, sharpness and focus throw are plausible values for lenses of
these kinds on a 1-inch sensor, chosen so that each calibration has something to find.

Conventions (the ground truth the station's calibration is judged against):

- distortion: Brown-Conrady ``(k1, k2, p1, p2, k3)`` on normalized image coordinates ``(X/Z, Y/Z)``
  exactly as OpenCV's ``cv2.projectPoints`` applies it, so OpenCV's model is the truth model;
- lateral CA: the R and B images are the G image magnified about the principal point by
  ``ca_scale["r"]`` and ``ca_scale["b"]`` (R's intrinsics are G's with ``fx, fy`` times the scale);
- vignetting: relative illuminance ``V(r) = cos^4(atan r) * (1 + a2 r^2 + a4 r^4)``, ``r`` the
  image-space distance from the principal point in units of the focal length (``hypot(u - cx,
  v - cy) / fx`` in pixels); ``(a2, a4)`` per f-number, interpolated in log2(N) between the table's
  stops (stopping down shrinks the lens falloff; the natural cos^4 stays);
- sharpness: the lens's aberration blur is a Gaussian of sigma ``aberration_sigma_um`` on the sensor
  wide open, shrinking as ``(N_open / N)^2`` when stopped down; diffraction adds the Gaussian fit of
  the Airy core, ``sigma = 0.42 lambda N`` (Zhang, Zerubia & Olivo-Marin, Appl. Opt. 46 (2007));
- focus: thin lens ``1/f = 1/s + 1/v`` (``s`` lens to object, ``v`` lens to sensor). An M lens
  focuses by unit extension on a helicoid: ring angle 0 deg is infinity (``v = f``), the extension
  grows linearly with the ring angle to ``f^2 / (s_close - f)`` at ``focus_throw_deg`` (close focus);
  the ring stops at both ends. The phone's main lens is moved by its voice coil to focus at ``focus_m``.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from typing import Any

from station.errors import ConfigError

#: Centre wavelengths of the sensor's R, G, B channels, um (diffraction blur per channel).
CHANNEL_WAVELENGTH_UM: dict[str, float] = {"r": 0.600, "g": 0.535, "b": 0.465}
#: Gaussian sigma of the Airy core per unit of wavelength x f-number.
AIRY_SIGMA_PER_LAMBDA_N = 0.42


@dataclass(frozen=True)
class Lens:
    """One lens of the catalog (lengths mm, angles deg; see the module docstring for the models)."""

    id: str
    name: str
    mount: str  # "phone" (the main camera's own lens) or "m" (Leica M bayonet)
    focal_length_mm: float
    nominal_focal_mm: float
    apertures: tuple[float, ...]  # f-numbers of the aperture ring, widest first
    distortion: tuple[float, float, float, float, float]  # k1 k2 p1 p2 k3 (OpenCV)
    ca_scale: dict[str, float]  # lateral CA: magnification of R and B relative to G
    vignetting: dict[float, tuple[float, float]]  # f-number -> (a2, a4) lens falloff
    aberration_sigma_um: float  # Gaussian blur sigma wide open, um on the sensor
    close_focus_mm: float  # closest focus distance, lens to object
    focus_throw_deg: float | None  # ring rotation from infinity to close focus (None: not a ring)
    code: int | None  # 6-bit code the M adapter reads (None: the phone's own lens)
    transmission: float = 0.9  # on-axis transmittance of the glass
    notes: str = field(default="representative simulation parameters, not measured data")

    # --- aperture -------------------------------------------------------------------------------
    @property
    def widest_f_number(self) -> float:
        return self.apertures[0]

    def check_f_number(self, f_number: float) -> float:
        """``f_number`` if the aperture ring reaches it, else a ConfigError naming the range."""
        n = float(f_number)
        lo, hi = min(self.apertures), max(self.apertures)
        if not (math.isfinite(n) and lo - 1e-9 <= n <= hi + 1e-9):
            raise ConfigError(f"lens {self.id}: aperture f/{f_number} outside its range f/{lo:g} to f/{hi:g}")
        return n

    def pupil_diameter_mm(self, f_number: float) -> float:
        """Entrance pupil diameter A = f / N (thin lens)."""
        return self.focal_length_mm / f_number

    # --- vignetting -----------------------------------------------------------------------------
    def falloff_coefficients(self, f_number: float) -> tuple[float, float]:
        """Lens falloff ``(a2, a4)`` at ``f_number``: linear in log2(N) between table stops, clamped."""
        stops = sorted(self.vignetting)
        n = min(max(float(f_number), stops[0]), stops[-1])
        for lo, hi in zip(stops[:-1], stops[1:], strict=True):
            if lo <= n <= hi:
                t = (math.log2(n) - math.log2(lo)) / (math.log2(hi) - math.log2(lo))
                (a2l, a4l), (a2h, a4h) = self.vignetting[lo], self.vignetting[hi]
                return (a2l + t * (a2h - a2l), a4l + t * (a4h - a4l))
        return self.vignetting[stops[0]]

    # --- sharpness ------------------------------------------------------------------------------
    def aberration_sigma_at_um(self, f_number: float) -> float:
        """Aberration blur sigma at ``f_number``, um: ``sigma_open * (N_open / N)^2``."""
        return self.aberration_sigma_um * (self.widest_f_number / float(f_number)) ** 2

    def psf_sigma_um(self, f_number: float, channel: str) -> float:
        """Base PSF (Gaussian) sigma on the sensor, um: aberrations and diffraction in quadrature."""
        diffraction = AIRY_SIGMA_PER_LAMBDA_N * CHANNEL_WAVELENGTH_UM[channel] * float(f_number)
        return math.hypot(self.aberration_sigma_at_um(f_number), diffraction)

    # --- focus ----------------------------------------------------------------------------------
    @property
    def close_extension_mm(self) -> float:
        """Extension beyond infinity focus at close focus: ``f^2 / (s_close - f)``."""
        f = self.focal_length_mm
        return f * f / (self.close_focus_mm - f)

    def extension_for_ring_mm(self, ring_deg: float) -> float:
        """Helicoid extension at a focus ring angle (clamped to the ring's stops)."""
        if self.focus_throw_deg is None:
            raise ConfigError(f"lens {self.id} has no focus ring")
        ring = min(max(float(ring_deg), 0.0), self.focus_throw_deg)
        return self.close_extension_mm * ring / self.focus_throw_deg

    def ring_for_distance_deg(self, distance_mm: float) -> float:
        """Focus ring angle that focuses (no adapter error) at ``distance_mm`` (clamped to the stops)."""
        if self.focus_throw_deg is None:
            raise ConfigError(f"lens {self.id} has no focus ring")
        f = self.focal_length_mm
        extension = 0.0 if math.isinf(distance_mm) else f * f / (float(distance_mm) - f)
        ring = extension / self.close_extension_mm * self.focus_throw_deg
        return min(max(ring, 0.0), self.focus_throw_deg)

    def truth(self) -> dict[str, Any]:
        """The catalog entry as JSON-able truth (``station twin lenses --json``)."""
        return {
            "id": self.id, "name": self.name, "mount": self.mount,
            "focal_length_mm": self.focal_length_mm, "nominal_focal_mm": self.nominal_focal_mm,
            "apertures": list(self.apertures),
            "distortion": {"model": "opencv k1 k2 p1 p2 k3 (normalized coordinates)",
                           "coefficients": list(self.distortion)},
            "ca_scale": dict(self.ca_scale),
            "vignetting": {"model": "cos^4(atan r) * (1 + a2 r^2 + a4 r^4), r = radius / focal length",
                           "by_f_number": {f"{n:g}": list(c) for n, c in sorted(self.vignetting.items())}},
            "sharpness": {"aberration_sigma_um_wide_open": self.aberration_sigma_um,
                          "model": "sigma = hypot(sigma_open * (N_open/N)^2, 0.42 * lambda * N)",
                          "wavelength_um": dict(CHANNEL_WAVELENGTH_UM)},
            "close_focus_mm": self.close_focus_mm, "focus_throw_deg": self.focus_throw_deg,
            "close_extension_mm": self.close_extension_mm, "code": self.code,
            "transmission": self.transmission, "notes": self.notes,
        }


def _stops(f_numbers: tuple[float, ...], a2_open: float, a4_open: float, floor: float = 0.08
           ) -> dict[float, tuple[float, float]]:
    """Representative lens falloff per stop: the open value shrinks 2.2x per stop to ``floor`` of it."""
    table: dict[float, tuple[float, float]] = {}
    for i, n in enumerate(f_numbers):
        scale = max(2.2 ** -i, floor)
        table[n] = (round(a2_open * scale, 4), round(a4_open * scale, 4))
    return table


M_STOPS = (2.0, 2.8, 4.0, 5.6, 8.0, 11.0, 16.0)

#: The phone's main camera lens: 8.7 mm f/1.8 on the 1-inch sensor (a 23 mm-equivalent field).
MAIN_LENS = Lens(
    id="main", name="M-Phone main camera 8.7 mm f/1.8", mount="phone",
    focal_length_mm=8.7, nominal_focal_mm=8.7, apertures=(1.8,),
    distortion=(-0.045, 0.030, 2.0e-4, -1.2e-4, -0.008),
    ca_scale={"r": 1.0006, "b": 0.9993},
    vignetting={1.8: (-0.10, 0.0)},
    aberration_sigma_um=1.3, close_focus_mm=100.0, focus_throw_deg=None, code=None, transmission=0.92,
)

#: The M lenses the adapter takes (DESIGN 5); codes as the adapter reads them.
M_LENSES: dict[str, Lens] = {lens.id: lens for lens in (
    Lens(id="summicron-m-50-f2", name="Summicron-M 50 mm f/2", mount="m",
         focal_length_mm=52.3, nominal_focal_mm=50.0, apertures=M_STOPS,
         distortion=(0.020, 0.10, 3.0e-5, -2.0e-5, 0.0),
         ca_scale={"r": 1.0003, "b": 0.99975},
         vignetting=_stops(M_STOPS, -6.0, 0.0),
         aberration_sigma_um=2.0, close_focus_mm=700.0, focus_throw_deg=120.0, code=0b000011),
    Lens(id="summilux-m-35-f1.4", name="Summilux-M 35 mm f/1.4 ASPH", mount="m",
         focal_length_mm=34.9, nominal_focal_mm=35.0, apertures=(1.4,) + M_STOPS,
         distortion=(-0.040, 0.060, -4.0e-5, 3.0e-5, 0.0),
         ca_scale={"r": 1.0004, "b": 0.99965},
         vignetting=_stops((1.4,) + M_STOPS, -4.0, 0.0),
         aberration_sigma_um=3.0, close_focus_mm=700.0, focus_throw_deg=110.0, code=0b000101),
    Lens(id="elmarit-m-28-f2.8", name="Elmarit-M 28 mm f/2.8 ASPH", mount="m",
         focal_length_mm=28.4, nominal_focal_mm=28.0, apertures=M_STOPS[1:],
         distortion=(-0.060, 0.050, 5.0e-5, 4.0e-5, 0.0),
         ca_scale={"r": 1.0005, "b": 0.9996},
         vignetting=_stops(M_STOPS[1:], -2.0, 0.0),
         aberration_sigma_um=2.0, close_focus_mm=700.0, focus_throw_deg=90.0, code=0b001001),
    Lens(id="noctilux-m-50-f0.95", name="Noctilux-M 50 mm f/0.95 ASPH", mount="m",
         focal_length_mm=52.4, nominal_focal_mm=50.0, apertures=(0.95, 1.4) + M_STOPS,
         distortion=(0.015, 0.05, 2.0e-5, 2.0e-5, 0.0),
         ca_scale={"r": 1.0004, "b": 0.9997},
         vignetting=_stops((0.95, 1.4) + M_STOPS, -9.0, 20.0),
         aberration_sigma_um=5.0, close_focus_mm=1000.0, focus_throw_deg=150.0, code=0b010001),
)}


#: The main lens's voice-coil actuator: DAC codes 0..1023; a nominal module sits at infinity focus at
#: ``ACTUATOR_INFINITY_CODE`` and moves ``ACTUATOR_UM_PER_CODE`` um of extension per code. Each unit
#: differs (assembly, spring): its infinity code by up to +-``ACTUATOR_OFFSET_CODES``, its stroke per
#: code by up to +-``ACTUATOR_SLOPE_PCT`` %, seeded by the phone's serial.
ACTUATOR_CODES = (0, 1023)
ACTUATOR_INFINITY_CODE = 100.0
ACTUATOR_UM_PER_CODE = 1.0
ACTUATOR_OFFSET_CODES = 40.0
ACTUATOR_SLOPE_PCT = 4.0


def actuator_truth(phone_serial: str) -> dict[str, float]:
    """The unit's main-lens actuator: its true infinity code and um of extension per code."""
    digest = hashlib.sha256(f"{phone_serial}|main-actuator".encode()).digest()
    u1, u2 = (int.from_bytes(digest[i:i + 4], "little") / 2**32 for i in (0, 4))
    return {"infinity_code": ACTUATOR_INFINITY_CODE + ACTUATOR_OFFSET_CODES * (2.0 * u1 - 1.0),
            "um_per_code": ACTUATOR_UM_PER_CODE * (1.0 + ACTUATOR_SLOPE_PCT / 100.0 * (2.0 * u2 - 1.0))}


def actuator_extension_mm(code: float, phone_serial: str) -> float:
    """Lens extension beyond infinity focus (mm, negative: past infinity) at actuator ``code`` of this unit."""
    truth = actuator_truth(phone_serial)
    code = min(max(float(code), ACTUATOR_CODES[0]), ACTUATOR_CODES[1])
    return (code - truth["infinity_code"]) * truth["um_per_code"] * 1e-3


#: Where the M camera sits relative to the main camera (the phone's two modules side by side): its optical
#: centre this far along the main camera's x axis (mm); each unit differs by up to these bounds (mm on each
#: axis of the centre, degrees about each axis of the rotation), seeded by the phone's serial.
M_BASELINE_MM = 28.0
POSE_CENTRE_BOUND_MM = 0.5
POSE_ROTATION_BOUND_DEG = 0.4


def sensor_pose_truth(phone_serial: str) -> dict[str, Any]:
    """The unit's pose of the M camera relative to the main one: ``X_m = R X_main + T`` (mm, camera frames
    x right, y down, z forward), and the M camera's optical centre ``C = -R^T T`` in the main camera's frame."""
    import numpy as np
    from scipy.spatial.transform import Rotation

    digest = hashlib.sha256(f"{phone_serial}|sensor-pose".encode()).digest()
    u = np.array([int.from_bytes(digest[i:i + 4], "little") / 2**32 for i in range(0, 24, 4)]) * 2.0 - 1.0
    centre = np.array([M_BASELINE_MM, 0.0, 0.0]) + POSE_CENTRE_BOUND_MM * u[:3]
    rotation = Rotation.from_euler("xyz", POSE_ROTATION_BOUND_DEG * u[3:], degrees=True).as_matrix()
    return {"rotation": rotation.tolist(), "translation_mm": (-rotation @ centre).tolist(),
            "centre_mm": centre.tolist(), "convention": "X_m = R X_main + T; C = -R^T T (mm)"}


def get_lens(lens_id: str) -> Lens:
    """The catalog lens ``lens_id`` (``"main"`` or an M lens id); ConfigError listing the ids if unknown."""
    if lens_id == MAIN_LENS.id:
        return MAIN_LENS
    try:
        return M_LENSES[lens_id]
    except (KeyError, TypeError):
        known = ", ".join(sorted(M_LENSES))
        raise ConfigError(f"unknown M lens {lens_id!r}; the catalog has: {known}") from None


def catalog_truth() -> dict[str, Any]:
    """Every catalog lens's truth: ``{"main": {...}, "m": {id: {...}}}``."""
    return {"main": MAIN_LENS.truth(), "m": {lid: lens.truth() for lid, lens in sorted(M_LENSES.items())}}


def lens_catalog() -> dict[str, dict[str, Any]]:
    """Lens id -> its truth, the main lens first (``station twin lenses --json``)."""
    return {MAIN_LENS.id: MAIN_LENS.truth(), **{lid: lens.truth() for lid, lens in sorted(M_LENSES.items())}}
