"""Camera geometry: intrinsics and distortion from chessboard or ChArUco views (OpenCV's pinhole model).

Model: OpenCV's pinhole camera with the 5-term Brown-Conrady distortion ``[k1, k2, p1, p2, k3]`` (OpenCV
order, normalised coordinates), pixel centres at integer coordinates. Calibration is Zhang's method as
``cv2.calibrateCamera`` implements it, with three additions over OpenCV's samples:

- corners refined to the saddle point of the intensity surface (Lucchese & Mitra 2002, "Using saddle
  points for subpixel feature detection in camera calibration targets"): a quadratic fitted by weighted
  least squares to a window whose size follows the local square size, re-centred until it stops moving;
  a chessboard corner is point-symmetric, so the fixed point sits on the corner for any local affine
  view and any symmetric blur;
- views that disagree with the others (per-view RMS error far above the median, or too few points) are
  rejected with a reason and the model is re-fitted;
- ``calibrate_images`` iterates: calibrate, re-refine every corner from its reprojected position with a
  window sized from the projected board (and, on ChArUco, pick up the corners the detector missed
  near the frame edges), re-calibrate. ``on_model=True`` instead fits each saddle on the board plane
  through the model (after Datta et al. 2009); on the renders tried here it did no better on average.
- corners whose refinement window would leave the frame are dropped (a reflected border fakes a saddle).

``model_gap_px`` measures how far apart two camera models put the same ray anywhere in the frame: the
figure of merit for a recovered model against a true one.

Modules: ``views`` (boards, views, the model), ``camera_model`` (distortion, rays, model gap), ``saddle``
(corner refinement), ``detection``, ``calibrate`` (Zhang with view rejection), ``pipeline`` (images to model),
``spill`` (the views' images kept for the re-refinement, a 50 MP view in a temporary file).
"""

from calibration.geometry.calibrate import MIN_POINTS_PER_VIEW, MIN_VIEWS, OUTLIER_FACTOR, OUTLIER_FLOOR_PX, calibrate
from calibration.geometry.camera_model import (
    distort_normalized,
    model_gap_px,
    monotonic_radius,
    pixels_to_rays,
    plausible_projections,
    rays_to_pixels,
    undistort_normalized,
)
from calibration.geometry.detection import detect_board, detect_charuco, detect_chessboard
from calibration.geometry.pipeline import ImageCalibration, calibrate_images, refine_views_from_model
from calibration.geometry.saddle import (
    inside_frame,
    nearest_neighbour_px,
    refine_corners,
    refine_saddle,
    refine_subpix,
    saddle_points,
    saddle_points_on_model,
)
from calibration.geometry.spill import ViewImages
from calibration.geometry.views import Board, ChessboardSpec, GeometryResult, ViewPoints, ViewReport

__all__ = [
    "MIN_POINTS_PER_VIEW", "MIN_VIEWS", "OUTLIER_FACTOR", "OUTLIER_FLOOR_PX", "Board", "ChessboardSpec",
    "GeometryResult", "ImageCalibration", "ViewImages", "ViewPoints", "ViewReport", "calibrate", "calibrate_images",
    "detect_board", "detect_charuco", "detect_chessboard", "distort_normalized", "inside_frame", "model_gap_px",
    "monotonic_radius", "nearest_neighbour_px", "pixels_to_rays", "plausible_projections", "rays_to_pixels",
    "refine_corners", "refine_saddle", "refine_subpix", "refine_views_from_model", "saddle_points",
    "saddle_points_on_model", "undistort_normalized",
]
