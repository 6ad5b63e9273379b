"""The pose of the M camera relative to the main camera (``calibration.stereo_bundle``): both cameras capture the
same ChArUco board at each gimbal pose (the mount holds still between the two captures, so they are views
"at once"), each camera's intrinsics are calibrated from its own views, and a bundle adjustment of the rig gives the
pose, written as Android ``LENS_POSE_*`` with the main camera as the reference.

The caller puts the ChArUco board up and mounts the M lens. The light must be on. The gimbal is back at
(0, 0) and the main camera on autofocus afterwards; the rail is left at the farther distance.

"Without a lens": the bare M sensor forms no image, so its pose cannot be measured optically. What is
measured is the M camera's pose through the lens: its centre of projection (the thin lens's nodal point,
which moves with the lens and its focus) and its axes. The sensor's own pose (what the adapter holds, the
same for every lens) follows from it: same rotation, and the point where the optical axis meets the sensor
plane one image distance ``v`` behind the centre along the camera's axis, ``C_sensor = C - R^T (0, 0, v)``,
with ``v = f_x * pixel pitch`` from the M camera's intrinsics (pinhole model). Both are written:
``LENS_POSE_*`` through the lens, and ``sensor_plane`` for the bare sensor.

A long M lens sees few corners in a narrow view: calibrated alone, its focal length trades against the board's
distance, and its centre moves along its axis (0.7 mm at 1 m with a 50 mm lens on the plan's geometry board).
So the pose is fitted as one bundle with the M camera's intrinsics and every view's board pose, the wide main
camera pinning the board (``calibration.stereo_bundle``, started from each view's PnP poses); the M camera's
intrinsics the pose rests on are the bundle's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from station.measurements import Declared, measures
from station.procedures import ProcedureError
from station.procedures.captures import auto_exposure_us, capture_shot
from station.procedures.framing import ChartNotFoundError, frame_scene, green_image, rail_limits, sensor_geometry
from station.procedures.result import ResultParts

if TYPE_CHECKING:
    from station.station import Station

#: A board large enough to be seen by the wide main camera and to fill the M lens's view, 1 m away.
BOARD = "charuco:48x36:24:18:DICT_5X5_1000"
DISTANCE_MM = 1000.0
#: The gimbal poses (pan, tilt) at each rail distance: straight on, then the four diagonals.
POSES_DEG: tuple[tuple[float, float], ...] = ((0.0, 0.0), (10.5, 8.4), (-10.5, 8.4), (10.5, -8.4), (-10.5, -8.4))
#: The rail distances of the views as ratios of the first: the board at two depths (the M ring and the main
#: camera's focus held at the first) ties the long lens's focal length, which one depth trades for distance.
DEPTH_RATIOS: tuple[float, ...] = (1.0, 1.3)
BOARD_LEVEL = 0.7
MIN_VIEWS = 4


@dataclass
class PoseMeasurement(ResultParts):
    """The pose, each camera's intrinsics it rests on, and the lens it was measured with."""

    lens: str
    pose: Any  # calibration.stereo.StereoPose
    intrinsics: dict[str, Any]  # sensor -> calibration.geometry.GeometryResult: each camera alone
    pixel_pitch_mm: float = 0.0
    m_camera_matrix: Any = None  # the M camera's K the pose rests on (the rig's bundle); None: its own

    @property
    def image_distance_mm(self) -> float:
        """The M camera's pinhole-to-sensor distance, ``f_x`` (px) times the pixel pitch (mm)."""
        k = self.intrinsics["m"].camera_matrix if self.m_camera_matrix is None else self.m_camera_matrix
        return float(np.asarray(k)[0][0]) * self.pixel_pitch_mm

    @property
    def sensor_centre_mm(self) -> np.ndarray:
        """Where the M camera's optical axis meets its sensor, in the main camera's frame: the bare sensor's
        pose (the lens's centre of projection ``C`` less ``v`` along the camera's axis, ``C - R^T (0, 0, v)``)."""
        return self.pose.centre_mm - self.pose.rotation.T @ np.array([0.0, 0.0, self.image_distance_mm])

    def phone_entries(self) -> dict[str, Any]:
        return {"pose": self.phone_entry()}

    def phone_entry(self) -> dict[str, Any]:
        sensor = {"centre_mm": [float(v) for v in self.sensor_centre_mm],
                  "image_distance_mm": round(self.image_distance_mm, 4),
                  "LENS_POSE_TRANSLATION": [float(v) / 1000.0 for v in self.sensor_centre_mm]}
        return {"lens": self.lens} | self.pose.to_dict() | {"sensor_plane": sensor}

    @measures(Declared("pose_rotation_deg", "deg", "{case}"), Declared("pose_baseline_mm", "mm", "{case}"),
              Declared("pose_rms_px", "px", "{case}"))
    def measurements(self) -> dict[str, float]:
        """The M camera's rotation against the main camera, the distance between their centres, the fit's RMS."""
        from calibration.stereo import rotation_angle_deg

        return {"pose_rotation_deg": rotation_angle_deg(self.pose.rotation),
                "pose_baseline_mm": float(np.linalg.norm(self.pose.centre_mm)),
                "pose_rms_px": float(self.pose.rms_px)}


def measure_pose(station: Station, lens: str, *, board: str = BOARD, distance_mm: float = DISTANCE_MM,
                 poses_deg: tuple[tuple[float, float], ...] = POSES_DEG) -> PoseMeasurement:
    """Views of ``board`` by both cameras at ``poses_deg``, at ``distance_mm`` times each of ``DEPTH_RATIOS``
    (within the rail's limits), both cameras focused at ``distance_mm``; intrinsics per camera, then the rig's
    bundle adjustment gives the M camera's pose."""
    from calibration.geometry import ViewPoints, calibrate, detect_board
    from calibration.stereo import StereoPoseError
    from calibration.stereo_bundle import refine_rig
    from targets.charuco import parse_board_spec

    spec = parse_board_spec(board)
    frame_scene(station, "m", lens, distance_mm)
    station.dut.configure("main", focus_m=distance_mm / 1000.0)  # one focus, one camera model for every view
    exposures = {s: auto_exposure_us(station, s, target_fraction=BOARD_LEVEL, statistic="p99")[0]
                 for s in ("main", "m")}
    views: dict[str, list[Any]] = {"main": [], "m": []}
    try:
        for depth in dict.fromkeys(rail_limits(station, distance_mm * r) for r in DEPTH_RATIOS):
            station.mount.move_to(distance=depth)
            for pan, tilt in poses_deg:
                station.mount.move_to(pan=float(pan), tilt=float(tilt))
                for sensor in ("main", "m"):
                    station.dut.configure(sensor, exposure_us=int(exposures[sensor]))
                    views[sensor].append(detect_board(green_image(capture_shot(station, sensor).frame), spec))
    finally:
        station.mount.move_to(pan=0.0, tilt=0.0)
        station.dut.configure("main", focus_m=None)  # the main camera's autofocus back on
    intrinsics = {}
    for sensor, found in views.items():
        seen = [ViewPoints(f"{sensor}{i}", *v) for i, v in enumerate(found) if v is not None]
        if len(seen) < MIN_VIEWS:
            raise ChartNotFoundError(f"{sensor}: board {board} found in {len(seen)} of {len(found)} views "
                                     f"(needs {MIN_VIEWS}); is it on the holder, lit, framed?", {})
        info = sensor_geometry(station, sensor)
        try:
            intrinsics[sensor] = calibrate(seen, (info.width_px, info.height_px))
        except (ValueError, cv2.error) as exc:
            raise ProcedureError(f"{sensor}: intrinsics for the pose failed: {str(exc).splitlines()[0]}") from None
    cams = {s: (r.camera_matrix, r.dist_coeffs) for s, r in intrinsics.items()}
    info = sensor_geometry(station, "m")
    try:
        rig = refine_rig(views["main"], views["m"], cams["main"], cams["m"])
    except StereoPoseError as exc:
        raise ProcedureError(f"pose of m/{lens} against main: {exc}") from None
    return PoseMeasurement(lens, rig.pose, intrinsics, info.pixel_pitch_um * 1e-3, rig.camera_matrix_2)
