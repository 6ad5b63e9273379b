"""Histogram and 10-bit RAW integrity checks on the station (DESIGN 7; the maths is ``calibration.histogram``
and ``calibration.raw_integrity``).

``check_histogram``: one frame, the phone's own histogram of it (``histogram``, the same ``seq``) against
the reference histogram of the very frame the phone sent (preview luma, or RAW10 DN), bin by bin: L1
distance, best shift, and the overlaid plot. Both count every pixel of one frame by DESIGN 7's
definition, so any difference is the app's.

``check_raw_integrity``:

- CFA order and RAW10 = DNG: the ColorChecker in one exposure as RAW10, DNG and preview; the chart
  detector (``targets.colorchecker``) finds its red and blue patches in the preview (one preview pixel per
  CFA sample), ``cfa_order_from_target`` reads the order off the RAW there and compares it with the order
  the phone declares; the RAW10 and the DNG of that capture must agree sample for sample and in the
  levels and CFA they declare;
- missing codes: a smooth ramp, the grey step chart thrown out of focus, at three exposures from clipping
  its white down to the dark steps, with the dark frames: every code between the declared black level and
  the clip level (the top code the clipped pixels pile on) must occur;
- black level: dark frames (light off) per CFA channel against the declared one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from calibration.histogram import compare_histograms, luma_histogram, plot_histograms, raw_histogram
from calibration.raw_integrity import (
    BLACK_TOLERANCE_DN,
    RawIntegrityError,
    black_level_from_darks,
    cfa_order_from_target,
    check_black_level,
    code_counts,
    code_report_from_counts,
    raw10_equals_dng,
)
from station.errors import DeviceError, InputError
from station.measurements import Declared, measures
from station.pipeline import analysis_pool
from station.procedures import ProcedureError
from station.procedures.captures import (
    auto_exposure_us,
    capture_shot,
    focus_axis,
    focus_search,
    light_off,
    lit,
)
from station.procedures.result import ResultParts
from station.scene import require_chart

if TYPE_CHECKING:
    from station.station import Station

#: Ramp exposures, as multiples of the exposure putting the colour chart's 99th percentile at 60 %: the
#: ramp chart's white clips, then its middle steps, then its darkest ones near black.
RAMP_EXPOSURES = (3.0, 0.4, 0.05)
#: The clip level: the highest code holding at least this fraction of the brightest ramp frame's samples.
CLIP_PILE_FRACTION = 1e-4


# --- histogram ------------------------------------------------------------------------------------

@dataclass
class HistogramCheck(ResultParts):
    """The phone's histogram against the reference histogram of the same frame."""

    sensor: str
    source: str  # preview or raw
    seq: int
    bins: int
    l1: int
    l1_normalised: float
    shift_bins: int
    max_bin_diff: int
    passed: bool
    plot_png: bytes = field(default=b"", repr=False)

    @measures(Declared("histogram_l1_normalised", "1", "{sensor}/{source}"),
              Declared("histogram_shift_bins", "bins", "{sensor}/{source}"))
    def measurements(self) -> dict[str, float]:
        return {"histogram_l1_normalised": self.l1_normalised, "histogram_shift_bins": self.shift_bins}

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "plot_png"}

    def figures(self) -> dict[str, bytes]:
        return {f"histogram {self.source} {self.sensor}: phone vs reference": self.plot_png}


def check_histogram(station: Station, sensor: str, source: str = "preview", *, chart: str | None = None,
                    level_pct: float = 50.0, exposure_us: int | None = None,
                    max_l1_normalised: float = 0.0) -> HistogramCheck:
    """The phone's ``source`` histogram (``preview`` luma or ``raw`` DN) of one frame against the reference.

    ``chart`` is put on the holder (twin); the light at ``level_pct``; the exposure ``exposure_us`` or auto
    (the scene's 99th percentile at 70 %). Passes when the best shift is 0 bins and the fraction of counts
    misplaced (``l1_normalised``) is at most ``max_l1_normalised`` (0: identical, the definition is exact).
    """
    if source not in ("preview", "raw"):
        raise InputError(f"histogram source {source!r}; allowed: preview, raw")
    require_chart(station, chart)
    with lit(station, level_pct):
        if exposure_us is None:
            auto_exposure_us(station, sensor, target_fraction=0.7, statistic="p99", tolerance=0.15)
        else:
            station.dut.configure(sensor, exposure_us=int(exposure_us))
        shot = capture_shot(station, sensor, ("preview",) if source == "preview" else ("raw10",))
        reply = station.dut.histogram_reply(sensor, source)
    if int(reply.get("seq", -1)) != shot.seq:
        raise DeviceError("dut", f"histogram is of frame {reply.get('seq')}, not of the frame just captured "
                                 f"({shot.seq})")
    reference = luma_histogram(shot.preview) if source == "preview" else raw_histogram(shot.raw)
    phone = np.asarray(reply["counts"], dtype=np.int64)
    stats = compare_histograms(phone, reference)
    passed = stats["shift_bins"] == 0 and stats["l1_normalised"] <= max_l1_normalised
    plot = plot_histograms(phone, reference, title=f"histogram {source} ({sensor}, frame {shot.seq}): phone vs "
                                                   "reference", log=source == "raw")
    return HistogramCheck(sensor=sensor, source=source, seq=shot.seq, bins=stats["bins"], l1=stats["l1"],
                          l1_normalised=stats["l1_normalised"], shift_bins=stats["shift_bins"],
                          max_bin_diff=stats["max_bin_diff"], passed=bool(passed), plot_png=plot)


# --- RAW integrity ----------------------------------------------------------------------------------

@dataclass
class RawIntegrityResult(ResultParts):
    """The four RAW checks of one sensor and the code-occupancy plot."""

    sensor: str
    declared: dict[str, Any]  # cfa, black_level, white_level the phone declares
    codes: dict[str, Any]
    black: dict[str, Any]
    cfa: dict[str, Any]
    raw10_dng: dict[str, Any]
    passed: bool
    plot_png: bytes = field(default=b"", repr=False)

    @measures(Declared("raw_missing_codes", "1", "{sensor}"), Declared("raw_black_offset_dn", "DN", "{sensor}"),
              Declared("raw_black_level_dn", "DN", "{sensor}"), Declared("raw_cfa_order_match", "1", "{sensor}"),
              Declared("raw10_dng_differing_pixels", "1", "{sensor}"))
    def measurements(self) -> dict[str, float]:
        """Missing codes, the black level (mean and worst offset), the CFA order, RAW10 against DNG."""
        differing = self.raw10_dng.get("differing_pixels")
        return self.ramp_measurements() | {
            "raw_cfa_order_match": 1.0 if self.cfa["match"] else 0.0,
            "raw10_dng_differing_pixels": float(differing if differing is not None else 1e9)}

    @measures(Declared("raw_missing_codes", "1", "{sensor}"), Declared("raw_black_offset_dn", "DN", "{sensor}"),
              Declared("raw_black_level_dn", "DN", "{sensor}"))
    def ramp_measurements(self) -> dict[str, float]:
        """Missing codes on the ramp and darks, the black level (mean and worst offset) of the darks."""
        measured = self.black["measured_dn"]
        return {"raw_missing_codes": self.codes["missing_count"], "raw_black_offset_dn": self.black["max_offset_dn"],
                "raw_black_level_dn": float(sum(measured.values()) / len(measured))}

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "plot_png"}

    def figures(self) -> dict[str, bytes]:
        return {f"RAW codes between black and clip {self.sensor}": self.plot_png}


def _patches(preview: np.ndarray, chart: str) -> dict[str, tuple[int, int, int, int]]:
    """Red, green and blue patch boxes (y0, y1, x0, x1) of the ColorChecker found in the preview."""
    from targets.base import ChartNotFound
    from targets.registry import get_chart

    try:
        detection = get_chart(chart).detect(preview)
    except ChartNotFound as exc:
        raise ProcedureError(f"{chart} not found in the preview: {exc}") from None
    boxes = {}
    for roi in detection.rois:
        if roi.name in ("red", "green", "blue"):
            x, y, w, h = roi.box
            boxes[roi.name] = (y, y + h, x, x + w)
    if not ({"red", "blue"} & set(boxes)):
        raise ProcedureError(f"{chart}: neither the red nor the blue patch is inside the frame")
    return boxes


def _focus_on_chart(station: Station, sensor: str, focus_deg: float | None) -> None:
    """Focus on the chart: the main camera's own autofocus, the M lens's ring at ``focus_deg`` or by a search."""
    if sensor == "main":
        station.dut.configure(sensor, focus_m=None)
        return
    axis = focus_axis(station, sensor)
    axis.move(station, focus_deg if focus_deg is not None else focus_search(station, axis).best)


def _defocus(station: Station, sensor: str) -> None:
    """Throw the chart well out of focus (a smooth ramp): the main camera at its closest focus, the M
    lens's ring at its infinity end."""
    if sensor == "main":
        station.dut.configure(sensor, focus_m=0.05)
    else:
        axis = focus_axis(station, sensor)
        axis.move(station, axis.lo)


def _ramp(station: Station, sensor: str, ramp_chart: str | None, colour_chart: str | None, focus_deg: float | None,
          exposure: int | None = None) -> tuple[list[np.ndarray], int]:
    """The code counts (``code_counts``, each frame counted as it arrives: no frame kept) of the defocused ramp
    chart's RAW frames at ``RAMP_EXPOSURES`` times the reference exposure: ``exposure``, or (the ramp chart
    first) the colour chart's, estimated on the ramp chart's own white (its 99th percentile at 60 %, as on the
    colour chart)."""
    del colour_chart
    require_chart(station, ramp_chart, sensor=sensor)
    if exposure is None:
        _focus_on_chart(station, sensor, focus_deg)
        exposure, _ = auto_exposure_us(station, sensor, target_fraction=0.6, statistic="p99", tolerance=0.15)
    _defocus(station, sensor)
    ramp = []
    for factor in RAMP_EXPOSURES:
        station.dut.configure(sensor, exposure_us=max(10, int(round(exposure * factor))))
        ramp.append(code_counts(capture_shot(station, sensor, ("raw10",)).raw))
    return ramp, exposure


@dataclass
class RawColourCapture(ResultParts):
    """The colour chart of one sensor's RAW integrity check: what its RAW10, DNG and preview of one exposure
    gave (the levels and CFA order the frame declares, its CFA-order and RAW10 = DNG checks) and the exposure
    (us) the step chart's ramp is scaled from. No pixels: a plan keeps it for ``check_raw_integrity`` until the
    step chart is up, and a 50 MP shot (RAW, DNG, preview) is 300 MB."""

    sensor: str
    declared: dict[str, Any]  # cfa, black_level, white_level the frame declares
    exposure_us: int
    cfa: dict[str, Any]
    raw10_dng: dict[str, Any]

    @measures(Declared("raw_cfa_order_match", "1", "{sensor}"), Declared("raw10_dng_differing_pixels", "1", "{sensor}"))
    def measurements(self) -> dict[str, float]:
        """The CFA order read off the chart against the declared one, RAW10 against DNG."""
        differing = self.raw10_dng.get("differing_pixels")
        return {"raw_cfa_order_match": 1.0 if self.cfa["match"] else 0.0,
                "raw10_dng_differing_pixels": float(differing if differing is not None else 1e9)}


def _require_lens_for_m(station: Station, sensor: str) -> None:
    if sensor == "m" and not station.dut.info().get("m_lens"):
        raise ProcedureError("RAW integrity on the M sensor needs a lens to see the charts: mount one")


def capture_raw_colour(station: Station, sensor: str, *, gain: float = 1.0, colour_chart: str = "colorchecker",
                       level_pct: float = 50.0, focus_deg: float | None = None) -> RawColourCapture:
    """The colour chart in focus as RAW10, DNG and preview (its white at 60 %), and its CFA-order and
    RAW10 = DNG checks. The light is on at ``level_pct`` for it and left off."""
    _require_lens_for_m(station, sensor)
    station.dut.configure(sensor, analog_gain=float(gain), zebra={"enabled": False}, peaking={"enabled": False})
    try:
        with lit(station, level_pct):
            require_chart(station, colour_chart, sensor=sensor)
            _focus_on_chart(station, sensor, focus_deg)
            exposure, _ = auto_exposure_us(station, sensor, target_fraction=0.6, statistic="p99", tolerance=0.15)
            shot = capture_shot(station, sensor, ("raw10", "dng", "preview"))
    finally:
        if sensor == "main":
            station.dut.configure(sensor, focus_m=None)
    cfa, same = _colour_checks(sensor, shot, colour_chart)
    return RawColourCapture(sensor, _declared(shot.frame), int(exposure), cfa, same)


def _declared(frame: Any) -> dict[str, Any]:
    """The CFA order, black and white levels a RAW frame declares."""
    return {"cfa": frame.cfa, "black_level": frame.black_level, "white_level": frame.white_level}


def _colour_checks(sensor: str, colour: Any, colour_chart: str | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """CFA order from the chart's red and blue patches, and RAW10 = DNG (samples and declared levels). The shot's
    DNG is let go once compared (``colour.dng`` None): the preview is decoded and searched without it."""
    frame = colour.frame
    declared = _declared(frame)
    same = raw10_equals_dng(frame.data, colour.dng.data)
    meta_diff = {k: [v, getattr(colour.dng, k)] for k, v in declared.items() if getattr(colour.dng, k) != v}
    colour.dng = None
    same.update(declared_metadata_equal=not meta_diff, metadata_differences=meta_diff)
    same["pass"] = bool(same["equal"] and not meta_diff)
    try:
        cfa = cfa_order_from_target(frame.data, frame.cfa, _patches(colour.preview, colour_chart or "colorchecker"),
                                    float(frame.black_level))
    except RawIntegrityError as exc:
        raise ProcedureError(f"{sensor}: CFA order from the {colour_chart}: {exc}") from None
    cfa["pass"] = bool(cfa["match"])
    return cfa, same


def check_raw_integrity(station: Station, sensor: str, *, gain: float = 1.0, colour_chart: str | None = "colorchecker",
                        ramp_chart: str | None = "steps", level_pct: float = 50.0, focus_deg: float | None = None,
                        black_tolerance_dn: float = BLACK_TOLERANCE_DN,
                        colour: RawColourCapture | None = None) -> RawIntegrityResult:
    """CFA order, RAW10 = DNG, missing codes and black level of ``sensor`` at analog ``gain`` (see the module).

    The lens must be on (the M sensor bare sees no chart). ``focus_deg``: the M lens's ring (degrees from
    infinity) on the colour chart (default: a sharpness search); the main camera autofocuses. The operator puts
    the charts up (``station.scene``). ``colour``: the colour chart's capture taken earlier
    (``capture_raw_colour``: a plan takes both sensors' while that chart is up), else it is taken here. The
    light is left off.
    """
    _require_lens_for_m(station, sensor)
    station.dut.configure(sensor, analog_gain=float(gain), zebra={"enabled": False}, peaking={"enabled": False})
    scene = getattr(station, "operator", None)
    ramp_first = colour is None and ramp_chart is not None and getattr(scene, "chart_up", None) == ramp_chart
    try:
        with lit(station, level_pct):
            if ramp_first:  # the ramp chart is up already: its frames first, then one change to the colour chart
                ramp, exposure = _ramp(station, sensor, ramp_chart, colour_chart, focus_deg)
            if colour is None:
                require_chart(station, colour_chart, sensor=sensor)
                _focus_on_chart(station, sensor, focus_deg)
                exposure, _ = auto_exposure_us(station, sensor, target_fraction=0.6, statistic="p99",
                                               tolerance=0.15)
                shot = capture_shot(station, sensor, ("raw10", "dng", "preview"))
                checks = analysis_pool(station).submit(f"{sensor}: CFA order and RAW10 = DNG", _colour_checks,
                                                       sensor, shot, colour_chart)  # behind the ramp and darks
            else:
                exposure = colour.exposure_us
            if not ramp_first:
                ramp, _ = _ramp(station, sensor, ramp_chart, colour_chart, focus_deg, exposure)
            station.dut.configure(sensor, exposure_us=max(10, int(round(exposure * RAMP_EXPOSURES[0]))))
            light_off(station)
            darks = [capture_shot(station, sensor, ("raw10",)).raw for _ in range(2)]
    finally:
        if sensor == "main":
            station.dut.configure(sensor, focus_m=None)
    if colour is None:
        declared = _declared(shot.frame)
        del shot  # the checks' job holds it until they are done; the ramp's code counts need not
        cfa, same = checks.result()
    else:
        declared, cfa, same = dict(colour.declared), colour.cfa, colour.raw10_dng
    black = float(declared["black_level"])

    counts = ramp[0]  # the brightest ramp frame's code counts (their sum: its size)
    pile = np.flatnonzero(counts >= CLIP_PILE_FRACTION * int(counts.sum()))
    clip = float(pile.max()) if len(pile) else float(declared["white_level"])
    all_counts = np.sum(ramp, axis=0) + code_counts(darks)
    codes = code_report_from_counts(all_counts, black, clip)
    codes["clip_level_dn"] = clip
    codes["missing"] = codes["missing"][:64]  # the first ones: enough to read the pattern

    measured = black_level_from_darks(darks, declared["cfa"])
    black_check = check_black_level(measured, black, black_tolerance_dn)

    passed = bool(codes["pass"] and black_check["pass"] and cfa["pass"] and same["pass"])
    return RawIntegrityResult(sensor=sensor, declared=declared, codes=codes, black=black_check, cfa=cfa,
                              raw10_dng=same, passed=passed,
                              plot_png=codes_plot(all_counts, black, clip, sensor))


def codes_plot(counts: np.ndarray, black: float, clip: float, sensor: str) -> bytes:
    """Occurrences of every 10-bit code over the ramp and darks (log), the checked range and missing codes."""
    from calibration.figures import figure_png, new_figure

    lo, hi = int(np.ceil(black)), int(np.floor(clip))
    missing = np.flatnonzero(counts[lo:hi + 1] == 0) + lo
    fig, ax = new_figure(figsize=(7.5, 3.6), dpi=100)
    ax.semilogy(np.arange(len(counts)), np.maximum(counts, 0.8), color="0.3", lw=0.6, drawstyle="steps-mid")
    ax.axvspan(lo, hi, color="tab:green", alpha=0.08, label=f"checked {lo}..{hi} DN")
    if len(missing):
        ax.plot(missing, np.full(len(missing), 0.8), "|", color="tab:red", ms=8,
                label=f"{len(missing)} missing codes")
    ax.set_xlabel("RAW code (DN)")
    ax.set_ylabel("samples")
    ax.set_title(f"RAW codes on a smooth ramp and darks ({sensor})", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return figure_png(fig)
