"""A lens profile as a lensfun database file (XML) that lensfun / lensfunpy loads and corrects images with.

Format: lensfun's ``lensfun-database`` XML (``<lensdatabase>`` with ``<mount>``, ``<camera>``, ``<lens>``
and ``<calibration>`` entries: ``<distortion model="poly5">``, ``<tca model="linear">``,
``<vignetting model="pa">``). Coordinates as lensfun 0.3 (lensfunpy 1.18) uses them, see
``calibration.distortion_models``: the lens ``<center>`` puts lensfun's centre on the principal point,
``<aspect-ratio>`` and ``<cropfactor>`` are the sensor's own so lensfun applies the calibration unscaled.

- distortion: ``poly5`` from Brown-Conrady, exact when k3 = p1 = p2 = 0 and fx = fy, else a least-squares fit
  over the frame (``LensfunExport.distortion.residual_px``);
- vignetting: lensfun ``pa`` ``1 + k1 r^2 + k2 r^4 + k3 r^6`` with r = 1 at the corner (half-diagonal over
  pixel centres) about the lens centre: the profile's radial fit, re-fitted about the principal point
  and in lensfun's radius unit (``vignetting_residual_pct``);
- TCA: lensfun ``linear`` ``kr``, ``kb`` = the profile's R/G and B/G magnifications.

Focal length (mm) = fx x pixel pitch; crop factor = 43.27 mm / the sensor diagonal (image size x pitch).
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from calibration.distortion_models import BrownConrady, Conversion, default_aspect_ratio, opencv_to_lensfun
from calibration.profile import ProfileError, validate_profile

__all__ = ["LensfunExport", "lensfun_export", "lensfun_names", "FULL_FRAME_DIAGONAL_MM"]

#: Diagonal of the 36 x 24 mm frame that crop factors refer to.
FULL_FRAME_DIAGONAL_MM = math.hypot(36.0, 24.0)
DEFAULT_MAKER = "M-Station"
#: Distance (m) a vignetting entry is written for when the profile does not say.
DEFAULT_DISTANCE_M = 1000.0


@dataclass(frozen=True)
class LensfunExport:
    """The XML text and what a lensfun lookup needs to find and apply it."""

    xml: str
    camera_maker: str
    camera_model: str
    lens_maker: str
    lens_model: str
    mount: str
    focal_mm: float
    crop_factor: float
    aspect_ratio: float
    distortion: Conversion
    f_number: float | None
    distance_m: float | None
    vignetting_residual_pct: float | None


def lensfun_names(doc: Mapping[str, Any]) -> dict[str, str]:
    """Camera and lens names exactly as the DNGs of that camera say them, so that lensfun (darktable,
    RawTherapee) finds the profile from a DNG's own Make, Model, LensMake and LensModel: the profile's
    ``camera`` section (taken from the DUT's DNG) when it has one, else the station's DNG defaults (Make
    ``M-Station``, Model ``<sensor> sensor``, the lens by its id (``+ adapter``) or ``<sensor> built-in lens``)."""
    sensor = doc["sensor"]
    lens = doc.get("lens") or f"{sensor} built-in lens"
    if doc.get("adapter"):
        lens = f"{lens} + {doc['adapter']}"
    names = {"camera_maker": DEFAULT_MAKER, "camera_model": f"{sensor} sensor", "lens_maker": DEFAULT_MAKER,
             "lens_model": lens, "mount": f"M-Station {sensor}"}
    camera = doc.get("camera") or {}
    for key, name in (("make", "camera_maker"), ("model", "camera_model"), ("lens_make", "lens_maker"),
                      ("lens_model", "lens_model")):
        if camera.get(key):
            names[name] = str(camera[key])
    return names


def _num(value: float) -> str:
    return format(float(value), ".12g")


def _vignetting(doc: Mapping[str, Any], model: BrownConrady) -> tuple[tuple[float, float, float], float] | None:
    """lensfun ``pa`` terms about the principal point (r = 1 at the corner) from the profile's radial fit."""
    radial = doc.get("shading", {}).get("radial")
    if radial is None:
        return None
    w, h = model.image_size
    u, v = np.meshgrid(np.linspace(0.0, w - 1.0, 48), np.linspace(0.0, h - 1.0, 36))
    k = np.asarray(radial["k"], dtype=np.float64)
    cx, cy = radial["center_px"]
    r2 = ((u - cx) ** 2 + (v - cy) ** 2) / float(radial["radius_norm_px"]) ** 2
    truth = 1.0 + r2 * (k[0] + r2 * (k[1] + r2 * k[2]))
    unit = 0.5 * math.hypot(w - 1.0, h - 1.0)  # lensfun's vignetting radius: 1 at the corner
    q2 = ((u - model.cx) ** 2 + (v - model.cy) ** 2) / unit**2
    basis = np.stack([q2, q2**2, q2**3], axis=-1).reshape(-1, 3)
    terms, *_ = np.linalg.lstsq(basis, (truth - 1.0).ravel(), rcond=None)
    fitted = 1.0 + basis @ terms
    residual_pct = float(np.max(np.abs(fitted / truth.ravel() - 1.0)) * 100.0)
    return (float(terms[0]), float(terms[1]), float(terms[2])), residual_pct


def lensfun_export(doc: Mapping[str, Any], *, f_number: float | None = None,
                   distance_m: float | None = None) -> LensfunExport:
    """The profile as a lensfun database. Needs ``geometry`` (lensfun keys everything by focal length);
    vignetting is written when the profile has a radial fit and an aperture (``f_number`` here or
    ``shading.f_number``), TCA when it has ``chromatic``."""
    doc = validate_profile(doc)
    if "geometry" not in doc:
        raise ProfileError("geometry: missing; lensfun entries are keyed by the focal length it gives")
    size = tuple(doc["image_size"])
    model = BrownConrady.from_opencv(doc["geometry"]["camera_matrix"], doc["geometry"]["dist_coeffs"], size)
    aspect = default_aspect_ratio(size)
    conversion = opencv_to_lensfun(model, "poly5", aspect)
    pitch_mm = float(doc["pixel_pitch_um"]) / 1000.0
    focal_mm = model.fx * pitch_mm
    crop = FULL_FRAME_DIAGONAL_MM / (math.hypot(*size) * pitch_mm)
    names = lensfun_names(doc)

    root = ET.Element("lensdatabase", version="1")
    mount = ET.SubElement(root, "mount")
    ET.SubElement(mount, "name").text = names["mount"]
    camera = ET.SubElement(root, "camera")
    ET.SubElement(camera, "maker").text = names["camera_maker"]
    ET.SubElement(camera, "model").text = names["camera_model"]
    ET.SubElement(camera, "mount").text = names["mount"]
    ET.SubElement(camera, "cropfactor").text = _num(crop)
    lens = ET.SubElement(root, "lens")
    ET.SubElement(lens, "maker").text = names["lens_maker"]
    ET.SubElement(lens, "model").text = names["lens_model"]
    ET.SubElement(lens, "mount").text = names["mount"]
    ET.SubElement(lens, "focal", value=_num(focal_mm))
    center = conversion.model.center
    ET.SubElement(lens, "center", x=_num(center[0]), y=_num(center[1]))
    ET.SubElement(lens, "type").text = "rectilinear"
    ET.SubElement(lens, "cropfactor").text = _num(crop)
    ET.SubElement(lens, "aspect-ratio").text = _num(aspect)
    calibration = ET.SubElement(lens, "calibration")
    k1, k2 = conversion.model.terms
    ET.SubElement(calibration, "distortion", model="poly5", focal=_num(focal_mm), k1=_num(k1), k2=_num(k2))
    chromatic = doc.get("chromatic")
    if chromatic is not None:
        ET.SubElement(calibration, "tca", model="linear", focal=_num(focal_mm),
                      kr=_num(chromatic["r_scale"]), kb=_num(chromatic["b_scale"]))
    shading = doc.get("shading", {})
    f_number = f_number if f_number is not None else shading.get("f_number")
    distance_m = distance_m if distance_m is not None else shading.get("distance_m", DEFAULT_DISTANCE_M)
    vignetting = _vignetting(doc, model) if f_number is not None else None
    if vignetting is not None:
        (v1, v2, v3), _ = vignetting
        ET.SubElement(calibration, "vignetting", model="pa", focal=_num(focal_mm), aperture=_num(f_number),
                      distance=_num(distance_m), k1=_num(v1), k2=_num(v2), k3=_num(v3))
    ET.indent(root)
    xml = ('<?xml version="1.0" encoding="UTF-8"?>\n'
           f"<!-- m-station lens profile {doc.get('digest', '')} -->\n"
           + ET.tostring(root, encoding="unicode") + "\n")
    return LensfunExport(xml=xml, focal_mm=focal_mm, crop_factor=crop, aspect_ratio=aspect, distortion=conversion,
                         f_number=None if vignetting is None else float(f_number),
                         distance_m=None if vignetting is None else float(distance_m),
                         vignetting_residual_pct=None if vignetting is None else vignetting[1], **names)
