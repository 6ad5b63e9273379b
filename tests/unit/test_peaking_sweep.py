"""calibration.peaking_sweep: the frame-by-frame calibration gives exactly the batch ``calibrate_peaking``'s
result (the reference) on a synthetic sweep fed in any order and from several threads; the histogram sharpness
equals the float64 mean of P^2; errors as the batch's; the spill folder is gone after ``close``."""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pytest

from calibration.peaking import PeakingCalibrationError, calibrate_peaking, peaking_response
from calibration.peaking_sweep import PeakingSweep, calibrate_sweep, sharpness
from tests.unit import test_peaking
from tests.unit.test_peaking import COC_PX, sweep

#: The batch tests' module fixtures: the same sweep and flat fields feed the incremental calibration.
focus_sweep, flats = test_peaking.focus_sweep, test_peaking.flats


def _same(a: object, b: object) -> None:
    """Every field of two PeakingCalibrations equal, bit for bit (arrays element-wise)."""
    for f in dataclasses.fields(a):  # type: ignore[arg-type]
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, np.ndarray):
            assert np.array_equal(x, y), f.name
        else:
            assert x == y, f.name


def test_incremental_equals_batch_in_any_order_and_from_threads(focus_sweep, flats) -> None:
    reference = calibrate_peaking(sorted(focus_sweep, key=lambda f: f[0]), flats, coc_px=COC_PX)
    shuffled = [focus_sweep[i] for i in np.random.default_rng(3).permutation(len(focus_sweep))]
    _same(calibrate_sweep(shuffled, flats, coc_px=COC_PX), reference)
    with PeakingSweep(COC_PX) as acc, ThreadPoolExecutor(3) as pool:
        list(pool.map(lambda f: acc.add_frame(*f), shuffled))
        list(pool.map(acc.add_flat, flats))
        _same(acc.calibrate(), reference)
        position, luma = focus_sweep[4]
        assert np.array_equal(acc.luma(position), luma)
        spill = Path(acc._dir.name)
        assert len(list(spill.iterdir())) == len(focus_sweep)
    assert not spill.exists()


def test_sharpness_from_the_histogram_is_the_float_mean(focus_sweep, monkeypatch) -> None:
    import calibration.peaking as peaking

    monkeypatch.setattr(peaking, "_HIST_CHUNK", 1000)  # several chunks per frame
    for _, luma in focus_sweep[:4]:
        response = peaking_response(luma)
        assert sharpness(response) == float(np.mean(np.square(response, dtype=np.float64)))
    extreme = np.zeros((64, 64), np.uint8)
    extreme[::2, ::2] = 255  # P up to 1020
    response = peaking_response(extreme)
    assert sharpness(response) == float(np.mean(np.square(response, dtype=np.float64)))


def test_errors_as_the_batch(focus_sweep, flats) -> None:
    with pytest.raises(PeakingCalibrationError, match="two or more frames, got 1"):
        calibrate_sweep(focus_sweep[:1], flats, coc_px=COC_PX)
    with pytest.raises(PeakingCalibrationError, match="no flat-field frames"):
        calibrate_sweep(focus_sweep, [], coc_px=COC_PX)
    with pytest.raises(PeakingCalibrationError, match=r"frame at focus 9 is \(8, 8\), expected"):
        calibrate_sweep([*focus_sweep, (9.0, np.zeros((8, 8), np.uint8))], flats, coc_px=COC_PX)
    with pytest.raises(PeakingCalibrationError, match=r"flat frame is \(8, 8\), the sweep's frames"):
        calibrate_sweep(focus_sweep, [np.zeros((8, 8), np.uint8)], coc_px=COC_PX)
    with pytest.raises(PeakingCalibrationError, match="focus sweep never reaches focus"):
        calibrate_sweep(sweep(np.linspace(1.6, 4.0, 7)), flats, coc_px=COC_PX)
    with pytest.raises(ValueError, match="coc_px"):
        PeakingSweep(0.0)


def test_chart_edges_in_chunks_and_bands_equal_all_at_once(focus_sweep, monkeypatch) -> None:
    import calibration.peaking_edges as peaking_edges

    luma = focus_sweep[7][1]
    whole = peaking_edges.chart_edges(luma)
    assert len(whole.points) > 100
    monkeypatch.setattr(peaking_edges, "_CLEAN_CHUNK", 7)
    monkeypatch.setattr(peaking_edges, "_GRADIENT_BAND_ROWS", 13)  # 192 rows: 15 bands, each with its margins
    chunked = peaking_edges.chart_edges(luma)
    _same(chunked, whole)
    lin = peaking_edges._decode_lut("srgb")[luma]
    smooth = cv2.GaussianBlur(lin, (0, 0), 1.5)  # the whole-frame filters, as chart_edges had them
    ys, xs = np.nonzero(luma > 0)
    gx, gy = peaking_edges._gradient_at(luma, peaking_edges._decode_lut("srgb"), ys, xs)
    assert np.array_equal(gx, cv2.Sobel(smooth, cv2.CV_32F, 1, 0, ksize=3)[ys, xs])
    assert np.array_equal(gy, cv2.Sobel(smooth, cv2.CV_32F, 0, 1, ksize=3)[ys, xs])
