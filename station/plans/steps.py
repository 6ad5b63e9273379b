"""The plans' steps, shared by every case of the capture matrix: each puts its chart up (the operator), runs a
procedure of ``station.procedures`` inside an Allure step and hands its result to ``keep``
(``station.plans.helpers``), the same way for every result (``station.procedures.result``): its pictures and
figures attached, its profile section and phone entries kept in ``results``, its measurements taken against the
limits file (every one recorded before the test fails on any: ``measure(..., check=False)`` then
``measure.check()``).

Measurement cases: ``main``, ``m`` (bare), ``m/<lens>``; an aperture-dependent one adds ``/f<N>``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fixtures.allure_glue import attach_png
from station.measurements import Declared, measures
from station.plans.helpers import case_results, chart_step, keep, procedure, take
from station.procedures import sensor as sensor_proc
from station.procedures.color import measure_color
from station.procedures.focus import adapter_focus
from station.procedures.framing import case_name, lens_datasheet
from station.procedures.geometry import BOARD, calibrate_geometry
from station.procedures.sfr import lateral_ca, measure_sfr
from station.procedures.shading import measure_shading, preview_shading
from station.scene import Scene

if TYPE_CHECKING:
    from station.station import Station


def f_case(sensor: str, lens: str | None, f_number: float | None) -> str:
    """The measurement case: ``main``, ``m``, ``m/<lens>`` or, with an aperture, ``m/<lens>/f<N>``."""
    name = case_name(sensor, lens)
    return f"{name}/f{f_number:g}" if f_number else name


def sensor_characterization(station: Station, operator: Scene, measure: Any, results: dict, sensor: str,
                            lens: str | None = None) -> Any:
    return chart_step(station, operator, measure, results, "flat", f"EMVA 1288 photon transfer of "
                      f"{case_name(sensor, lens)}: flat pairs over an exposure sweep, then dark pairs",
                      lambda: sensor_proc.characterize_sensor(station, sensor, lens), sensor, lens,
                      case_name(sensor, lens))


def defect_pixels(station: Station, operator: Scene, measure: Any, results: dict, sensor: str) -> Any:
    """Defect pixels of ``sensor`` (``station.procedures.defects``) on the flat field: its profile section and the
    phone's hot-pixel map."""
    from station.procedures.defects import measure_defects

    return chart_step(station, operator, measure, results, "flat", f"defect pixels of {sensor}: dark frames at a "
                      "long exposure, flat fields (EMVA 1288 4.0)", lambda: measure_defects(station, sensor),
                      sensor, None, sensor)


def awb(station: Station, operator: Scene, measure: Any, results: dict, sensor: str) -> Any:
    """The unit's AWB against the golden module on the flat grey at two light CCTs (``station.procedures.awb``):
    the phone's calibration transforms."""
    from station.procedures.awb import measure_awb

    return chart_step(station, operator, measure, results, "flat", f"AWB of {sensor} against the golden module: "
                      "flat grey at the golden illuminants' CCTs", lambda: measure_awb(station, sensor),
                      sensor, None, sensor)


def _through_lens(station: Station, operator: Scene, measure: Any, results: dict, chart: str, title: str,
                  run: Callable[..., Any], sensor: str, lens: str | None, f_number: float | None,
                  case: str) -> Any:
    """A lens case's procedure: ``chart`` up, ``run(station, sensor, lens, f_number=...)`` inside the Allure step
    ``title`` (its ``{case}`` the aperture case), then the result kept at ``case`` (``keep``)."""
    title = title.replace("{case}", f_case(sensor, lens, f_number))
    return chart_step(station, operator, measure, results, chart, title,
                      lambda: run(station, sensor, lens, f_number=f_number), sensor, lens, case)


def geometry(station: Station, operator: Scene, measure: Any, results: dict, sensor: str, lens: str | None = None,
             f_number: float | None = None) -> Any:
    return _through_lens(station, operator, measure, results, BOARD,
                         f"ChArUco {BOARD} at 5 pan/tilt poses through {{case}}", calibrate_geometry, sensor, lens,
                         f_number, case_name(sensor, lens))


def shading(station: Station, operator: Scene, measure: Any, results: dict, sensor: str, lens: str | None = None,
            f_number: float | None = None) -> Any:
    return _through_lens(station, operator, measure, results, "flat", "flat fields through {case}: the lens shading "
                         "map", measure_shading, sensor, lens, f_number, case_name(sensor, lens))


def sfr(station: Station, operator: Scene, measure: Any, results: dict, sensor: str, lens: str | None = None,
        f_number: float | None = None) -> Any:
    return _through_lens(station, operator, measure, results, "sfr", "slanted-edge chart through {case}: e-SFR of "
                         "every edge", measure_sfr, sensor, lens, f_number, f_case(sensor, lens, f_number))


def chromatic(station: Station, measure: Any, results: dict, sfr_result: Any) -> Any:
    sensor, lens = sfr_result.sensor, sfr_result.lens
    with procedure(f"lateral CA from the slanted edges of {sfr_result.case}"):
        result = lateral_ca(sfr_result.frame, sfr_result.edges, lens=lens, f_number=sfr_result.f_number)
    keep(measure, result, case_name(sensor, lens), case_results(results, station, sensor, lens))
    return result


def color(station: Station, operator: Scene, measure: Any, results: dict, sensor: str,
          lens: str | None = None) -> Any:
    operator.chart("colorchecker", sensor=sensor)
    entry = case_results(results, station, sensor, lens)
    gain_map = entry.phone.get("lens_shading_map")
    with procedure(f"ColorChecker through {case_name(sensor, lens)}: white balance, colour matrix, CIEDE2000"
                   + (" (lens shading corrected)" if gain_map is not None else "")):
        result = measure_color(station, sensor, lens, gain_map=gain_map)
    keep(measure, result, case_name(sensor, lens), entry)
    return result


def focus(station: Station, operator: Scene, measure: Any, results: dict, lens: str, f_number: float) -> Any:
    operator.chart("sfr", sensor="m")
    with procedure(f"through-focus sweep of the slanted-edge chart through {lens} f/{f_number:g}: the adapter's "
                   "flange back-focus and tilt"):
        result = adapter_focus(station, lens, f_number)
    keep(measure, result, f"m/{lens}", case_results(results, station, "m", lens))
    return result


def preview_flatness(station: Station, operator: Scene, measure: Any, sensor: str, lens: str | None = None) -> Any:
    operator.chart("flat", sensor=sensor)
    with procedure(f"the phone's preview of the flat field through {case_name(sensor, lens)} (its stored shading "
                   "map applied)"):
        result = preview_shading(station, sensor, lens)
    keep(measure, result, case_name(sensor, lens))
    return result


# --- zebra and peaking (``station.procedures.zebra`` / ``peaking``) ------------------------------------------

def zebra_calibration(station: Station, operator: Scene, measure: Any, sensor: str, lens: str | None = None,
                      f_number: float | None = None, *, verify: tuple[str, ...] = ()) -> Any:
    from station.procedures.zebra import calibrate_zebra, verify_zebra

    operator.chart("flat", sensor=sensor)
    label = f_case(sensor, lens, f_number)
    with procedure(f"zebra: light sweep on the flat field through {label}, T_raw and T_luma (written into the "
                   "phone)"):
        result = calibrate_zebra(station, sensor, gain=1.0, lens=lens, aperture=f_number, chart="flat")
    case = case_name(sensor, lens)
    keep(measure, result, case, check=False)
    for mode in verify:
        operator.chart("steps", sensor=sensor)
        with procedure(f"zebra ({mode} mode) at the calibrated threshold against raw truth, step chart"):
            check = verify_zebra(station, sensor, result, mode, chart="steps")
        keep(measure, check, f"{case}/{mode}", check=False)
    measure.check()
    return result


#: Peaking's focus search: within this much image-side defocus (mm of lens extension) of the datasheet's focus
#: for the chart's distance (an adapter error beyond it fails the adapter's own check first); the main camera
#: within this many diopters of the chart's distance.
PEAKING_SEARCH_MM = 0.15
PEAKING_SEARCH_DPT = 1.5


def peaking_scene(station: Station, sensor: str, lens: str | None) -> tuple[float, tuple[float, float]]:
    """The Siemens star filling the frame: its rail distance, and the focus range to search around it
    (ring degrees for an M lens, diopters for the main camera)."""
    from station.procedures.framing import framing_distance_mm, ring_for_distance_deg
    from targets.registry import get_chart

    distance = framing_distance_mm(station, sensor, lens, get_chart("siemens").width_mm, 1.0)
    if sensor == "main":
        centre = 1000.0 / distance
        return distance, (max(centre - PEAKING_SEARCH_DPT, 0.05), centre + PEAKING_SEARCH_DPT)
    sheet = lens_datasheet(sensor, lens)
    ring = ring_for_distance_deg(lens, distance)
    span = PEAKING_SEARCH_MM / (sheet.close_extension_mm / sheet.focus_throw_deg)
    return distance, (max(ring - span, 0.0), min(ring + span, float(sheet.focus_throw_deg)))


PEAKING_FLATS = 1


def peaking_flats(station: Station, operator: Scene, sensor: str, lens: str | None = None,
                  f_number: float | None = None) -> None:
    """The peaking calibration's flat fields of one case, taken now while the flat field is up (after the case's
    shading map is in the phone: the preview is what peaking sees), kept on the scene for ``peaking_calibration``
    so the Siemens star needs no flat after it."""
    from station.procedures.peaking import preview_flats
    from station.procedures.preview_sweep import spilled

    operator.chart("flat", sensor=sensor)
    with procedure(f"flat fields through {f_case(sensor, lens, f_number)} for the peaking threshold's noise floor"):
        operator.kept[("peaking_flats", sensor, lens, f_number)] = spilled(preview_flats(  # kept on disk
            station, sensor, lens=lens, aperture=f_number, gain=1.0, count=PEAKING_FLATS))


def peaking_calibration(station: Station, operator: Scene, measure: Any, sensor: str, lens: str | None = None,
                        f_number: float | None = None, *, verify: bool = False) -> Any:
    """T_peak of one case on the Siemens star (its flats kept from the flat phase, else taken after the sweep);
    with ``verify`` the phone's masks at T_peak on the star, their flat-field half left to
    ``peaking_flats_verified`` (kept on the scene) when the plan has the flat field up again."""
    from station.procedures.peaking import calibrate_peaking
    from station.procedures.peaking_verify import verify_peaking

    operator.chart("siemens", sensor=sensor)
    label = f_case(sensor, lens, f_number)
    distance, focus_range = peaking_scene(station, sensor, lens)
    with procedure(f"focus peaking: focus sweep of the Siemens star through {label}, T_peak (written into the "
                   "phone)"):
        result = calibrate_peaking(station, sensor, lens=lens, aperture=f_number, gain=1.0, chart="siemens",
                                   distance_mm=distance, focus_range=focus_range, flats=PEAKING_FLATS,
                                   flat_lumas=operator.kept.pop(("peaking_flats", sensor, lens, f_number), None))
    case = f_case(sensor, lens, f_number)
    keep(measure, result, case, check=False)
    if verify:
        with procedure("focus peaking at T_peak: in focus and beyond twice the depth of field"):
            check = verify_peaking(station, sensor, result, flats=0)
        keep(measure, check, case, check=False)
        operator.kept[("peaking_verify", sensor)] = (check, result)
    measure.check()
    return result


def peaking_flats_verified(station: Station, operator: Scene, measure: Any, sensor: str) -> Any:
    """The flat-field half of ``peaking_calibration(verify=True)``: the phone's peaking masks at T_peak on the
    flat field (<= 0.1 % flagged)."""
    import pytest

    from station.procedures.peaking_verify import verify_peaking_flats

    kept = operator.kept.pop(("peaking_verify", sensor), None)
    if kept is None:
        pytest.skip(f"{sensor}: no peaking verification on the Siemens star to complete (its calibration failed)")
    check, result = kept
    operator.chart("flat", sensor=sensor)
    with procedure(f"focus peaking at T_peak {check.threshold} on flat fields"):
        check = verify_peaking_flats(station, check, result, flats=2)
    keep(measure, check, f"{f_case(sensor, result.lens, result.aperture)}/verify", values=check.flat_measurements,
         check=False)
    measure.check()
    return check


def isp_write(station: Station, measure: Any, results: dict, sensor: str, lens: str | None = None) -> Any:
    """What the phone's ISP reads (shading map, white balance, colour matrix) of one case, into the phone."""
    from station.procedures import calibration_path
    from station.procedures.profile import write_calibration

    entry = results.get(case_name(sensor, lens))
    isp = {k: v for k, v in (entry.phone if entry else {}).items() if k in ("lens_shading_map", "wb_gains", "ccm")}
    if not isp:
        import pytest

        pytest.skip(f"{case_name(sensor, lens)}: no ISP calibration measured (shading / colour failed)")
    with procedure(f"write {', '.join(sorted(isp))} of {case_name(sensor, lens)} into the phone, read back"):
        written = write_calibration(station, [(calibration_path(sensor, lens, k), v) for k, v in isp.items()])
    keep(measure, written, case_name(sensor, lens), values=written.case_measurements)
    return written


# --- RAW integrity (``station.procedures.raw_checks``) -----------------------------------------------------

def _raw_scene(station: Station, sensor: str, lens: str | None) -> float | None:
    """The ColorChecker's framing for ``sensor`` (the step chart's ramp is taken there too); the M lens's ring
    at the datasheet angle for that distance (None: the main camera autofocuses)."""
    from station.procedures.color import CHART_FILL
    from station.procedures.framing import frame_scene, framing_distance_mm, ring_for_distance_deg
    from targets.colorchecker import ColorCheckerChart

    distance = framing_distance_mm(station, sensor, lens, ColorCheckerChart().width_mm, CHART_FILL)
    frame_scene(station, sensor, lens, distance)
    return ring_for_distance_deg(lens, distance) if sensor == "m" else None


def raw_colour(station: Station, operator: Scene, measure: Any, sensor: str, lens: str | None = None) -> Any:
    """The colour half of RAW integrity (``capture_raw_colour``): CFA order and RAW10 = DNG on the ColorChecker,
    taken while that chart is up; the capture goes on to ``raw_integrity``'s ramp and darks."""
    from station.procedures.raw_checks import capture_raw_colour

    focus_deg = _raw_scene(station, sensor, lens)
    with procedure(f"RAW integrity of {case_name(sensor, lens)}, the ColorChecker: CFA order, RAW10 = DNG"):
        capture = capture_raw_colour(station, sensor, focus_deg=focus_deg, colour_chart="colorchecker")
    keep(measure, capture, sensor)
    return capture


def raw_integrity(station: Station, operator: Scene, measure: Any, sensor: str, lens: str | None = None,
                  colour: Any = None) -> Any:
    """RAW integrity of ``sensor`` (``station.procedures.raw_checks``): CFA order and RAW10 = DNG on the
    ColorChecker (or ``colour``, its capture taken earlier by ``raw_colour``: only the rest is measured here),
    missing codes on a defocused step chart, black level from darks. The M sensor needs a lens to see the
    charts: ``lens`` (mounted by the caller) focused by its datasheet ring at the chart's distance."""
    from station.procedures.raw_checks import check_raw_integrity

    focus_deg = _raw_scene(station, sensor, lens)
    label = case_name(sensor, lens)
    with procedure(f"RAW integrity of {label}: " + ("missing codes, black level" if colour is not None else
                                                    "CFA order, RAW10 = DNG, missing codes, black level")):
        result = check_raw_integrity(station, sensor, focus_deg=focus_deg, colour_chart="colorchecker",
                                     ramp_chart="steps", colour=colour)
    keep(measure, result, sensor, values=result.ramp_measurements if colour is not None else None)
    return result


# --- regression: the app's masks and histogram against their definition on the very same frame --------------

@dataclass(frozen=True)
class MaskComparison:
    """The phone's mask against the reference of the same frame: % of pixels where they differ, % the
    reference flags."""

    mismatch_pct: float
    flagged_pct: float

    @classmethod
    def of(cls, phone: Any, reference: Any) -> MaskComparison:
        import numpy as np

        return cls(100.0 * float(np.count_nonzero(phone != reference)) / reference.size,
                   100.0 * float(np.count_nonzero(reference)) / reference.size)

    @measures(Declared("zebra_mask_mismatch_pct", "%", "{sensor}/{mode}"),
              Declared("zebra_flagged_pct", "%", "{sensor}/{mode}"))
    def zebra_measurements(self) -> dict[str, float]:
        return {"zebra_mask_mismatch_pct": self.mismatch_pct, "zebra_flagged_pct": self.flagged_pct}

    @measures(Declared("peaking_mask_mismatch_pct", "%", "{sensor}"), Declared("peaking_flagged_pct", "%", "{sensor}"))
    def peaking_measurements(self) -> dict[str, float]:
        return {"peaking_mask_mismatch_pct": self.mismatch_pct, "peaking_flagged_pct": self.flagged_pct}


def _mask_overlay(preview: Any, phone: Any, reference: Any) -> bytes:
    """The preview with the phone's flags (magenta), flags it missed (red) and extra flags (blue)."""
    from station.procedures.captures import png_bytes

    out = preview.copy()
    out[phone & reference] = (255, 0, 255)
    out[reference & ~phone] = (255, 0, 0)
    out[phone & ~reference] = (0, 64, 255)
    return png_bytes(out, 1024)


def zebra_conformance(station: Station, operator: Scene, measure: Any, sensor: str = "main",
                      threshold: int = 235) -> None:
    """The phone's luma zebra at ``threshold`` against DESIGN 7's definition (``calibration.zebra``) on the
    same frame: the step chart out of focus (smooth ramps through the threshold), its top steps clipping."""
    from calibration.zebra import luma_zebra
    from station.procedures.captures import auto_exposure_us, capture_shot

    operator.chart("steps", sensor=sensor)
    with procedure(f"zebra (luma, T {threshold}) on the defocused step chart: the phone's mask against "
                   "Y' >= T of its own preview"):
        from station.procedures.framing import frame_scene, framing_distance_mm
        from targets.registry import get_chart

        frame_scene(station, sensor, None, framing_distance_mm(station, sensor, None, get_chart("steps").width_mm,
                                                               1.1))
        station.dut.configure(sensor, focus_m=0.05, zebra={"enabled": False})
        try:
            exposure, _ = auto_exposure_us(station, sensor, target_fraction=0.6, statistic="p99", tolerance=0.15)
            station.dut.configure(sensor, exposure_us=int(exposure * 1.6),
                                  zebra={"enabled": True, "mode": "luma", "threshold": int(threshold)})
            shot = capture_shot(station, sensor, ("preview", "zebra_mask"))
        finally:
            station.dut.configure(sensor, focus_m=None, zebra={"enabled": False})
    reference = luma_zebra(shot.preview, threshold)
    phone = shot.masks["zebra_mask"]
    attach_png(f"{sensor}: zebra mask (magenta) vs definition: missed red, extra blue",
               _mask_overlay(shot.preview, phone, reference))
    take(measure, MaskComparison.of(phone, reference).zebra_measurements, f"{sensor}/luma")


def peaking_conformance(station: Station, operator: Scene, measure: Any, sensor: str = "main",
                        threshold: int = 40) -> None:
    """The phone's peaking at ``threshold`` against DESIGN 7's definition (``calibration.peaking``) on the same
    frame: the Siemens star in focus."""
    from calibration.peaking import peaking_mask
    from calibration.zebra import preview_luma
    from station.procedures.captures import auto_exposure_us, capture_shot
    from station.procedures.framing import frame_scene, framing_distance_mm
    from targets.registry import get_chart

    operator.chart("siemens", sensor=sensor)
    with procedure(f"peaking (T {threshold}) on the Siemens star in focus: the phone's mask against "
                   "|Laplacian of its preview's luma| >= T"):
        frame_scene(station, sensor, None, framing_distance_mm(station, sensor, None, get_chart("siemens").width_mm,
                                                               1.1))
        station.dut.configure(sensor, peaking={"enabled": False})
        try:
            auto_exposure_us(station, sensor, target_fraction=0.7, statistic="p99", tolerance=0.15)
            station.dut.configure(sensor, peaking={"enabled": True, "threshold": int(threshold)})
            shot = capture_shot(station, sensor, ("preview", "peaking_mask"))
        finally:
            station.dut.configure(sensor, peaking={"enabled": False})
    reference = peaking_mask(preview_luma(shot.preview), threshold)
    phone = shot.masks["peaking_mask"]
    attach_png(f"{sensor}: peaking mask (magenta) vs definition: missed red, extra blue",
               _mask_overlay(shot.preview, phone, reference))
    take(measure, MaskComparison.of(phone, reference).peaking_measurements, sensor)


def histogram_conformance(station: Station, operator: Scene, measure: Any, sensor: str = "main",
                          source: str = "preview") -> None:
    """The app's histogram of one frame against the reference of the same frame (``raw_checks``)."""
    from station.procedures.raw_checks import check_histogram

    operator.chart("colorchecker", sensor=sensor)
    with procedure(f"the app's {source} histogram of one frame against the reference histogram of that frame"):
        result = check_histogram(station, sensor, source, level_pct=50.0)
    keep(measure, result, f"{sensor}/{source}")


def noise(station: Station, operator: Scene, measure: Any, sensor: str = "main") -> Any:
    operator.chart("flat", sensor=sensor)
    with procedure(f"temporal noise of {sensor}: a flat pair at half scale, a dark pair (EMVA 1288 4.0, 6.2)"):
        result = sensor_proc.temporal_noise(station, sensor)
    allure_text("temporal noise", result.to_dict())
    keep(measure, result, sensor)
    return result


def allure_text(name: str, data: Any) -> None:
    import json

    import allure

    allure.attach(json.dumps(data, indent=2, default=str), name=name, attachment_type=allure.attachment_type.JSON)
