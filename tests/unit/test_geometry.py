"""Geometry calibration: model maths, corner refinement, outlier rejection, real reference data.

Ground truth: cameras and boards made here (points through cv2.projectPoints, images through an exact
homography warp), and OpenCV's published calibrations in ../shared/reference (skipped when absent).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from calibration.geometry import (
    ChessboardSpec,
    ViewPoints,
    calibrate,
    calibrate_images,
    detect_charuco,
    detect_chessboard,
    model_gap_px,
    pixels_to_rays,
    rays_to_pixels,
    refine_saddle,
    saddle_points_on_model,
)
from targets.charuco import CharucoSpec
from tests.unit.reference import reference_dir

#: Reference data sets (tests/unit/reference.py): OpenCV's stereo chessboard samples and ChArUco tutorial.
CHESS = "chessboard_opencv_left_right"
CHARUCO_TUTORIAL = "charuco_opencv_aruco_tutorial"

SIZE = (640, 480)
K_TRUE = np.array([[500.0, 0.0, 318.4], [0.0, 500.0, 243.7], [0.0, 0.0, 1.0]])
D_TRUE = np.array([-0.21, 0.06, 0.0012, -0.0007, -0.01])


# --------------------------------------------------------------------------------------------------
# Synthetic images: a board texture through an exact homography, supersampled (shared with the CLI test)
# --------------------------------------------------------------------------------------------------
def chessboard_texture(cols: int, rows: int, square_px: int) -> tuple[np.ndarray, float]:
    """Texture (float32 0..1) of a chessboard with ``cols`` x ``rows`` inner corners and a one-square white
    margin; returns it and the texture position (px, corner convention) of inner corner (0, 0)."""
    nx, ny = cols + 1, rows + 1
    yy, xx = np.mgrid[0 : ny * square_px, 0 : nx * square_px]
    board = (((xx // square_px) + (yy // square_px)) % 2 == 1).astype(np.float32)
    board = np.pad(board, square_px, constant_values=1.0)
    return board, 2.0 * square_px


def warp_texture(texture: np.ndarray, texture_px_per_mm: float, origin_px: float, H_board_to_image: np.ndarray,
                 size: tuple[int, int], *, supersample: int = 4, blur_px: float = 0.5, noise: float = 0.004,
                 seed: int = 0) -> np.ndarray:
    """8-bit image of a planar texture seen through ``H`` (board mm -> image px, pixel centres at integers).

    Texture pixel k covers [k, k+1) in texture px; board mm b sits at texture px origin + b * px_per_mm.
    Rendered at ``supersample`` x resolution and area-averaged down, then blurred and noised.
    """
    s = supersample
    S = np.array([[s, 0, (s - 1) / 2.0], [0, s, (s - 1) / 2.0], [0, 0, 1.0]])
    M = np.array([[texture_px_per_mm, 0, origin_px - 0.5], [0, texture_px_per_mm, origin_px - 0.5], [0, 0, 1.0]])
    warp = S @ H_board_to_image @ np.linalg.inv(M)
    hi = cv2.warpPerspective(texture, warp, (size[0] * s, size[1] * s), flags=cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_CONSTANT, borderValue=0.6)
    img = cv2.resize(hi, size, interpolation=cv2.INTER_AREA)
    if blur_px:
        img = cv2.GaussianBlur(img, (0, 0), blur_px)
    img = 0.1 + 0.8 * img + np.random.default_rng(seed).normal(0.0, noise, img.shape)
    return np.clip(img * 255 + 0.5, 0, 255).astype(np.uint8)


def homography(K: np.ndarray, rvec: np.ndarray, tvec: np.ndarray) -> np.ndarray:
    R, _ = cv2.Rodrigues(np.asarray(rvec, dtype=np.float64))
    return K @ np.column_stack([R[:, 0], R[:, 1], np.asarray(tvec, dtype=np.float64)])


def board_poses(width_mm: float, height_mm: float, K: np.ndarray, size: tuple[int, int], n: int, seed: int,
                distance_mm: tuple[float, float], tilt_rad: float = 0.5,
                spread: float = 0.2) -> list[tuple[np.ndarray, np.ndarray]]:
    """Random tilted poses with the board centre at random places in the frame."""
    rng = np.random.default_rng(seed)
    poses = []
    for _ in range(n):
        rvec = np.array([rng.uniform(-tilt_rad, tilt_rad), rng.uniform(-tilt_rad, tilt_rad), rng.uniform(-0.3, 0.3)])
        R, _ = cv2.Rodrigues(rvec)
        u, v = rng.uniform(spread, 1 - spread) * size[0], rng.uniform(spread, 1 - spread) * size[1]
        ray = np.array([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], 1.0])
        tvec = ray * rng.uniform(*distance_mm) - R @ np.array([width_mm / 2, height_mm / 2, 0.0])
        poses.append((rvec, tvec))
    return poses


#: The ChArUco board of the synthetic views (OpenCV's tutorial board), and its texture's pixels per mm.
CHARUCO = CharucoSpec(5, 7, 40.0, 20.0, "DICT_6X6_250")
CHARUCO_PX_PER_MM = 8


def charuco_views(poses: list[tuple[np.ndarray, np.ndarray]]) -> list[tuple[str, np.ndarray]]:
    """Exact renders ``(name, image)`` of ``CHARUCO`` through ``K_TRUE`` at ``poses``, view i's noise seeded i."""
    size_px = (5 * 40 * CHARUCO_PX_PER_MM, 7 * 40 * CHARUCO_PX_PER_MM)
    texture = CHARUCO.cv_board().generateImage(size_px, marginSize=0, borderBits=1).astype(np.float32) / 255.0
    return [(f"v{i}", warp_texture(texture, CHARUCO_PX_PER_MM, 0.0, homography(K_TRUE, rvec, tvec), SIZE, seed=i))
            for i, (rvec, tvec) in enumerate(poses)]


# --------------------------------------------------------------------------------------------------
# Model maths
# --------------------------------------------------------------------------------------------------
def test_rays_to_pixels_matches_opencv_projection_and_inverts() -> None:
    rng = np.random.default_rng(1)
    rays = rng.uniform(-0.6, 0.6, (500, 2))
    pts3 = np.column_stack([rays, np.ones(len(rays))])
    cv_px, _ = cv2.projectPoints(pts3, np.zeros(3), np.zeros(3), K_TRUE, D_TRUE)
    px = rays_to_pixels(rays, K_TRUE, D_TRUE)
    assert np.abs(px - cv_px.reshape(-1, 2)).max() < 1e-9
    assert np.abs(pixels_to_rays(px, K_TRUE, D_TRUE) - rays).max() < 1e-12


def test_model_gap_px_is_zero_for_one_model_and_the_shift_for_a_moved_centre() -> None:
    assert model_gap_px(K_TRUE, D_TRUE, K_TRUE, D_TRUE, SIZE) < 1e-9
    moved = K_TRUE.copy()
    moved[0, 2] += 0.5  # same rays, every pixel 0.5 px to the right
    assert model_gap_px(K_TRUE, D_TRUE, moved, D_TRUE, SIZE) == pytest.approx(0.5, abs=1e-9)
    # A focal length 0.1 % longer moves the frame corner (farthest from the centre) the most.
    longer = K_TRUE.copy()
    longer[0, 0] *= 1.001
    longer[1, 1] *= 1.001
    zero = np.zeros(5)
    corner_r = np.hypot(max(K_TRUE[0, 2], SIZE[0] - 1 - K_TRUE[0, 2]), max(K_TRUE[1, 2], SIZE[1] - 1 - K_TRUE[1, 2]))
    assert model_gap_px(K_TRUE, zero, longer, zero, SIZE, step=1) == pytest.approx(0.001 * corner_r, rel=1e-3)


# --------------------------------------------------------------------------------------------------
# Calibration on exact points: recovery and rejection
# --------------------------------------------------------------------------------------------------
def _point_views(n: int = 12, noise_px: float = 0.01, seed: int = 0) -> list[ViewPoints]:
    board = ChessboardSpec(16, 12, 20.0)
    obj = board.object_points()
    centre = obj[:, :2].mean(axis=0)
    rng = np.random.default_rng(seed)
    views = []
    for i, (rvec, tvec) in enumerate(board_poses(2 * centre[0], 2 * centre[1], K_TRUE, SIZE, n, seed,
                                                 (280, 420), tilt_rad=0.6, spread=0.15)):
        px, _ = cv2.projectPoints(obj, rvec, tvec, K_TRUE, D_TRUE)
        px = px.reshape(-1, 2)
        inside = (px[:, 0] >= 0) & (px[:, 0] <= SIZE[0] - 1) & (px[:, 1] >= 0) & (px[:, 1] <= SIZE[1] - 1)
        views.append(ViewPoints(f"view{i:02d}", obj[inside], px[inside] + rng.normal(0, noise_px, (inside.sum(), 2))))
    return views


def test_calibrate_recovers_a_known_model_within_005_px_everywhere() -> None:
    views = _point_views()
    result = calibrate(views, SIZE)
    gap = model_gap_px(K_TRUE, D_TRUE, result.camera_matrix, result.dist_coeffs, SIZE)
    assert gap < 0.05, f"recovered model is {gap:.4f} px from the truth"
    assert result.rms_px == pytest.approx(0.01 * np.sqrt(2), rel=0.25)  # 0.01 px per axis
    assert all(v.used for v in result.views)
    assert result.to_dict()["dist_coeffs"] == pytest.approx(list(result.dist_coeffs))


def test_calibrate_rejects_a_view_that_disagrees_and_refits() -> None:
    views = _point_views()
    bad = views[3]
    shifted = bad.image_points.copy()
    shifted[: len(shifted) // 2] += np.array([1.5, -1.0])  # half the board moved: a mis-detection
    views[3] = ViewPoints(bad.name, bad.object_points, shifted)
    views.append(ViewPoints("few", views[0].object_points[:4], views[0].image_points[:4]))
    kept = calibrate(views, SIZE, reject=False)
    result = calibrate(views, SIZE)
    by_name = {v.name: v for v in result.views}
    assert not by_name[bad.name].used and "disagrees" in by_name[bad.name].reason
    assert not by_name["few"].used and "too few points" in by_name["few"].reason
    assert sum(v.used for v in result.views) == len(views) - 2
    gap = model_gap_px(K_TRUE, D_TRUE, result.camera_matrix, result.dist_coeffs, SIZE)
    gap_kept = model_gap_px(K_TRUE, D_TRUE, kept.camera_matrix, kept.dist_coeffs, SIZE)
    assert gap < 0.05 < gap_kept


def test_fix_aspect_keeps_fx_equal_to_fy() -> None:
    result = calibrate(_point_views(n=6), SIZE, fix_aspect=True)
    assert result.camera_matrix[0, 0] == pytest.approx(result.camera_matrix[1, 1], rel=1e-12)


# --------------------------------------------------------------------------------------------------
# Corner refinement and detection on synthetic images
# --------------------------------------------------------------------------------------------------
def _corner_image(centre: tuple[float, float], axes: np.ndarray, size: int = 41, blur: float = 0.8,
                  ss: int = 8) -> np.ndarray:
    """A checker corner at ``centre`` (px) with edge directions ``axes`` (2x2 columns), area-sampled."""
    o = (np.arange(ss) + 0.5) / ss - 0.5
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    x = xs[..., None, None] + o[None, None, None, :] - centre[0]
    y = ys[..., None, None] + o[None, None, :, None] - centre[1]
    inv = np.linalg.inv(axes)
    a = inv[0, 0] * x + inv[0, 1] * y
    b = inv[1, 0] * x + inv[1, 1] * y
    img = (np.sign(a) * np.sign(b) > 0).mean(axis=(2, 3)).astype(np.float32)
    return cv2.GaussianBlur(img, (0, 0), blur) * 200 + 30


def test_refine_saddle_finds_sheared_blurred_corners_to_002_px() -> None:
    rng = np.random.default_rng(7)
    errors = []
    for _ in range(20):
        centre = (20 + rng.uniform(-0.5, 0.5), 20 + rng.uniform(-0.5, 0.5))
        t1, t2 = rng.uniform(0, np.pi), None
        t2 = t1 + rng.uniform(0.35, 0.65) * np.pi  # edges 63..117 degrees apart: a perspective view
        axes = np.array([[np.cos(t1), np.cos(t2)], [np.sin(t1), np.sin(t2)]])
        img = _corner_image(centre, axes)
        start = np.array([centre]) + rng.uniform(-1.5, 1.5, (1, 2))
        found = refine_saddle(img, start, 6.0)
        errors.append(np.hypot(*(found[0] - centre)))
    assert max(errors) < 0.02, f"saddle refinement errors up to {max(errors):.4f} px"


def test_detect_charuco_beats_plain_opencv_on_exact_renders() -> None:
    board_xy, _ = CHARUCO.chessboard_corners_mm()
    errs = {"saddle": [], "opencv": []}
    poses = board_poses(200, 280, K_TRUE, SIZE, 4, seed=11, distance_mm=(420, 520))
    for (_, img), (rvec, tvec) in zip(charuco_views(poses), poses, strict=True):
        H = homography(K_TRUE, rvec, tvec)
        for method in errs:
            found = detect_charuco(img, CHARUCO, method=method)
            assert found is not None
            pts, ids = found
            assert pts.shape == (len(ids), 2) and ids.ndim == 1
            truth = cv2.perspectiveTransform(board_xy[ids].reshape(-1, 1, 2), H).reshape(-1, 2)
            errs[method].append(np.linalg.norm(pts - truth, axis=1))
    rms = {m: float(np.sqrt(np.mean(np.concatenate(e) ** 2))) for m, e in errs.items()}
    print(f"\nChArUco corners on exact renders, RMS error: saddle {rms['saddle']:.4f} px,"
          f" plain OpenCV {rms['opencv']:.4f} px")
    assert rms["saddle"] < 0.03, rms
    assert rms["saddle"] < 0.6 * rms["opencv"], rms


def test_calibrate_images_model_gap_beats_plain_opencv_on_exact_renders() -> None:
    """Ten exact ChArUco views through a pinhole: the station's pipeline (saddle corners, one round of
    model-based re-refinement) against plain OpenCV (CharucoDetector corners, calibrateCamera defaults)."""
    poses = board_poses(200, 280, K_TRUE, SIZE, 10, seed=33, distance_mm=(380, 520), tilt_rad=0.6, spread=0.15)
    images = charuco_views(poses)
    zero = np.zeros(5)
    plain = calibrate_images(images, CHARUCO, method="opencv", reject=False).result
    station = calibrate_images(images, CHARUCO).result
    gap_plain = model_gap_px(K_TRUE, zero, plain.camera_matrix, plain.dist_coeffs, SIZE)
    gap_station = model_gap_px(K_TRUE, zero, station.camera_matrix, station.dist_coeffs, SIZE)
    print(f"\nmodel gap on exact ChArUco renders: station {gap_station:.3f} px, plain OpenCV {gap_plain:.3f} px")
    assert gap_station < 0.35
    assert gap_station < 0.5 * gap_plain


def test_detect_chessboard_on_exact_render_and_none_without_board() -> None:
    cols, rows, square_px = 9, 6, 40
    texture, origin = chessboard_texture(cols, rows, square_px)
    spec = ChessboardSpec(cols, rows, 25.0)
    rvec, tvec = board_poses(200, 125, K_TRUE, SIZE, 1, seed=5, distance_mm=(380, 420))[0]
    H = homography(K_TRUE, rvec, tvec)
    img = warp_texture(texture, square_px / 25.0, origin, H, SIZE)
    pts = detect_chessboard(img, cols, rows)
    assert pts is not None and pts.shape == (cols * rows, 2)
    truth = cv2.perspectiveTransform(spec.object_points()[:, :2].reshape(-1, 1, 2), H).reshape(-1, 2)
    if np.linalg.norm(pts[0] - truth[0]) > np.linalg.norm(pts[0] - truth[-1]):
        truth = truth[::-1]  # the detector may start from the other end
    assert np.abs(pts - truth).max() < 0.05
    assert detect_chessboard(np.full((480, 640), 128, np.uint8), cols, rows) is None


def test_saddle_points_on_model_find_corners_through_the_true_model() -> None:
    cols, rows, square_px = 9, 6, 40
    texture, origin = chessboard_texture(cols, rows, square_px)
    obj = ChessboardSpec(cols, rows, 25.0).object_points()
    rvec, tvec = board_poses(200, 125, K_TRUE, SIZE, 1, seed=8, distance_mm=(330, 360), tilt_rad=0.7)[0]
    img = warp_texture(texture, square_px / 25.0, origin, homography(K_TRUE, rvec, tvec), SIZE)
    truth, _ = cv2.projectPoints(obj, rvec, tvec, K_TRUE, np.zeros(5))
    # Start from a slightly wrong pose: the patches then start off-centre and must walk to the saddles.
    found, strength = saddle_points_on_model(img, obj, rvec + 0.002, tvec + 0.3, K_TRUE, np.zeros(5), 7.5,
                                             samples=8, smooth_sigma=1.0)
    err = np.linalg.norm(found - truth.reshape(-1, 2), axis=1)
    assert (strength > 0).all()
    assert err.max() < 0.03, f"corner errors up to {err.max():.4f} px"


def test_refinement_from_the_model_adds_charuco_corners_cut_by_the_frame_edge() -> None:
    board_xy, _ = CHARUCO.chessboard_corners_mm()
    poses = board_poses(200, 280, K_TRUE, SIZE, 8, seed=41, distance_mm=(330, 420), tilt_rad=0.5, spread=0.0)
    images = charuco_views(poses)
    first = calibrate_images(images, CHARUCO, iterations=0)
    again = calibrate_images(images, CHARUCO, iterations=1)
    n_first = sum(len(v.image_points) for v in first.views)
    n_again = sum(len(v.image_points) for v in again.views)
    print(f"\nChArUco corners: {n_first} detected, {n_again} after one refinement from the model")
    assert n_again > n_first  # corners whose markers the frame cuts, found where the model puts them
    truth = dict(zip([n for n, _ in images], poses, strict=True))
    for view in again.views:
        rvec, tvec = truth[view.name]
        H = homography(K_TRUE, rvec, tvec)
        expected = cv2.perspectiveTransform(board_xy[view.ids].reshape(-1, 1, 2), H).reshape(-1, 2)
        assert np.abs(view.image_points - expected).max() < 0.1, view.name


# --------------------------------------------------------------------------------------------------
# Real data: OpenCV's published calibrations
# --------------------------------------------------------------------------------------------------
def _left_images() -> list[tuple[str, np.ndarray]]:
    files = sorted(reference_dir(CHESS).glob("left*.jpg"))
    return [(f.name, cv2.imread(str(f), cv2.IMREAD_GRAYSCALE)) for f in files]


def _yml(path: Path) -> dict[str, np.ndarray | float]:
    fs = cv2.FileStorage(str(path), cv2.FILE_STORAGE_READ)
    try:
        return {"K": fs.getNode("camera_matrix").mat(), "D": fs.getNode("distortion_coefficients").mat(),
                "rms": fs.getNode("avg_reprojection_error").real(),
                "per_view": fs.getNode("per_view_reprojection_errors").mat()}
    finally:
        fs.release()


@pytest.mark.reference
def test_chessboard_reference_reproduces_left_intrinsics_yml() -> None:
    ref = _yml(reference_dir(CHESS) / "left_intrinsics.yml")
    images = _left_images()
    spec = ChessboardSpec(9, 6, 25.0)
    views = []
    for name, gray in images:
        pts = detect_chessboard(gray, 9, 6, method="opencv")  # the recipe of OpenCV's calibration.cpp
        assert pts is not None, name
        views.append(ViewPoints(name, spec.object_points(), pts))
    result = calibrate(views, SIZE, fix_aspect=True, reject=False)
    fx_ref = float(ref["K"][0, 0])
    print(f"\nleft*.jpg (OpenCV recipe): fx {result.camera_matrix[0, 0]:.3f} vs {fx_ref:.3f},"
          f" RMS {result.rms_px:.5f} vs {ref['rms']:.5f} px")
    assert result.camera_matrix[0, 0] == pytest.approx(fx_ref, rel=0.002)
    assert abs(result.rms_px - float(ref["rms"])) < 0.01
    # With rejection on, the view the published file shows at 1.18 px (left02) is the one rejected.
    rejected = [v.name for v in calibrate(views, SIZE, fix_aspect=True).views if not v.used]
    per_view = np.asarray(ref["per_view"]).ravel()
    assert rejected == [images[int(np.argmax(per_view))][0]] == ["left02.jpg"]


@pytest.mark.reference
def test_chessboard_reference_station_refinement_beats_the_published_rms() -> None:
    ref = _yml(reference_dir(CHESS) / "left_intrinsics.yml")
    cal = calibrate_images(_left_images(), ChessboardSpec(9, 6, 25.0), fix_aspect=True)
    res = cal.result
    print(f"\nleft*.jpg (saddle refinement): fx {res.camera_matrix[0, 0]:.3f}, RMS {res.rms_px:.4f} px,"
          f" views used {sum(v.used for v in res.views)}/{len(res.views)}")
    assert all(v.used for v in res.views)  # left02 agrees once its corners are refined right
    assert res.rms_px < 0.6 * float(ref["rms"])
    assert res.camera_matrix[0, 0] == pytest.approx(float(ref["K"][0, 0]), rel=0.01)


@pytest.mark.reference
def test_charuco_tutorial_images_calibrate_below_02_px() -> None:
    files = sorted(reference_dir(CHARUCO_TUTORIAL).glob("img_0*.jpg"))
    images = [(f.name, cv2.imread(str(f))) for f in files]
    res = calibrate_images(images, CHARUCO).result
    print(f"\nChArUco tutorial: RMS {res.rms_px:.4f} px, fx {res.camera_matrix[0, 0]:.2f}")
    assert len(files) == 4 and all(v.used for v in res.views)
    assert res.rms_px <= 0.2
