"""Twin captures for the calibration-against-truth tests (``test_twin_truth_*``), rendered once per process.

Each scene builds a ``station.twin.world.World`` (CI resolution, light settled at once, the M lens's ring
focused on the chart unless told otherwise) and calls ``station.twin.render`` directly. Small renders are
cached with ``functools.lru_cache`` and handed out read-only: tests share them and must not write into them.
Nothing here imports ``calibration``: the scenes are the ground truth's side.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import cv2
import numpy as np

from station.twin.lenses import get_lens
from station.twin.render import render_mean_electrons, render_raw
from station.twin.world import World

#: The large ChArUco board of ``test_twin_render``: 1152 x 864 mm, covers the view at every pose below.
CALIBRATION_BOARD = "charuco:48x36:24:18:DICT_5X5_1000"
#: Pan/tilt (deg) of the calibration views, 1 m from the board: centre, the four sides, the four corners.
CALIBRATION_POSES = ((0.0, 0.0), (15.0, 0.0), (-15.0, 0.0), (0.0, 12.0), (0.0, -12.0), (10.5, 8.4),
                     (-10.5, 8.4), (10.5, -8.4), (-10.5, -8.4))
#: Flat-field exposures for the photon transfer, as fractions of the exposure that fills a G pixel on the
#: axis to saturation: six points low enough for EMVA's gain fit on every channel, then past saturation of
#: R and B (about 1.8x less sensitive than G) in the corners.
PTC_FRACTIONS = (0.05, 0.1, 0.2, 0.3, 0.45, 0.6, 0.75, 0.9, 1.2, 1.6, 2.2, 3.0)


def scene(chart: str, lens: str | None, distance_mm: float = 1000.0, pan_deg: float = 0.0,
          tilt_deg: float = 0.0, ring_deg: float | None = None, level_pct: float = 100.0, seed: int = 11) -> World:
    """A world with the light settled at ``level_pct`` (5000 K); ``lens`` an M lens id, or None (bare M
    sensor, or the phone's main camera when rendered as ``"main"``). The ring focuses on the chart unless
    ``ring_deg`` is given."""
    world = World(seed=seed, resolution="ci", time_scale=0.0)  # time_scale 0: the light settles at once
    world.set_light(output=level_pct > 0, level_pct=level_pct, cct_k=5000.0)
    focus = 0.0
    if lens is not None:
        focus = get_lens(lens).ring_for_distance_deg(distance_mm) if ring_deg is None else ring_deg
    for name, value in {"distance": distance_mm, "pan": pan_deg, "tilt": tilt_deg, "focus": focus}.items():
        world.axes[world.axis_map[name]] = value
    world.chart, world.m_lens = chart, lens
    return world


def fill_exposure_us(world: World, sensor: str, fraction: float, settings: dict[str, Any]) -> float:
    """Exposure (us) putting reflectance 1 on the axis at ``fraction`` of saturation (full well or ADC top)."""
    _, truth = render_raw(world, sensor, {**settings, "exposure_us": 1000.0}, 0)
    rate_e_per_us = truth["radiometry"]["electrons_per_s"]["g"] * 1e-6
    saturation_e = truth["sensor_params"]["saturation_e"]
    return fraction * saturation_e / rate_e_per_us


def _frozen(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


# --- slanted edges --------------------------------------------------------------------------------

@lru_cache(maxsize=4)
def sfr_scene(lens: str, aperture: float, distance_mm: float) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """The SFR chart through an M lens focused on it: noise-free mean electrons (the mean of infinitely many
    frames), the flat field at the same settings (mean electrons), and the truth. Reflectance 1 on the axis
    at 85 % of full well (the chart's white, 0.8, at 68 %)."""
    world = scene("sfr", lens, distance_mm)
    settings = {"analog_gain": 1.0, "aperture": aperture}
    settings["exposure_us"] = fill_exposure_us(world, "m", 0.85, settings)
    chart, truth = render_mean_electrons(world, "m", settings)
    world.chart = "flat"
    flat, _ = render_mean_electrons(world, "m", settings)
    return _frozen(chart), _frozen(flat), truth


@lru_cache(maxsize=4)
def sfr_raw(lens: str, aperture: float, distance_mm: float, seq: int = 1) -> tuple[np.ndarray, dict[str, Any]]:
    """One raw frame (uint16 DN: shot and read noise, PRNU, DSNU, 10-bit ADC) of ``sfr_scene``'s capture."""
    world = scene("sfr", lens, distance_mm)
    settings = {"analog_gain": 1.0, "aperture": aperture}
    settings["exposure_us"] = fill_exposure_us(world, "m", 0.85, settings)
    raw, truth = render_raw(world, "m", settings, seq)
    return _frozen(raw), truth


# --- photon transfer ------------------------------------------------------------------------------

Pair = tuple[float, np.ndarray, np.ndarray]


def photon_transfer_frames(analog_gain: float) -> tuple[tuple[Pair, ...], tuple[Pair, ...], dict[str, Any]]:
    """Flat-field pairs at ``PTC_FRACTIONS`` of saturation and dark pairs (light off) at the shortest and
    longest exposure, of the bare M sensor (the light box seen through its cover glass), as
    ``(exposure_s, A, B)``; and the truth of the flats. Not cached: 32 frames are 200 MB; keep the analysis."""
    world = scene("flat", None, 500.0)
    settings: dict[str, Any] = {"analog_gain": float(analog_gain)}
    saturate_us = fill_exposure_us(world, "m", 1.0, settings)
    flats, seq = [], 1
    truth: dict[str, Any] = {}
    for fraction in PTC_FRACTIONS:
        shot = {**settings, "exposure_us": fraction * saturate_us}
        a, truth = render_raw(world, "m", shot, seq)
        b, _ = render_raw(world, "m", shot, seq + 1)
        flats.append((shot["exposure_us"] * 1e-6, _frozen(a), _frozen(b)))
        seq += 2
    world.set_light(output=False)
    darks = []
    for fraction in (PTC_FRACTIONS[0], PTC_FRACTIONS[-1]):
        shot = {**settings, "exposure_us": fraction * saturate_us}
        a, _ = render_raw(world, "m", shot, seq)
        b, _ = render_raw(world, "m", shot, seq + 1)
        darks.append((shot["exposure_us"] * 1e-6, _frozen(a), _frozen(b)))
        seq += 2
    return tuple(flats), tuple(darks), truth


# --- ChArUco views --------------------------------------------------------------------------------

def green_image(raw: np.ndarray, truth: dict[str, Any]) -> np.ndarray:
    """The G channel of OpenCV's bilinear demosaic (RGGB: OpenCV's "BG") of a raw frame above black, float32.

    The twin's camera model (``truth["intrinsics"]``) is the G image's: R and B are that image magnified about
    the principal point by the lens's lateral CA (``truth["ca_scale"]``), so a luma of the three is no single
    pinhole camera.
    """
    black, white = float(truth["black_level"]), float(truth["white_level"])
    dn = np.clip((raw.astype(np.float32) - black) * (65535.0 / (white - black)), 0, 65535).astype(np.uint16)
    return cv2.cvtColor(dn, cv2.COLOR_BayerBG2BGR)[:, :, 1].astype(np.float32)


def charuco_views(lens: str, aperture: float) -> tuple[tuple[tuple[str, np.ndarray, dict[str, Any]], ...], str]:
    """Raw renders of ``CALIBRATION_BOARD`` at ``CALIBRATION_POSES``, 1 m away, white at 80 % of full well:
    ``((name, raw uint16, truth), ...)`` and the board spec. Not cached (57 MB): keep what is measured."""
    settings = {"analog_gain": 1.0, "aperture": aperture}
    settings["exposure_us"] = fill_exposure_us(scene("flat", lens, 1000.0), "m", 0.8, settings)
    views = []
    for i, (pan, tilt) in enumerate(CALIBRATION_POSES):
        raw, truth = render_raw(scene(CALIBRATION_BOARD, lens, 1000.0, pan, tilt), "m", settings, i + 1)
        views.append((f"pan{pan:+g}_tilt{tilt:+g}", _frozen(raw), truth))
    return tuple(views), CALIBRATION_BOARD


# --- flats and the ColorChecker -------------------------------------------------------------------

@lru_cache(maxsize=4)
def flat_frames(lens: str, aperture: float | None, frames: int = 2) -> tuple[tuple[np.ndarray, ...], dict[str, Any]]:
    """Raw flat fields (1 m, white at 80 % of full well) through ``lens`` (an M lens id, or ``"main"`` for
    the phone's own camera focused at 1 m)."""
    sensor = "main" if lens == "main" else "m"
    world = scene("flat", None if lens == "main" else lens, 1000.0)
    settings: dict[str, Any] = {"analog_gain": 1.0, "aperture": aperture, "focus_m": 1.0}
    settings["exposure_us"] = fill_exposure_us(world, sensor, 0.8, settings)
    out, truth = [], {}
    for seq in range(1, frames + 1):
        raw, truth = render_raw(world, sensor, settings, seq)
        out.append(_frozen(raw))
    return tuple(out), truth


@lru_cache(maxsize=2)
def colorchecker_raw(lens: str, aperture: float, distance_mm: float = 1000.0) -> tuple[np.ndarray, dict[str, Any]]:
    """One raw frame of the ColorChecker (with the station's fiducials), white at 80 % of full well."""
    settings = {"analog_gain": 1.0, "aperture": aperture}
    settings["exposure_us"] = fill_exposure_us(scene("flat", lens, distance_mm), "m", 0.8, settings)
    raw, truth = render_raw(scene("colorchecker", lens, distance_mm), "m", settings, 1)
    return _frozen(raw), truth
