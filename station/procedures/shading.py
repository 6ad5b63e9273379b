"""Lens shading from flat fields (``calibration.shading``), and the shading the phone's preview leaves.

Calibration: the diffuser (the ``flat`` chart) filling the view, ``FLAT_FRAMES`` RAW frames with the
brightest channel's centre at ``FLAT_LEVEL`` of full scale (unclipped everywhere: shading only darkens the
field), averaged into the per-channel gain map in Android's ``LENS_SHADING_MAP`` layout (gains >= 1) and a
radial fit. The map is what the phone's ISP applies (``isp_entry``) and what the profile keeps.

Preview shading (a firmware check): with a map stored, the phone's preview of a flat field must itself be
flat. The preview's luma is decoded to linear light (IEC 61966-2-1) and each corner patch's mean compared
with the centre's: ``corner_ratio`` 1 is flat, a firmware that skips the map leaves the lens's falloff.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from station.measurements import Declared, measures
from station.pipeline import analysis_pool
from station.procedures import ProcedureError
from station.procedures.captures import auto_exposure_us, capture_shot, png_bytes
from station.procedures.framing import case_name, frame_scene, framing_distance_mm, preview_of_raw
from station.procedures.result import ResultParts

if TYPE_CHECKING:
    from station.station import Station

#: Flat fields averaged into one map.
FLAT_FRAMES = 2
#: The brightest channel's centre at this fraction of full scale.
FLAT_LEVEL = 0.7
#: The flat chart overfills the view by this much (lens cases); the bare sensor sees the whole light box.
FLAT_FILL = 1.3
#: The bare M sensor's distance to the light box (mm): close, so the box subtends a wide angle.
BARE_DISTANCE_MM = 500.0
#: Preview shading: corner and centre patches, as a fraction of the frame's shorter side.
PATCH_FRACTION = 0.06
#: The preview's centre at this fraction of full scale (RAW), so no corner clips after the map's gain.
PREVIEW_LEVEL = 0.35


@dataclass
class ShadingMeasurement(ResultParts):
    """The shading of one (sensor, lens, aperture): the map, its falloff, and the frames' level."""

    PROFILE_SECTION = "shading"

    sensor: str
    lens: str | None
    f_number: float | None
    distance_mm: float
    exposure_us: int
    result: Any  # calibration.shading.ShadingResult
    pictures: dict[str, bytes] = field(default_factory=dict)  # what a person would rather look at

    def corner_falloff_pct(self) -> float:
        """The mean corner illumination loss over the channels, % of the brightest point."""
        return float(np.mean([self.result.corner_falloff(ch)["mean_pct"] for ch in set(self.result.channels)]))

    def max_gain(self) -> float:
        return float(self.result.gain_map.max())

    def centre_offset_px(self) -> float:
        """Distance of the radial fit's centre (mean over channels) from the frame centre, px."""
        w, h = self.result.image_size
        centres = np.array([fit.center_px for fit in self.result.radial.values()])
        cx, cy = centres.mean(axis=0)
        return float(np.hypot(cx - (w - 1) / 2.0, cy - (h - 1) / 2.0))

    def isp_entry(self) -> dict[str, Any]:
        """What the phone's ISP reads: the gain map, Android layout."""
        return {"lens_shading_map": np.round(self.result.gain_map.astype(np.float64), 5).tolist()}

    @measures(Declared("shading_corner_falloff_pct", "%"), Declared("shading_max_gain", "1"),
              Declared("shading_centre_offset_px", "px"), Declared("shading_flat_residual_pct", "%"))
    def measurements(self) -> dict[str, float]:
        return {"shading_corner_falloff_pct": self.corner_falloff_pct(), "shading_max_gain": self.max_gain(),
                "shading_centre_offset_px": self.centre_offset_px(),
                "shading_flat_residual_pct": float(self.result.flat_residual_pct)}

    @measures(Declared("shading_corner_falloff_pct", "%"), Declared("shading_max_gain", "1"))
    def regression_measurements(self) -> dict[str, float]:
        """The two a firmware regression follows against its baseline."""
        return {"shading_corner_falloff_pct": self.corner_falloff_pct(), "shading_max_gain": self.max_gain()}

    def profile_section(self) -> dict[str, Any]:
        r = self.result
        fit = r.radial.get("Gr") or next(iter(r.radial.values()))
        section: dict[str, Any] = {
            "grid": list(r.grid), "map": np.round(r.gain_map.astype(np.float64), 6).tolist(), "cfa": r.cfa,
            "radial": {"k": [float(v) for v in fit.k], "center_px": [float(v) for v in fit.center_px],
                       "radius_norm_px": float(fit.radius_norm_px)},
            "distance_m": self.distance_mm / 1000.0, "corner_falloff_pct": self.corner_falloff_pct(),
            "flat_residual_pct": float(r.flat_residual_pct), "frames": int(r.frames)}
        if self.f_number:
            section["f_number"] = float(self.f_number)
        return section

    def phone_entries(self) -> dict[str, Any]:
        return self.isp_entry()

    def figures(self) -> dict[str, bytes]:
        from calibration.plots import shading_png

        case = case_name(self.sensor, self.lens)
        label = case + (f" f/{self.f_number:g}" if self.f_number else "")
        name = case + (f"/f{self.f_number:g}" if self.f_number else "") + ": lens shading map"
        return {name: shading_png(self.result, title=f"Lens shading gain map (Android LENS_SHADING_MAP): {label}")}


def flat_distance_mm(station: Station, sensor: str, lens: str | None) -> float:
    """Where the flat chart fills the view (with a lens), or the bare sensor's distance to the light box."""
    if sensor == "m" and lens is None:
        return BARE_DISTANCE_MM
    from targets.registry import get_chart

    return framing_distance_mm(station, sensor, lens, get_chart("flat").width_mm, FLAT_FILL)


def measure_shading(station: Station, sensor: str, lens: str | None = None, *, f_number: float | None = None,
                    frames: int = FLAT_FRAMES) -> ShadingMeasurement:
    """The lens shading map of ``sensor`` (with M lens ``lens`` at ``f_number``, as mounted) from flat fields.

    Expects the flat chart (diffuser) on the holder and the light on. ``ProcedureError`` when the frames are
    not flat enough for a map (``calibration.shading``: not flat, too dark, clipped).
    """
    from calibration.shading import ShadingError, lens_shading

    distance = flat_distance_mm(station, sensor, lens)
    frame_scene(station, sensor, lens, distance)
    exposure, shot = auto_exposure_us(station, sensor, target_fraction=FLAT_LEVEL, statistic="centre")
    flats = [shot.frame]
    first = flats[0]
    label = case_name(sensor, lens) + (f" f/{f_number:g}" if f_number else "")
    picture = analysis_pool(station).submit(f"{label}: flat-field picture", preview_of_raw, first, 512)
    while len(flats) < frames:  # the picture is drawn meanwhile
        flats.append(capture_shot(station, sensor, ("raw10",)).frame)
    attachments = {f"{label}: flat field": picture.result()}
    try:
        result = lens_shading([f.data for f in flats], cfa=first.cfa, black_level=float(first.black_level),
                              white_level=float(first.white_level))
    except ShadingError as exc:
        error = ProcedureError(f"{label}: no shading map from the flat fields: {exc}")
        error.attachments = attachments  # the plan attaches them (station/plans/helpers.procedure)
        raise error from None
    return ShadingMeasurement(sensor=sensor, lens=lens, f_number=f_number, distance_mm=float(distance),
                              exposure_us=int(exposure), result=result, pictures=attachments)


# --- the preview's shading ----------------------------------------------------------------------------

def srgb_to_linear(code8: np.ndarray) -> np.ndarray:
    """8-bit sRGB codes to linear light 0..1 (IEC 61966-2-1, colour-science's sRGB EOTF)."""
    import colour

    return colour.models.eotf_sRGB(np.asarray(code8, dtype=np.float64) / 255.0)


@dataclass
class PreviewShading(ResultParts):
    """How flat the phone's preview of a flat field is: each corner's linear luma over the centre's."""

    sensor: str
    corner_ratios: dict[str, float]
    centre_code: float  # the centre's mean luma, 8-bit code
    exposure_us: int
    preview: np.ndarray = field(repr=False)
    lens: str | None = None

    @property
    def corner_ratio(self) -> float:
        """The darkest corner's ratio (1: flat)."""
        return float(min(self.corner_ratios.values()))

    def attachments(self) -> dict[str, bytes]:
        return {f"{case_name(self.sensor, self.lens)}: preview of the flat field": png_bytes(self.preview, 768)}

    @measures(Declared("preview_shading_corner_ratio", "1"))
    def measurements(self) -> dict[str, float]:
        return {"preview_shading_corner_ratio": self.corner_ratio}

    def to_dict(self) -> dict[str, Any]:
        return {"corner_ratios": self.corner_ratios, "corner_ratio": self.corner_ratio,
                "centre_luma_code": self.centre_code, "exposure_us": self.exposure_us}


def corner_ratios(luma8: np.ndarray, patch_fraction: float = PATCH_FRACTION) -> tuple[dict[str, float], float]:
    """Linear-light mean of each corner patch of an 8-bit luma image over the centre patch's, and the centre's
    mean code."""
    h, w = luma8.shape
    p = max(4, int(round(patch_fraction * min(h, w))))
    linear = srgb_to_linear(luma8)
    cy, cx = h // 2, w // 2
    centre = float(linear[cy - p // 2:cy + p // 2, cx - p // 2:cx + p // 2].mean())
    if centre <= 0:
        raise ProcedureError("preview shading: the preview's centre is black (light off, or exposure far too short)")
    patches = {"top-left": linear[:p, :p], "top-right": linear[:p, -p:], "bottom-left": linear[-p:, :p],
               "bottom-right": linear[-p:, -p:]}
    code = float(luma8[cy - p // 2:cy + p // 2, cx - p // 2:cx + p // 2].mean())
    return {k: float(v.mean()) / centre for k, v in patches.items()}, code


def preview_shading(station: Station, sensor: str, lens: str | None = None) -> PreviewShading:
    """The phone's preview of the flat field (as the phone's stored calibration corrects it): corner / centre.

    Expects the flat chart on the holder and the light on.
    """
    from calibration.zebra import preview_luma

    frame_scene(station, sensor, lens, flat_distance_mm(station, sensor, lens))
    exposure, _ = auto_exposure_us(station, sensor, target_fraction=PREVIEW_LEVEL, statistic="centre")
    shot = capture_shot(station, sensor, ("preview",))
    ratios, code = corner_ratios(preview_luma(shot.preview))
    return PreviewShading(sensor=sensor, corner_ratios=ratios, centre_code=code, exposure_us=int(exposure),
                          preview=shot.preview, lens=lens)
