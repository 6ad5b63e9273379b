"""Defect pixels of one sensor (EMVA 1288 defect-pixel characterization, ``calibration.defects``): dark frames
at a long exposure for hot and warm pixels, flats for dead and weak ones, stuck pixels, clusters.

The caller puts the flat diffuser up (and, for the M sensor, takes the lens off or mounts one: the flats only
need light that varies slowly across the frame). The light is switched off for the dark frames and back on
for the flats; it is left off.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from station.measurements import Declared, measures
from station.procedures import ProcedureError
from station.procedures.captures import auto_exposure_us, capture_shot, light_off, set_light
from station.procedures.result import ResultParts

if TYPE_CHECKING:
    from station.station import Station

#: Dark frames at this exposure (s): a hot pixel's dark signal stands far above the read noise.
DARK_EXPOSURE_S = 0.25
#: Flats with the brightest channel at this fraction of full scale.
FLAT_LEVEL = 0.5
#: Frames averaged per kind (EMVA 1288 averages frames so that temporal noise does not count).
FRAMES = 2


@dataclass
class DefectMeasurement(ResultParts):
    """A sensor's defect map and what it was measured with."""

    PROFILE_SECTION = "defects"

    sensor: str
    dark_exposure_s: float
    flat_exposure_us: int
    defects: Any  # calibration.defects.DefectMap
    width: int
    height: int
    cfa: str
    pictures: dict[str, bytes] = field(default_factory=dict)  # what a person would rather look at

    @measures(Declared("defect_pixels", "px", "{sensor}"), Declared("defect_clusters_over_limit", "1", "{sensor}"))
    def measurements(self) -> dict[str, float]:
        """Defect pixels of every kind, and the clusters too large for a correction by neighbours."""
        return {"defect_pixels": len(self.defects.kind),
                "defect_clusters_over_limit": len(self.defects.oversized_clusters)}

    def profile_section(self) -> dict[str, Any]:
        return self.defects.to_dict() | {"dark_exposure_s": self.dark_exposure_s,
                                         "flat_exposure_us": self.flat_exposure_us}

    def phone_entry(self) -> dict[str, Any]:
        """The phone's defect block for this sensor: Android ``hotPixelMap`` (x, y pairs) and the image size."""
        return {"hot_pixel_map": self.defects.hot_pixel_map(), "width": self.width, "height": self.height}

    def phone_entries(self) -> dict[str, Any]:
        return {"defect_pixels": self.phone_entry()}

    def dng_opcode_list1(self) -> bytes:
        """``FixBadPixelsList`` as a DNG OpcodeList1 for this sensor's DNGs."""
        from calibration.export_dng import dng_opcode_list, fix_bad_pixels_from_map

        return dng_opcode_list([fix_bad_pixels_from_map(self.defects.hot_pixel_map(), self.cfa)])


def _summed(station: Station, sensor: str, exposure_us: int, frames: int, first: Any = None) -> Any:
    """``frames`` RAW frames at ``exposure_us`` summed as they arrive (``calibration.defects.FrameSum``: one
    integer frame, not the stack); ``first``: a frame (``station.frame.RawFrame``) taken already at that exposure,
    counted as the first."""
    from calibration.defects import FrameSum

    station.dut.configure(sensor, exposure_us=int(exposure_us), analog_gain=1.0)
    total = None
    for index in range(frames):
        frame = first if index == 0 and first is not None else capture_shot(station, sensor).frame
        if total is None:
            total = FrameSum(int(frame.white_level), frames)
        try:
            total.add(frame.data)
        except ValueError as exc:
            raise ProcedureError(f"{sensor}: frame at {exposure_us} us: {exc} (white level "
                                 f"{frame.white_level})") from None
        del frame
    return total


def measure_defects(station: Station, sensor: str, *, level_pct: float = 60.0, dark_exposure_s: float = DARK_EXPOSURE_S,
                    frames: int = FRAMES, thresholds: Any = None) -> DefectMeasurement:
    """Dark frames (light off) at ``dark_exposure_s``, flats at ``FLAT_LEVEL`` under ``level_pct`` and darks at
    the flats' exposure; the defect map. The caller puts the flat diffuser up. Each kind of frame is summed as
    it arrives (exact) and the analysis runs one CFA plane at a time: three integer frames, never a stack."""
    from calibration.defects import find_defects

    light_off(station)
    dark_long = _summed(station, sensor, int(round(dark_exposure_s * 1e6)), frames)
    set_light(station, level_pct)
    exposure_us, shot = auto_exposure_us(station, sensor, target_fraction=FLAT_LEVEL)
    first = shot.frame
    del shot
    flats = _summed(station, sensor, exposure_us, frames, first)
    cfa, (height, width) = first.cfa, first.data.shape
    del first
    light_off(station)
    dark_short = _summed(station, sensor, exposure_us, frames)
    try:
        found = find_defects(dark_long, dark_exposure_s, flats, dark_short, cfa, thresholds)
    except ValueError as exc:
        raise ProcedureError(f"{sensor}: defect-pixel analysis failed: {exc}") from None
    return DefectMeasurement(sensor, dark_exposure_s, int(exposure_us), found, width, height, cfa)
