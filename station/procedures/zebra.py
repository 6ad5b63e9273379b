"""Zebra calibration and verification on the station (DESIGN 7; the maths is ``calibration.zebra``).

``calibrate_zebra``: the flat field under the VISA light at a fixed exposure, a light sweep that finds
the knee (where the brightest channel stops rising) and then steps finely (2 % apart) around it and a few
steps past it. Every step is a RAW frame; the fine steps also bring the phone's own preview of the same
frame. From them: the raw clip level per channel (``clip_levels_from_sweep``), ``T_raw`` = lowest clip
- margin (clip - black) (``raw_threshold``), ``T_luma`` read through the phone's preview
(``luma_threshold``). Both go into the phone's calibration blob at
``sensors.<sensor>[.lenses.<lens>].zebra.<gain>`` (read, merge, write, read back, compare).

``verify_zebra``: a scene with clipped and unclipped areas (the grey step chart out of focus, exposed so
that about a third of it clips), the phone's zebra on at the calibrated threshold, RAW10 and the zebra
mask of that one frame; ``calibration.zebra.verify_zebra`` counts the raw-clipped pixels the mask misses
and the pixels well below clip (< 95 %) it flags.

A sweep that never reaches clipping raises ``SweepError`` saying so; it never gives a threshold.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from calibration.zebra import (
    DEFAULT_MARGIN,
    ROI_FRACTION,
    ZebraCalibrationError,
    centre_luma_mean,
    centre_region,
    channel_means,
    clip_levels_from_means,
    lowest_clip,
    luma_threshold_from_means,
    quad_max,
    raw_threshold,
)
from calibration.zebra import verify_zebra as verify_zebra_mask
from station.errors import InputError
from station.measurements import Declared, measures
from station.pipeline import Pending, analysis_pool
from station.procedures import SweepError, calibration_path, write_back
from station.procedures.captures import (
    auto_exposure_us,
    capture_shot,
    focus_axis,
    lit,
    png_bytes,
    set_light,
)
from station.procedures.preview_luma import shot_luma
from station.procedures.result import ResultParts
from station.procedures.sweep_plots import RightAxis, twin_axis_png
from station.scene import require_chart, require_lens

if TYPE_CHECKING:
    from station.station import Station

#: Auto-exposure: the light at this fraction of the sweep's top level, the brightest channel at 40 % of full
#: scale: the knee then sits at about 60 % of the light's range.
AE_LEVEL_FRACTION = 0.25
AE_TARGET_FRACTION = 0.40
#: Fine steps around the knee, as multiples of the estimated knee (2 % apart), and the steps past it.
FINE_STEP = 0.02
PAST_KNEE = (1.2, 1.4)
#: The top frame counts as clipped when its brightest channel sits this far below the linear prediction.
CLIPPED_BELOW_LINEAR = 0.97
#: Zebra verification exposure: at least these fractions of the scene's quads clip (>= 1.1 clip) and sit well
#: below it (< 0.9 clip); the exposure at most this many times the calibration's.
VERIFY_MIN_CLIPPED = 0.2
VERIFY_MIN_BELOW = 0.1
VERIFY_MAX_SCALE = 64.0


@dataclass
class ZebraResult(ResultParts):
    """A zebra calibration: thresholds, the sweep behind them, the write-back and the sweep plot."""

    sensor: str
    lens: str | None
    aperture: float | None
    gain: float
    margin: float
    exposure_us: int
    cfa: str
    black_level_dn: float
    white_level_dn: float
    clip_levels_dn: dict[str, float | None]
    clip_level_dn: float  # the lowest channel clip level
    raw_threshold_dn: int
    luma_threshold: int
    knee_level_pct: float  # light level where the flat field's brightest channel reaches clip
    sweep: list[dict[str, Any]]
    write_back: dict[str, Any] | None = None
    plot_png: bytes = field(default=b"", repr=False)

    @measures(Declared("zebra_clip_level_dn", "DN"), Declared("zebra_raw_threshold_dn", "DN"),
              Declared("zebra_luma_threshold", "code"))
    def measurements(self) -> dict[str, float]:
        return {"zebra_clip_level_dn": self.clip_level_dn, "zebra_raw_threshold_dn": self.raw_threshold_dn,
                "zebra_luma_threshold": self.luma_threshold}

    def to_dict(self) -> dict[str, Any]:
        """Everything but the plot, JSON-able."""
        return {k: v for k, v in self.__dict__.items() if k != "plot_png"}

    def figures(self) -> dict[str, bytes]:
        return {f"zebra sweep {self.sensor} {self.lens or ''} gain {self.gain:g}".replace("  ", " "): self.plot_png}


def _brightest_above_black(means: dict[str, float], black: float) -> float:
    return max(means.values()) - black


def calibrate_zebra(station: Station, sensor: str, *, gain: float, lens: str | None = None,
                    aperture: float | None = None, margin: float = DEFAULT_MARGIN, exposure_us: int | None = None,
                    max_level_pct: float = 100.0, fine_steps: int = 6, chart: str | None = "flat",
                    write: bool = True) -> ZebraResult:
    """Calibrate the phone's zebra for ``sensor`` (with M ``lens`` at f/``aperture``) at analog ``gain``.

    ``exposure_us``: the sweep's fixed exposure (default: auto-exposure on the flat field so the knee sits
    near 60 % of ``max_level_pct``). ``fine_steps``: frames 2 % apart around the knee, from 2 (fine_steps
    - 4) % below to 6 % above it, the previews taken on these: the knee is first estimated from the top
    frame (its plateau over the linear slope), a lower bound since a mean never exceeds the clip level.
    ``chart``: put on the holder on the twin (``None``: as it is; on a bench the operator places the
    diffuser). ``write``: store the thresholds in the phone.
    """
    if not 0.0 < max_level_pct <= 100.0:
        raise InputError(f"zebra sweep: max_level_pct {max_level_pct!r}: expected 0 < level <= 100 %")
    if fine_steps < 5:
        raise InputError(f"zebra sweep: fine_steps {fine_steps}: expected 5 or more")
    require_lens(station, sensor, lens, aperture)
    require_chart(station, chart)
    station.dut.configure(sensor, analog_gain=float(gain), zebra={"enabled": False})
    sweep = _light_sweep(station, sensor, exposure_us, max_level_pct, fine_steps)
    frames, black = sweep.frames, sweep.black
    levels = sorted(frames)
    try:
        clips = clip_levels_from_means(levels, [frames[lv]["means"] for lv in levels], black)
        clip = lowest_clip(clips)
        t_raw = raw_threshold(clip, black, margin)
        with_luma = [lv for lv in levels if frames[lv]["luma_mean"] is not None]
        t_luma = luma_threshold_from_means([max(frames[lv]["means"].values()) for lv in with_luma],
                                           [frames[lv]["luma_mean"] for lv in with_luma], t_raw, black)
    except ZebraCalibrationError as exc:
        raise SweepError(f"{sensor}: zebra light sweep at {sweep.exposure_us} us, gain {gain:g}, light up to "
                         f"{max_level_pct:g} %: {exc}") from None
    result = ZebraResult(sensor=sensor, lens=lens, aperture=aperture, gain=float(gain), margin=float(margin),
                         exposure_us=sweep.exposure_us, cfa=sweep.cfa, black_level_dn=black,
                         white_level_dn=sweep.white, clip_levels_dn=clips, clip_level_dn=clip,
                         raw_threshold_dn=t_raw, luma_threshold=t_luma,
                         knee_level_pct=_knee_level(levels, frames, clip, black, sweep.slope, sweep.knee),
                         sweep=[_sweep_row(lv, frames[lv]) for lv in levels])
    result.plot_png = sweep_plot(result)
    if write:
        entry = {"raw_threshold_dn": t_raw, "luma_threshold": t_luma, "clip_level_dn": clip,
                 "clip_levels_dn": clips, "black_level_dn": black, "margin": float(margin),
                 "exposure_us": sweep.exposure_us, "aperture": aperture}
        result.write_back = write_back(station, calibration_path(sensor, lens, "zebra", f"{float(gain):g}"), entry)
    return result


@dataclass
class _LightSweep:
    """The frames of a zebra light sweep by level (``_summary``), and what the sweep was planned from."""

    frames: dict[float, dict[str, Any]]
    exposure_us: int
    black: float
    white: float
    cfa: str
    slope: float  # DN per % of light below clipping
    knee: float  # the knee's first estimate, % of the light


def _light_sweep(station: Station, sensor: str, exposure_us: int | None, max_level_pct: float,
                 fine_steps: int) -> _LightSweep:
    """The flat field's light sweep (see ``calibrate_zebra``): exposure, top frame, then the planned levels,
    each planned frame summarised on the analysis pool while the light moves to the next level."""
    frames: dict[float, dict[str, Any]] = {}
    with lit(station, AE_LEVEL_FRACTION * max_level_pct):
        ae_level = round(AE_LEVEL_FRACTION * max_level_pct, 3)
        if exposure_us is None:
            exposure, shot = auto_exposure_us(station, sensor, target_fraction=AE_TARGET_FRACTION)
        else:
            exposure = int(exposure_us)
            station.dut.configure(sensor, exposure_us=exposure)
            shot = capture_shot(station, sensor, ("raw10",))
        frames[ae_level] = _summary(shot)
        black, white, cfa = float(shot.frame.black_level), float(shot.frame.white_level), shot.frame.cfa
        del shot  # its 100 MB RAW is summarised: not held through the sweep
        slope = _brightest_above_black(frames[ae_level]["means"], black) / ae_level  # DN per % below clipping
        _take_levels(station, sensor, frames, [(max_level_pct, False)], max_level_pct)
        top_dn = _brightest_above_black(frames[round(max_level_pct, 3)]["means"], black)
        if slope > 0 and top_dn < CLIPPED_BELOW_LINEAR * slope * max_level_pct:  # clipped: a knee below the top
            knee = top_dn / slope
            plan = [0.6 * knee] + [knee * (1.0 + FINE_STEP * k) for k in range(-(fine_steps - 4), 4)]
            plan += [knee * f for f in PAST_KNEE]
            fine = {round(knee * (1.0 + FINE_STEP * k), 3) for k in range(-(fine_steps - 4), 4)}
        else:  # no knee below the top level: a linear sweep shows it, and the maths says so
            knee = max_level_pct
            plan = list(np.linspace(ae_level, max_level_pct, 6)[1:-1])
            fine = set()
        _take_levels(station, sensor, frames, [(lv, round(lv, 3) in fine) for lv in sorted(plan)
                                               if 0.0 < lv <= max_level_pct], max_level_pct)
    return _LightSweep(frames, exposure, black, white, cfa, slope, knee)


def _take_levels(station: Station, sensor: str, frames: dict[float, dict[str, Any]],
                 levels: list[tuple[float, bool]], max_level_pct: float) -> None:
    """A frame at each (level, with preview) not yet in ``frames`` (or wanting a preview it lacks), in order;
    each summarised on the analysis pool behind the next one's light change and capture."""
    pool = analysis_pool(station)
    jobs: list[tuple[float, Pending[dict[str, Any]]]] = []
    has_luma = {lv: frames[lv]["luma_mean"] is not None for lv in frames}
    for level, preview in levels:
        level = round(min(max(level, 0.001), max_level_pct), 3)
        if level in has_luma and (has_luma[level] or not preview):
            continue
        set_light(station, level)
        shot = capture_shot(station, sensor, ("raw10", "preview") if preview else ("raw10",))
        jobs.append((level, pool.submit(f"zebra sweep: frame at {level:g} % light", _summary, shot)))
        has_luma[level] = preview
    for level, job in jobs:
        frames[level] = job.result()


def _summary(shot: Any) -> dict[str, Any]:
    """A sweep frame reduced to what the calibration takes (issue 13: numbers, no pixels kept): the channel
    means of the RAW's central region and the mean luma of the preview's."""
    rows, cols = centre_region(shot.raw.shape, ROI_FRACTION)
    means = channel_means(np.ascontiguousarray(shot.raw[rows, cols]), shot.frame.cfa, 1.0)
    luma_mean = None
    luma = shot_luma(shot)  # decoded a band of rows at a time: no 150 MB RGB preview (issue 13)
    if luma is not None:
        prow, pcol = centre_region(luma.shape, ROI_FRACTION)
        centre = np.ascontiguousarray(luma[prow, pcol])
        del luma
        luma_mean = centre_luma_mean(centre, 1.0)
    truth = shot.truth or {}
    return {"seq": shot.seq, "means": means, "luma_mean": luma_mean,
            "truth_clip": truth.get("clip_level_dn"), "truth_black": truth.get("black_level")}


def _sweep_row(level: float, record: dict[str, Any]) -> dict[str, Any]:
    """One sweep frame as the result lists it."""
    return {"level_pct": level, "seq": record["seq"], "channel_means_dn": record["means"],
            "preview_luma": record["luma_mean"], "truth_clip_level_dn": record["truth_clip"],
            "truth_black_level_dn": record["truth_black"]}


def _knee_level(levels: list[float], frames: dict[float, dict[str, Any]], clip: float, black: float,
                slope: float, estimate: float) -> float:
    """The light level where the brightest channel's centre mean reaches ``clip``: interpolated on the sweep
    between the last frame below 98 % of it and the next, else the linear estimate."""
    target = black + 0.98 * (clip - black)
    tops = [max(frames[lv]["means"].values()) for lv in levels]
    for i in range(1, len(levels)):
        if tops[i - 1] < target <= tops[i]:
            x0, x1, y0, y1 = levels[i - 1], levels[i], tops[i - 1], tops[i]
            return float(x0 + (x1 - x0) * (target - y0) / (y1 - y0)) / 0.98
    return float((clip - black) / slope) if slope > 0 else float(estimate)


def sweep_plot(result: ZebraResult) -> bytes:
    """The light sweep: each channel's centre mean against the light, clip levels and T_raw; the preview
    luma on the right axis with T_luma (matplotlib, PNG bytes)."""
    from calibration.figures import new_figure

    levels = [s["level_pct"] for s in result.sweep]
    colours = {"R": "tab:red", "Gr": "tab:green", "Gb": "olivedrab", "B": "tab:blue"}
    fig, ax = new_figure(figsize=(7.5, 4.2), dpi=100)
    for name, colour in colours.items():
        ax.plot(levels, [s["channel_means_dn"].get(name, np.nan) for s in result.sweep], "o-", ms=3,
                color=colour, lw=1, label=name)
    ax.axhline(result.clip_level_dn, color="k", ls="--", lw=0.8, label=f"clip {result.clip_level_dn:.1f} DN")
    ax.axhline(result.raw_threshold_dn, color="m", lw=1, label=f"T_raw {result.raw_threshold_dn} DN")
    ax.set_xlabel("light level (% of full scale)")
    ax.set_ylabel("centre mean (DN)")
    luma = [(s["level_pct"], s["preview_luma"]) for s in result.sweep if s["preview_luma"] is not None]
    right = None
    if luma:
        right = RightAxis(*zip(*luma, strict=True), "s", "0.3", "preview luma",
                          f"preview luma Y' (T_luma {result.luma_threshold})",
                          ((result.luma_threshold, {"color": "0.3", "ls": ":", "lw": 1}),))
    return twin_axis_png(fig, ax, f"zebra sweep: {result.sensor} {result.lens or ''} gain {result.gain:g}, "
                         f"{result.exposure_us} us", right=right, title_size=9, legend_loc="lower right")


# --- verification -------------------------------------------------------------------------------

@dataclass
class ZebraVerification(ResultParts):
    """The phone's zebra mask against raw truth on one frame of a scene with clipped and unclipped areas."""

    sensor: str
    mode: str
    threshold: int
    clip_level_dn: float
    black_level_dn: float
    exposure_us: int
    level_pct: float
    chart: str | None
    seq: int
    missed_fraction: float | None
    false_flag_fraction: float | None
    counts: dict[str, Any]
    passed: bool
    overlay_png: bytes = field(default=b"", repr=False)

    @measures(Declared("zebra_missed_pct", "%", "{case}/{mode}"),
              Declared("zebra_false_flag_pct", "%", "{case}/{mode}"))
    def measurements(self) -> dict[str, float]:
        """% of the pixels raw truth flags that the phone missed, and of those it flagged without cause."""
        return {"zebra_missed_pct": 100.0 * (self.missed_fraction or 0.0),
                "zebra_false_flag_pct": 100.0 * (self.false_flag_fraction or 0.0)}

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "overlay_png"}

    def attachments(self) -> dict[str, bytes]:
        return {f"zebra {self.mode} mask vs raw truth {self.sensor}": self.overlay_png}


def verify_zebra(station: Station, sensor: str, result: ZebraResult, mode: str = "raw", *, chart: str | None = "steps",
                 defocus: bool = True, exposure_us: int | None = None,
                 clip_level_dn: float | None = None) -> ZebraVerification:
    """The phone's zebra (``mode`` raw or luma, at the thresholds of ``result``) against raw truth.

    The scene: ``chart`` (the step chart by default) under the calibration's knee light level, defocused
    (``defocus``: the M lens's ring to its infinity end, the main camera at its closest focus) so that its
    levels blend smoothly, as highlights do in a picture (a luma zebra sees the demosaiced preview, which
    at a razor-sharp edge mixes a quad with its neighbours). The exposure: ``exposure_us``, else chosen
    from a first RAW frame (``verification_exposure``) so that few pixels sit near the clip level, with
    enough clipped and enough well below it. RAW10 (new) and the zebra mask (last) of one frame go to
    ``calibration.zebra.verify_zebra``; raw truth is judged at ``clip_level_dn`` (default: the calibrated
    lowest clip level).
    """
    if mode not in ("raw", "luma"):
        raise InputError(f"zebra mode {mode!r}; allowed: raw, luma")
    require_lens(station, sensor, result.lens, result.aperture)
    require_chart(station, chart)
    clip = float(result.clip_level_dn if clip_level_dn is None else clip_level_dn)
    threshold = result.raw_threshold_dn if mode == "raw" else result.luma_threshold
    station.dut.configure(sensor, analog_gain=result.gain, exposure_us=int(exposure_us or result.exposure_us),
                          zebra={"enabled": False})
    try:
        with lit(station, min(result.knee_level_pct, 100.0)):
            if defocus and sensor == "main":
                station.dut.configure(sensor, focus_m=0.05)
            elif defocus and result.lens is not None:
                focus_axis(station, sensor).move(station, focus_axis(station, sensor).lo)
            if exposure_us is None:
                probe = capture_shot(station, sensor, ("raw10",))
                exposure_us = verification_exposure(probe.raw, result.exposure_us, clip, probe.frame.black_level)
            station.dut.configure(sensor, exposure_us=int(exposure_us),
                                  zebra={"enabled": True, "mode": mode, "threshold": int(threshold)})
            shot = capture_shot(station, sensor, ("raw10", "zebra_mask"))
    finally:
        station.dut.configure(sensor, zebra={"enabled": False}, **({"focus_m": None} if sensor == "main" else {}))
    black = float(shot.frame.black_level)
    mask = shot.take_grey_mask("zebra_mask")  # no second, bool 50 MP frame
    report = verify_zebra_mask(mask, shot.raw, clip, black)
    counts = {k: report[k] for k in ("clipped_pixels", "missed_pixels", "below_pixels", "false_flag_pixels",
                                     "below_level_dn", "max_missed_fraction", "max_false_flag_fraction")}
    return ZebraVerification(sensor=sensor, mode=mode, threshold=int(threshold), clip_level_dn=clip,
                             black_level_dn=black, exposure_us=int(exposure_us), level_pct=result.knee_level_pct,
                             chart=chart, seq=shot.seq, missed_fraction=report["missed_fraction"],
                             false_flag_fraction=report["false_flag_fraction"], counts=counts,
                             passed=bool(report["pass"]), overlay_png=zebra_overlay(mask, shot.raw, clip, black))


def verification_exposure(cfa: np.ndarray, exposure_us: int, clip_dn: float, black_dn: float) -> int:
    """The exposure (us) for the zebra check, from a RAW frame of the scene taken at ``exposure_us``.

    The scene scales with exposure (``k`` times brighter at ``k`` times the exposure, below clipping), so
    each quad's brightest sample ``q`` (relative to clip, above black) becomes ``k q``. Of the ``k`` that
    leave at least ``VERIFY_MIN_CLIPPED`` of the quads clipped (``k q >= 1.1``) and ``VERIFY_MIN_BELOW``
    well below (``k q < 0.9``), the one with the fewest quads in the band ``0.9 <= k q < 1.1``: pixels near
    clip are where noise decides, and the zebra check is about the clear cases.
    """
    q = (quad_max(cfa)[::2, ::2].astype(np.float32) - black_dn) / max(clip_dn - black_dn, 1.0)
    q = np.sort(q[q > 0.0].ravel())
    if q.size == 0:
        return int(exposure_us)
    k = np.geomspace(1.0, VERIFY_MAX_SCALE, 256)
    below = np.searchsorted(q, 0.9 / k) / q.size
    clipped = 1.0 - np.searchsorted(q, 1.1 / k) / q.size
    band = 1.0 - below - clipped
    ok = (clipped >= VERIFY_MIN_CLIPPED) & (below >= VERIFY_MIN_BELOW)
    pick = int(np.argmin(np.where(ok, band, np.inf))) if ok.any() else int(np.argmin(np.abs(clipped - 0.5)))
    return int(round(exposure_us * float(k[pick])))


#: Quad rows of the zebra overlay worked out at once (bounds its float temporaries at 50 MP, issue 13).
OVERLAY_BAND_QUAD_ROWS = 256


def zebra_overlay(mask: np.ndarray, cfa: np.ndarray, clip_dn: float, black_dn: float,
                  false_flag_level: float = 0.95) -> bytes:
    """Quad-resolution picture of the check: grey raw level (quad max), flagged pixels magenta, missed
    clipped pixels red, falsely flagged ones (below 95 % of clip) blue. PNG bytes. Worked out a band of
    quad rows at a time into one 8-bit picture (each band's pixels are those of the whole-frame formula)."""
    height, width = cfa.shape[0] // 2, cfa.shape[1] // 2
    full_mask = mask.shape == cfa.shape
    out = np.empty((height, width, 3), np.uint8)
    for q0 in range(0, height, OVERLAY_BAND_QUAD_ROWS):
        q1 = min(q0 + OVERLAY_BAND_QUAD_ROWS, height)
        flagged = mask[2 * q0:2 * q1:2, ::2] != 0 if full_mask else None
        out[q0:q1] = _overlay_band(flagged, cfa[2 * q0:2 * q1], clip_dn, black_dn, false_flag_level)
    return png_bytes(out, 1024)


def _overlay_band(flagged: np.ndarray | None, cfa: np.ndarray, clip_dn: float, black_dn: float,
                  false_flag_level: float) -> np.ndarray:
    """``zebra_overlay``'s colours of one band of quads (``flagged`` None: no mask of the RAW's geometry)."""
    top = quad_max(cfa).astype(np.float32)
    grey = np.clip((top - black_dn) / max(clip_dn - black_dn, 1.0), 0.0, 1.0)
    if flagged is None:
        flagged = np.zeros(top.shape, bool)
    clipped = top >= clip_dn
    below = top < black_dn + false_flag_level * (clip_dn - black_dn)
    rgb = np.repeat((grey * 200.0)[..., None], 3, axis=2)
    rgb[flagged] = 0.5 * rgb[flagged] + np.array([127.0, 0.0, 127.0])
    rgb[clipped & ~flagged] = (255.0, 0.0, 0.0)
    rgb[below & flagged] = (0.0, 64.0, 255.0)
    return rgb.astype(np.uint8)
