"""A lens profile as Android camera2 metadata (the values a camera HAL reports), as JSON-ready dict.

Keys and layouts as the camera2 ``CameraCharacteristics`` / ``CaptureResult`` docs define them:

- ``android.lens.intrinsicCalibration`` ``[f_x, f_y, c_x, c_y, s]`` in pixels of
  ``android.sensor.info.preCorrectionActiveArraySize``, pixel centres at half-integers (so
  ``c = c_opencv + 0.5``);
- ``android.lens.distortion`` ``[kappa_1, kappa_2, kappa_3, kappa_4, kappa_5]`` = ``[k1, k2, k3, p1, p2]``
  (radial then tangential, same normalised coordinates as OpenCV; ``calibration.distortion_models``);
- ``android.lens.info.shadingMapSize`` (a ``Size``: ``width`` = N columns, ``height`` = M rows) and
  ``android.statistics.lensShadingMap``: N x M x 4 floats, row by row, each point ``[R, G_even, G_odd, B]``,
  gains >= 1 (``LENS_SHADING_MAP``);
- ``android.colorCorrection.gains`` ``[R, G_even, G_odd, B]`` and ``android.colorCorrection.transform``
  (3x3, row-major) from the colour section;
- ``android.sensor.info.preCorrectionActiveArraySize`` as ``{left, top, right, bottom}``.

``Size`` and ``Rect`` are written as objects the way Camera ITS serialises them. ``active_array_size``
rescales the intrinsics when the profile was measured on a binned or scaled frame.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from calibration.distortion_models import BrownConrady, opencv_to_android, with_image_size
from calibration.profile import ProfileError, validate_profile

__all__ = ["android_metadata"]


def android_metadata(doc: Mapping[str, Any], *, active_array_size: Sequence[int] | None = None) -> dict[str, Any]:
    """camera2 metadata for the profile's sections that Android has keys for (geometry, shading, colour)."""
    doc = validate_profile(doc)
    size = tuple(doc["image_size"])
    array = tuple(int(v) for v in (active_array_size or size))
    if len(array) != 2 or min(array) < 2:
        raise ProfileError(f"active array size {list(array)}: expected [width, height]")
    out: dict[str, Any] = {
        "android.sensor.info.preCorrectionActiveArraySize": {"left": 0, "top": 0, "right": array[0],
                                                             "bottom": array[1]},
    }
    if "geometry" in doc:
        g = doc["geometry"]
        model = BrownConrady.from_opencv(g["camera_matrix"], g["dist_coeffs"], size)
        if array != size:
            model = with_image_size(model, array)
        android = opencv_to_android(model)
        out["android.lens.intrinsicCalibration"] = [float(v) for v in android.intrinsic_calibration]
        out["android.lens.distortion"] = [float(v) for v in android.distortion]
    if "shading" in doc:
        gains = np.asarray(doc["shading"]["map"], dtype=np.float64)
        rows, cols = gains.shape[:2]
        out["android.lens.info.shadingMapSize"] = {"width": int(cols), "height": int(rows)}
        out["android.statistics.lensShadingMap"] = gains.reshape(-1).tolist()
    if "color" in doc:
        r, g_, b = (float(v) for v in doc["color"]["wb_gains"])
        out["android.colorCorrection.gains"] = [r, g_, g_, b]
        out["android.colorCorrection.transform"] = np.asarray(doc["color"]["ccm"], dtype=np.float64).tolist()
    if len(out) == 1:
        raise ProfileError("profile has no geometry, shading or color section: nothing for Android")
    out["m-station.profile"] = {"digest": doc.get("digest"), "sensor": doc["sensor"], "lens": doc["lens"],
                                "adapter": doc["adapter"], "image_size": list(size)}
    return out
