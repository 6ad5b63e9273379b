"""The fiducial charts (SFR, steps, ColorChecker, Siemens star) and the flat field: reflectance,
geometry and detection, against independent maths and the homography a view was rendered with."""

from __future__ import annotations

import numpy as np
import pytest

from targets.base import ChartNotFound, project
from targets.colorchecker import ColorCheckerChart
from targets.flat import FlatField
from targets.registry import get_chart
from targets.siemens import SiemensStar
from targets.slanted_edge import DARK, LIGHT, SlantedEdgeChart
from targets.steps import StepChart

from .targets_views import perspective, render, to_u8

FIDUCIAL_CHARTS = ("sfr", "steps", "colorchecker", "siemens")


def _roi_mean(view: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    x, y, w, h = box
    return view[y:y + h, x:x + w].reshape(-1, view.shape[2]).mean(axis=0)


@pytest.fixture(scope="module", params=FIDUCIAL_CHARTS)
def rendered(request: pytest.FixtureRequest) -> tuple:
    chart = get_chart(request.param)
    H = perspective(chart, seed=7)
    view = render(chart, H)
    return chart, H, view, chart.detect(to_u8(view))


def test_detection_rois_land_on_the_true_projection(rendered: tuple) -> None:
    chart, H, view, det = rendered
    assert det.found and det.chart == chart.name and len(det.markers) == 4
    probe = np.array([[0, 0], [chart.width_mm, 0], [chart.width_mm, chart.height_mm], [0, chart.height_mm],
                      [chart.width_mm / 2, chart.height_mm / 2]])
    assert np.abs(project(det.homography, probe) - project(H, probe)).max() < 0.5
    feats = chart.features_mm()
    roi_key = {"sfr": "edge_rois", "steps": "rois", "colorchecker": "rois"}.get(chart.name)
    quads = feats[roi_key] if roi_key else None
    if quads is not None:
        assert len(det.rois) == len(quads)
        for roi, quad in zip(det.rois, quads, strict=True):
            truth = project(H, quad)
            assert np.abs(roi.quad_px - truth).max() < 0.5
            x, y, w, h = roi.box  # whole pixels inside the true quad's box, to within a pixel
            assert x + 0.5 >= truth[:, 0].min() - 1 and x + w - 0.5 <= truth[:, 0].max() + 1
            assert y + 0.5 >= truth[:, 1].min() - 1 and y + h - 0.5 <= truth[:, 1].max() + 1


@pytest.mark.parametrize("name", ["steps", "siemens"])
def test_gamma_encoded_noisy_view(name: str) -> None:
    """A preview-like capture (sRGB-ish 1/2.2 tone curve, noise, more blur) still gives the homography."""
    chart = get_chart(name)
    H = perspective(chart, seed=9, jitter_px=25.6)
    view = render(chart, H, blur_px=1.0)
    view = view + np.random.default_rng(0).normal(0, 0.01, view.shape).astype(np.float32)
    gray = (np.clip(view, 0, 1).mean(axis=2) ** (1 / 2.2) * 255).round().astype(np.uint8)
    det = chart.detect(gray)
    probe = np.array([[0, 0], [chart.width_mm, chart.height_mm], [chart.width_mm / 2, chart.height_mm / 2]])
    assert np.abs(project(det.homography, probe) - project(H, probe)).max() < 0.5
    # the tone curve shrinks every marker alike; the common inset puts their corners back
    truth = chart.fiducial_corners_mm()
    errors = [np.linalg.norm(det.markers[i] - project(H, truth[i]), axis=1) for i in det.markers]
    assert len(errors) == 4 and np.mean(errors) < 0.3


def test_blank_image_is_chart_not_found() -> None:
    for name in FIDUCIAL_CHARTS + ("charuco", "flat"):
        with pytest.raises(ChartNotFound) as info:
            get_chart(name).detect(np.zeros((480, 640), dtype=np.uint8))
        assert info.value.chart == name and repr(name) in str(info.value) and "\n" not in str(info.value)


# --- steps ---------------------------------------------------------------------------------------
def test_steps_reflectance_inside_patches() -> None:
    chart = StepChart()
    rects = chart.patch_rects_mm()
    centres = rects[:, :2] + rects[:, 2:] / 2
    refl = chart.reflectance_at(centres[:, 0], centres[:, 1])[:, 0]
    np.testing.assert_allclose(refl, 0.9 * 10.0 ** (-0.1 * np.arange(20)), rtol=1e-6)
    # reading order: row-major, 10 per row
    assert np.all(np.diff(centres[:10, 0]) > 0) and np.all(centres[10:, 1] > centres[:10, 1].max())


def test_steps_measured_in_order_and_ratio() -> None:
    chart = StepChart()
    H = perspective(chart, seed=11)
    view = render(chart, H)
    det = chart.detect(to_u8(view))
    means = np.array([_roi_mean(view, r.box)[1] for r in det.rois])
    truth = np.array([r.reflectance[1] for r in det.rois])
    assert [r.extra["index"] for r in det.rois] == list(range(20))
    assert np.all(np.diff(means) < 0)
    np.testing.assert_allclose(means[1:] / means[:-1], 10 ** -0.1, rtol=0.01)
    np.testing.assert_allclose(means, truth, rtol=0.01)


# --- ColorChecker --------------------------------------------------------------------------------
def _independent_colorchecker() -> np.ndarray:
    """N Ohta spectra x D65 x CIE 1931 2 deg, summed at the spectra's 5 nm, IEC 61966-2-1 matrix."""
    import colour

    sds = colour.SDS_COLOURCHECKERS["ColorChecker N Ohta"]
    cmfs = colour.MSDS_CMFS["CIE 1931 2 Degree Standard Observer"]
    d65 = colour.SDS_ILLUMINANTS["D65"]
    wl = np.arange(380, 781, 5)
    xbar = np.stack([np.interp(wl, cmfs.wavelengths, cmfs.values[:, k]) for k in range(3)], axis=1)
    s = np.interp(wl, d65.wavelengths, d65.values)
    k = 1.0 / np.sum(s * xbar[:, 1])
    m = np.array([[3.2406, -1.5372, -0.4986], [-0.9689, 1.8758, 0.0415], [0.0557, -0.2040, 1.0570]])
    out = []
    for sd in list(sds.values())[:24]:
        r = np.interp(wl, sd.wavelengths, sd.values)
        xyz = k * np.sum((r * s)[:, None] * xbar, axis=0)
        out.append(m @ xyz)
    return np.clip(np.array(out), 0, 1)


def test_colorchecker_matches_colour_science_reference() -> None:
    chart = ColorCheckerChart()
    feats = chart.features_mm()
    names = feats["names"]
    assert names[0] == "dark skin" and names[18].startswith("white") and len(names) == 24
    expected = _independent_colorchecker()
    np.testing.assert_allclose(feats["reflectances"], expected, atol=0.006)
    rects = feats["patches"]
    centres = rects[:, :2] + rects[:, 2:] / 2
    sampled = chart.reflectance_at(centres[:, 0], centres[:, 1])
    np.testing.assert_allclose(sampled, feats["reflectances"], atol=1e-6)
    # neutral patches are neutral
    neutral = feats["reflectances"][18:]
    assert np.abs(neutral - neutral.mean(axis=1, keepdims=True)).max() < 0.01


def test_colorchecker_patches_measured_in_a_view() -> None:
    chart = ColorCheckerChart()
    H = perspective(chart, seed=5)
    view = render(chart, H)
    det = chart.detect(to_u8(view))
    assert [r.name for r in det.rois] == list(chart.features_mm()["names"])
    for roi in det.rois:
        np.testing.assert_allclose(_roi_mean(view, roi.box), roi.reflectance, atol=0.003)


# --- SFR -----------------------------------------------------------------------------------------
def test_sfr_edges_geometry_and_contrast() -> None:
    chart = SlantedEdgeChart()
    edges = chart.edges()
    assert len(edges) == 52
    for e in edges:
        d = e["p1"] - e["p0"]
        off_axis = np.degrees(np.arctan2(abs(d[0]), abs(d[1]))) if e["orientation"] == "vertical" else \
            np.degrees(np.arctan2(abs(d[1]), abs(d[0])))
        assert off_axis == pytest.approx(5.0, abs=1e-9)
        # either side of the edge's midpoint: 0.2 on the square's side, 0.8 outside; 4:1
        mid, n = (e["p0"] + e["p1"]) / 2, np.array([-d[1], d[0]]) / np.linalg.norm(d)
        centre = chart.centres_mm()[e["square"]]
        inward = n if np.dot(centre - mid, n) > 0 else -n
        inside = chart.reflectance_at(*(mid + 0.5 * inward))[0]
        outside = chart.reflectance_at(*(mid - 0.5 * inward))[0]
        assert (inside, outside) == (pytest.approx(DARK), pytest.approx(LIGHT))
        # the ROI holds this edge's middle and none of the square's corners
        roi = e["roi"]
        lo, hi = roi.min(axis=0), roi.max(axis=0)
        assert np.all((mid > lo) & (mid < hi))
        corners = chart.squares_mm()[e["square"]]
        assert not np.any(np.all((corners > lo) & (corners < hi), axis=1))
    # across the field: centre, intermediate and corner squares
    field = np.array([e["field"] for e in edges])
    assert np.abs(field).max() >= 0.7 and np.any(np.all(field == 0, axis=1))


def test_sfr_rois_in_a_view_cross_one_edge() -> None:
    chart = SlantedEdgeChart()
    H = perspective(chart, seed=2)
    rgb = render(chart, H)
    view = rgb[..., 1]
    det = chart.detect(to_u8(rgb))
    assert len(det.rois) == 52
    for roi in det.rois:
        x, y, w, h = roi.box
        patch = view[y:y + h, x:x + w]
        profile = patch.mean(axis=0) if roi.orientation == "vertical" else patch.mean(axis=1)
        assert profile.max() > 0.7 and profile.min() < 0.35  # light and dark both present
        grad = np.abs(np.diff(profile))
        assert np.count_nonzero(grad > 0.5 * grad.max()) <= 6  # one transition
        assert roi.angle_deg == 5.0


# --- Siemens star and flat ------------------------------------------------------------------------
def test_siemens_star_geometry_and_detection() -> None:
    star = SiemensStar()
    c, r = star.centre_mm, star.radius_mm
    # middles of the wedges' halves: black, black, white, white, ...
    a = np.linspace(0, 2 * np.pi, 4 * star.cycles, endpoint=False) + np.pi / (4 * star.cycles)
    ring = star.reflectance_at(c[0] + 0.5 * r * np.cos(a), c[1] + 0.5 * r * np.sin(a))[:, 0]
    assert np.all(ring[0::4] < 0.1) and np.all(ring[1::4] < 0.1) and np.all(ring[2::4] > 0.8)
    assert star.reflectance_at(c[0] + 1.05 * r, c[1])[0] > 0.8  # outside the star: the sheet
    H = perspective(star, seed=4)
    det = star.detect(to_u8(render(star, H)))
    np.testing.assert_allclose(det.centre_px, project(H, c), atol=0.5)
    rim = project(H, c + r * np.stack([np.cos(a), np.sin(a)], axis=1))
    area = 0.5 * abs(np.sum(rim[:, 0] * np.roll(rim[:, 1], -1) - np.roll(rim[:, 0], -1) * rim[:, 1]))
    assert det.radius_px == pytest.approx(np.sqrt(area / np.pi), abs=0.5)


def test_flat_field_is_uniform_everywhere() -> None:
    flat = FlatField()
    img = flat.raster(-50.0, -50.0, 0.5, 300, 250)
    np.testing.assert_array_equal(img, np.ones_like(img))
    det = flat.detect(np.full((48, 64), 200, dtype=np.uint8))
    assert det.found and det.homography is None and [r.name for r in det.rois] == ["centre", "frame"]
    assert det.rois[1].box == (0, 0, 64, 48)
