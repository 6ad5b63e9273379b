"""Is the chart the plan asked for on the holder? A look through the phone's main camera decides.

The main camera (the phone's own lens) always sees the holder, whatever M lens is on. The check frames the
chart (rail at the distance where it spans ``CHECK_FILL`` of the main camera's view, gimbal straight),
auto-exposes a RAW frame on its white, and:

- a chart with a pattern must be found by its own detector (``targets``: its ArUco fiducials, or the
  ChArUco board), and the capture must match the chart's reflectance map seen through the detected
  homography (Pearson correlation of the linear quad-mean image with the map, >= ``MIN_CORRELATION``):
  every fiducial chart carries the same four markers, its pattern tells them apart;
- the flat field must show no marker and be smooth (over the central region, the spread of the local level
  relative to the smooth background within ``FLAT_MAX_SPREAD`` of its median: lens falloff divides out).

Mount, main camera settings and light are put back as they were. Nothing here reads the twin.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from station.errors import InputError

if TYPE_CHECKING:
    from station.station import Station

#: The chart spans this fraction of the main camera's view width for the check.
CHECK_FILL = 0.8
#: The capture must correlate at least this well with the chart's reflectance map through the homography.
MIN_CORRELATION = 0.6
#: Flat field: (p98 - p2) / median of the local level over the background, central 60 %, at most this.
FLAT_MAX_SPREAD = 0.15
#: The check's image has at most this many block means on its long side (whole CFA quads, see ``_grey``).
GREY_MAX_SIDE_PX = 1024
#: The light level for the check when the light is off, % of full scale.
CHECK_LEVEL_PCT = 80.0


@dataclass(frozen=True)
class ChartCheck:
    """What the check saw: ``ok`` and, when not, what was wrong (one line)."""

    ok: bool
    detail: str


def _grey(shot: Any) -> tuple[np.ndarray, int]:
    """The RAW frame's block means above black, float32 (linear), and the block's side in sensor pixels: 2x2
    quads up to ``GREY_MAX_SIDE_PX`` quads on the long side, larger even blocks beyond (a 50 MP frame: 8x8,
    the CI readout's 1024 x 768 again), reduced straight from the uint16 frame without a float copy of it."""
    frame = shot.frame
    data = frame.data
    h, w = data.shape
    block = 2 * max(1, -(-max(h, w) // (2 * GREY_MAX_SIDE_PX)))
    gh, gw = h // block, w // block
    grey = data[: gh * block, : gw * block].reshape(gh, block, gw, block).mean(axis=(1, 3), dtype=np.float32)
    grey -= np.float32(frame.black_level)
    return np.maximum(grey, np.float32(0.0), out=grey), block


def _u8(grey: np.ndarray) -> np.ndarray:
    top = float(np.percentile(grey, 99.5)) or 1.0
    return np.clip(grey * (255.0 / top), 0, 255).astype(np.uint8)


def _correlation(chart: Any, homography: np.ndarray, grey: np.ndarray, block: int = 2, step: int = 4) -> float:
    """Pearson correlation of ``grey`` (means of ``block`` x ``block`` pixels) with the chart's reflectance
    through ``homography`` (chart mm -> full-resolution px), over the grid points that fall on the chart."""
    h, w = grey.shape
    v, u = np.mgrid[0:h:step, 0:w:step].astype(np.float64)
    centre = 0.5 * (block - 1)
    full_u, full_v = block * u + centre, block * v + centre  # block centre in full-resolution pixels
    inv = np.linalg.inv(homography)
    den = inv[2, 0] * full_u + inv[2, 1] * full_v + inv[2, 2]
    x = (inv[0, 0] * full_u + inv[0, 1] * full_v + inv[0, 2]) / den
    y = (inv[1, 0] * full_u + inv[1, 1] * full_v + inv[1, 2]) / den
    inside = (x >= 0) & (x <= chart.width_mm) & (y >= 0) & (y <= chart.height_mm)
    if np.count_nonzero(inside) < 100:
        return 0.0
    refl = chart.reflectance_at(x[inside], y[inside]).reshape(-1, 3).mean(axis=1)
    seen = grey[0:h:step, 0:w:step][inside]
    if float(np.std(refl)) == 0.0 or float(np.std(seen)) == 0.0:
        return 0.0
    return float(np.corrcoef(refl, seen)[0, 1])


def _markers_seen(image8: np.ndarray) -> int:
    """ArUco markers of the fiducial dictionary in the image (the flat field shows none)."""
    from targets.fiducials import fiducial_dictionary

    _, ids, _ = cv2.aruco.ArucoDetector(fiducial_dictionary(), cv2.aruco.DetectorParameters()).detectMarkers(
        image8)
    return 0 if ids is None else int(np.asarray(ids).size)


def judge(chart_spec: str, grey: np.ndarray, block: int = 2) -> ChartCheck:
    """Does ``grey``, the means of ``block`` x ``block`` sensor pixels (2: CFA quads), show ``chart_spec``?
    (pure: the capture is given)"""
    from targets.base import ChartNotFound
    from targets.registry import get_chart

    try:
        chart = get_chart(chart_spec)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    image8 = _u8(grey)
    if chart.name == "flat":
        h, w = grey.shape
        if float(np.median(grey)) <= 0:
            return ChartCheck(False, "the frame is dark: no light on the diffuser")
        # local levels over the smooth background (lens falloff divided out): a pattern shows, falloff does not
        local = cv2.GaussianBlur(grey, (0, 0), 3.0) / np.maximum(cv2.GaussianBlur(grey, (0, 0), w / 16.0), 1e-3)
        centre = local[int(0.2 * h):int(0.8 * h), int(0.2 * w):int(0.8 * w)]
        spread = float(np.percentile(centre, 98) - np.percentile(centre, 2)) / float(np.median(centre))
        markers = _markers_seen(image8)
        if markers or spread > FLAT_MAX_SPREAD:
            return ChartCheck(False, f"not a flat field: {markers} chart marker(s) seen, levels spread "
                                     f"{100 * spread:.0f} % of the median (at most {100 * FLAT_MAX_SPREAD:.0f} %)")
        return ChartCheck(True, f"flat: spread {100 * spread:.0f} %")
    try:
        detection = chart.detect(image8)
    except ChartNotFound as exc:
        return ChartCheck(False, f"the {chart.name} chart was not found ({exc})")
    if detection.homography is None:
        return ChartCheck(False, f"the {chart.name} chart was not located")
    full = np.asarray(detection.homography, dtype=np.float64).copy()
    full[:2] *= float(block)  # the detection ran on the block-mean image
    r = _correlation(chart, full, grey, block)
    if r < MIN_CORRELATION:
        return ChartCheck(False, f"markers found, but the pattern is not the {chart.name} chart's "
                                 f"(correlation {r:.2f}, at least {MIN_CORRELATION:g})")
    return ChartCheck(True, f"{chart.name}: correlation {r:.2f}")


def check_chart(station: Station, chart_spec: str) -> ChartCheck:
    """Frame ``chart_spec`` in the main camera, take an auto-exposed RAW frame and ``judge`` it; the mount,
    the main camera's settings and the light are restored afterwards."""
    from station.procedures.captures import auto_exposure_us
    from station.procedures.framing import framing_distance_mm
    from targets.registry import get_chart

    chart = get_chart(chart_spec)
    position = station.mount.position()
    settings = station.dut.configure("main")
    light_on = bool(station.light.output())
    level = float(station.light.level_pct())
    try:
        distance = framing_distance_mm(station, "main", None, chart.width_mm, CHECK_FILL)
        axes = station.config.mount.axes
        station.mount.move_to(distance=distance, **{k: 0.0 for k in ("pan", "tilt") if k in axes})
        station.dut.configure("main", focus_m=None, analog_gain=1.0)
        if not light_on:
            station.light.set_level_pct(CHECK_LEVEL_PCT)
            station.light.set_output(True)
            station.light.wait_settled()
        statistic = "centre" if chart.name == "flat" else "p99"
        _, shot = auto_exposure_us(station, "main", target_fraction=0.6, statistic=statistic, tolerance=0.2)
        return judge(chart_spec, *_grey(shot))
    finally:
        with contextlib.suppress(Exception):
            if not light_on:
                station.light.set_output(False)
                station.light.set_level_pct(level)
        restore = {k: settings[k] for k in ("exposure_us", "analog_gain", "focus_m") if k in settings}
        station.dut.configure("main", **restore)
        station.mount.move_to(**{k: float(v) for k, v in position.items()})
