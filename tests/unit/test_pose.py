"""The M camera's pose relative to the main camera: stereo calibration with fixed intrinsics against an
independent projection, Android's LENS_POSE_* round trip, and (slow) the twin's per-unit pose held out."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from calibration.geometry import calibrate_images, detect_board
from calibration.stereo import StereoPoseError, pose_from_android, rotation_angle_deg, stereo_pose
from calibration.stereo_bundle import refine_rig
from station.cli.analyze_geometry import to_gray
from station.imageio import LoadedImage
from station.procedures.pose import DEPTH_RATIOS, POSES_DEG
from station.twin.lenses import sensor_pose_truth
from targets.charuco import parse_board_spec
from tests.unit.twin_scenes import CALIBRATION_BOARD, CALIBRATION_POSES, fill_exposure_us, scene

K1 = np.array([[1360.0, 0, 1024.5], [0, 1360.0, 767.2], [0, 0, 1]])
D1 = np.array([-0.045, 0.03, 2e-4, -1.2e-4, -0.008])
K2 = np.array([[5450.0, 0, 1022.8], [0, 5450.0, 769.1], [0, 0, 1]])
D2 = np.array([-0.04, 0.06, -4e-5, 3e-5, 0.0])
#: A 52 mm lens on the 6.4 um pixels, 1 m away: the plan's 50 mm M lens.
K_LONG = np.array([[8620.0, 0, 1023.1], [0, 8620.0, 768.9], [0, 0, 1]])
D_LONG = np.array([0.02, 0.10, 3e-5, -2e-5, 0.0])


def synthetic_views(rotation: np.ndarray, translation: np.ndarray, n: int = 6):
    """A 20 x 15 grid of 20 mm squares seen by both cameras (camera 2 = R camera 1 + T), cv2.projectPoints."""
    xs, ys = np.meshgrid(np.arange(20) * 20.0, np.arange(15) * 20.0)
    obj = np.column_stack([xs.ravel(), ys.ravel(), np.zeros(xs.size)])
    ids = np.arange(len(obj))
    rng = np.random.default_rng(4)
    v1, v2 = [], []
    for _ in range(n):
        r_board = Rotation.from_euler("xyz", rng.uniform(-20, 20, 3), degrees=True).as_matrix()
        t_board = np.array([-190.0, -140.0, 1000.0]) + rng.uniform(-30, 30, 3)
        for k, d, (r, t), out in ((K1, D1, (np.eye(3), np.zeros(3)), v1), (K2, D2, (rotation, translation), v2)):
            img, _ = cv2.projectPoints(obj, cv2.Rodrigues(r @ r_board)[0], r @ t_board + t, k, d)
            out.append((obj, img.reshape(-1, 2), ids))
    return v1, v2


def test_stereo_pose_recovers_a_known_pose_and_round_trips_through_android():
    truth = sensor_pose_truth("TEST-UNIT")
    r_true, t_true = np.array(truth["rotation"]), np.array(truth["translation_mm"])
    v1, v2 = synthetic_views(r_true, t_true)
    pose = stereo_pose(v1, v2, (K1, D1), (K2, D2), (2048, 1536))
    assert rotation_angle_deg(pose.rotation @ r_true.T) < 1e-4
    np.testing.assert_allclose(pose.translation_mm, t_true, atol=1e-3)
    np.testing.assert_allclose(pose.centre_mm, truth["centre_mm"], atol=1e-3)
    android = pose.android()
    assert android["LENS_POSE_REFERENCE"] == "PRIMARY_CAMERA"
    assert android["LENS_POSE_TRANSLATION"][0] == pytest.approx(truth["centre_mm"][0] / 1000.0, abs=1e-6)
    q = android["LENS_POSE_ROTATION"]
    assert q[3] > 0 and np.linalg.norm(q) == pytest.approx(1.0)
    r_back, t_back = pose_from_android(q, android["LENS_POSE_TRANSLATION"])
    np.testing.assert_allclose(r_back, pose.rotation, atol=1e-12)
    np.testing.assert_allclose(t_back, pose.translation_mm, atol=1e-9)
    with pytest.raises(StereoPoseError, match="need 3"):
        stereo_pose(v1[:2], v2[:2], (K1, D1), (K2, D2), (2048, 1536))


def narrow_views(rotation: np.ndarray, translation: np.ndarray, noise_px: float, depths_mm: tuple[float, ...],
                 seed: int = 5):
    """A 16 x 12 board of 45 mm squares at ``depths_mm`` at the pose procedure's gimbal poses, seen whole by a
    wide camera 1 and a window of it by a long camera 2 (``K_LONG``, ``D_LONG``: 15-30 corners a view),
    projected by ``cv2.projectPoints`` with Gaussian noise of ``noise_px`` on every corner."""
    xs, ys = np.meshgrid(np.arange(1, 16) * 45.0, np.arange(1, 12) * 45.0)
    obj = np.column_stack([xs.ravel(), ys.ravel(), np.zeros(xs.size)])
    ids = np.arange(len(obj))
    rng = np.random.default_rng(seed)
    v1, v2 = [], []
    for depth, (pan, tilt) in ((d, p) for d in depths_mm for p in POSES_DEG):
        r_board = Rotation.from_euler("yx", [pan, -tilt], degrees=True).as_matrix()
        t_board = r_board @ np.array([-360.0, -270.0, 0.0]) + np.array([0.0, 0.0, depth])
        for k, d, (r, t), out in ((K1, D1, (np.eye(3), np.zeros(3)), v1),
                                  (K_LONG, D_LONG, (rotation, translation), v2)):
            img, _ = cv2.projectPoints(obj, cv2.Rodrigues(r @ r_board)[0], r @ t_board + t, k, d)
            img = img.reshape(-1, 2) + rng.normal(0.0, noise_px, (len(obj), 2))
            inside = (img[:, 0] > 20) & (img[:, 0] < 2028) & (img[:, 1] > 20) & (img[:, 1] < 1516)
            out.append((obj[inside], img[inside], ids[inside]))
    return v1, v2


def test_the_rig_bundle_fixes_a_long_lens_focal_length_that_its_own_calibration_trades_for_distance():
    truth = sensor_pose_truth("TEST-UNIT")
    r_true, t_true, c_true = (np.array(truth[k]) for k in ("rotation", "translation_mm", "centre_mm"))
    depths = tuple(1000.0 * r for r in DEPTH_RATIOS)
    v1, v2 = narrow_views(r_true, t_true, 0.02, depths)
    assert np.median([len(v[2]) for v in v2]) <= 30  # a window of the board, as the plan's 50 mm lens sees
    # camera 2's own calibration 0.1 % long: stereoCalibrate with it fixed puts the centre ~1 mm along the axis
    k2_long = K_LONG @ np.diag([1.001, 1.001, 1.0])
    fixed = stereo_pose(v1, v2, (K1, D1), (k2_long, D_LONG), (2048, 1536))
    assert np.linalg.norm(fixed.centre_mm - c_true) > 0.5
    fit = refine_rig(v1, v2, (K1, D1), (k2_long, D_LONG))
    assert rotation_angle_deg(fit.pose.rotation @ r_true.T) < 0.05
    assert np.linalg.norm(fit.pose.centre_mm - c_true) < 0.1
    assert fit.camera_matrix_2[0, 0] == pytest.approx(K_LONG[0, 0], rel=1e-4)
    assert fit.pose.rms_px == pytest.approx(0.02, rel=0.2) and fit.pose.views == len(v1)
    # the same views at one depth: the bundle's focal length trades for distance, noise moves the centre
    one_depth = [refine_rig(*narrow_views(r_true, t_true, 0.02, depths[:1], seed), (K1, D1), (k2_long, D_LONG))
                 for seed in (5, 6, 7)]
    assert max(np.linalg.norm(f.pose.centre_mm - c_true) for f in one_depth) > 0.2
    # started from stereoCalibrate's pose, the bundle lands on the same rig
    again = refine_rig(v1, v2, (K1, D1), (k2_long, D_LONG), fixed)
    np.testing.assert_allclose(again.pose.centre_mm, fit.pose.centre_mm, atol=1e-3)
    with pytest.raises(StereoPoseError, match="2 or more"):
        refine_rig(v1, [None] * (len(v1) - 1) + [v2[-1]], (K1, D1), (K_LONG, D_LONG))


def gray(raw: np.ndarray, name: str) -> np.ndarray:
    return to_gray(LoadedImage(raw.astype(np.float32), "cfa", f"{name}.dng", black_level=64.0, white_level=1023.0,
                               bit_depth=10, cfa="RGGB"))


@pytest.mark.slow
@pytest.mark.parametrize("lens", ["summilux-m-35-f1.4"])
def test_the_twin_units_pose_within_a_tenth_degree_and_a_fifth_mm(lens):
    from station.twin.render import render_raw

    spec = parse_board_spec(CALIBRATION_BOARD)
    settings = {"main": {"analog_gain": 1.0, "focus_m": None}, "m": {"analog_gain": 1.0, "aperture": 8.0}}
    for sensor in ("main", "m"):
        settings[sensor]["exposure_us"] = fill_exposure_us(scene("flat", lens, 1000.0), sensor, 0.7, settings[sensor])
    images: dict[str, list] = {"main": [], "m": []}
    world = None
    for i, (pan, tilt) in enumerate(CALIBRATION_POSES):
        world = scene(CALIBRATION_BOARD, lens, 1000.0, pan, tilt)
        world.faults["unit_variation"] = True  # the unit's own pose of its main camera
        for sensor in ("main", "m"):
            raw, _ = render_raw(world, sensor, settings[sensor], i + 1)
            images[sensor].append((f"{sensor}{i}", gray(raw, f"{sensor}{i}")))
    cameras, views = {}, {}
    for sensor, imgs in images.items():
        result = calibrate_images(imgs, spec).result
        cameras[sensor] = (result.camera_matrix, result.dist_coeffs)
        views[sensor] = [detect_board(g, spec) for _, g in imgs]
    pose = stereo_pose(views["main"], views["m"], cameras["main"], cameras["m"], (2048, 1536))
    truth = sensor_pose_truth(world.phone_serial())
    angle = rotation_angle_deg(pose.rotation @ np.array(truth["rotation"]).T)
    offset = float(np.linalg.norm(pose.centre_mm - np.array(truth["centre_mm"])))
    print(f"\npose of M ({lens}) vs main: rotation error {angle:.4f} deg, centre error {offset:.3f} mm "
          f"(centre {np.round(pose.centre_mm, 3)} vs truth {np.round(truth['centre_mm'], 3)}), "
          f"RMS {pose.rms_px:.3f} px, {pose.views} views, {pose.corners} corners")
    assert angle < 0.1 and offset < 0.2


def test_the_twin_places_the_main_camera_at_the_units_pose_only_with_unit_variation():
    from station.twin import optics
    from station.twin.render import chart_pose, optical_state
    from station.twin.sensor import sensor_spec

    world = scene(CALIBRATION_BOARD, None, 1000.0, 10.0, -5.0)
    spec = sensor_spec("ci")
    axis = optics.chart_extrinsics(10.0, -5.0, 1000.0, 1152.0, 864.0)
    for sensor in ("main", "m"):
        r, t = chart_pose(optical_state(world, sensor, {}, spec), 1152.0, 864.0)
        np.testing.assert_allclose(r, axis[0])
        np.testing.assert_allclose(t, axis[1])
    world.faults["unit_variation"] = True
    truth = sensor_pose_truth(world.phone_serial())
    r_m, t_m = chart_pose(optical_state(world, "m", {}, spec), 1152.0, 864.0)
    r_main, t_main = chart_pose(optical_state(world, "main", {}, spec), 1152.0, 864.0)
    np.testing.assert_allclose(r_m, axis[0])  # the M camera stays on the rail's axis
    # X_m = R X_main + T for every chart point (independent composition of the two chart poses)
    np.testing.assert_allclose(np.array(truth["rotation"]) @ r_main, r_m, atol=1e-12)
    np.testing.assert_allclose(np.array(truth["rotation"]) @ t_main + truth["translation_mm"], t_m, atol=1e-9)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [2, 3, 4])
def test_the_50mm_lens_pose_on_the_plans_geometry_board_within_a_tenth_degree_and_a_fifth_mm(seed):
    """The factory plan's case over the wire: the geometry board (16 x 12, 45 mm squares) at the plan's pose
    distance, the 50 mm lens stopped down, units of three seeds; the twin's truth held out."""
    from station.plans.factory.test_04_charts import POSE_DISTANCE_MM
    from station.procedures.geometry import BOARD
    from station.procedures.pose import measure_pose
    from tests.unit.twin_station import twin_station

    lens = "summicron-m-50-f2"
    with twin_station(seed=seed) as station:
        station.twin.chart_set(BOARD)
        station.twin.fault_set("unit_variation")
        station.twin.lens_mount(lens, 8.0)
        station.light.set_level_pct(80.0)
        station.light.set_output(True)
        result = measure_pose(station, lens, board=BOARD, distance_mm=POSE_DISTANCE_MM)
        truth = sensor_pose_truth(station.twin.truth()["serial"])
    angle = rotation_angle_deg(result.pose.rotation @ np.array(truth["rotation"]).T)
    offset = result.pose.centre_mm - np.array(truth["centre_mm"])
    print(f"\nseed {seed}: pose of M ({lens}) on {BOARD}: {angle:.4f} deg, {np.linalg.norm(offset):.3f} mm off "
          f"{np.round(offset, 3)}; {result.pose.views} views, {result.pose.corners} M corners")
    assert angle < 0.1 and np.linalg.norm(offset) < 0.2
