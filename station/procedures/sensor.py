"""Sensor characterisation after EMVA 1288 (Release 4.0 Linear) from a light/exposure sweep, and temporal noise.

Photon transfer: the flat field (the diffuser through the lens, or the light box straight on the bare M
sensor's cover glass) at one light level, flat-field pairs at ``FRACTIONS`` of the exposure that brings the
brightest channel to full scale (metered from one frame at ``PROBE_LEVEL``, the response being linear below
clipping), past saturation so the clip level shows; then the light off and dark pairs at the shortest and the
longest exposure. ``calibration.emva1288.analyze_pairs`` per CFA channel over a central region of interest
(EMVA 1288 allows an ROI; it keeps the lens's falloff out of the spatial non-uniformities): conversion gain K,
read noise, clip level, saturation capacity, linearity error, DSNU, PRNU. The defect pixels found in the same
frames (``defect_exclusion``: hot and warm ones clear of the noise in the longest darks, dead, weak and stuck ones in
the mid-scale flats) are left out of those statistics (a phone line limits defect pixels on their own, EMVA 1288
4.0's defect-pixel chapter: ``station.procedures.defects``); how many, by the frames that showed them, is in the
result.

Temporal noise (a regression check): one dark pair and one flat pair at ``NOISE_LEVEL``: the temporal noise
``sqrt(var(A - B) / 2)`` per channel (EMVA 1288 4.0, 6.2), dark and lit, and the lit SNR.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from station.measurements import Declared, measures
from station.procedures import ProcedureError
from station.procedures.captures import EXPOSURE_US_RANGE, auto_exposure_us, capture_shot, light_off
from station.procedures.framing import case_name, frame_scene
from station.procedures.result import ResultParts
from station.procedures.shading import flat_distance_mm

if TYPE_CHECKING:
    from station.station import Station

#: Flat-pair exposures as fractions of the exposure that brings the brightest channel to full scale:
#: dense below saturation for the gain fit, then past it (R and B, less sensitive, saturate later).
FRACTIONS = (0.05, 0.12, 0.25, 0.45, 0.7, 1.0, 1.5, 2.2, 3.0)
#: The metering frame's level (fraction of full scale, brightest channel, centre).
PROBE_LEVEL = 0.4
#: Central region analysed: this fraction of the frame's width and height; through a lens a smaller one (its
#: falloff within the region smears the clip level and adds to the PRNU).
ROI_FRACTION = 0.5
LENS_ROI_FRACTION = 0.2
#: A hot pixel's dark signal rate above its channel's median, DN/s (``calibration.defects``' default).
HOT_DN_PER_S = 1000.0
#: Temporal noise: the flat pair's level.
NOISE_LEVEL = 0.5


def central_roi(shape: tuple[int, int], fraction: float = ROI_FRACTION) -> tuple[slice, slice]:
    """Rows and columns of the central ``fraction`` of a frame, starting on even pixels (whole CFA quads)."""
    h, w = shape
    rh, rw = int(h * fraction) // 2 * 2, int(w * fraction) // 2 * 2
    r0, c0 = (h - rh) // 4 * 2, (w - rw) // 4 * 2
    return slice(r0, r0 + rh), slice(c0, c0 + rw)


@contextlib.contextmanager
def _light_restored(station: Station) -> Iterator[None]:
    """The light's output as it was before the block (a sweep switches it off for its darks)."""
    was_on = bool(station.light.output())
    try:
        yield
    finally:
        if was_on:
            station.light.set_output(True)
            station.light.wait_settled()


@dataclass
class SensorCharacterization(ResultParts):
    """EMVA 1288 figures per CFA channel of one sensor at one analog gain."""

    PROFILE_SECTION = "sensor_response"

    sensor: str
    analog_gain: float
    cfa: str
    black_level: int
    white_level: int
    exposures_us: list[int]
    roi: tuple[int, int, int, int]  # x, y, w, h
    channels: dict[str, Any]  # name -> calibration.emva1288.SensorChannelResult
    hot_pixels: int = 0  # in the ROI, from the longest dark pair (``hot_pixel_count``)
    excluded_pixels: dict[str, int] = field(default_factory=dict)  # ``defect_exclusion``'s counts
    pictures: dict[str, bytes] = field(default_factory=dict)  # what a person would rather look at
    lens: str | None = None  # the M lens mounted (None: main, or the bare M sensor)

    def worst(self, key: str, how: str = "max") -> float:
        values = [getattr(r, key) for r in self.channels.values()]
        values = [float(v) for v in values if v is not None and math.isfinite(float(v))]
        if not values:
            return math.nan
        return float({"max": max, "min": min, "mean": np.mean}[how](values))

    def summary(self) -> dict[str, float]:
        """The figures the plan measures: gain (mean over channels), the worst of the rest."""
        return {"conversion_gain_dn_per_e": self.worst("system_gain_dn_per_e", "mean"),
                "read_noise_e": self.worst("read_noise_e"), "read_noise_dn": self.worst("read_noise_dn"),
                "clip_level_dn": self.worst("clip_level_dn", "min"),
                "saturation_capacity_e": self.worst("saturation_capacity_e", "min"),
                "linearity_error_pct": self.worst("linearity_error_pct"), "dsnu_e": self.worst("dsnu_e"),
                "prnu_pct": self.worst("prnu_pct")}

    @measures(Declared("sensor_conversion_gain_dn_per_e", "DN/e-"), Declared("sensor_read_noise_e", "e-"),
              Declared("sensor_clip_level_dn", "DN"), Declared("sensor_saturation_capacity_e", "e-"),
              Declared("sensor_linearity_error_pct", "%"), Declared("sensor_dsnu_e", "e-"),
              Declared("sensor_prnu_pct", "%"),
              Declared("sensor_hot_pixels", "px", description="hot pixels in the ROI, longest dark pair"))
    def measurements(self) -> dict[str, float]:
        """What the plan judges: ``summary`` under the limits file's names, and the hot-pixel count."""
        summary = self.summary()
        return {f"sensor_{key}": summary[key] for key in (
            "conversion_gain_dn_per_e", "read_noise_e", "clip_level_dn", "saturation_capacity_e",
            "linearity_error_pct", "dsnu_e", "prnu_pct")} | {"sensor_hot_pixels": self.hot_pixels}

    def profile_section(self) -> dict[str, Any]:
        return {"standard": "EMVA 1288 Release 4.0 Linear", "analog_gain": self.analog_gain, "cfa": self.cfa,
                "black_level": self.black_level, "white_level": self.white_level, "roi_px": list(self.roi),
                "exposures_us": self.exposures_us,
                "channels": {name: r.to_dict() for name, r in self.channels.items()},
                "hot_pixels": {"count": self.hot_pixels, "dark_signal_dn_per_s": HOT_DN_PER_S},
                "excluded_pixels": dict(self.excluded_pixels)}

    def figures(self) -> dict[str, bytes]:
        from calibration.ptc_plot import plot_ptc

        return {f"{case_name(self.sensor, self.lens)}: photon transfer curve (EMVA 1288)":
                plot_ptc(self.channels, "png", title=f"Photon transfer curve (EMVA 1288): {self.sensor}, "
                                                     f"analog gain {self.analog_gain:g}")}


def hot_pixel_count(dark_a: np.ndarray, dark_b: np.ndarray, exposure_s: float, cfa: str) -> int:
    """Pixels of a dark pair whose dark signal rate stands ``HOT_DN_PER_S`` or more above their CFA channel's
    median (EMVA 1288 4.0 defect pixels, ``calibration.defects``)."""
    from calibration.defects import dark_rate_count

    return dark_rate_count([dark_a, dark_b], exposure_s, cfa, HOT_DN_PER_S)


def defect_exclusion(flats: list[tuple[float, np.ndarray, np.ndarray]],
                     darks: list[tuple[float, np.ndarray, np.ndarray]], cfa: str, black_level: float,
                     white_level: float) -> tuple[np.ndarray, dict[str, int]]:
    """The defect pixels a characterisation's statistics leave out, from its own frames: hot and warm ones clear of
    the noise in the longest dark pair (``calibration.defects.dark_outliers``), dead, weak and stuck ones in the flat
    pair nearest mid-scale over the shortest dark pair (``flat_outliers``). The (H, W) mask and its counts: ``dark``,
    ``flat`` and ``total`` (a pixel both show counts once in the total)."""
    from calibration.defects import dark_outliers, flat_outliers

    t_long, *long_pair = max(darks, key=lambda d: d[0])
    _, *short_pair = min(darks, key=lambda d: d[0])
    half_dn = 0.5 * (white_level - black_level)
    _, *mid_pair = min(flats, key=lambda f: abs(0.5 * (float(f[1].mean()) + float(f[2].mean())) - black_level
                                                  - half_dn))
    in_dark = dark_outliers(long_pair, t_long, cfa)
    in_flat = flat_outliers(mid_pair, short_pair, cfa)  # both averaged a CFA plane at a time
    mask = in_dark | in_flat
    return mask, {"dark": int(np.count_nonzero(in_dark)), "flat": int(np.count_nonzero(in_flat)),
                  "total": int(np.count_nonzero(mask))}


def _pair(station: Station, sensor: str, rows: slice, cols: slice) -> tuple[np.ndarray, np.ndarray]:
    """A pair of RAW frames' ROI, each copied out as it arrives (a view would keep its whole frame alive)."""
    a = capture_shot(station, sensor, ("raw10",)).raw[rows, cols].copy()
    b = capture_shot(station, sensor, ("raw10",)).raw[rows, cols].copy()
    return a, b


@dataclass(frozen=True)
class _FrameInfo:
    """What the characterisation keeps of its metering frame: the CFA order and levels it declares."""

    cfa: str
    black_level: float
    white_level: float


def characterize_sensor(station: Station, sensor: str, lens: str | None = None, *, analog_gain: float = 1.0,
                        fractions: tuple[float, ...] = FRACTIONS, roi_fraction: float | None = None
                        ) -> SensorCharacterization:
    """EMVA 1288 photon transfer of ``sensor`` (through M lens ``lens`` as mounted, or bare) at ``analog_gain``.

    Expects the flat chart on the holder and the light on; the light is on again afterwards. ``ProcedureError``
    when the frames cannot give a photon transfer (``calibration.emva1288``).
    """
    from calibration.emva1288 import SensorAnalysisError, analyze_pairs

    frame_scene(station, sensor, lens, flat_distance_mm(station, sensor, lens))
    station.dut.configure(sensor, analog_gain=float(analog_gain))
    probe_us, probe = auto_exposure_us(station, sensor, target_fraction=PROBE_LEVEL, statistic="centre")
    full_us = probe_us / PROBE_LEVEL
    lo, hi = EXPOSURE_US_RANGE
    exposures = sorted({int(min(max(round(f * full_us), lo), hi)) for f in fractions})
    frame = _FrameInfo(probe.frame.cfa, probe.frame.black_level, probe.frame.white_level)
    shape = probe.frame.data.shape
    del probe  # the metering frame is not kept through the sweep
    bare = sensor == "m" and lens is None
    rows, cols = central_roi(shape, roi_fraction or (ROI_FRACTION if bare else LENS_ROI_FRACTION))
    flats = []
    with _light_restored(station):
        for exposure in exposures:
            station.dut.configure(sensor, exposure_us=exposure)
            flats.append((exposure * 1e-6, *_pair(station, sensor, rows, cols)))
        light_off(station)
        darks = []
        for exposure in (exposures[0], exposures[-1]):
            station.dut.configure(sensor, exposure_us=exposure)
            darks.append((exposure * 1e-6, *_pair(station, sensor, rows, cols)))
    excluded, excluded_counts = defect_exclusion(flats, darks, frame.cfa, frame.black_level, frame.white_level)
    try:
        channels = analyze_pairs(flats, darks, cfa=frame.cfa, exclude_mask=excluded)
    except SensorAnalysisError as exc:
        raise ProcedureError(f"{case_name(sensor, lens)}: EMVA 1288 photon transfer failed: {exc}") from None
    roi = (cols.start, rows.start, cols.stop - cols.start, rows.stop - rows.start)
    return SensorCharacterization(sensor=sensor, analog_gain=float(analog_gain), cfa=frame.cfa,
                                  black_level=int(frame.black_level), white_level=int(frame.white_level),
                                  exposures_us=exposures, roi=roi, channels=channels,
                                  hot_pixels=hot_pixel_count(*darks[-1][1:], darks[-1][0], frame.cfa),
                                  excluded_pixels=excluded_counts, lens=lens)


# --- temporal noise -------------------------------------------------------------------------------------

@dataclass
class TemporalNoise(ResultParts):
    """Temporal noise per CFA channel (DN), dark and at a lit level, and the lit signal above dark."""

    sensor: str
    exposure_us: int
    dark_noise_dn: dict[str, float]
    lit_noise_dn: dict[str, float]
    lit_signal_dn: dict[str, float]

    @property
    def dark_noise(self) -> float:
        """The worst channel's dark temporal noise, DN."""
        return float(max(self.dark_noise_dn.values()))

    @property
    def snr(self) -> float:
        """The lowest lit signal-to-noise ratio over the channels."""
        return float(min(self.lit_signal_dn[c] / self.lit_noise_dn[c] for c in self.lit_noise_dn))

    @measures(Declared("noise_dark_dn", "DN", "{sensor}"), Declared("noise_lit_dn", "DN", "{sensor}"),
              Declared("noise_snr", "1", "{sensor}"))
    def measurements(self) -> dict[str, float]:
        """The worst channel's dark and lit temporal noise, and the lowest lit SNR."""
        return {"noise_dark_dn": self.dark_noise, "noise_lit_dn": float(max(self.lit_noise_dn.values())),
                "noise_snr": self.snr}

    def to_dict(self) -> dict[str, Any]:
        return {"exposure_us": self.exposure_us, "dark_noise_dn": self.dark_noise_dn,
                "lit_noise_dn": self.lit_noise_dn, "lit_signal_dn": self.lit_signal_dn, "snr": self.snr}


def _pair_stats(a: np.ndarray, b: np.ndarray, cfa: str) -> tuple[dict[str, float], dict[str, float]]:
    """Per channel: the pair's mean (DN) and temporal noise ``sqrt(var(A - B) / 2)`` (EMVA 1288 4.0, 6.2)."""
    from calibration.emva1288 import channel_slices

    means, noise = {}, {}
    for name, (rs, cs) in channel_slices(cfa).items():
        pa, pb = a[rs, cs].astype(np.float64), b[rs, cs].astype(np.float64)
        means[name] = float(0.5 * (pa.mean() + pb.mean()))
        noise[name] = float(np.sqrt(np.var(pa - pb) / 2.0))
    return means, noise


def temporal_noise(station: Station, sensor: str, lens: str | None = None, *, level_fraction: float = NOISE_LEVEL,
                   roi_fraction: float = ROI_FRACTION) -> TemporalNoise:
    """Dark and lit temporal noise of ``sensor`` over the central ROI: a flat pair with the brightest channel at
    ``level_fraction`` of full scale, then (light off) a dark pair at the same exposure. Expects the flat chart on the
    holder and the light on; the light is on again afterwards."""
    frame_scene(station, sensor, lens, flat_distance_mm(station, sensor, lens))
    exposure, shot = auto_exposure_us(station, sensor, target_fraction=level_fraction, statistic="centre")
    rows, cols = central_roi(shot.frame.data.shape, roi_fraction)
    cfa = shot.frame.cfa
    with _light_restored(station):
        lit_a, lit_b = _pair(station, sensor, rows, cols)
        light_off(station)
        dark_a, dark_b = _pair(station, sensor, rows, cols)
    lit_mean, lit_noise = _pair_stats(lit_a, lit_b, cfa)
    dark_mean, dark_noise = _pair_stats(dark_a, dark_b, cfa)
    signal = {c: lit_mean[c] - dark_mean[c] for c in lit_mean}
    return TemporalNoise(sensor=sensor, exposure_us=int(exposure), dark_noise_dn=dark_noise, lit_noise_dn=lit_noise,
                         lit_signal_dn=signal)
