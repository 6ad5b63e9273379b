"""Focus-peaking calibration and verification on the station (DESIGN 7; the maths is ``calibration.peaking``).

``calibrate_peaking``: the Siemens star at a distance, the sensor auto-exposed on the star's white, then

1. best focus from a coarse sweep over the focus travel (the M lens's ring through the mount, the main
   camera's focus in diopters) measuring a sharpness metric on RAW frames, refined by halving the step
   (``captures.focus_search``; a sweep whose sharpness peaks at an end of the range never comes into
   focus and stops here);
2. the depth of field in focus units, from the phone's previews: the edge spread (line spread variance,
   ``calibration.peaking.lsf_variance``) at best focus and at probes on both sides gives the blur slope
   ``a`` (defocus blur is linear in the focus displacement), and DoF = 2 coc / a;
3. the fine sweep, previews at best focus + (0, +-0.25, +-1.5) DoF with the probes (a blur of 2 to 6
   CoC each side), and flat fields at the same gain and exposure, go to
   ``calibration.peaking.calibrate_peaking``, which works out from the frames alone which are in focus
   and picks ``T_peak``;
4. ``T_peak`` is stored at ``sensors.<sensor>[.lenses.<lens>].peaking.<aperture>.<gain>`` (read, merge,
   write, read back, compare).

``verify_peaking`` (``station.procedures.peaking_verify``): peaking on at ``T_peak``, the preview (new) and
the peaking mask (last) at best focus and at offsets in and well beyond the depth of field, and on flat fields:
the fraction of the chart's edge pixels (from the sharpest frame's geometry) flagged per frame, and the flag
rate on the flats.

The station never reads the twin's truth to decide; frames carry it (``truth_blur_px``) for the tests.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from calibration.peaking import (
    DEFAULT_COC_PX,
    MAX_FAR_COVERAGE,
    MIN_IN_FOCUS_COVERAGE,
)
from calibration.peaking_edges import PeakingCalibrationError, chart_edges, lsf_variance
from calibration.peaking_sweep import PeakingSweep
from station.errors import InputError
from station.measurements import Declared, measures
from station.procedures import ProcedureError, SweepError, calibration_path, write_back
from station.procedures.captures import (
    FocusAxis,
    auto_exposure_us,
    focus_axis,
    focus_search,
    lit,
    move_rail,
)
from station.procedures.preview_sweep import PreviewSweep, preview_lumas
from station.procedures.result import ResultParts
from station.procedures.sweep_plots import RightAxis, twin_axis_png
from station.scene import require_chart, require_lens

if TYPE_CHECKING:
    from station.station import Station

#: The fine sweep: offsets from best focus in depths of field (blur = 2 coc |offset|).
SWEEP_OFFSETS_DOF = (0.0, -0.25, 0.25, -1.5, 1.5)
#: Verification: in focus (blur <= coc/2) and well beyond twice the depth of field (blur >= 4 coc).
VERIFY_OFFSETS_DOF = (0.0, 0.25, -2.0, 2.0)
#: Blur probes aim at this many CoC of blur (measurable within the edge profiles' reach).
PROBE_BLUR_COC = (2.0, 6.0)
#: The sharpest frame's line spread variance above which it is no focused image at all, px^2 (a blur
#: circle of about 3.5 CoC of 2 px with a generous base PSF): the sweep never came into focus.
MAX_SHARPEST_VARIANCE_PX2 = 4.0
#: Auto-exposure on the chart: its white (99th percentile of the brightest channel) at 70 % of full scale.
AE_TARGET_FRACTION = 0.70


def profile_reach_px(coc_px: float) -> float:
    """The edge profiles' reach (px), as ``calibration.peaking.calibrate_peaking`` takes it."""
    return max(8.0, 4.0 * coc_px)


def _aperture_key(aperture: float | None) -> str:
    return f"f{aperture:g}" if aperture else "fixed"


@dataclass
class PeakingResult(ResultParts):
    """A peaking calibration: T_peak, the focus sweep behind it, the write-back and the sweep plot."""

    sensor: str
    lens: str | None
    aperture: float | None
    gain: float
    coc_px: float
    chart: str | None
    distance_mm: float | None
    level_pct: float
    exposure_us: int
    unit: str  # focus position unit: "deg" (M ring) or "1/m" (main, diopters)
    threshold: int
    feasible: tuple[int, int]
    best_focus: float
    in_focus: tuple[float, float]
    dof: float  # depth of field, focus units (full width: blur <= coc)
    blur_slope_px: float  # blur circle diameter per focus unit, px
    flat_rate: float
    edge_pixels: int
    frames: list[dict[str, Any]]
    search: dict[str, Any]
    write_back: dict[str, Any] | None = None
    plot_png: bytes = field(default=b"", repr=False)

    @measures(Declared("peaking_threshold", "1", "{f_case}"), Declared("peaking_flat_rate_pct", "%", "{f_case}"))
    def measurements(self) -> dict[str, float]:
        return {"peaking_threshold": self.threshold, "peaking_flat_rate_pct": 100.0 * self.flat_rate}

    def to_dict(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items() if k != "plot_png"}

    def figures(self) -> dict[str, bytes]:
        return {f"focus sweep {self.sensor} {self.lens or ''} {_aperture_key(self.aperture)} gain {self.gain:g}"
                .replace("  ", " "): self.plot_png}


def calibrate_peaking(station: Station, sensor: str, *, lens: str | None = None, aperture: float | None = None,
                      gain: float = 1.0, coc_px: float = DEFAULT_COC_PX, chart: str | None = "siemens",
                      distance_mm: float | None = 1000.0, level_pct: float = 50.0, exposure_us: int | None = None,
                      focus_range: tuple[float, float] | None = None, coarse_steps: int = 7, flats: int = 2,
                      flat_lumas: list[np.ndarray] | None = None, write: bool = True) -> PeakingResult:
    """Calibrate the phone's focus peaking for ``sensor`` (M ``lens`` at f/``aperture``) at analog ``gain``.

    ``chart`` on the holder (twin; a bench's operator places it) ``distance_mm`` away on the rail, the light
    at ``level_pct``, the exposure ``exposure_us`` or auto (the chart's white at 70 %). ``focus_range``
    restricts the focus travel searched (ring degrees for ``m``, diopters for ``main``). ``flat_lumas``: flat
    fields taken earlier while the flat field was up (``preview_flats``), so the star needs no flat after it;
    None takes ``flats`` of them here, after the sweep. Raises
    ``SweepError`` when the sweep never comes into focus; no threshold is given then.
    """
    if sensor == "m" and lens is None:
        raise ProcedureError("peaking on the bare M sensor: no lens forms an image to focus; mount an M lens")
    if not coc_px > 0:
        raise InputError(f"peaking: coc_px {coc_px!r}: expected a positive number of pixels")
    if flats < 1:
        raise InputError(f"peaking: flats {flats}: expected 1 or more flat frames")
    require_lens(station, sensor, lens, aperture)
    require_chart(station, chart)
    move_rail(station, distance_mm)
    station.dut.configure(sensor, analog_gain=float(gain), peaking={"enabled": False})
    axis = focus_axis(station, sensor, focus_range)
    with PeakingSweep(coc_px) as sweep_frames:
        sweep = PreviewSweep(station, axis, sweep_frames)
        try:
            with lit(station, level_pct):
                if exposure_us is None:
                    exposure, _ = auto_exposure_us(station, sensor, target_fraction=AE_TARGET_FRACTION,
                                                   statistic="p99", tolerance=0.15)
                else:
                    exposure = int(exposure_us)
                    station.dut.configure(sensor, exposure_us=exposure)
                search = focus_search(station, axis, coarse_steps=coarse_steps)
                best, slope = _focused_slope(sweep, search, coc_px)
                dof = 2.0 * coc_px / slope
                sweep.take_all(_fine_positions(sweep, axis, best, dof), luma=False)
                if not flat_lumas:
                    flat_lumas = _flats(station, sensor, chart, flats)
        finally:
            if sensor == "main":
                station.dut.configure(sensor, focus_m=None)
        for flat in flat_lumas:
            sweep_frames.add_flat(flat)
        try:
            cal = sweep_frames.calibrate()
        except PeakingCalibrationError as exc:
            kind = SweepError if "never" in str(exc) else ProcedureError
            raise kind(f"{sensor}: peaking focus sweep ({axis.lo:g}..{axis.hi:g} {axis.unit}): {exc}") from None
    frames = [{"position": p, "blur_px": b, "in_focus": i, "beyond_2dof": o, "coverage": c,
               "truth_blur_px": sweep.truth.get(p)}
              for p, b, i, o, c in zip(cal.focus, cal.blur_px, cal.in_focus_frames, cal.beyond_2dof_frames,
                                       cal.coverage, strict=True)]
    result = PeakingResult(
        sensor=sensor, lens=lens, aperture=aperture, gain=float(gain), coc_px=float(coc_px), chart=chart,
        distance_mm=distance_mm, level_pct=float(level_pct), exposure_us=exposure, unit=axis.unit,
        threshold=cal.threshold, feasible=cal.feasible, best_focus=cal.best_focus, in_focus=cal.in_focus,
        dof=float(dof), blur_slope_px=float(slope), flat_rate=cal.flat_rate, edge_pixels=cal.edge_pixels,
        frames=frames, search=search.to_dict())
    result.plot_png = sweep_plot(result)
    if write:
        entry = {"threshold": cal.threshold, "coc_px": float(coc_px), "feasible": list(cal.feasible),
                 "flat_rate": cal.flat_rate, "best_focus": cal.best_focus, "in_focus": list(cal.in_focus),
                 "unit": axis.unit, "exposure_us": exposure, "distance_mm": distance_mm, "aperture": aperture}
        path = calibration_path(sensor, lens, "peaking", _aperture_key(aperture), f"{float(gain):g}")
        result.write_back = write_back(station, path, entry)
    return result


def _focused_slope(sweep: PreviewSweep, search: Any, coc_px: float) -> tuple[float, float]:
    """``_blur_slope`` about the focus search's best; a search that peaked at a range end and shows no focused
    edges there never came into focus (``SweepError``)."""
    axis = sweep.axis
    try:
        return _blur_slope(sweep, search.best, search.step, coc_px, profile_reach_px(coc_px))
    except (ProcedureError, PeakingCalibrationError):
        if search.at_end is None:
            raise
        raise SweepError(f"{axis.sensor}: focus sweep never comes into focus: the sharpness is highest at the "
                         f"{search.at_end} end of the range ({search.best:g} {axis.unit} of {axis.lo:g}.."
                         f"{axis.hi:g}) and the frame there shows no focused edges; the chart is beyond "
                         "the lens's reach or the focus range is restricted") from None


def _fine_positions(sweep: PreviewSweep, axis: FocusAxis, best: float, dof: float) -> list[float]:
    """The fine sweep's positions (best focus + ``SWEEP_OFFSETS_DOF``) not near a frame taken or planned."""
    planned: list[float] = []
    taken: list[float] = []
    for offset in SWEEP_OFFSETS_DOF:
        position = axis.clamp(best + offset * dof)
        tolerance = (0.1 if abs(offset) < 1.0 else 0.3) * dof
        if not sweep.near(position, tolerance) and not any(abs(p - position) <= tolerance for p in taken):
            planned.append(position)
            taken.append(round(position, 4))  # where ``take_all`` keeps it
    return planned


def _blur_slope(sweep: PreviewSweep, best: float, step: float, coc_px: float, reach: float) -> tuple[float, float]:
    """Best focus and the blur slope (px of blur circle per focus unit) from the edge spread of previews.

    Blur is linear in the focus displacement, so the line spread variance is a parabola in the position,
    ``var = var_0 + a^2 (p - p_0)^2 / 16`` (a blur circle of diameter d has variance d^2 / 16). Probes at
    ``best +- delta`` (one side at a range end: ``+- delta, +- 2 delta``) and ``best`` give the parabola:
    its vertex is best focus, its curvature the slope ``a``. ``delta`` grows or shrinks until the blur at
    the probes is 2-6 CoC (measurable within the edge profiles' reach).
    """
    axis = sweep.axis
    best, luma = sweep.take(best)
    try:
        edges = chart_edges(luma, reach_px=reach).profiles_only()  # the probes need the profiles alone
        v_best = lsf_variance(luma, edges, reach_px=reach)
    except PeakingCalibrationError as exc:
        raise ProcedureError(f"{axis.sensor}: peaking: no usable chart edges at best focus ({exc})") from None
    del luma  # the sweep keeps the sharpest frame; 50 MB less while the probes are taken
    if v_best > 4.0 * MAX_SHARPEST_VARIANCE_PX2:
        raise SweepError(f"{axis.sensor}: focus sweep never comes into focus: the sharpest frame (at {best:g} "
                         f"{axis.unit}) spreads edges over {math.sqrt(v_best):.1f} px RMS, a blur of many CoC")
    span = axis.hi - axis.lo
    delta = max(step, span / 400.0)
    lo, hi = PROBE_BLUR_COC
    for _ in range(8):
        offsets = [o for o in (-delta, delta) if abs(axis.clamp(best + o) - best) >= 0.5 * delta]
        if len(offsets) == 1:
            offsets.append(2.0 * offsets[0])
        points = [(best, v_best)]
        for position, image in sweep.take_all([best + o for o in offsets]):
            points.append((position, lsf_variance(image, edges, reach_px=reach)))
        x = np.array([p for p, _ in points])
        y = np.array([v for _, v in points])
        if len(np.unique(x)) < 3:
            break
        c2, c1, c0 = np.polyfit(x - best, y, 2)
        blur = 4.0 * math.sqrt(max(float(y.max() - y.min()), 0.0))  # the largest blur change probed
        if c2 > 0 and lo * coc_px <= 4.0 * math.sqrt(c2) * delta <= hi * coc_px:
            slope = 4.0 * math.sqrt(c2)
            vertex = best - c1 / (2.0 * c2)
            var0 = c0 - c1 * c1 / (4.0 * c2)
            if abs(vertex - best) > 2.0 * delta or var0 > MAX_SHARPEST_VARIANCE_PX2:
                break  # the vertex lies outside what was probed, or is no sharp image: not in focus
            return axis.clamp(vertex), slope
        measured = 4.0 * math.sqrt(c2) * delta if c2 > 0 else blur
        factor = 4.0 if measured < 0.25 * coc_px else min(max(0.5 * (lo + hi) * coc_px / measured, 0.25), 4.0)
        new_delta = min(delta * factor, span / 2.0)
        if new_delta == delta:
            break
        delta = new_delta
    raise SweepError(f"{axis.sensor}: focus sweep never comes into focus: the edge blur around {best:g} "
                     f"{axis.unit} (probed +-{delta:g} {axis.unit}) shows no focused image "
                     f"(sharpest edge spread {math.sqrt(max(v_best, 0.0)):.1f} px RMS)")


def _flats(station: Station, sensor: str, chart: str | None, count: int) -> list[np.ndarray]:
    """Flat-field previews (luma) at the present settings. The flat field stays up: the next step asks for
    the chart it needs (``chart`` is the one the sweep used), so a flat-field step next costs no request."""
    del chart
    require_chart(station, "flat", sensor=sensor)
    return preview_lumas(station, sensor, count)


def preview_flats(station: Station, sensor: str, *, lens: str | None = None, aperture: float | None = None,
                  gain: float = 1.0, level_pct: float = 50.0, count: int = 2) -> list[np.ndarray]:
    """Flat-field previews (luma) for a later ``calibrate_peaking`` of the same case, taken while the flat field is
    up: the preview at ``gain``, the flat auto-exposed as the calibration exposes the star (its white, p99, at
    70 %), the light at ``level_pct``. The threshold's noise floor is the preview's peaking response on them."""
    if count < 1:
        raise InputError(f"peaking: flats {count}: expected 1 or more flat frames")
    require_lens(station, sensor, lens, aperture)
    require_chart(station, "flat", sensor=sensor)
    station.dut.configure(sensor, analog_gain=float(gain), peaking={"enabled": False})
    with lit(station, level_pct):
        auto_exposure_us(station, sensor, target_fraction=AE_TARGET_FRACTION, statistic="p99", tolerance=0.15)
        return preview_lumas(station, sensor, count)


def sweep_plot(result: PeakingResult) -> bytes:
    """Estimated blur against focus position (CoC and 2 CoC marked) and the edge coverage at T_peak."""
    from calibration.figures import new_figure

    pos = [f["position"] for f in result.frames]
    fig, ax = new_figure(figsize=(7.5, 4.2), dpi=100)
    ax.plot(pos, [f["blur_px"] for f in result.frames], "o-", ms=3, color="tab:blue", label="blur (estimated)")
    ax.axhline(result.coc_px, color="tab:green", ls="--", lw=0.8, label=f"CoC {result.coc_px:g} px")
    ax.axhline(2 * result.coc_px, color="tab:orange", ls="--", lw=0.8, label="2 CoC")
    ax.axvspan(*result.in_focus, color="tab:green", alpha=0.12)
    ax.set_xlabel(f"focus position ({result.unit})")
    ax.set_ylabel("defocus blur circle (px)")
    limit = {"color": "tab:red", "lw": 0.5}
    right = RightAxis(pos, [100 * f["coverage"] for f in result.frames], "s:", "tab:red", "edge coverage",
                      f"edge pixels flagged at T_peak {result.threshold} (%)",
                      ((100 * MIN_IN_FOCUS_COVERAGE, limit), (100 * MAX_FAR_COVERAGE, limit)))
    return twin_axis_png(fig, ax, f"peaking focus sweep: {result.sensor} {result.lens or ''} "
                         f"{_aperture_key(result.aperture)} gain {result.gain:g}: T_peak {result.threshold} "
                         f"(feasible {result.feasible[0]}..{result.feasible[1]}), flats "
                         f"{100 * result.flat_rate:.3f} %", right=right, title_size=8, legend_loc="upper left")
