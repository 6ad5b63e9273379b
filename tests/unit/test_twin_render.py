"""The twin's image formation against independent maths: OpenCV's detection and calibration, the thin
lens, the step chart's densities, the cos^4 law. Each test renders CI-mode frames (2048 x 1536)."""

from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest
from scipy.signal import fftconvolve

from station.twin.lenses import M_LENSES, MAIN_LENS, get_lens
from station.twin.render import lens_truth, render_raw, sensor_truth
from station.twin.world import World
from targets.registry import get_chart

PITCH_MM = 0.0064  # CI mode: 4 x 4 binned 1.6 um pixels
CALIBRATION_BOARD = "charuco:48x36:24:18:DICT_5X5_1000"  # 1152 x 864 mm: covers the view at every pose


def scene(chart: str, lens: str | None, distance_mm: float = 1000.0, pan: float = 0.0, tilt: float = 0.0,
          ring_deg: float | None = None, level_pct: float = 100.0, seed: int = 11) -> World:
    """A settled world; an M lens's ring focuses on the chart unless ``ring_deg`` is given."""
    world = World(seed=seed, resolution="ci")
    world.light.settle_s = 0.0
    world.set_light(output=True, level_pct=level_pct, cct_k=5000.0)
    axes = {"distance": distance_mm, "pan": pan, "tilt": tilt, "focus": 0.0}
    if lens is not None:
        axes["focus"] = get_lens(lens).ring_for_distance_deg(distance_mm) if ring_deg is None else ring_deg
    for name, value in axes.items():
        world.axes[world.axis_map[name]] = value
    world.chart, world.m_lens = chart, lens
    return world


def fill_exposure_us(world: World, sensor: str, fraction: float, **settings) -> float:
    """Exposure putting a white (reflectance 1) centre at ``fraction`` of the full well (a flat's truth)."""
    chart, world.chart = world.chart, "flat"
    try:
        _, truth = render_raw(world, sensor, {"exposure_us": 1000.0, "analog_gain": 1.0, **settings}, 0)
    finally:
        world.chart = chart
    rate = truth["radiometry"]["electrons_per_s"]["g"] * 1e-6  # e- per us for reflectance 1 on axis
    return fraction * truth["full_well_e"] / rate


def green_image(raw: np.ndarray) -> np.ndarray:
    """Green plane of the RGGB mosaic, demosaiced bilinearly (OpenCV's 'BG' names RGGB), float32."""
    return cv2.cvtColor(raw, cv2.COLOR_BayerBG2BGR)[:, :, 1].astype(np.float32)


def to_u8(image: np.ndarray, black: float = 64.0) -> np.ndarray:
    top = float(np.percentile(image, 99.9))
    return np.clip((image - black) * (255.0 / max(top - black, 1.0)), 0, 255).astype(np.uint8)


def project(truth: dict, xy_mm: np.ndarray, channel_scale: float = 1.0) -> np.ndarray:
    """Chart points (N,2) mm -> image px with OpenCV's projectPoints and the truth's camera."""
    k = np.array(truth["intrinsics"]["camera_matrix"], dtype=np.float64)
    k[0, 0] *= channel_scale
    k[1, 1] *= channel_scale
    obj = np.hstack([xy_mm, np.zeros((len(xy_mm), 1))])
    ext = truth["extrinsics"]
    pts, _ = cv2.projectPoints(obj, np.array(ext["rvec"]), np.array(ext["tvec"]), k,
                               np.array(truth["distortion_opencv"]))
    return pts.reshape(-1, 2)


def detect_charuco(chart_name: str, image_u8: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    chart = get_chart(chart_name)
    corners, ids, _, _ = cv2.aruco.CharucoDetector(chart.spec.cv_board()).detectBoard(image_u8)
    if ids is None:
        return np.zeros((0, 2)), np.zeros(0, dtype=int)
    return np.asarray(corners, dtype=np.float64).reshape(-1, 2), np.asarray(ids).reshape(-1)


def charuco_errors(raw: np.ndarray, truth: dict, chart_name: str = "charuco") -> np.ndarray:
    corners, ids = detect_charuco(chart_name, to_u8(green_image(raw)))
    assert len(ids) >= 12, f"only {len(ids)} ChArUco corners found"
    truth_corners = get_chart(chart_name).features_mm()["corners"][ids]
    return corners - project(truth, truth_corners)


# --- geometry -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("lens", "distance", "pan", "tilt", "extra"), [
    ("elmarit-m-28-f2.8", 1000.0, 0.0, 0.0, {}),
    ("elmarit-m-28-f2.8", 1000.0, 5.0, -3.0, {}),
    (None, 500.0, 0.0, 0.0, {}),  # the phone's main lens, strong distortion
    (None, 500.0, 18.0, 12.0, {}),  # ... the board in the corner of the field
    ("summilux-m-35-f1.4", 1000.0, 2.0, 1.0, {"adapter_tilt_x_deg": 0.4, "adapter_tilt_y_deg": -0.3}),
], ids=["elmarit", "elmarit-pan-tilt", "main", "main-corner", "summilux-tilted-adapter"])
def test_charuco_corners_land_where_opencv_projects_the_truth(lens, distance, pan, tilt, extra):
    world = scene("charuco", lens, distance, pan, tilt)
    sensor = "main" if lens is None else "m"
    settings = {"analog_gain": 1.0, "focus_m": None, "aperture": 16.0 if lens else None, **extra}
    settings["exposure_us"] = fill_exposure_us(world, sensor, 0.8, **settings)
    raw, truth = render_raw(world, sensor, settings, 1)
    err = charuco_errors(raw, truth)
    assert float(np.sqrt(np.mean(np.sum(err**2, axis=1)))) < 0.1
    assert np.abs(err.mean(axis=0)).max() < 0.03  # no shift of the whole view


def _undistortion_field(k: np.ndarray, dist: np.ndarray, width: int = 2048, height: int = 1536) -> np.ndarray:
    gx, gy = np.meshgrid(np.linspace(0, width - 1, 41), np.linspace(0, height - 1, 31))
    pts = np.stack([gx.ravel(), gy.ravel()], axis=1).reshape(-1, 1, 2)
    ideal = cv2.undistortPoints(pts, k, dist, None, None, k,
                                (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_COUNT, 100, 1e-12))
    return pts.reshape(-1, 2) - ideal.reshape(-1, 2)


CALIBRATION_POSES = [(0, 0), (15, 0), (-15, 0), (0, 12), (0, -12), (10.5, 8.4), (-10.5, 8.4), (10.5, -8.4),
                     (-10.5, -8.4)]


@pytest.mark.parametrize("lens", [
    "elmarit-m-28-f2.8",
    pytest.param("summicron-m-50-f2", marks=pytest.mark.slow),
    pytest.param("summilux-m-35-f1.4", marks=pytest.mark.slow),
    pytest.param("noctilux-m-50-f0.95", marks=pytest.mark.slow),
])
def test_calibrate_camera_recovers_the_lens(lens):
    """cv2.calibrateCamera on nine pan/tilt views of a large ChArUco board, 1 m away, f/16."""
    board = get_chart(CALIBRATION_BOARD)
    detector = cv2.aruco.CharucoDetector(board.spec.cv_board())
    corners_mm = board.features_mm()["corners"]
    objects, images = [], []
    settings = {"analog_gain": 1.0, "aperture": 16.0}
    settings["exposure_us"] = fill_exposure_us(scene("flat", lens, 1000.0), "m", 0.8, **settings)
    for pan, tilt in CALIBRATION_POSES:
        world = scene(CALIBRATION_BOARD, lens, 1000.0, pan, tilt)
        raw, truth = render_raw(world, "m", settings, 1)
        corners, ids, _, _ = detector.detectBoard(to_u8(green_image(raw)))
        ids = np.asarray(ids).reshape(-1)
        objects.append(np.hstack([corners_mm[ids], np.zeros((len(ids), 1))]).astype(np.float32))
        images.append(np.asarray(corners, dtype=np.float32).reshape(-1, 2))
    k_true = np.array(truth["intrinsics"]["camera_matrix"])
    _, k, dist, _, _ = cv2.calibrateCamera(objects, images, (2048, 1536), k_true.copy(), None,
                                           flags=cv2.CALIB_USE_INTRINSIC_GUESS)
    assert k[0, 0] == pytest.approx(k_true[0, 0], rel=0.002)
    assert k[1, 1] == pytest.approx(k_true[1, 1], rel=0.002)
    field_error = _undistortion_field(k, dist.ravel()) - _undistortion_field(k_true, np.array(truth["distortion"]))
    assert np.hypot(*field_error.T).max() < 0.5


def test_lateral_ca_magnifies_red_and_blue_about_the_principal_point():
    """Edge positions (50 % crossings) of each channel against G's, at the sides of the field: the shift
    along an edge's normal is (s_c - 1) times its distance from the principal point along that normal."""
    world = scene("sfr", "elmarit-m-28-f2.8", 1000.0)
    settings = {"analog_gain": 1.0, "aperture": 5.6}
    settings["exposure_us"] = fill_exposure_us(world, "m", 0.9, **settings)
    raw, truth = render_raw(world, "m", settings, 1)
    centre = np.array([truth["intrinsics"]["cx"], truth["intrinsics"]["cy"]])
    squares = get_chart("sfr").squares_mm()
    radials, shifts = [], {"r": [], "b": []}
    for square, side in ((1, 1), (2, 3), (3, 2), (4, 0), (9, 1), (10, 3), (11, 1), (12, 3)):  # outer edges
        centres, esf, middle = _edge_spread(raw, truth, "sfr", square, side, 8.0)
        g = _crossing(centres, esf, 0.5)
        assert abs(g) < 0.05  # G's edge lies where OpenCV projects it
        ends = project(truth, squares[square][[side, (side + 1) % 4]])
        unit = (ends[1] - ends[0]) / np.hypot(*(ends[1] - ends[0]))
        radials.append(float((middle - centre) @ np.array([-unit[1], unit[0]])))
        for channel in shifts:
            c_centres, c_esf, _ = _edge_spread(raw, truth, "sfr", square, side, 8.0, (channel,))
            shifts[channel].append(_crossing(c_centres, c_esf, 0.5) - g)
    radial = np.array(radials)
    assert np.abs(radial).min() > 400
    for channel, shift in shifts.items():
        fitted = float(np.sum(np.array(shift) * radial) / np.sum(radial * radial))
        assert fitted == pytest.approx(truth["ca_scale"][channel] - 1.0, abs=3e-5), channel
        assert np.abs(np.array(shift) - fitted * radial).max() < 0.06


# --- focus --------------------------------------------------------------------------------------

SITES = {"r": (0, 0), "gr": (0, 1), "gb": (1, 0), "b": (1, 1)}


def _edge_spread(raw: np.ndarray, truth: dict, chart_name: str, square: int, side: int, reach_px: float,
                 channels: tuple[str, ...] = ("gr", "gb")) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Edge spread of one side of an SFR chart square from raw samples of ``channels`` (slanted edge).

    The edge's line comes from OpenCV's projection of the truth; samples within ``reach_px`` of it
    are binned by their signed distance along its normal (0.1 px bins), as ISO 12233's e-SFR does.
    Returns bin centres (px along the normal), the ESF scaled 0 (dark side) to 1, and the edge's
    midpoint (px).
    """
    quad = get_chart(chart_name).squares_mm()[square]
    ends = project(truth, np.array([quad[side], quad[(side + 1) % 4]]))
    along = ends[1] - ends[0]
    length = float(np.hypot(*along))
    unit = along / length
    normal = np.array([-unit[1], unit[0]])
    lo = np.floor(ends.min(axis=0) - reach_px - 2).astype(int).clip(0)
    hi = np.ceil(ends.max(axis=0) + reach_px + 2).astype(int)
    rows, cols = np.mgrid[lo[1]:hi[1], lo[0]:hi[0]]
    patch = raw[lo[1]:hi[1], lo[0]:hi[0]].astype(np.float64)
    on_site = np.zeros(rows.shape, dtype=bool)
    for channel in channels:
        row, col = SITES[channel]
        on_site |= (rows % 2 == row) & (cols % 2 == col)
    t = (cols - ends[0][0]) * unit[0] + (rows - ends[0][1]) * unit[1]
    d = (cols - ends[0][0]) * normal[0] + (rows - ends[0][1]) * normal[1]
    band = on_site & (t > 0.25 * length) & (t < 0.75 * length) & (np.abs(d) < reach_px)
    index = np.round(d[band] / 0.1).astype(int)
    first = index.min()
    counts = np.bincount(index - first)
    esf = np.bincount(index - first, weights=patch[band]) / np.maximum(counts, 1)
    centres = (np.arange(len(esf)) + first) * 0.1
    filled = counts > 0
    centres, esf = centres[filled], esf[filled]
    tail = max(len(esf) // 8, 3)
    dark, light = esf[:tail].mean(), esf[-tail:].mean()
    esf = np.convolve((esf - dark) / (light - dark), np.ones(3) / 3, mode="same")[1:-1]
    return centres[1:-1], esf, 0.5 * (ends[0] + ends[1])


def _crossing(centres: np.ndarray, esf: np.ndarray, level: float) -> float:
    """Where the (rising or falling) ESF first crosses ``level``, px along the edge normal."""
    rising = esf[-1] > esf[0]
    values = np.maximum.accumulate(esf if rising else esf[::-1])
    x = centres if rising else centres[::-1]
    return float(np.interp(level, values, x))


def _esf_width_10_90(raw: np.ndarray, truth: dict, chart_name: str, square: int, side: int,
                     reach_px: float) -> float:
    """10-90 % rise (px across the edge) of one side of an SFR chart square, from the raw G samples."""
    centres, esf, _ = _edge_spread(raw, truth, chart_name, square, side, reach_px)
    return abs(_crossing(centres, esf, 0.9) - _crossing(centres, esf, 0.1))


def _predicted_10_90(diameter_px: float, sigma_px: float) -> float:
    """10-90 % rise of a uniform disc (diameter) * Gaussian (sigma) * pixel box, computed on a fine grid."""
    step = 0.005
    x = np.arange(-60.0, 60.0, step)
    r = diameter_px / 2.0
    if r > step:
        lsf = np.where(np.abs(x) < r, np.sqrt(np.clip(r * r - x * x, 0, None)), 0.0)
    else:
        lsf = (np.abs(x) == np.abs(x).min()) * 1.0
    for kernel in (np.exp(-0.5 * (x / max(sigma_px, step)) ** 2), (np.abs(x) <= 0.5) * 1.0):
        lsf = fftconvolve(lsf, kernel / kernel.sum(), mode="same")  # np.convolve: the same, 16 s slower
    esf = np.cumsum(lsf) / lsf.sum()
    return float(np.interp(0.9, esf, x) - np.interp(0.1, esf, x))


def test_edge_blur_grows_with_defocus_as_the_thin_lens_predicts():
    lens = M_LENSES["summicron-m-50-f2"]
    f, n, s = lens.focal_length_mm, 2.0, 1000.0
    ring_sharp = lens.ring_for_distance_deg(s)
    measured, predicted = [], []
    for ring in (ring_sharp, ring_sharp - 2.0, ring_sharp - 5.0, ring_sharp + 9.0):
        world = scene("sfr", lens.id, s, ring_deg=ring)
        settings = {"analog_gain": 1.0, "aperture": n}
        settings["exposure_us"] = fill_exposure_us(world, "m", 0.9, **settings)
        raw, truth = render_raw(world, "m", settings, 1)
        # thin lens, computed here: helicoid extension -> sensor distance v; the chart images at v_o
        v = f + f * f / (lens.close_focus_mm - f) * ring / lens.focus_throw_deg
        v_o = f * s / (s - f)
        diameter = (f / n) * abs(v - v_o) / v_o / PITCH_MM
        assert truth["focus"]["blur_circle_px"] == pytest.approx(diameter, rel=1e-6, abs=1e-6)
        sigma = lens.psf_sigma_um(n, "g") / (PITCH_MM * 1000)
        predicted.append(_predicted_10_90(diameter, sigma))
        measured.append(_esf_width_10_90(raw, truth, "sfr", 0, 1, diameter / 2 + 8))
    assert predicted[1] > 3 and predicted[-1] > 15  # the sweep really defocuses
    for got, want in zip(measured, predicted, strict=True):
        assert got == pytest.approx(want, rel=0.06, abs=0.25)


def test_main_lens_focus_and_adapter_errors_follow_the_thin_lens():
    # the main camera focused at 0.25 m on a chart at 1 m
    world = scene("sfr", None, 1000.0)
    raw, truth = render_raw(world, "main", {"exposure_us": 1000.0, "analog_gain": 1.0, "focus_m": 0.25}, 1)
    f, n = MAIN_LENS.focal_length_mm, MAIN_LENS.apertures[0]
    v, v_o = f * 250.0 / (250.0 - f), f * 1000.0 / (1000.0 - f)
    assert truth["focus"]["blur_circle_px"] == pytest.approx((f / n) * abs(v - v_o) / v_o / PITCH_MM, rel=1e-6)
    assert truth["focus"]["focus_distance_mm"] == pytest.approx(250.0)
    assert truth["intrinsics"]["fx"] == pytest.approx(v / PITCH_MM)  # focus breathing: the pinhole is at v
    # an M adapter 0.05 mm too long: at the infinity stop the lens focuses at f (f + e) / e
    lens = M_LENSES["summicron-m-50-f2"]
    world = scene("flat", lens.id, 1000.0, ring_deg=0.0)
    _, truth = render_raw(world, "m", {"exposure_us": 100.0, "analog_gain": 1.0, "adapter_back_focus_mm": 0.05}, 1)
    fl = lens.focal_length_mm
    assert truth["focus"]["focus_distance_mm"] == pytest.approx(fl * (fl + 0.05) / 0.05, rel=1e-9)


def test_tilted_adapter_defocuses_the_top_and_bottom_of_the_field():
    """A sensor tilted by tau about its x axis sits (y tan tau) nearer or farther than v at image height y."""
    lens, n, tau = M_LENSES["elmarit-m-28-f2.8"], 2.8, 1.0
    world = scene("sfr", lens.id, 1000.0)
    settings = {"analog_gain": 1.0, "aperture": n, "adapter_tilt_x_deg": tau}
    settings["exposure_us"] = fill_exposure_us(world, "m", 0.9, **settings)
    raw, truth = render_raw(world, "m", settings, 1)
    v, cy = truth["focus"]["image_distance_mm"], truth["intrinsics"]["cy"]
    pupil = lens.focal_length_mm / n
    half_height = max(cy + 0.5, 1535.5 - cy) * PITCH_MM
    expected_max = pupil * half_height * math.tan(math.radians(tau)) / v / PITCH_MM
    assert truth["focus"]["blur_circle_px_range"][1] == pytest.approx(expected_max, rel=0.05)
    sigma = lens.psf_sigma_um(n, "g") / (PITCH_MM * 1000)
    chart = get_chart("sfr")
    for square, side in ((0, 0), (3, 2), (4, 0)):  # centre; below and above it: horizontal edges
        quad = chart.squares_mm()[square]
        y_mid = project(truth, quad[[side, (side + 1) % 4]]).mean(axis=0)[1]
        blur = pupil * abs(y_mid - cy) * PITCH_MM * math.tan(math.radians(tau)) / v / PITCH_MM
        width = _esf_width_10_90(raw, truth, "sfr", square, side, blur / 2 + 10)
        assert width == pytest.approx(_predicted_10_90(blur, sigma), rel=0.08, abs=0.25), square


# --- radiometry ---------------------------------------------------------------------------------

def test_step_chart_patches_come_out_in_the_order_and_ratios_of_their_densities():
    """ISO 14524 OECF practice: patch means over a flat field's, both less a dark frame, G samples only."""
    lens = "elmarit-m-28-f2.8"
    settings = {"analog_gain": 1.0, "aperture": 5.6}
    flat_world = scene("flat", lens, 1000.0)
    settings["exposure_us"] = fill_exposure_us(flat_world, "m", 0.85, **settings)
    flat, _ = render_raw(flat_world, "m", settings, 1)
    dark, _ = render_raw(scene("flat", lens, 1000.0, level_pct=0.0), "m", settings, 2)
    steps, truth = render_raw(scene("steps", lens, 1000.0), "m", settings, 3)
    rows, cols = np.mgrid[0:1536, 0:2048]
    green = (rows + cols) % 2 == 1
    means = []
    for x, y, w, h in get_chart("steps").patch_rects_mm():
        quad = project(truth, np.array([[x + 0.2 * w, y + 0.2 * h], [x + 0.8 * w, y + 0.8 * h]]))
        (c0, r0), (c1, r1) = np.ceil(quad.min(axis=0)).astype(int), np.floor(quad.max(axis=0)).astype(int)
        roi = (slice(r0, r1), slice(c0, c1))
        sel = green[roi]
        d = dark[roi][sel].astype(np.float64).mean()
        means.append((steps[roi][sel].astype(np.float64).mean() - d) / (flat[roi][sel].astype(np.float64).mean() - d))
    means = np.array(means)
    expected = 0.9 * 10.0 ** (-0.1 * np.arange(20))  # the step chart: D = 0.0 ... 1.9 on a 0.9 white
    assert np.all(np.diff(means) < 0)
    assert np.allclose(means / means[0], expected / expected[0], rtol=0.01)
    assert np.allclose(means, expected, rtol=0.01)  # the flat diffuser is a perfect white


def _block_means(plane: np.ndarray, block: int) -> np.ndarray:
    h, w = plane.shape[0] // block * block, plane.shape[1] // block * block
    return plane[:h, :w].reshape(h // block, block, w // block, block).mean(axis=(1, 3))


@pytest.mark.parametrize(("lens", "aperture"), [("elmarit-m-28-f2.8", 2.8), ("noctilux-m-50-f0.95", 0.95),
                                                (None, None), ("bare", None)])
def test_flat_field_shows_the_configured_vignetting(lens, aperture):
    sensor = "main" if lens is None else "m"
    world = scene("flat", None if lens in (None, "bare") else lens, 1000.0)
    settings = {"analog_gain": 1.0, "aperture": aperture, "focus_m": 1.0}
    settings["exposure_us"] = fill_exposure_us(world, sensor, 0.8, **settings)
    raw, truth = render_raw(world, sensor, settings, 1)
    vig = truth["vignetting"]
    if lens not in (None, "bare"):  # the catalog's falloff at this aperture
        assert [vig["a2"], vig["a4"]] == pytest.approx(list(get_lens(lens).falloff_coefficients(aperture)))
    rows, cols = np.mgrid[0:1536, 0:2048]
    r = np.hypot(cols - vig["cx"], rows - vig["cy"]) / vig["r_scale_px"]
    model = (1.0 + r * r * (vig["a2"] + vig["a4"] * r * r)) / (1.0 + r * r) ** 2  # cos^4(atan r) * falloff
    signal = raw.astype(np.float64) - truth["black_level"]
    for row, col in ((0, 1), (0, 0), (1, 1)):  # G, R, B
        got = _block_means(signal[row::2, col::2], 16)
        want = _block_means(model[row::2, col::2], 16)
        centre = (got.shape[0] // 2, got.shape[1] // 2)
        np.testing.assert_allclose(got / got[centre], want / want[centre], rtol=0.006)
    if lens in (None, "elmarit-m-28-f2.8"):
        assert want.min() / want.max() < 0.8  # a falloff worth the name


def test_bare_sensor_sees_only_even_light_whatever_chart_is_mounted():
    settings = {"analog_gain": 1.0}
    flat_world = scene("flat", None, 500.0)
    settings["exposure_us"] = fill_exposure_us(flat_world, "m", 0.6, **settings)
    flat, truth_flat = render_raw(flat_world, "m", settings, 1)
    star, truth_star = render_raw(scene("siemens", None, 500.0), "m", settings, 2)
    assert truth_flat["lens"] is None and truth_flat["focus"] is None
    # sapphire: two uncoated faces of n = 1.77, Fresnel at normal incidence
    assert truth_flat["radiometry"]["transmission"] == pytest.approx((1 - (0.77 / 2.77) ** 2) ** 2)
    g = star[1::2, 0::2].astype(np.float32)
    residual = g - cv2.blur(g, (31, 31))
    assert residual[40:-40, 40:-40].std() < 1.2 * math.sqrt(truth_star["mean_signal_e"]) * truth_star[
        "conversion_gain_dn_per_e"]  # noise only: no image of the star
    mean_ratio = (star.astype(np.float64).mean() - 64) / (flat.astype(np.float64).mean() - 64)
    star_mean_reflectance = get_chart("siemens").raster(0, 0, 1.0, 400, 300).mean()
    assert mean_ratio == pytest.approx(star_mean_reflectance, rel=0.01)


# --- truth --------------------------------------------------------------------------------------

def test_truth_is_json_and_names_what_the_station_measures():
    world = scene("charuco", "summicron-m-50-f2", 1000.0, 3.0, -2.0)
    raw, truth = render_raw(world, "m", {"exposure_us": 2000.0, "analog_gain": 1.5, "aperture": 4.0}, 3)
    json.dumps(truth)
    for key in ("intrinsics", "distortion", "vignetting", "ca_scale", "conversion_gain_dn_per_e", "read_noise_dn",
                "full_well_e", "black_level", "clip_level_dn", "focus", "pose", "extrinsics", "chart", "lens",
                "illuminance_lux", "exposure_s", "analog_gain", "sensor_serial"):
        assert key in truth, key
    assert truth["lens"] == "summicron-m-50-f2" and truth["chart"] == "charuco"
    assert truth["illuminance_lux"] == pytest.approx(2000.0)
    assert truth["distortion"] == list(M_LENSES["summicron-m-50-f2"].distortion)
    assert set(truth["focus"]) >= {"focus_distance_mm", "chart_distance_mm", "blur_circle_px", "depth_of_field_mm"}
    assert truth["conversion_gain_dn_per_e"] == pytest.approx(1.5 * sensor_truth()["m"]["modes"]["ci"][
        "conversion_gain_dn_per_e"])
    catalog = lens_truth()
    assert set(catalog["m"]) == set(M_LENSES) and catalog["main"]["focal_length_mm"] == MAIN_LENS.focal_length_mm
    json.dumps(catalog)
    json.dumps(sensor_truth())


def test_bench_render_reports_each_mode_against_its_limit(capsys) -> None:
    from station.cli import main

    assert main(["bench", "render", "--json", "--modes", "ci", "--repeats", "1"]) == 0
    out = json.loads(capsys.readouterr().out)["render"]
    assert out["ci_size"] == [2048, 1536] and out["ci_limit_s"] == 0.5 and out["ci_s"] > 0
