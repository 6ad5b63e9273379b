"""calibration.histogram and calibration.raw_integrity: reference histograms against independent counting
and the twin's golden firmware, the comparison catching a one-bin shift, the overlay plot; missing codes,
black level, CFA order and RAW10 = DNG, each catching its twin firmware regression while golden passes."""

from __future__ import annotations

import numpy as np
import pytest

from calibration.histogram import compare_histograms, luma_histogram, plot_histograms, raw_histogram
from calibration.raw_integrity import (
    RawIntegrityError,
    black_level_from_darks,
    cfa_order_from_target,
    check_black_level,
    code_report,
    missing_codes,
    raw10_equals_dng,
)
from station.twin import firmware as fw

BLACK, WHITE, CLIP = 64, 1023, 964
META = {"sensor": "main", "cfa": "RGGB", "black_level": BLACK, "white_level": WHITE, "bit_depth": 10}


# --- histograms ------------------------------------------------------------------------------------

def test_reference_histograms_against_np_histogram_and_the_twin() -> None:
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    y = (2126 * rgb[..., 0].astype(int) + 7152 * rgb[..., 1].astype(int) + 722 * rgb[..., 2].astype(int)
         + 5000) // 10000
    expected, _ = np.histogram(y, bins=256, range=(0, 256))
    assert luma_histogram(rgb).tolist() == expected.tolist()
    assert luma_histogram(rgb).tolist() == fw.histogram("preview", rgb, "golden")
    cfa = rng.integers(0, WHITE + 1, (48, 64), dtype=np.uint16)
    expected_raw, _ = np.histogram(cfa, bins=1024, range=(0, 1024))
    assert raw_histogram(cfa).tolist() == expected_raw.tolist()
    assert raw_histogram(cfa).tolist() == fw.histogram("raw", cfa, "golden")
    assert int(raw_histogram(cfa).sum()) == cfa.size
    with pytest.raises(ValueError, match="above the top bin"):
        raw_histogram(np.array([[1024]], np.uint16))


def test_compare_catches_the_one_bin_shift_build_and_passes_golden() -> None:
    rng = np.random.default_rng(2)
    rgb = np.clip(rng.normal(120, 25, (64, 64, 3)), 0, 255).astype(np.uint8)
    cfa = np.clip(rng.normal(500, 80, (64, 64)), 0, 1023).astype(np.uint16)
    for source, image, ref in (("preview", rgb, luma_histogram(rgb)), ("raw", cfa, raw_histogram(cfa))):
        golden = compare_histograms(fw.histogram(source, image, "golden"), ref)
        assert golden["l1"] == 0 and golden["max_bin_diff"] == 0 and golden["shift_bins"] == 0
        shifted = compare_histograms(fw.histogram(source, image, "histogram-bin"), ref)
        assert shifted["shift_bins"] == 1, source
        assert shifted["l1"] > 0 and shifted["l1_normalised"] > 0.01
        # independent: the L1 of a histogram against itself moved one bin up
        moved = np.concatenate([[0], ref[:-1]])
        moved[-1] += ref[-1]
        assert compare_histograms(moved, ref)["l1"] == int(np.abs(moved - ref).sum())
        assert compare_histograms(ref, moved)["shift_bins"] == -1


def test_plot_histograms_png(tmp_path) -> None:
    ref = np.bincount(np.random.default_rng(3).integers(0, 256, 5000), minlength=256)
    phone = np.concatenate([[0], ref[:-1]])
    data = plot_histograms(phone, ref)
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


# --- RAW integrity: synthetic sensor frames through the twin's firmware builds -------------------------

def ramp(seed: int = 0, shape: tuple[int, int] = (64, 512)) -> np.ndarray:
    """A smooth ramp from below black to past clip (full well at 964 DN) with shot and read noise."""
    rng = np.random.default_rng(seed)
    level = np.linspace(-5, 1000, shape[1])[None, :] * np.ones((shape[0], 1))
    sig = level + rng.standard_normal(shape) * np.sqrt(0.25 * np.maximum(level, 0) + 4.0)
    return np.clip(np.rint(np.minimum(BLACK + sig, CLIP)), 0, WHITE).astype(np.uint16)


def darks(n: int = 3) -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    return [np.clip(np.rint(BLACK + rng.standard_normal((64, 64)) * 2.0), 0, WHITE).astype(np.uint16)
            for _ in range(n)]


RED_BOX, BLUE_BOX = (8, 40, 8, 40), (8, 40, 56, 88)


def colour_target(cfa: str = "RGGB") -> np.ndarray:
    """Grey background, a red patch and a blue patch, mosaicked as ``cfa`` with noise."""
    rng = np.random.default_rng(9)
    rgb = np.full((48, 96, 3), 300.0)
    y0, y1, x0, x1 = RED_BOX
    rgb[y0:y1, x0:x1] = (700.0, 160.0, 110.0)
    y0, y1, x0, x1 = BLUE_BOX
    rgb[y0:y1, x0:x1] = (120.0, 220.0, 690.0)
    out = np.empty(rgb.shape[:2])
    for i, colour in enumerate(cfa):
        dy, dx = divmod(i, 2)
        out[dy::2, dx::2] = rgb[dy::2, dx::2, "RGB".index(colour)]
    out += rng.standard_normal(out.shape) * 3.0
    return np.clip(np.rint(out), 0, WHITE).astype(np.uint16)


def raw_checks(build: str) -> dict[str, bool]:
    """The three RAW checks on what a build sends (data and declared metadata) for sensor frames."""
    ramp_raw, meta = fw.apply_raw_firmware(ramp(), META, build)
    dark_raw = [fw.apply_raw_firmware(d, META, build)[0] for d in darks()]
    target_raw, meta_t = fw.apply_raw_firmware(colour_target(), META, build)
    black = meta["black_level"]
    codes = code_report(ramp_raw, black, CLIP)
    black_check = check_black_level(black_level_from_darks(dark_raw, meta["cfa"]), black)
    cfa = cfa_order_from_target(target_raw, meta_t["cfa"], {"red": RED_BOX, "blue": BLUE_BOX}, black=black)
    return {"codes": codes["pass"], "black": black_check["pass"], "cfa": cfa["match"]}


def test_golden_build_passes_every_raw_check() -> None:
    assert raw_checks("golden") == {"codes": True, "black": True, "cfa": True}


def test_raw8_truncation_build_is_caught_by_missing_codes() -> None:
    raw, _ = fw.apply_raw_firmware(ramp(), META, "raw8-truncation")
    report = code_report(raw, BLACK, CLIP)
    assert not report["pass"] and report["constant_lsbs"] == 2
    assert "multiples of 4" in report["pattern"] and "8-bit truncation" in report["pattern"]
    assert report["missing_count"] == len(missing_codes(raw, BLACK, CLIP))
    # independent count: of 64..964, exactly the codes that are not multiples of 4 are missing
    assert missing_codes(raw, BLACK, CLIP) == [c for c in range(BLACK, CLIP + 1) if c % 4]
    assert raw_checks("raw8-truncation")["codes"] is False


def test_black_offset_build_is_caught_by_the_black_level() -> None:
    dark_raw = [fw.apply_raw_firmware(d, META, "bl-offset")[0] for d in darks()]
    measured = black_level_from_darks(dark_raw, "RGGB")
    check = check_black_level(measured, BLACK)
    assert not check["pass"] and check["max_offset_dn"] == pytest.approx(fw.BLACK_OFFSET_DN, abs=0.3)
    assert set(measured) == {"R", "Gr", "Gb", "B"}
    golden = check_black_level(black_level_from_darks(darks(), "RGGB"), BLACK)
    assert golden["pass"] and abs(golden["max_offset_dn"]) < 0.3
    # a noiseless ramp from 8 DN above black: the codes just above black are missing, and said so
    report = code_report(np.arange(BLACK + 8, CLIP + 1, dtype=np.uint16)[None, :], BLACK, CLIP)
    assert report["bottom_gap_dn"] == 8 and report["missing"] == list(range(BLACK, BLACK + 8))
    assert "above the declared black level" in report["pattern"]
    assert raw_checks("bl-offset")["black"] is False


def test_cfa_swap_build_is_caught_by_the_coloured_target() -> None:
    data, declared = fw.apply_raw_firmware(colour_target(), META, "cfa-swap")
    result = cfa_order_from_target(data, declared["cfa"], {"red": RED_BOX, "blue": BLUE_BOX}, black=BLACK)
    assert result["measured"] == "RGGB" and result["declared"] == "BGGR" and not result["match"]
    assert raw_checks("cfa-swap")["cfa"] is False
    for order in ("RGGB", "BGGR", "GRBG", "GBRG"):  # every Bayer order is found, from either patch alone
        for patches in ({"red": RED_BOX}, {"blue": BLUE_BOX}, {"red": RED_BOX, "blue": BLUE_BOX}):
            assert cfa_order_from_target(colour_target(order), order, patches)["measured"] == order
    mask = np.zeros((48, 96), bool)
    mask[8:40, 9:39] = True  # a mask not aligned to quads
    assert cfa_order_from_target(colour_target("GRBG"), "GRBG", {"red": mask})["match"]


def test_cfa_order_refuses_a_neutral_target() -> None:
    grey = np.full((32, 32), 300, np.uint16)
    with pytest.raises(RawIntegrityError, match="do not tell the green diagonal"):
        cfa_order_from_target(grey, "RGGB", {"red": (0, 32, 0, 32)})
    with pytest.raises(RawIntegrityError, match="red or a blue patch"):
        cfa_order_from_target(grey, "RGGB", {"green": (0, 32, 0, 32)})


def test_other_builds_leave_raw_alone() -> None:
    for name, build in fw.FIRMWARE_BUILDS.items():
        if build.feature != "raw":
            assert raw_checks(name) == {"codes": True, "black": True, "cfa": True}, name


def test_raw10_equals_dng_of_one_capture(tmp_path) -> None:
    from station.dng import dng_bytes, read_dng
    from station.frame import Frame

    frame = Frame(data=ramp(shape=(16, 64)))
    unpacked = Frame.from_raw10(frame.to_raw10(), 64, 16).data
    dng = read_dng(dng_bytes(frame)).data
    same = raw10_equals_dng(unpacked, dng)
    assert same["equal"] and same["differing_pixels"] == 0
    corrupted = dng.copy()
    corrupted[3, 5] ^= 1
    diff = raw10_equals_dng(unpacked, corrupted)
    assert not diff["equal"] and diff["differing_pixels"] == 1 and diff["max_abs_diff_dn"] == 1
    assert not raw10_equals_dng(unpacked, dng[:, :32])["equal"]


def test_code_counts_in_row_bands_equal_one_bincount_of_the_whole_frame() -> None:
    """``code_counts`` counts a frame a band of rows at a time (no whole-frame intp copy at 50 MP): the counts are
    numpy's one-shot ``bincount`` of every frame, for a frame of more rows than a band and a strided view."""
    from calibration.raw_integrity import _COUNT_CHUNK, code_counts

    frame = np.random.default_rng(5).integers(0, 1024, (2 * _COUNT_CHUNK // 3001 + 7, 3001), dtype=np.uint16)
    view = frame[:, ::3]
    expected = np.bincount(frame.ravel(), minlength=1024) + np.bincount(view.ravel(), minlength=1024)
    assert np.array_equal(code_counts([frame, view]), expected)
    assert np.array_equal(code_counts(frame[0]), np.bincount(frame[0], minlength=1024))
