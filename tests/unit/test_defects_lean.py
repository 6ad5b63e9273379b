"""The lean defect path (issue 13: frames summed as they arrive, the maths one CFA plane at a time, clusters from
the defect pixels alone) equals today's whole-frame path (tests/unit/defects_reference.py) bit for bit, on
seeded frame sets with injected defects of every kind and clusters."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from calibration.defects import (
    FrameSum,
    cluster_sizes,
    dark_outliers,
    dark_rate_count,
    dark_signal_rate,
    find_defects,
    flat_outliers,
    relative_response,
    sum_dtype,
)
from tests.unit import defects_reference as reference

HEIGHT, WIDTH = 96, 128
BLACK = 64
DARK_LONG_S = 0.25


def _frame_set(seed: int, frames: int) -> dict[str, list[np.ndarray]]:
    """Dark frames at 0.25 s, darks and flats (vignetted, mid-scale) at a short exposure, 10-bit codes, with
    hot, warm, dead, weak and stuck pixels and a few clusters injected."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH]
    shading = 1.0 - 0.35 * (((yy - HEIGHT / 2) / HEIGHT) ** 2 + ((xx - WIDTH / 2) / WIDTH) ** 2)
    gain = np.ones((HEIGHT, WIDTH))
    dark_rate = np.zeros((HEIGHT, WIDTH))  # DN/s
    offset = np.zeros((HEIGHT, WIDTH))
    spots = rng.choice(HEIGHT * WIDTH, size=60, replace=False)
    for i, index in enumerate(spots):
        y, x = divmod(int(index), WIDTH)
        which = i % 6
        if which == 0:
            dark_rate[y, x] = rng.uniform(1500, 3000)  # hot
        elif which == 1:
            dark_rate[y, x] = rng.uniform(80, 400)  # warm
        elif which == 2:
            gain[y, x] = 0.0  # dead
        elif which == 3:
            gain[y, x] = rng.uniform(0.3, 0.6)  # weak
        elif which == 4:
            gain[y, x], offset[y, x] = 0.0, 300.0  # stuck
        else:  # a cluster of 3 x 3 dead and weak pixels
            gain[max(y - 1, 0):y + 2, max(x - 1, 0):x + 2] = 0.05
    gain[10:30, 40] = 0.0  # a column segment: an oversized cluster
    out: dict[str, list[np.ndarray]] = {"dark_long": [], "dark_short": [], "flat": []}
    for _ in range(frames):
        def code(signal: np.ndarray) -> np.ndarray:
            noisy = BLACK + offset + rng.poisson(np.maximum(signal, 0.0)) + rng.normal(0.0, 2.0, signal.shape)
            return np.clip(np.rint(noisy), 0, 1023).astype(np.uint16)

        out["dark_long"].append(code(dark_rate * DARK_LONG_S + 1.0))
        out["dark_short"].append(code(dark_rate * 0.002))
        out["flat"].append(code(450.0 * shading * gain + dark_rate * 0.002))
    return out


def _summed(frames: list[np.ndarray]) -> FrameSum:
    total = FrameSum(1023, len(frames))
    for frame in frames:
        total.add(frame)
    return total


def _same(lean, ref) -> None:
    np.testing.assert_array_equal(lean.x, ref.x)
    np.testing.assert_array_equal(lean.y, ref.y)
    assert lean.kind == ref.kind
    assert lean.cluster_sizes == ref.cluster_sizes
    assert lean.to_dict() == ref.to_dict()


@pytest.mark.parametrize(("seed", "frames", "cfa"), [(1, 2, "RGGB"), (2, 1, "GRBG"), (3, 4, "BGGR"), (4, 3, "GBRG")])
def test_the_lean_path_equals_the_whole_frame_path_bit_for_bit(seed, frames, cfa):
    data = _frame_set(seed, frames)
    ref = reference.find_defects(data["dark_long"], DARK_LONG_S, data["flat"], data["dark_short"], cfa)
    assert set(ref.kind) == {"hot", "warm", "dead", "weak", "stuck"}  # every kind is in the set
    assert ref.oversized_clusters  # and a cluster over the limit
    summed = find_defects(_summed(data["dark_long"]), DARK_LONG_S, _summed(data["flat"]),
                          _summed(data["dark_short"]), cfa)
    _same(summed, ref)
    _same(find_defects(data["dark_long"], DARK_LONG_S, data["flat"], data["dark_short"], cfa), ref)
    stacked = find_defects(np.asarray(data["dark_long"]), DARK_LONG_S, np.asarray(data["flat"]),
                           np.asarray(data["dark_short"]), cfa)
    _same(stacked, ref)


def test_the_full_frame_maps_equal_the_whole_frame_maths():
    data = _frame_set(7, 3)
    np.testing.assert_array_equal(dark_signal_rate(_summed(data["dark_long"]), DARK_LONG_S, "RGGB"),
                                  reference.dark_signal_rate(data["dark_long"], DARK_LONG_S, "RGGB"))
    dark = reference._mean(data["dark_short"])
    np.testing.assert_array_equal(relative_response(_summed(data["flat"]), _summed(data["dark_short"]), "RGGB"),
                                  reference.relative_response(data["flat"], dark, "RGGB"))
    np.testing.assert_array_equal(relative_response(data["flat"], 64.0, "RGGB"),
                                  reference.relative_response(data["flat"], 64.0, "RGGB"))


@pytest.mark.parametrize("density", [0.002, 0.05, 0.3])
def test_clusters_from_the_pixels_alone_are_ndimage_labels(density):
    mask = np.random.default_rng(11).random((70, 90)) < density
    mask[:, 0] = mask[:, -1] = True  # clusters on the edges: no wrap-around between rows
    labels, count = ndimage.label(mask, structure=np.ones((3, 3), dtype=bool))
    ys, xs = np.nonzero(mask)
    expected = np.bincount(labels[ys, xs], minlength=count + 1)[1:]
    np.testing.assert_array_equal(cluster_sizes(ys, xs, mask.shape), expected)


def test_a_frame_sum_is_exact_and_refuses_what_would_overflow():
    assert sum_dtype(1023, 64) == np.uint16 and sum_dtype(1023, 65) == np.uint32
    assert sum_dtype(65535, 2) == np.uint32
    frames = [np.full((4, 6), 1023, np.uint16)] * 64
    total = _summed(frames)
    assert total.total.dtype == np.uint16 and int(total.total.max()) == 1023 * 64
    with pytest.raises(ValueError, match="full"):
        total.add(frames[0])
    small = FrameSum(1023, 2)
    with pytest.raises(ValueError, match="outside 0..1023"):
        small.add(np.full((4, 6), 1024, np.uint16))
    small.add(frames[0])
    with pytest.raises(ValueError, match="shape"):
        small.add(np.zeros((5, 6), np.uint16))
    with pytest.raises(ValueError, match="integer"):
        small.add(np.zeros((4, 6), np.float32))


@pytest.mark.parametrize(("seed", "cfa"), [(5, "RGGB"), (6, "GBRG")])
def test_the_characterisation_outliers_plane_by_plane_equal_the_whole_frame_maths(seed, cfa):
    """``defect_exclusion``'s masks (short darks: the noise test decides) and the hot-pixel count, lean and
    whole-frame, on the same frames: equal pixel for pixel."""
    data = _frame_set(seed, 2)
    dark_mean = np.mean(data["dark_short"], axis=0, dtype=np.float64)
    for exposure_s in (0.002, DARK_LONG_S):
        ref = reference.dark_outliers(data["dark_long"], exposure_s, cfa)
        assert ref.any() and not ref.all()
        np.testing.assert_array_equal(dark_outliers(data["dark_long"], exposure_s, cfa), ref)
        np.testing.assert_array_equal(dark_outliers(_summed(data["dark_long"]), exposure_s, cfa), ref)
        assert dark_rate_count(data["dark_long"], exposure_s, cfa, 1000.0) == int(
            np.count_nonzero(reference.dark_signal_rate(data["dark_long"], exposure_s, cfa) >= 1000.0))
    ref = reference.flat_outliers(data["flat"], dark_mean, cfa)
    assert ref.any() and not ref.all()
    np.testing.assert_array_equal(flat_outliers(data["flat"], data["dark_short"], cfa), ref)
    np.testing.assert_array_equal(flat_outliers(data["flat"], dark_mean, cfa), ref)
    np.testing.assert_array_equal(flat_outliers(data["flat"], 64.0, cfa),
                                  reference.flat_outliers(data["flat"], 64.0, cfa))
