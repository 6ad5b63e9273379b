"""Peaking verification (DESIGN 7): the phone's own peaking masks at the calibrated ``T_peak`` against the chart's
edges, in focus and beyond twice the depth of field (edge coverage), and on flat fields (flag rate), with the
overlay a person looks at. The calibration is ``station.procedures.peaking``."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from calibration.peaking import MAX_FAR_COVERAGE, MAX_FLAT_RATE, MIN_IN_FOCUS_COVERAGE, edge_coverage
from calibration.peaking_edges import PeakingCalibrationError, chart_edges
from station.errors import InputError
from station.measurements import Declared, measures
from station.pipeline import Pending, analysis_pool
from station.procedures import ProcedureError
from station.procedures.captures import capture_shot, focus_axis, lit, move_rail, png_bytes
from station.procedures.peaking import VERIFY_OFFSETS_DOF, PeakingResult, profile_reach_px
from station.procedures.preview_luma import shot_luma
from station.procedures.result import ResultParts
from station.scene import require_chart, require_lens

if TYPE_CHECKING:
    from station.station import Station


@dataclass
class PeakingVerification(ResultParts):
    """The phone's peaking masks at T_peak: edge coverage per focus position, flag rate on flat fields."""

    sensor: str
    threshold: int
    edge_pixels: int
    frames: list[dict[str, Any]]  # position, offset_dof, expected, coverage, passed, truth_blur_px
    flat_rates: list[float]
    passed: bool
    overlay_png: bytes = field(default=b"", repr=False)

    @measures(Declared("peaking_in_focus_coverage_pct", "%", "{f_case}"),
              Declared("peaking_far_coverage_pct", "%", "{f_case}"))
    def measurements(self) -> dict[str, float]:
        """The worst in-focus edge coverage, the largest beyond twice the depth of field."""
        in_focus = [f["coverage"] for f in self.frames if f["expected"] == "in_focus"]
        beyond = [f["coverage"] for f in self.frames if f["expected"] == "beyond_2dof"]
        return {"peaking_in_focus_coverage_pct": 100.0 * min(in_focus),
                "peaking_far_coverage_pct": 100.0 * max(beyond)}

    @measures(Declared("peaking_flat_rate_pct", "%", "{f_case}/verify"))
    def flat_measurements(self) -> dict[str, float]:
        """The worst flag rate on the flat fields at T_peak."""
        return {"peaking_flat_rate_pct": 100.0 * max(self.flat_rates)}

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "overlay_png"}

    def attachments(self) -> dict[str, bytes]:
        return {f"peaking mask at best focus {self.sensor}": self.overlay_png}


def _expected(offset_dof: float) -> str | None:
    """What a frame at ``offset_dof`` must show: blur = 2 coc |offset| (in focus: <= coc; beyond: > 2 coc)."""
    if abs(offset_dof) <= 0.5:
        return "in_focus"
    if abs(offset_dof) > 1.0:
        return "beyond_2dof"
    return None


def _flat_masks(station: Station, sensor: str, count: int) -> list[np.ndarray]:
    """The phone's peaking masks of ``count`` flat fields at the present settings (the flat field stays up)."""
    require_chart(station, "flat", sensor=sensor)
    pool = analysis_pool(station)
    jobs = [pool.submit(f"{sensor}: flat-field peaking mask {i + 1}", _peaking_mask,
                        capture_shot(station, sensor, ("peaking_mask",))) for i in range(count)]
    return [job.result() for job in jobs]


def _peaking_mask(shot: Any) -> np.ndarray:
    return shot.masks["peaking_mask"]


#: Longer side of the peaking overlay attached to the report, px.
OVERLAY_MAX_SIDE = 1024
#: Overlay colour of the flagged pixels (RGB).
OVERLAY_RGB = (255, 0, 0)


def _decode_check(shot: Any, sharp: bool) -> tuple[np.ndarray, tuple[int, ...], bytes, np.ndarray | None]:
    """A verification frame's peaking mask, bit-packed (1 bit a pixel: four 50 MP masks wait in 25 MB, not
    200 MB), and its shape; at best focus (``sharp``) also the preview's luma and the mask over it (PNG, drawn
    on the luma's thumbnail). Each PNG is decoded here off the shot, the preview a band of rows at a time
    (issue 13): at 50 MP the mask's 50 MB grey frame and then the 50 MB luma live, never the RGB preview."""
    grey = shot.take_grey_mask("peaking_mask")
    packed, shape = np.packbits(grey, axis=None), grey.shape  # nonzero packs as 1: no bool copy
    if not sharp:
        return packed, shape, b"", None
    flagged = _thumbnail(grey, OVERLAY_MAX_SIDE)  # the flagged fraction of each thumbnail pixel, 0..255
    del grey
    luma = shot_luma(shot)  # a band of rows at a time: no 150 MB RGB preview
    return packed, shape, png_bytes(_overlay(_thumbnail(luma, OVERLAY_MAX_SIDE), flagged), None), luma


def _thumbnail(image: np.ndarray, max_side: int) -> np.ndarray:
    """``image`` shrunk by area mean so its longer side is <= ``max_side`` (as ``png_bytes`` shrinks)."""
    if max(image.shape[:2]) <= max_side:
        return image
    scale = max_side / max(image.shape[:2])
    size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def _overlay(thumb: np.ndarray, flagged: np.ndarray) -> np.ndarray:
    """The thumbnail with the flagged pixels painted ``OVERLAY_RGB`` in proportion to the fraction of each
    thumbnail pixel flagged (what shrinking the full-resolution overlay shows, without making it); a grey
    (luma) thumbnail is drawn in grey."""
    weight = (flagged.astype(np.float32) / 255.0)[..., None]
    rgb = thumb if thumb.ndim == 3 else np.repeat(thumb[..., None], 3, axis=2)
    out = rgb.astype(np.float32) * (1.0 - weight) + np.float32(OVERLAY_RGB) * weight
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)
def _unpacked(packed: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """A ``_decode_check`` mask back as bool (H, W)."""
    return np.unpackbits(packed, count=int(np.prod(shape))).reshape(shape).view(bool)


def verify_peaking(station: Station, sensor: str, result: PeakingResult, *,
                   offsets_dof: tuple[float, ...] = VERIFY_OFFSETS_DOF, flats: int = 2,
                   threshold: int | None = None) -> PeakingVerification:
    """The phone's peaking at ``result.threshold`` (or ``threshold``) on the calibration's scene.

    At best focus + ``offsets_dof`` depths of field: preview (new) and peaking mask (last); the chart's
    edge pixels from the frame at best focus (``calibration.peaking.chart_edges``); per frame the fraction
    of them flagged: >= 50 % in focus (|offset| <= 0.5 DoF), <= 5 % beyond twice the DoF (|offset| > 1);
    and ``flats`` flat fields: <= 0.1 % of pixels flagged (first, when the flat field is still up from the
    calibration: the operator is asked once less). ``flats=0`` leaves them to ``verify_peaking_flats``, later,
    when the plan has the flat field up anyway.
    """
    if 0.0 not in offsets_dof:
        raise InputError("verify_peaking: the offsets must include 0 (best focus gives the chart's edges)")
    t_peak = int(result.threshold if threshold is None else threshold)
    require_lens(station, sensor, result.lens, result.aperture)
    move_rail(station, result.distance_mm)
    axis = focus_axis(station, sensor)
    station.dut.configure(sensor, analog_gain=result.gain, exposure_us=int(result.exposure_us),
                          peaking={"enabled": True, "threshold": t_peak})
    taken: list[tuple[float, float, Pending[Any], float | None]] = []
    flat_masks: list[np.ndarray] = []
    scene = getattr(station, "operator", None)
    flat_first = flats > 0 and getattr(scene, "chart_up", None) == "flat"  # the flat is still up: use it
    try:
        with lit(station, result.level_pct):
            if flat_first:
                flat_masks = _flat_masks(station, sensor, flats)
            require_chart(station, result.chart, sensor=sensor)
            for offset in offsets_dof:
                position = axis.clamp(result.best_focus + offset * result.dof)
                axis.move(station, position)
                shot = capture_shot(station, sensor, ("preview", "peaking_mask"))
                focus = (shot.truth or {}).get("focus") or {}
                job = analysis_pool(station).submit(f"peaking verification: mask at {position:g} {axis.unit}",
                                                    _decode_check, shot, offset == 0.0)
                taken.append((offset, position, job, focus.get("blur_circle_px")))
            if not flat_first and flats > 0:
                flat_masks = _flat_masks(station, sensor, flats)
    finally:
        station.dut.configure(sensor, peaking={"enabled": False},
                              **({"focus_m": None} if sensor == "main" else {}))
    shots = [(offset, position, job.result(), blur) for offset, position, job, blur in taken]
    del taken  # the jobs' results are in ``shots`` alone
    overlay_png, sharp_luma = next(decoded[2:] for o, _, decoded, _ in shots if o == 0.0)
    shots = [(o, p, decoded[:2] + (b"", None), blur) for o, p, decoded, blur in shots]  # the luma held once
    try:
        edge_mask = chart_edges(sharp_luma, reach_px=profile_reach_px(result.coc_px)).edge_mask
    except PeakingCalibrationError as exc:
        raise ProcedureError(f"{sensor}: peaking verification: no chart edges at best focus ({exc})") from None
    del sharp_luma
    frames = []
    for offset, position, (packed, shape, _, _), truth_blur in shots:
        coverage = edge_coverage(_unpacked(packed, shape), edge_mask)
        expected = _expected(offset)
        ok = (expected != "in_focus" or coverage >= MIN_IN_FOCUS_COVERAGE) and \
             (expected != "beyond_2dof" or coverage <= MAX_FAR_COVERAGE)
        frames.append({"position": position, "offset_dof": offset, "expected": expected, "coverage": coverage,
                       "passed": bool(ok), "truth_blur_px": truth_blur})
    flat_rates = [float(np.count_nonzero(m)) / m.size for m in flat_masks]
    passed = all(f["passed"] for f in frames) and all(r <= MAX_FLAT_RATE for r in flat_rates)
    return PeakingVerification(sensor=sensor, threshold=t_peak, edge_pixels=int(edge_mask.sum()), frames=frames,
                               flat_rates=flat_rates, passed=bool(passed), overlay_png=overlay_png)


def verify_peaking_flats(station: Station, check: PeakingVerification, result: PeakingResult, *,
                         flats: int = 2) -> PeakingVerification:
    """``check`` (a ``verify_peaking(..., flats=0)``) completed with the phone's peaking masks of ``flats`` flat
    fields at its threshold, the calibration's gain, exposure and light: <= 0.1 % of pixels flagged."""
    if flats < 1:
        raise InputError(f"verify_peaking_flats: flats {flats}: expected 1 or more flat frames")
    sensor = check.sensor
    require_lens(station, sensor, result.lens, result.aperture)
    station.dut.configure(sensor, analog_gain=result.gain, exposure_us=int(result.exposure_us),
                          peaking={"enabled": True, "threshold": int(check.threshold)})
    try:
        with lit(station, result.level_pct):
            masks = _flat_masks(station, sensor, flats)
    finally:
        station.dut.configure(sensor, peaking={"enabled": False})
    rates = [*check.flat_rates, *(float(np.count_nonzero(m)) / m.size for m in masks)]
    passed = check.passed and all(r <= MAX_FLAT_RATE for r in rates)
    return replace(check, flat_rates=rates, passed=bool(passed))
