"""calibration.focus_fit against independent maths: a parabola's vertex, a plane with an outlier, the focus
metric's ranking and its exposure invariance."""

from __future__ import annotations

import math

import cv2
import numpy as np

from calibration.focus_fit import fit_plane, parabola_vertex, pyramid_sharpness


def test_the_vertex_of_a_sampled_parabola_is_found_and_a_downward_one_is_nan() -> None:
    x = np.linspace(0.0, 40.0, 11)
    y = 3.0 + 0.02 * (x - 17.3) ** 2
    assert math.isclose(parabola_vertex(x, y), 17.3, rel_tol=1e-9)
    assert math.isnan(parabola_vertex(x, -y))
    assert math.isnan(parabola_vertex(x[:3], y[:3]))  # too few points


def test_a_plane_is_fitted_through_the_field_and_an_outlier_left_out() -> None:
    rng = np.random.default_rng(1)
    xy = rng.uniform(-10.0, 10.0, (40, 2))
    z = 5.0 + 0.3 * xy[:, 0] - 0.2 * xy[:, 1] + rng.normal(0.0, 0.01, 40)
    z[7] += 3.0
    coef, used = fit_plane(xy, z)
    assert not used[7] and used.sum() == 39
    np.testing.assert_allclose(coef, [5.0, 0.3, -0.2], atol=0.01)


def test_the_focus_metric_ranks_sharp_above_blurred_and_ignores_the_exposure() -> None:
    checker = (np.indices((256, 256)).sum(axis=0) // 16 % 2 * 600 + 100).astype(np.uint16)
    blurred = cv2.GaussianBlur(checker.astype(np.float32), (0, 0), 6.0)
    sharp = pyramid_sharpness(checker)
    assert sharp > 3 * pyramid_sharpness(blurred)
    assert math.isclose(pyramid_sharpness(checker.astype(np.float32) * 0.5), sharp, rel_tol=1e-5)
