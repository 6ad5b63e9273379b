"""Geometry at 50 MP holds about one view at a time: the views' images spilled to temporary files give the very
corners and model the in-memory path gives (bit-equal), the temporary files go on success and on error, and
neither ``calibrate_images`` nor the station's RAW -> green stream holds a view once it is handed on."""

from __future__ import annotations

import tempfile
import weakref
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from calibration.geometry import ViewImages, calibrate_images, spill
from station.procedures.framing import green_image
from station.procedures.geometry import _green_views
from tests.unit.test_geometry import CHARUCO, K_TRUE, SIZE, board_poses, charuco_views


@pytest.fixture(scope="module")
def green_views() -> list[tuple[str, np.ndarray]]:
    """Exact ChArUco renders as 16-bit images (the station's green is uint16), some cut by the frame edge."""
    poses = board_poses(200, 280, K_TRUE, SIZE, 6, seed=41, distance_mm=(330, 420), tilt_rad=0.5, spread=0.0)
    return [(name, image.astype(np.uint16) * 257) for name, image in charuco_views(poses)]


@pytest.fixture()
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Python's temporary folder for this test, to see what the spill leaves behind."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


@pytest.mark.parametrize("method, on_model", [("saddle", False), ("saddle", True), ("subpix", False)])
def test_spilled_views_give_the_in_memory_corners_and_model_bit_for_bit(
        green_views: list[tuple[str, np.ndarray]], private_tmp: Path, method: str, on_model: bool) -> None:
    memory = calibrate_images(green_views, CHARUCO, method=method, on_model=on_model, spill=False)
    spilled = calibrate_images(green_views, CHARUCO, method=method, on_model=on_model, spill=True)
    assert [v.name for v in spilled.views] == [v.name for v in memory.views]
    assert sum(len(v.ids) for v in memory.views) > 0
    for a, b in zip(memory.views, spilled.views, strict=True):
        assert np.array_equal(a.ids, b.ids) and np.array_equal(a.image_points, b.image_points), a.name
        assert np.array_equal(a.object_points, b.object_points), a.name
    assert np.array_equal(memory.result.camera_matrix, spilled.result.camera_matrix)
    assert np.array_equal(memory.result.dist_coeffs, spilled.result.dist_coeffs)
    assert memory.result.rms_px == spilled.result.rms_px
    assert list(private_tmp.iterdir()) == []  # the spill folder went with the call


def test_calibrate_images_lets_each_view_go_once_its_board_is_found(
        green_views: list[tuple[str, np.ndarray]], private_tmp: Path) -> None:
    """A generator of views: when view k+1 is asked for, nothing in ``calibrate_images`` still holds view k."""
    alive: list[weakref.ref[np.ndarray]] = []
    held: list[int] = []

    def views() -> Iterator[tuple[str, np.ndarray]]:
        for name, image in green_views:
            held.append(sum(ref() is not None for ref in alive))
            copy = image.copy()  # a frame only the consumer holds once handed on
            alive.append(weakref.ref(copy))
            yield name, copy
            del copy

    result = calibrate_images(views(), CHARUCO, spill=True)
    assert len(result.views) >= 3
    assert held == [0] * len(green_views), held
    in_memory: list[int] = []

    def kept() -> Iterator[tuple[str, np.ndarray]]:  # the same check fails when the views stay in memory
        for name, image in green_views:
            in_memory.append(sum(ref() is not None for ref in alive[len(green_views):]))
            copy = image.copy()
            alive.append(weakref.ref(copy))
            yield name, copy
            del copy

    calibrate_images(kept(), CHARUCO, spill=False)
    assert in_memory[-1] > 0


def test_spill_folder_goes_when_the_calibration_fails(green_views: list[tuple[str, np.ndarray]],
                                                      private_tmp: Path) -> None:
    def broken() -> Iterator[tuple[str, np.ndarray]]:
        yield from green_views[:2]
        raise OSError("camera gone")

    with pytest.raises(OSError, match="camera gone"):
        calibrate_images(broken(), CHARUCO, spill=True)
    assert list(private_tmp.iterdir()) == []
    blank = np.full((SIZE[1], SIZE[0]), 30000, np.uint16)
    with pytest.raises(ValueError, match="at least two views"):
        calibrate_images([green_views[0], ("blank", blank)], CHARUCO, spill=True)
    assert list(private_tmp.iterdir()) == []


def test_view_images_spill_by_size_and_map_back_the_same_bytes(private_tmp: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spill, "SPILL_MIN_BYTES", 1000)
    rng = np.random.default_rng(3)
    big = rng.integers(0, 65536, (40, 30), dtype=np.uint16)  # 2400 bytes: spilled
    small = rng.integers(0, 65536, (10, 10), dtype=np.uint16)  # 200 bytes: kept
    with ViewImages() as images:
        images.add("pan +10.5 tilt -8.4/../x", big)  # a name from outside never becomes a path
        images.add("small", small)
        assert images.spilled == ["pan +10.5 tilt -8.4/../x"]
        mapped = images["pan +10.5 tilt -8.4/../x"]
        assert isinstance(mapped, np.memmap) and not mapped.flags.writeable
        assert mapped.dtype == big.dtype and np.array_equal(mapped, big)
        assert images["small"] is small
        assert sorted(images) == ["pan +10.5 tilt -8.4/../x", "small"] and len(images) == 2
        files = [p.name for d in private_tmp.iterdir() for p in d.iterdir()]
        assert files == ["view0.npy"]
        del mapped
    assert list(private_tmp.iterdir()) == []


def _raw(rng: np.random.Generator) -> SimpleNamespace:
    return SimpleNamespace(data=rng.integers(64, 1023, (64, 96), dtype=np.uint16), cfa="RGGB", black_level=64.0,
                           white_level=1023.0)


def test_green_stream_lets_each_raw_go_before_its_green_is_handed_on() -> None:
    """The station's RAW -> green stream for ``calibrate_images``: while view k is detected, its RAW frame is
    no longer held (a 50 MP RAW and its green are 100 MB each)."""
    rng = np.random.default_rng(5)
    raws: list[weakref.ref[np.ndarray]] = []
    expected: list[np.ndarray] = []

    def new_frame() -> SimpleNamespace:
        frame = _raw(rng)
        raws.append(weakref.ref(frame.data))
        expected.append(green_image(frame))
        return frame

    def frames() -> Iterator[tuple[str, SimpleNamespace]]:  # holds no frame once handed on (as the stream's queue)
        for i in range(3):
            yield f"v{i}", new_frame()

    pictures = {"already drawn": b""}  # the first view's picture is drawn elsewhere
    for i, (name, green) in enumerate(_green_views(frames(), "m", pictures)):
        assert name == f"v{i}" and np.array_equal(green, expected[i])
        assert raws[i]() is None, f"RAW of {name} still held while its green is analysed"
