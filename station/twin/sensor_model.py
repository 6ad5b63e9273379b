"""The twin's simple image model: a flat field through a linear sensor (the placeholder for DESIGN 5).

``render_raw`` is the one function the phone service calls to make a frame; the physics
work (chart radiance, lens, full sensor model) replaces it behind the same signature.
The sensor follows the EMVA 1288 linear model: mean DN = black + K * mu_e, variance
K^2 * mu_e + sigma_read^2 (shot noise as its Gaussian approximation), the charge clipped at
the full well, then the 10-bit ADC. No vignetting, no colour, no dark current, no PRNU/DSNU.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

#: Sensor readout geometry by world resolution: full 1-inch sensor, and 4x4-binned CI mode.
RESOLUTIONS: dict[str, dict[str, float]] = {
    "full": {"width": 8192, "height": 6144, "pixel_pitch_um": 1.6},
    "ci": {"width": 2048, "height": 1536, "pixel_pitch_um": 6.4},
}
SENSORS = ("main", "m")
CFA = "RGGB"
BIT_DEPTH = 10
BLACK_LEVEL_DN = 64
WHITE_LEVEL_DN = 1023
#: Photo-electrons collected per lux-second of chart-plane illuminance (flat field, whole pixel).
K_E_PER_LUX_S = 200.0
#: Conversion gain at analog gain 1, DN per electron.
CONVERSION_GAIN_DN_PER_E = 0.25
READ_NOISE_DN = 2.0
#: Full-well capacity, electrons: at gain 1 it fills at 964 DN, below the ADC's top code.
FULL_WELL_E = 3600.0
MODEL = "simple-flat"


def sensor_geometry(resolution: str) -> dict[str, float]:
    """Width, height (pixels) and pixel pitch (um) of both sensors at a world resolution."""
    try:
        return dict(RESOLUTIONS[resolution])
    except KeyError:
        raise ValueError(f"unknown resolution {resolution!r}; allowed: {', '.join(RESOLUTIONS)}") from None


def sensor_truth(analog_gain: float) -> dict[str, float]:
    """The sensor's true parameters at an analog gain (what EMVA 1288 should measure)."""
    gain_dn_per_e = CONVERSION_GAIN_DN_PER_E * analog_gain
    clip = min(BLACK_LEVEL_DN + gain_dn_per_e * FULL_WELL_E, float(WHITE_LEVEL_DN))
    return {"conversion_gain_dn_per_e": gain_dn_per_e, "read_noise_dn": READ_NOISE_DN,
            "full_well_e": FULL_WELL_E, "black_level": BLACK_LEVEL_DN, "white_level": WHITE_LEVEL_DN,
            "clip_level_dn": clip}


def render_raw(world: Any, sensor: str, settings: dict[str, Any], seq: int) -> tuple[np.ndarray, dict]:
    """Render one RGGB CFA frame (uint16, H x W) and its ground truth.

    ``settings`` carries ``exposure_us`` and ``analog_gain``; the noise is seeded by
    ``(world.seed, sensor, seq)``, so the same arguments give the same frame.
    """
    geometry = sensor_geometry(world.resolution)
    height, width = int(geometry["height"]), int(geometry["width"])
    exposure_s = settings["exposure_us"] * 1e-6
    analog_gain = float(settings["analog_gain"])
    lux = world.illuminance_lux()
    truth = sensor_truth(analog_gain)
    gain = truth["conversion_gain_dn_per_e"]
    mean_e = min(lux * exposure_s * K_E_PER_LUX_S, 1e9)
    rng = np.random.default_rng([int(world.seed) & 0xFFFFFFFF, SENSORS.index(sensor), int(seq)])

    if mean_e + 6.0 * math.sqrt(mean_e) < FULL_WELL_E:
        # The well never fills: shot and read noise combine into one Gaussian draw.
        sigma_dn = math.sqrt(gain * gain * mean_e + READ_NOISE_DN**2)
        out = rng.standard_normal((height, width), dtype=np.float32)
        out *= sigma_dn
        out += BLACK_LEVEL_DN + gain * mean_e
    else:
        out = rng.standard_normal((height, width), dtype=np.float32)
        out *= math.sqrt(mean_e)
        out += mean_e
        np.clip(out, 0.0, FULL_WELL_E, out=out)
        out *= gain
        out += BLACK_LEVEL_DN
        read = rng.standard_normal((height, width), dtype=np.float32)
        read *= READ_NOISE_DN
        out += read
        del read
    np.rint(out, out=out)
    np.clip(out, 0, WHITE_LEVEL_DN, out=out)
    frame = out.astype(np.uint16)
    truth.update({"model": MODEL, "mean_signal_e": mean_e, "illuminance_lux": lux,
                  "exposure_s": exposure_s, "analog_gain": analog_gain,
                  "noise_free_mean_dn": min(BLACK_LEVEL_DN + gain * min(mean_e, FULL_WELL_E),
                                          float(WHITE_LEVEL_DN))})
    return frame, truth
