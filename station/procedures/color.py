"""Colour from a ColorChecker 24 capture: white balance gains, a 3x3 colour matrix and CIEDE2000 (colour-science).

The chart (with the station's ArUco fiducials, ``targets.colorchecker``) at ``CHART_FILL`` of the frame width,
its white at ``CHART_LEVEL``; the RAW frame read per 2x2 quad (R, mean G, B above black, no demosaic), the 24
patches found by the chart's detector and read in the central half of each cell (3-sigma-clipped means);
patches with a clipped sample are left out of the fit. ``calibration.color`` gives white balance (greys
neutral), the exposure scale, the colour matrix (rows sum to 1) and CIEDE2000 before and after it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from station.measurements import Declared, measures
from station.procedures import ProcedureError
from station.procedures.captures import auto_exposure_us
from station.procedures.framing import ChartNotFoundError, case_name, frame_scene, framing_distance_mm, preview_of_raw
from station.procedures.result import ResultParts

if TYPE_CHECKING:
    from station.station import Station

#: The chart spans this fraction of the frame's width (its fiducials well inside the view).
CHART_FILL = 0.75
#: The chart's brightest patch at this fraction of full scale.
CHART_LEVEL = 0.8
#: A patch whose brightest sample reaches this fraction of the clip level counts as clipped.
CLIP_FRACTION = 0.995
#: The grey patch the capture's preview is white-balanced on (0-based: neutral 6.5).
NEUTRAL_PATCH = 20


@dataclass
class ColorMeasurement(ResultParts):
    """White balance, colour matrix and CIEDE2000 of one sensor's ColorChecker capture."""

    PROFILE_SECTION = "color"

    sensor: str
    lens: str | None
    distance_mm: float
    exposure_us: int
    result: Any  # calibration.color.ColorResult
    shading_corrected: bool = False
    pictures: dict[str, bytes] = field(default_factory=dict)  # what a person would rather look at

    def delta_e(self, which: str = "after") -> dict[str, float]:
        """CIEDE2000 over the patches used: ``{"mean", "max"}`` before or after the colour matrix."""
        doc = self.result.to_dict()["delta_e2000"][which]
        return {"mean": float(doc["mean"]), "max": float(doc["max"])}

    @property
    def wb_gains(self) -> list[float]:
        return [float(v) for v in self.result.wb_gains]

    @property
    def ccm(self) -> list[list[float]]:
        return np.asarray(self.result.ccm, dtype=float).tolist()

    def isp_entry(self) -> dict[str, Any]:
        """What the phone's ISP reads: white balance gains (R, G, B) and the colour matrix."""
        return {"wb_gains": [round(v, 6) for v in self.wb_gains], "ccm": np.round(self.result.ccm, 6).tolist()}

    @measures(Declared("color_delta_e_mean", "dE00"), Declared("color_delta_e_max", "dE00"),
              Declared("color_wb_gain_r", "1"), Declared("color_wb_gain_b", "1"))
    def measurements(self) -> dict[str, float]:
        """CIEDE2000 after the colour matrix, and the white balance's R and B gains."""
        after = self.delta_e("after")
        return {"color_delta_e_mean": after["mean"], "color_delta_e_max": after["max"],
                "color_wb_gain_r": self.wb_gains[0], "color_wb_gain_b": self.wb_gains[2]}

    def profile_section(self) -> dict[str, Any]:
        return {"wb_gains": self.wb_gains, "ccm": self.ccm, "delta_e2000": {"before": self.delta_e("before"),
                                                                            "after": self.delta_e("after")},
                "exposure_scale": float(self.result.exposure_scale), "distance_mm": self.distance_mm,
                "shading_corrected": self.shading_corrected}

    def phone_entries(self) -> dict[str, Any]:
        return self.isp_entry()

    def figures(self) -> dict[str, bytes]:
        from calibration.plots import color_png

        label = case_name(self.sensor, self.lens)
        return {f"{label}: ColorChecker reference / before / after":
                color_png(self.result, title=f"ColorChecker: reference / before / after ({label})")}


def measure_color(station: Station, sensor: str, lens: str | None = None, *,
                  gain_map: np.ndarray | None = None) -> ColorMeasurement:
    """Colour calibration of ``sensor`` (with M lens ``lens``, as mounted) from the ColorChecker.

    ``gain_map``: the lens shading map (Android layout) to apply first, as the camera's pipeline does before
    its colour matrix: the lens's falloff across the chart is then not taken for a colour error.
    Expects the ColorChecker on the holder and the light on (its CCT as the calibration's illuminant).
    ``ChartNotFoundError`` (with the capture) when the detector does not find all 24 patches.
    """
    from calibration.color import ColorError, calibrate_color, cfa_to_rgb, patch_means
    from calibration.shading import apply_shading
    from station.capture_preview import capture_png, gains_of_neutral
    from targets.base import ChartNotFound
    from targets.colorchecker import ColorCheckerChart

    chart = ColorCheckerChart()
    distance = framing_distance_mm(station, sensor, lens, chart.width_mm, CHART_FILL)
    frame_scene(station, sensor, lens, distance)
    exposure, shot = auto_exposure_us(station, sensor, target_fraction=CHART_LEVEL, statistic="p99")
    frame = shot.frame
    label = case_name(sensor, lens)

    def as_captured() -> dict[str, bytes]:  # a failure's picture (found, the picture shows the patches instead)
        return {f"{label}: ColorChecker capture": preview_of_raw(frame, 768)}

    rgb = cfa_to_rgb(frame.data.astype(np.float32) - np.float32(frame.black_level), frame.cfa)
    try:
        detection = chart.detect(rgb)
    except ChartNotFound as exc:
        raise ChartNotFoundError(f"{label}: no ColorChecker in the capture ({exc.reason}); is it on the holder?",
                                 as_captured()) from None
    boxes = {int(roi.extra.get("index", i)): tuple(int(v) for v in roi.box) for i, roi in enumerate(detection.rois)}
    if sorted(boxes) != list(range(24)):
        raise ChartNotFoundError(f"{label}: the ColorChecker's detector placed {len(boxes)} of its 24 patches in "
                                 "the capture", as_captured())
    rois = [boxes[i] for i in range(24)]
    try:
        means, maxima = patch_means(rgb, rois)
        attachments = {f"{label}: ColorChecker capture": capture_png(  # balanced on a grey patch, ROIs drawn
            frame, [(2 * x, 2 * y, 2 * w, 2 * h) for x, y, w, h in rois], 768, gains_of_neutral(means[NEUTRAL_PATCH]))}
        if gain_map is not None:
            corrected = apply_shading(frame.data, np.asarray(gain_map), cfa=frame.cfa,
                                      black_level=float(frame.black_level))
            means, _ = patch_means(cfa_to_rgb(corrected, frame.cfa), rois)
        clip = CLIP_FRACTION * float(frame.white_level - frame.black_level)
        result = calibrate_color(means, clipped=(maxima >= clip).any(axis=1))
    except ColorError as exc:
        raise ProcedureError(f"{label}: colour calibration failed: {exc}") from None
    return ColorMeasurement(sensor=sensor, lens=lens, distance_mm=float(distance), exposure_us=int(exposure),
                            result=result, shading_corrected=gain_map is not None, pictures=attachments)
