"""The worked example of issue 11: the dark-frame hot-pixel count in the sensor characterisation (declared beside
the code that takes it, its limits entry, its place in the profile's ``sensor_response`` section)."""

from __future__ import annotations

import numpy as np

from station.limits import load_limits
from station.measurements import declarations_of
from station.procedures.sensor import HOT_DN_PER_S, SensorCharacterization, hot_pixel_count

EXPOSURE_S = 0.02


def _dark_pair(hot: list[tuple[int, int]], warm: list[tuple[int, int]], seed: int = 3) -> tuple[np.ndarray, ...]:
    """Two dark frames: black 64 DN, 2 DN of noise, ``hot`` pixels 2x the hot rate above, ``warm`` ones at half."""
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(2):
        dark = 64.0 + rng.normal(0.0, 2.0, (120, 160))
        for y, x in hot:
            dark[y, x] += 2.0 * HOT_DN_PER_S * EXPOSURE_S
        for y, x in warm:
            dark[y, x] += 0.5 * HOT_DN_PER_S * EXPOSURE_S
        frames.append(np.round(dark).astype(np.uint16))
    return tuple(frames)


def test_hot_pixels_are_counted_against_their_channel_median_and_warm_ones_are_not() -> None:
    hot = [(0, 0), (1, 1), (10, 33), (57, 80), (119, 159)]  # every CFA site, the corners too
    warm = [(5, 5), (60, 61), (100, 2)]
    a, b = _dark_pair(hot, warm)
    assert hot_pixel_count(a, b, EXPOSURE_S, "RGGB") == len(hot)
    assert hot_pixel_count(*_dark_pair([], warm), EXPOSURE_S, "RGGB") == 0
    # the same frames over a ten times longer exposure: a tenth of the rate, no pixel is hot
    assert hot_pixel_count(a, b, 10 * EXPOSURE_S, "RGGB") == 0


def test_the_count_is_declared_in_the_limits_file_and_kept_in_the_profile_section() -> None:
    result = SensorCharacterization(sensor="main", analog_gain=1.0, cfa="RGGB", black_level=64, white_level=1023,
                                    exposures_us=[100, 200], roi=(0, 0, 160, 120), channels={}, hot_pixels=7)
    declared = declarations_of(result.measurements)
    limits = load_limits()
    assert declared["sensor_hot_pixels"].unit == limits.limits_for("sensor_hot_pixels", "main").unit == "px"
    assert result.measurements()["sensor_hot_pixels"] == 7
    assert limits.limits_for("sensor_hot_pixels", "main").verdict(7) == "pass"
    assert limits.limits_for("sensor_hot_pixels", "main").verdict(500) == "fail"
    assert result.profile_section()["hot_pixels"] == {"count": 7, "dark_signal_dn_per_s": HOT_DN_PER_S}
