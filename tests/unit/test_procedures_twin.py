"""The station's own procedures (``station.procedures``: selfcheck, sensor, geometry, shading, sfr, focus) run
through the real drivers against one twin, each judged by the twin's ground truth, never by the code's own
earlier output.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from station.procedures import calibration_path, focus, geometry, selfcheck, sensor, sfr, shading
from station.procedures.captures import set_light
from station.procedures.profile import write_calibration
from station.station import Station
from station.twin.world import FULL_SCALE_LUX
from tests.unit.twin_station import twin_station


@pytest.fixture(scope="module")
def bench() -> Iterator[Station]:
    with twin_station() as station:
        set_light(station, 80.0)
        yield station


def _truth(station: Any, sensor_name: str) -> dict[str, Any]:
    return station.dut.capture_frame(sensor_name).extra["truth"]


def test_light_linearity_finds_the_lights_full_scale(bench: Any) -> None:
    result = selfcheck.light_linearity(bench)
    # the twin's light: FULL_SCALE_LUX at 100 %, linear, no offset
    assert result.slope_lux_per_pct == pytest.approx(FULL_SCALE_LUX / 100.0, rel=0.01)
    assert abs(result.offset_lux) < 0.01 * FULL_SCALE_LUX and result.r2 > 0.9999
    set_light(bench, 80.0)


def test_emva1288_of_the_bare_m_sensor_matches_the_sensor_truth(bench: Any) -> None:
    bench.twin.lens_mount(None)
    bench.twin.chart_set("flat")
    result = sensor.characterize_sensor(bench, "m", fractions=(0.05, 0.15, 0.3, 0.5, 0.7, 1.5, 2.2, 3.0))
    truth = _truth(bench, "m")
    summary = result.summary()
    assert summary["conversion_gain_dn_per_e"] == pytest.approx(truth["conversion_gain_dn_per_e"], rel=0.02)
    assert summary["read_noise_e"] == pytest.approx(truth["read_noise_e"], rel=0.05)
    assert summary["clip_level_dn"] == pytest.approx(truth["clip_level_dn"], abs=2.0)
    assert bench.light.output()  # the darks switched it off; it is back on


def test_shading_map_written_into_the_phone_flattens_its_preview(bench: Any) -> None:
    bench.twin.chart_set("flat")
    before = shading.preview_shading(bench, "main")
    truth = _truth(bench, "main")
    vig = truth["vignetting"]
    r = math.hypot(vig["cx"], vig["cy"]) / vig["r_scale_px"]  # the top-left corner, in focal lengths
    corner = (1 + vig["a2"] * r * r + vig["a4"] * r ** 4) / (1 + r * r) ** 2
    centre = 1.0  # the patches' means: the corner patch reads a little brighter than the very corner
    assert before.corner_ratios["top-left"] == pytest.approx(corner / centre, rel=0.15)
    measured = shading.measure_shading(bench, "main")
    write_calibration(bench, [(calibration_path("main", None, "lens_shading_map"),
                               measured.isp_entry()["lens_shading_map"])])
    after = shading.preview_shading(bench, "main")
    assert after.corner_ratio == pytest.approx(1.0, abs=0.03)


def test_geometry_recovers_the_main_cameras_model(bench: Any) -> None:
    from calibration.geometry import model_gap_px

    bench.twin.chart_set(geometry.BOARD)
    result = geometry.calibrate_geometry(bench, "main")
    truth = _truth(bench, "main")
    k_true = np.array(truth["intrinsics"]["camera_matrix"])
    assert result.views_used == len(geometry.POSES_DEG)
    assert result.result.camera_matrix[0, 0] == pytest.approx(k_true[0, 0], rel=2e-3)
    gap = model_gap_px(k_true, np.array(truth["distortion_opencv"]), result.result.camera_matrix,
                       result.result.dist_coeffs, (truth["width"], truth["height"]), align_rotation=True)
    assert gap < 1.0
    assert bench.mount.position()["pan"] == pytest.approx(0.0) and bench.mount.position()["tilt"] == pytest.approx(0.0)


def test_sfr_ranks_lenses_by_their_true_psf_and_finds_the_ca(bench: Any) -> None:
    bench.twin.chart_set("sfr")
    measured = {}
    for lens, aperture in (("noctilux-m-50-f0.95", 0.95), ("summicron-m-50-f2", 5.6)):
        bench.twin.lens_mount(lens, aperture)
        result = sfr.measure_sfr(bench, "m", lens, f_number=aperture)
        truth = result.frame.extra["truth"]
        assert len(result.edges) == 52 and truth["focus"]["in_focus"]
        measured[lens] = (result, truth)
    (blurred, blurred_truth), (sharp, sharp_truth) = measured["noctilux-m-50-f0.95"], measured["summicron-m-50-f2"]
    assert blurred_truth["psf"]["sigma_px"]["g"] > 2 * sharp_truth["psf"]["sigma_px"]["g"]
    assert blurred.zone_mtf50("centre") < 0.85 * sharp.zone_mtf50("centre")
    ca = sfr.lateral_ca(sharp.frame, sharp.edges)
    for plane, scale in (("R", ca.r_scale), ("B", ca.b_scale)):
        true_ppm = (sharp_truth["ca_scale"][plane.lower()] - 1.0) * 1e6
        assert (scale - 1.0) * 1e6 == pytest.approx(true_ppm, rel=0.4), plane  # sign and size


def test_adapter_focus_finds_the_adapters_back_focus_and_tilt(bench: Any) -> None:
    lens, aperture = "summicron-m-50-f2", 2.0
    bench.twin.lens_mount(lens, aperture)
    bench.twin.adapter_set(back_focus_mm=0.02, tilt_x_deg=0.08, tilt_y_deg=-0.05)
    bench.twin.chart_set("sfr")
    try:
        result = focus.adapter_focus(bench, lens, aperture)
        adapter = _truth(bench, "m")["adapter"]
    finally:
        bench.twin.adapter_set(back_focus_mm=0.0, tilt_x_deg=0.0, tilt_y_deg=0.0)
    assert result.back_focus_mm == pytest.approx(adapter["back_focus_error_mm"], abs=0.002)
    assert result.tilt_x_deg == pytest.approx(adapter["tilt_x_deg"], abs=0.015)
    assert result.tilt_y_deg == pytest.approx(adapter["tilt_y_deg"], abs=0.015)
    assert result.used.sum() >= 40 and result.residual_um < 2.0
