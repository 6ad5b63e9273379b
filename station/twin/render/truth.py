"""The twin's ground truth for a frame and for its catalogues, as JSON-able dicts (``station twin ... --json``)."""

from __future__ import annotations

import math
from typing import Any

import cv2
import numpy as np

from station.twin import optics
from station.twin.lenses import catalog_truth
from station.twin.render.projection import chart_pose
from station.twin.render.state import (
    BARE_PUPIL_DISTANCE_MM,
    CENTRE_OFFSET_MM,
    CHANNELS,
    COC_PX,
    SAPPHIRE_INDEX,
    SAPPHIRE_TRANSMISSION,
    OpticalState,
)
from station.twin.sensor import CFA_SITES, SensorSpec, sensor_catalog


def centre_value(mean_e: np.ndarray, truth: dict[str, Any]) -> dict[str, float]:
    """Mean electrons per channel in the 8x8 block at the principal point (the white-flat reading)."""
    cx, cy = truth["intrinsics"]["cx"], truth["intrinsics"]["cy"]
    r0, c0 = int(round(cy)) // 2 * 2 - 4, int(round(cx)) // 2 * 2 - 4
    block = mean_e[max(r0, 0):r0 + 8, max(c0, 0):c0 + 8]
    return {c: float(np.mean([block[r::2, k::2].mean() for r, k in CFA_SITES[c]])) for c in CHANNELS}


def optics_truth(state: OpticalState, spec: SensorSpec, a2: float, a4: float, sigma_px: dict[str, float],
                  blur_info: dict[str, Any], chart_name: str, chart: Any, radiometry: dict[str, Any]
                  ) -> dict[str, Any]:
    rotation, translation = chart_pose(state, chart.width_mm, chart.height_mm)
    rvec = cv2.Rodrigues(rotation)[0].reshape(3)
    lens = state.lens
    truth: dict[str, Any] = {
        "sensor": state.sensor, "resolution": spec.resolution, "width": spec.width, "height": spec.height,
        "pixel_pitch_um": spec.pixel_pitch_um,
        "lens": lens.id if lens else None, "lens_name": lens.name if lens else "bare (sapphire cover glass)",
        "f_number": state.f_number if lens else None,
        "intrinsics": {"fx": state.fx, "fy": state.fy, "cx": state.cx, "cy": state.cy,
                       "camera_matrix": state.camera_matrix().tolist(),
                       "focal_length_mm": lens.focal_length_mm if lens else None,
                       "image_distance_mm": state.image_distance_mm if lens else None},
        "distortion": list(state.distortion),
        "distortion_opencv": optics.opencv_distortion(state.distortion, state.tilt_x_deg, state.tilt_y_deg),
        "adapter": ({"back_focus_error_mm": state.back_focus_error_mm, "tilt_x_deg": state.tilt_x_deg,
                     "tilt_y_deg": state.tilt_y_deg} if state.sensor == "m" else None),
        "ca_scale": {"r": state.ca("r"), "g": 1.0, "b": state.ca("b")},
        "vignetting": {"model": "cos^4(atan r) * (1 + a2 r^2 + a4 r^4), r = hypot(u - cx, v - cy) / r_scale_px",
                       "cx": state.cx, "cy": state.cy, "r_scale_px": state.fx, "a2": a2, "a4": a4},
        "psf": {"model": optics.PSF_MODEL, "sigma_px": sigma_px,
                "gaussian": "Lindeberg's discrete Gaussian exp(-t) I_n(t), t = sigma_px^2, separable, on the "
                            "area-sampled image: transfer ~exp(t (cos 2 pi fx - 1)) exp(t (cos 2 pi fy - 1)), "
                            "not the continuous exp(-2 pi^2 t f^2)",
                "pillbox": "disc of diameter blur_circle_px, each tap its area fraction over the pixel; under "
                           f"{optics.SMALL_BLUR_PX:g} px folded into the Gaussian's variance (d^2 / 16)",
                "pixel_aperture": "square, 100 % fill (exact area coverage): sinc(fx) sinc(fy)",
                "mtf": "station.twin.optics.system_mtf(fx, fy, sigma_px[channel], blur_circle_px)"},
        "pose": {"distance_mm": state.chart_distance_mm, "pan_deg": state.pan_deg, "tilt_deg": state.tilt_deg,
                 "focus_deg": state.focus_ring_deg},
        "extrinsics": {"frame": "chart mm (origin top-left, x right, y down) -> camera mm",
                       "rvec": rvec.tolist(), "tvec": translation.tolist(), "rotation": rotation.tolist()},
        "chart": chart_name, "chart_size_mm": [chart.width_mm, chart.height_mm],
        "illuminance_lux": radiometry["illuminance_lux"], "cct_k": radiometry["cct_k"],
        "radiometry": radiometry,
    }
    if lens is not None:
        coc_mm = COC_PX * state.pitch_mm
        near, far = optics.depth_of_field_mm(lens.focal_length_mm, state.f_number, state.image_distance_mm, coc_mm)
        blur = blur_info.get("blur_circle_px", 0.0)
        truth["focus"] = {
            "focus_distance_mm": state.focus_distance_mm, "chart_distance_mm": state.chart_distance_mm,
            "image_distance_mm": state.image_distance_mm, "extension_mm": state.extension_mm,
            "focus_ring_deg": state.focus_ring_deg, "back_focus_error_mm": state.back_focus_error_mm,
            "blur_circle_px": blur, "blur_circle_px_range": blur_info.get("blur_circle_px_range", [blur, blur]),
            "coc_px": COC_PX, "depth_of_field_mm": [near, far], "in_focus": bool(blur <= COC_PX),
        }
    else:
        truth["focus"] = None
        truth["vignetting"].update({"model": "cos^4(atan r), r = hypot(u - cx, v - cy) / r_scale_px (bare sensor)",
                                    "r_scale_px": BARE_PUPIL_DISTANCE_MM / state.pitch_mm})
    return _jsonable(truth)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.floating, float)):
        v = float(value)
        return v if math.isfinite(v) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    return value


def lens_truth() -> dict[str, Any]:
    """The lens catalog's truth (``station twin lenses --json``), with the mounts' optical centres."""
    truth = catalog_truth()
    truth["optical_centre_offset_mm"] = {k: list(v) for k, v in CENTRE_OFFSET_MM.items()}
    truth["bare_m_sensor"] = {"cover_glass": "sapphire", "refractive_index": SAPPHIRE_INDEX,
                              "transmission": SAPPHIRE_TRANSMISSION,
                              "falloff": f"cos^4(atan(r_mm / {BARE_PUPIL_DISTANCE_MM:g}))"}
    return truth


def sensor_truth() -> dict[str, Any]:
    """The sensors' truth per readout mode at analog gain 1 (``station twin sensors --json``)."""
    return sensor_catalog()
