"""The twin phone's firmware (station.twin.firmware, station.twin.isp) against independent maths.

Each feature of DESIGN 7's table is recomputed here its own way (integer luma, Laplacian by
padding and slicing, np.bincount, per-quad loops, the sRGB formula), and every named build is
shown altering its feature, and only it, on synthetic frames, while the golden build does not.
"""

from __future__ import annotations

import json
from decimal import ROUND_HALF_UP, Decimal

import numpy as np
import pytest

from station.twin import firmware as fw
from station.twin import isp

BLACK, WHITE = 64, 1023
META = {"sensor": "main", "cfa": "RGGB", "black_level": BLACK, "white_level": WHITE, "bit_depth": 10}
UNITY = isp.IspCalibration(wb_gains=(1.0, 1.0, 1.0))
REGRESSION_BUILDS = ("bl-offset", "raw8-truncation", "cfa-swap", "zebra-shift", "peaking-off",
                     "histogram-bin", "no-lens-shading")


# --- independent references ------------------------------------------------------------------

def srgb8(linear: np.ndarray) -> np.ndarray:
    """IEC 61966-2-1 sRGB encoding of linear [0, 1] values, to 8-bit codes (rounded)."""
    x = np.clip(np.asarray(linear, dtype=np.float64), 0.0, 1.0)
    v = np.where(x <= 0.0031308, 12.92 * x, 1.055 * x ** (1 / 2.4) - 0.055)
    return np.floor(v * 255.0 + 0.5).astype(np.int64)


def luma_ref(rgb: np.ndarray) -> np.ndarray:
    """Round half up of 0.2126 R + 0.7152 G + 0.0722 B, in exact integers (units of 1e-4)."""
    r, g, b = (rgb[..., i].astype(np.int64) for i in range(3))
    return (2126 * r + 7152 * g + 722 * b + 5000) // 10000


def laplacian_ref(y: np.ndarray) -> np.ndarray:
    p = np.pad(y.astype(np.int64), 1, mode="edge")
    return np.abs(4 * p[1:-1, 1:-1] - p[1:-1, :-2] - p[1:-1, 2:] - p[:-2, 1:-1] - p[2:, 1:-1])


def mosaic(rgb_dn: np.ndarray, cfa: str = "RGGB") -> np.ndarray:
    """An (H, W) CFA frame taking each pixel's sample from the colour its site has in ``cfa``."""
    h, w, _ = rgb_dn.shape
    out = np.empty((h, w), dtype=np.uint16)
    for i, colour in enumerate(cfa):
        dy, dx = divmod(i, 2)
        out[dy::2, dx::2] = rgb_dn[dy::2, dx::2, "RGB".index(colour)]
    return out


def flat_rgb(h: int, w: int, dn: tuple[float, float, float]) -> np.ndarray:
    return np.broadcast_to(np.rint(np.array(dn)), (h, w, 3)).astype(np.uint16)


def zebra(mode: str, threshold: int, enabled: bool = True) -> dict:
    return {"enabled": enabled, "mode": mode, "threshold": threshold}


# --- catalog ---------------------------------------------------------------------------------

def test_catalog_has_golden_and_one_build_per_regression() -> None:
    catalog = json.loads(json.dumps(fw.firmware_catalog()))
    assert set(catalog) == {"golden", *REGRESSION_BUILDS}
    assert catalog["golden"]["regression"] is None
    regressions = [catalog[name]["regression"] for name in REGRESSION_BUILDS]
    assert sorted(regressions) == sorted(fw.FIRMWARE_FAULTS)  # exactly the seven, each once
    assert all(entry["description"] for entry in catalog.values())
    assert fw.get_build("zebra-shift").zebra_shift_luma == 8


def test_unknown_build_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown firmware build 'nightly'.*golden.*no-lens-shading"):
        fw.get_build("nightly")


def test_regression_faults_switch_on_over_a_build() -> None:
    build = fw.build_for("golden", {"zebra_threshold_shift": 3, "peaking_off": True, "light_drift": 1})
    assert (build.zebra_shift_luma, build.zebra_shift_raw_dn, build.peaking_off) == (3, 12, True)
    assert build.regression == "zebra_threshold_shift+peaking_off"
    assert fw.build_for("golden", {"histogram_bin_shift": False}) is fw.get_build("golden")  # off: nothing
    assert fw.build_for("golden", {"lens_shading_off": True}).lens_shading is False
    with pytest.raises(ValueError, match="black_level_offset"):
        fw.build_for("golden", {"black_level_offset": "lots"})


# --- luma ------------------------------------------------------------------------------------

def test_luma_matches_exact_rounding_for_every_rgb_value() -> None:
    v = np.arange(1 << 24, dtype=np.uint32)
    rgb = np.stack([(v >> 16) & 255, (v >> 8) & 255, v & 255], axis=-1).astype(np.uint8)
    rgb = rgb.reshape(4096, 4096, 3)
    del v
    assert np.array_equal(fw.luma(rgb), luma_ref(rgb))


def test_luma_rounds_ties_up_like_decimal() -> None:
    grid = np.stack(np.meshgrid(*[np.arange(0, 256, 3)] * 3, indexing="ij"), axis=-1).reshape(-1, 3)
    weighted = grid @ np.array([2126, 7152, 722])
    ties = grid[weighted % 10000 == 5000]  # exactly half-way between two codes
    assert len(ties) >= 100
    others = np.random.default_rng(3).integers(0, 256, (100, 3))
    rgb = np.concatenate([ties, others])[None].astype(np.uint8)
    got = fw.luma(rgb)[0]
    for (r, g, b), y in zip(rgb[0].tolist(), got.tolist(), strict=True):
        exact = Decimal("0.2126") * r + Decimal("0.7152") * g + Decimal("0.0722") * b
        assert y == int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP))


# --- peaking ---------------------------------------------------------------------------------

def test_peaking_response_is_the_5_point_laplacian_with_replicated_borders() -> None:
    y = np.random.default_rng(1).integers(0, 256, (37, 53), dtype=np.uint8)
    assert np.array_equal(fw.peaking_response(y), laplacian_ref(y))
    assert not fw.peaking_response(np.full((9, 9), 200, np.uint8)).any()


def test_peaking_mask_thresholds_and_disables() -> None:
    y = np.random.default_rng(2).integers(0, 256, (40, 60), dtype=np.uint8)
    mask = fw.peaking_mask(y, {"enabled": True, "threshold": 150}, "golden")
    assert mask.dtype == np.uint8 and set(np.unique(mask)) <= {0, 255}
    assert np.array_equal(mask == 255, laplacian_ref(y) >= 150)
    assert not fw.peaking_mask(y, {"enabled": False, "threshold": 150}, "golden").any()


# --- zebra -----------------------------------------------------------------------------------

def test_luma_zebra_flags_luma_at_or_above_threshold() -> None:
    rgb = np.random.default_rng(4).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    mask = fw.zebra_mask(rgb, None, zebra("luma", 180), "golden")
    assert np.array_equal(mask == 255, luma_ref(rgb) >= 180)
    assert set(np.unique(mask)) <= {0, 255}
    assert not fw.zebra_mask(rgb, None, zebra("luma", 180, enabled=False), "golden").any()


@pytest.mark.parametrize("site", [(0, 0), (0, 1), (1, 0), (1, 1)])
def test_raw_zebra_draws_a_quad_on_its_four_preview_pixels(site: tuple[int, int]) -> None:
    cfa = np.full((12, 16), 100, np.uint16)
    cfa[4 + site[0], 10 + site[1]] = 900  # one sample of quad (2, 5) reaches T
    mask = fw.zebra_mask(None, cfa, zebra("raw", 900), "golden")
    expected = np.zeros((12, 16), bool)
    expected[4:6, 10:12] = True
    assert np.array_equal(mask == 255, expected)
    assert not fw.zebra_mask(None, cfa, zebra("raw", 901), "golden").any()


def test_raw_zebra_matches_a_per_quad_loop() -> None:
    cfa = np.random.default_rng(5).integers(0, 1024, (20, 24)).astype(np.uint16)
    mask = fw.zebra_mask(np.zeros((20, 24, 3), np.uint8), cfa, zebra("raw", 1000), "golden")
    for i in range(10):
        for j in range(12):
            flagged = bool((cfa[2 * i:2 * i + 2, 2 * j:2 * j + 2] >= 1000).any())
            assert (mask[2 * i:2 * i + 2, 2 * j:2 * j + 2] == (255 if flagged else 0)).all()


# --- histogram -------------------------------------------------------------------------------

def test_histograms_count_every_pixel_in_its_bin() -> None:
    rng = np.random.default_rng(6)
    rgb = rng.integers(0, 256, (50, 70, 3), dtype=np.uint8)
    cfa = rng.integers(0, 1024, (50, 70)).astype(np.uint16)
    cfa[0, :2] = [0, 1023]
    preview_counts = fw.histogram("preview", rgb, "golden")
    raw_counts = fw.histogram("raw", cfa, "golden")
    assert preview_counts == np.histogram(luma_ref(rgb), bins=256, range=(0, 256))[0].tolist()
    assert raw_counts == np.histogram(cfa, bins=1024, range=(0, 1024))[0].tolist()
    with pytest.raises(ValueError, match="above 1023"):
        fw.histogram("raw", np.full((4, 4), 1024, np.uint16), "golden")


def test_histogram_counts_beyond_one_band_stay_exact(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fw, "_HIST_CHUNK_PIXELS", 64)
    cfa = np.random.default_rng(7).integers(60, 70, (33, 20)).astype(np.uint16)
    assert fw.histogram("raw", cfa, "golden") == np.bincount(cfa.ravel(), minlength=1024).tolist()


# --- preview ISP -----------------------------------------------------------------------------

@pytest.mark.parametrize("cfa", ["RGGB", "BGGR", "GRBG", "GBRG"])
def test_preview_of_a_flat_colour_is_its_srgb_encoding(cfa: str) -> None:
    linear = np.array([0.6, 0.3, 0.1])
    cfa_frame = mosaic(flat_rgb(16, 20, tuple(BLACK + linear * (WHITE - BLACK))), cfa)
    out = fw.preview(cfa_frame, {**META, "cfa": cfa}, UNITY, "golden")
    dn = np.rint(BLACK + linear * (WHITE - BLACK))
    expected = srgb8((dn - BLACK) / (WHITE - BLACK))
    assert out.shape == (16, 20, 3) and out.dtype == np.uint8
    assert np.abs(out.astype(int) - expected).max() <= 1


def test_preview_of_a_ramp_follows_black_wb_demosaic_and_srgb() -> None:
    h, w = 8, 64
    x = np.arange(w, dtype=np.float64)
    wb = (1.8, 1.0, 1.5)
    linear = 0.02 + 0.9 * x / (w - 1)  # a neutral ramp: the ISP's WB must make R = G = B
    rgb_dn = np.stack([BLACK + linear * (WHITE - BLACK) / g for g in wb], axis=-1)
    cfa_frame = mosaic(np.broadcast_to(rgb_dn, (h, w, 3)).round().astype(np.uint16))
    out = fw.preview(cfa_frame, META, {"wb_gains": list(wb)}, "golden")
    # bilinear interpolation of a linear ramp is exact: every interior pixel is the ramp's own value
    dn = np.rint(rgb_dn)
    expected = srgb8((dn - BLACK) / (WHITE - BLACK) * np.array(wb))
    assert np.abs(out[2:-2, 2:-2].astype(int) - expected[None, 2:-2]).max() <= 1


def test_preview_colour_matrix_and_highlight_clip() -> None:
    ccm = [[1.6, -0.4, -0.2], [-0.3, 1.5, -0.2], [0.0, -0.6, 1.6]]
    linear = np.array([0.5, 0.4, 0.2])
    cfa_frame = mosaic(flat_rgb(8, 8, tuple(BLACK + linear * (WHITE - BLACK))))
    out = fw.preview(cfa_frame, META, {"ccm": ccm, "wb_gains": [1, 1, 1]}, "golden")
    dn = np.rint(BLACK + linear * (WHITE - BLACK))
    expected = srgb8(np.array(ccm) @ ((dn - BLACK) / (WHITE - BLACK)))
    assert np.abs(out[4, 4].astype(int) - expected).max() <= 1
    white = mosaic(flat_rgb(8, 8, (1023, 1023, 1023)))
    saturated = fw.preview(white, META, {"wb_gains": [2, 1, 2]}, "golden")
    assert (saturated == 255).all()  # white stays white after WB gains > 1: clipped, not wrapped


def test_default_wb_neutralises_the_twin_sensor_at_5000k() -> None:
    from station.twin.sensor import electrons_per_lux_s_m2

    eta = electrons_per_lux_s_m2(5000.0)
    r, g, b = isp.DEFAULT_WB_GAINS
    assert g == 1.0
    assert r == pytest.approx(eta["g"] / eta["r"], rel=0.005)
    assert b == pytest.approx(eta["g"] / eta["b"], rel=0.005)


def _radial_gain(h: int, w: int, y: np.ndarray, x: np.ndarray, k: float = 0.8) -> np.ndarray:
    """The inverse vignetting 1 + k r^2 (r: distance from the centre over the half diagonal)."""
    r2 = ((x - (w - 1) / 2) ** 2 + (y - (h - 1) / 2) ** 2) / (((w - 1) / 2) ** 2 + ((h - 1) / 2) ** 2)
    return 1.0 + k * r2


def _vignetted_flat(h: int = 96, w: int = 128, level: float = 0.5) -> tuple[np.ndarray, list]:
    """A grey flat through vignetting 1 / (1 + k r^2), and the shading map that undoes it.

    The map samples the same gain at its grid points, corners on the frame's corner pixels
    (Android LENS_SHADING_MAP), for each channel at that channel's pixel positions.
    """
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    cfa_frame = np.rint(BLACK + level * (WHITE - BLACK) / _radial_gain(h, w, yy, xx)).astype(np.uint16)
    rows, cols = 13, 17
    my, mx = np.meshgrid(np.linspace(0, h - 1, rows), np.linspace(0, w - 1, cols), indexing="ij")
    gain = _radial_gain(h, w, my, mx)
    return cfa_frame, np.repeat(gain[:, :, None], 4, axis=2).tolist()


def test_stored_shading_map_flattens_a_vignetted_flat() -> None:
    cfa_frame, lsm = _vignetted_flat()
    cal = {"lens_shading_map": lsm, "wb_gains": [1, 1, 1]}
    golden = fw.luma(fw.preview(cfa_frame, META, cal, "golden"))
    flat_code = srgb8(0.5)
    assert np.abs(golden.astype(int) - flat_code).max() <= 2
    off = fw.luma(fw.preview(cfa_frame, META, cal, "no-lens-shading"))
    corner = srgb8(0.5 / _radial_gain(96, 128, np.array(0.0), np.array(0.0)))
    assert abs(int(off[0, 0]) - int(corner)) <= 2 and int(off[48, 64]) >= flat_code - 2
    assert flat_code - corner > 40  # the falloff golden removes is large
    # without a stored map neither build corrects anything
    assert np.array_equal(fw.preview(cfa_frame, META, UNITY, "golden"),
                          fw.preview(cfa_frame, META, UNITY, "no-lens-shading"))


def test_shading_map_channels_are_r_geven_godd_b() -> None:
    # Gr samples darker by 1.5x and B by 2x: a map with exactly those gains makes a flat grey
    level = 0.4 * (WHITE - BLACK)
    cfa_frame = np.full((16, 16), BLACK + level, np.float64)
    cfa_frame[0::2, 1::2] = BLACK + level / 1.5
    cfa_frame[1::2, 1::2] = BLACK + level / 2.0
    lsm = np.ones((3, 4, 4))
    lsm[..., 1], lsm[..., 3] = 1.5, 2.0
    out = fw.preview(np.rint(cfa_frame).astype(np.uint16), META,
                     {"lens_shading_map": lsm.tolist(), "wb_gains": [1, 1, 1]}, "golden")
    assert np.abs(out.astype(int) - srgb8(0.4)).max() <= 1


def test_shading_map_corners_sit_on_the_corner_pixels() -> None:
    # gains linear in x and y, 1 at pixel (0, 0) to 3 at the last pixel: bilinear interpolation of
    # a bilinear field is exact, so each pixel gets the gain at its own position, whatever its channel
    h, w = 12, 16
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    gain = 1.0 + xx / (w - 1) + yy / (h - 1)
    level = 0.25 * (WHITE - BLACK)
    cfa_frame = np.rint(BLACK + level / gain).astype(np.uint16)
    lsm = np.repeat((1.0 + np.linspace(0, 1, 4)[None, :] + np.linspace(0, 1, 3)[:, None])[:, :, None], 4, 2)
    out = fw.preview(cfa_frame, META, {"lens_shading_map": lsm.tolist(), "wb_gains": [1, 1, 1]}, "golden")
    assert np.abs(out.astype(int) - srgb8(0.25)).max() <= 1


def test_bands_give_the_same_preview_as_one_pass() -> None:
    rng = np.random.default_rng(8)
    cfa_frame = rng.integers(40, 1024, (70, 52)).astype(np.uint16)
    cal = isp.parse_isp({"lens_shading_map": (1 + rng.random((5, 6, 4))).tolist(),
                         "ccm": [[1.4, -0.3, -0.1], [-0.2, 1.3, -0.1], [0.0, -0.4, 1.4]]})
    whole = isp.render_preview(cfa_frame, "RGGB", BLACK, WHITE, cal, band_rows=10_000)
    assert np.array_equal(isp.render_preview(cfa_frame, "RGGB", BLACK, WHITE, cal, band_rows=6), whole)


def test_sensor_calibration_layers_and_refuses_bad_values() -> None:
    blob = {"wb_gains": [2, 1, 2], "ccm": np.eye(3).tolist(), "thresholds": {"zebra": 3},
            "sensors": {"m": {"wb_gains": [1.5, 1, 1.5],
                              "lenses": {"summicron-m-50-f2": {"wb_gains": [1.2, 1, 1.1]}}}}}
    assert isp.sensor_calibration(blob, "main").wb_gains == (2.0, 1.0, 2.0)
    assert isp.sensor_calibration(blob, "m").wb_gains == (1.5, 1.0, 1.5)
    assert isp.sensor_calibration(blob, "m", "summicron-m-50-f2").wb_gains == (1.2, 1.0, 1.1)
    assert isp.sensor_calibration(None, "main").lens_shading_map is None
    bad = [({"lens_shading_map": [[[0.9, 1, 1, 1]] * 2] * 2}, "gains must be >= 1"),
           ({"lens_shading_map": [[1, 1], [1, 1]]}, "lens_shading_map: expected"),
           ({"wb_gains": [1, 1]}, "wb_gains: expected shape"),
           ({"wb_gains": [1, -1, 1]}, "wb_gains: gains must be > 0"),
           ({"ccm": [[1, 0], [0, 1]]}, "ccm: expected shape"),
           ({"sensors": {"m": {"ccm": "x"}}}, "sensors.m.ccm")]
    for entry, words in bad:
        with pytest.raises(ValueError, match=words):
            isp.sensor_calibration(entry, "m")


# --- RAW path --------------------------------------------------------------------------------

def test_golden_raw_is_the_sensor_frame_unchanged() -> None:
    cfa_frame = np.random.default_rng(9).integers(0, 1024, (8, 8)).astype(np.uint16)
    out, meta = fw.apply_raw_firmware(cfa_frame, META, "golden")
    assert out is cfa_frame and meta == META and meta is not META


def test_black_level_offset_shows_in_dark_frames() -> None:
    dark = np.random.default_rng(10).normal(BLACK, 2.0, (64, 64)).round().astype(np.uint16)
    dark[0, 0] = 1020
    for build, offset in (("golden", 0), ("bl-offset", 8)):
        out, meta = fw.apply_raw_firmware(dark, META, build)
        assert meta["black_level"] == BLACK  # declared level unchanged
        measured = float(np.median(out)) - meta["black_level"]
        assert measured == pytest.approx(offset, abs=0.5)
    assert fw.apply_raw_firmware(dark, META, "bl-offset")[0][0, 0] == WHITE  # clipped at the white level


def test_8bit_truncation_loses_codes_on_a_smooth_ramp() -> None:
    ramp = np.tile(np.arange(BLACK, WHITE + 1, dtype=np.uint16), (4, 1))
    golden, _ = fw.apply_raw_firmware(ramp, META, "golden")
    assert set(np.unique(golden).tolist()) == set(range(BLACK, WHITE + 1))  # every 10-bit code present
    out, meta = fw.apply_raw_firmware(ramp, META, "raw8-truncation")
    assert not (out & 3).any() and meta["bit_depth"] == 10
    assert len(np.unique(out)) == len(range(BLACK, WHITE + 1)) // 4
    assert (ramp.astype(int) - out).max() == 3 and (ramp >= out).all()


def test_cfa_swap_declares_the_wrong_order_for_a_red_target() -> None:
    red = mosaic(flat_rgb(8, 8, (900, 150, 100)))  # an RGGB sensor looking at a red patch
    for build, brightest in (("golden", "R"), ("cfa-swap", "B")):
        out, meta = fw.apply_raw_firmware(red, META, build)
        assert np.array_equal(out, red)
        order = meta["cfa"]
        means = {c: float(out[order.index(c) // 2::2, order.index(c) % 2::2].mean()) for c in "RB"}
        assert max(means, key=means.get) == brightest  # the station reading R by the declared order
    assert fw.declared_meta({"cfa": "GRBG"}, "cfa-swap")["cfa"] == "GBRG"


# --- each build alters its feature and nothing else ------------------------------------------

def _scene() -> tuple[np.ndarray, dict]:
    """A vignetted frame with a full ramp (zebra, histograms) and a checkerboard (peaking)."""
    h, w = 64, 96
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    reflectance = np.where(((yy // 8 + xx // 8) % 2) == 0, 0.15, 0.7)
    reflectance[: h // 2] = 0.02 + 1.6 * xx[: h // 2] / (w - 1)  # top half: a ramp past clipping
    signal = reflectance * (WHITE - BLACK) / _radial_gain(h, w, yy, xx, 0.5)
    cfa_frame = np.clip(np.rint(BLACK + signal), 0, WHITE).astype(np.uint16)
    my, mx = np.meshgrid(np.linspace(0, h - 1, 5), np.linspace(0, w - 1, 7), indexing="ij")
    lsm = np.repeat(_radial_gain(h, w, my, mx, 0.5)[:, :, None], 4, axis=2)
    return cfa_frame, {"lens_shading_map": lsm.tolist(), "wb_gains": [1, 1, 1]}


def _outputs(build: fw.FirmwareBuild) -> dict[str, object]:
    cfa_frame, cal = _scene()
    raw, meta = fw.apply_raw_firmware(cfa_frame, META, build)
    rgb = fw.preview(cfa_frame, META, cal, build)
    return {
        "raw": raw.tobytes(), "raw_meta": meta, "preview": rgb.tobytes(),
        "zebra_luma": fw.zebra_mask(rgb, cfa_frame, zebra("luma", 200), build).tobytes(),
        "zebra_raw": fw.zebra_mask(rgb, cfa_frame, zebra("raw", 900), build).tobytes(),
        "peaking": fw.peaking_mask(rgb, {"enabled": True, "threshold": 40}, build).tobytes(),
        "histogram_preview": fw.histogram("preview", rgb, build),
        "histogram_raw": fw.histogram("raw", cfa_frame, build),
    }


ALTERS = {
    "bl-offset": {"raw"},
    "raw8-truncation": {"raw"},
    "cfa-swap": {"raw_meta"},
    "zebra-shift": {"zebra_luma", "zebra_raw"},
    "peaking-off": {"peaking"},
    "histogram-bin": {"histogram_preview", "histogram_raw"},
    # the preview changes, and with it what the app derives from its luma
    "no-lens-shading": {"preview", "zebra_luma", "peaking", "histogram_preview"},
}


def test_each_build_alters_exactly_its_feature() -> None:
    golden = _outputs(fw.get_build("golden"))
    assert set(ALTERS) == set(REGRESSION_BUILDS)
    for name, expected in ALTERS.items():
        outputs = _outputs(fw.get_build(name))
        changed = {key for key, value in outputs.items() if value != golden[key]}
        assert changed == expected, name
        # the same regression switched on as a twin fault over golden does the same
        fault = fw.build_for("golden", {fw.get_build(name).regression: True})
        assert _outputs(fault) == outputs, name


def test_zebra_shift_misses_the_band_just_above_threshold() -> None:
    cfa_frame, cal = _scene()
    rgb = fw.preview(cfa_frame, META, cal, "golden")
    y = luma_ref(rgb)
    golden = fw.zebra_mask(rgb, cfa_frame, zebra("luma", 200), "golden") == 255
    shifted = fw.zebra_mask(rgb, cfa_frame, zebra("luma", 200), "zebra-shift") == 255
    assert np.array_equal(golden, y >= 200) and np.array_equal(shifted, y >= 208)
    assert ((y >= 200) & (y < 208)).any()
    raw_shifted = fw.zebra_mask(rgb, cfa_frame, zebra("raw", 900), "zebra-shift")
    assert np.array_equal(raw_shifted, fw.zebra_mask(rgb, cfa_frame, zebra("raw", 932), "golden"))


def test_peaking_off_and_histogram_bin_against_independent_maths() -> None:
    cfa_frame, cal = _scene()
    rgb = fw.preview(cfa_frame, META, cal, "golden")
    y = luma_ref(rgb)
    expected = laplacian_ref(y) >= 40
    assert expected.sum() > 100
    assert np.array_equal(fw.peaking_mask(rgb, {"enabled": True, "threshold": 40}, "golden") == 255, expected)
    assert not fw.peaking_mask(rgb, {"enabled": True, "threshold": 40}, "peaking-off").any()
    truth = np.bincount(y.ravel(), minlength=256)
    assert fw.histogram("preview", rgb, "golden") == truth.tolist()
    shifted = np.array(fw.histogram("preview", rgb, "histogram-bin"))
    assert np.array_equal(shifted[1:255], truth[0:254]) and shifted[255] == truth[254] + truth[255]
    assert shifted[0] == 0 and shifted.sum() == y.size
