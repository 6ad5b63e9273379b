"""Geometric optics of the twin: camera pose, projection, distortion, thin-lens focus, vignetting, PSF.

Camera frame as OpenCV's (x right, y down, z along the optical axis). Projection is OpenCV's
pinhole + Brown-Conrady model (``cv2.projectPoints``; Brown, Photogramm. Eng. 32 (1966); Conrady,
MNRAS 79 (1919)) with OpenCV's tilted-sensor (Scheimpflug) extension for a tilted M adapter
(Louhichi et al., Meas. Sci. Technol. 18 (2007), as in OpenCV's ``computeTiltProjectionMatrix``).
Focus is the thin lens ``1/f = 1/s + 1/v``; the defocus blur circle on the sensor is
``c = A |z - v_o| / v_o`` (A the entrance pupil diameter, v_o where the object point images,
z where the sensor is); depth of field from the same geometry.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

# --- pose -------------------------------------------------------------------------------------


def camera_rotation(pan_deg: float, tilt_deg: float) -> np.ndarray:
    """World -> camera rotation of the phone on its gimbal (3x3), rotating about the lens centre.

    At zero the camera looks along world +z at the chart. Pan turns about the vertical axis
    (positive: looking right, +x), tilt about the camera's horizontal axis carried by the pan
    stage (positive: looking up, -y): camera -> world is ``Ry(pan) @ Rx(tilt)``.
    """
    p, t = math.radians(pan_deg), math.radians(tilt_deg)
    ry = np.array([[math.cos(p), 0.0, math.sin(p)], [0.0, 1.0, 0.0], [-math.sin(p), 0.0, math.cos(p)]])
    rx = np.array([[1.0, 0.0, 0.0], [0.0, math.cos(t), -math.sin(t)], [0.0, math.sin(t), math.cos(t)]])
    return (ry @ rx).T


def chart_extrinsics(pan_deg: float, tilt_deg: float, distance_mm: float, chart_width_mm: float,
                     chart_height_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """(R, t): chart coordinates (mm, origin top-left, z=0 plane) -> camera coordinates.

    The chart is centred on the optical axis at zero pan/tilt, ``distance_mm`` from the lens.
    """
    rotation = camera_rotation(pan_deg, tilt_deg)
    origin_world = np.array([-chart_width_mm / 2.0, -chart_height_mm / 2.0, float(distance_mm)])
    return rotation, rotation @ origin_world


# --- lens distortion (OpenCV's model) ----------------------------------------------------------

def distort(x: np.ndarray, y: np.ndarray, dist: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Brown-Conrady on normalized coordinates, OpenCV's ``k1 k2 p1 p2 k3`` order."""
    k1, k2, p1, p2, k3 = (float(v) for v in dist[:5])
    r2 = x * x + y * y
    radial = 1.0 + r2 * (k1 + r2 * (k2 + r2 * k3))
    xy2 = 2.0 * x * y
    xd = x * radial + p1 * xy2 + p2 * (r2 + 2.0 * x * x)
    yd = y * radial + p1 * (r2 + 2.0 * y * y) + p2 * xy2
    return xd, yd


def undistort(xd: np.ndarray, yd: np.ndarray, dist: tuple[float, ...], iterations: int = 12
              ) -> tuple[np.ndarray, np.ndarray]:
    """Invert ``distort`` by Newton's method (float64; converges to ~1e-15 for lens-like distortion)."""
    k1, k2, p1, p2, k3 = (float(v) for v in dist[:5])
    xd = np.asarray(xd, dtype=np.float64)
    yd = np.asarray(yd, dtype=np.float64)
    x, y = xd.copy(), yd.copy()
    for _ in range(iterations):
        fx, fy = distort(x, y, dist)
        ex, ey = fx - xd, fy - yd
        r2 = x * x + y * y
        radial = 1.0 + r2 * (k1 + r2 * (k2 + r2 * k3))
        dradial = 2.0 * (k1 + r2 * (2.0 * k2 + 3.0 * k3 * r2))  # d radial / d(r2) * 2
        j11 = radial + x * x * dradial + 2.0 * p1 * y + 6.0 * p2 * x
        j12 = x * y * dradial + 2.0 * p1 * x + 2.0 * p2 * y
        j21 = x * y * dradial + 2.0 * p1 * x + 2.0 * p2 * y
        j22 = radial + y * y * dradial + 6.0 * p1 * y + 2.0 * p2 * x
        det = j11 * j22 - j12 * j21
        x = x - (j22 * ex - j12 * ey) / det
        y = y - (j11 * ey - j21 * ex) / det
    return x, y


def tilt_matrix(tau_x_deg: float, tau_y_deg: float) -> np.ndarray:
    """OpenCV's tilted-sensor projection matrix (``computeTiltProjectionMatrix``) for angles in degrees."""
    tx, ty = math.radians(tau_x_deg), math.radians(tau_y_deg)
    rot_x = np.array([[1.0, 0.0, 0.0], [0.0, math.cos(tx), math.sin(tx)], [0.0, -math.sin(tx), math.cos(tx)]])
    rot_y = np.array([[math.cos(ty), 0.0, -math.sin(ty)], [0.0, 1.0, 0.0], [math.sin(ty), 0.0, math.cos(ty)]])
    rot = rot_y @ rot_x
    proj_z = np.array([[rot[2, 2], 0.0, -rot[0, 2]], [0.0, rot[2, 2], -rot[1, 2]], [0.0, 0.0, 1.0]])
    return proj_z @ rot


def sensor_normal(tau_x_deg: float, tau_y_deg: float) -> np.ndarray:
    """Unit normal of the tilted sensor plane in the camera frame (z-row of OpenCV's tilt rotation)."""
    tx, ty = math.radians(tau_x_deg), math.radians(tau_y_deg)
    rot_x = np.array([[1.0, 0.0, 0.0], [0.0, math.cos(tx), math.sin(tx)], [0.0, -math.sin(tx), math.cos(tx)]])
    rot_y = np.array([[math.cos(ty), 0.0, -math.sin(ty)], [0.0, 1.0, 0.0], [math.sin(ty), 0.0, math.cos(ty)]])
    return (rot_y @ rot_x)[2]


def opencv_distortion(dist: tuple[float, ...], tau_x_deg: float = 0.0, tau_y_deg: float = 0.0) -> list[float]:
    """The distortion vector ``cv2.projectPoints`` takes: 5 terms, or 14 when the sensor is tilted."""
    five = [float(v) for v in dist[:5]]
    if tau_x_deg == 0.0 and tau_y_deg == 0.0:
        return five
    return five + [0.0] * 7 + [math.radians(tau_x_deg), math.radians(tau_y_deg)]


# --- thin lens ---------------------------------------------------------------------------------

def image_distance_mm(focal_mm: float, object_mm: float | np.ndarray) -> float | np.ndarray:
    """Lens-to-image distance v of an object at s: ``v = f s / (s - f)`` (inf at s <= f)."""
    s = np.asarray(object_mm, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        v = np.where(s > focal_mm, focal_mm * s / (s - focal_mm), np.inf)
    v = np.where(np.isinf(s), focal_mm, v)
    return float(v) if v.ndim == 0 else v


def object_distance_mm(focal_mm: float, image_mm: float) -> float:
    """Object distance in focus for a lens-to-sensor distance v: ``s = f v / (v - f)``; inf when v <= f."""
    if image_mm <= focal_mm:
        return math.inf
    return focal_mm * image_mm / (image_mm - focal_mm)


def blur_circle_mm(pupil_mm: float, sensor_mm: float | np.ndarray, image_mm: float | np.ndarray
                   ) -> float | np.ndarray:
    """Defocus blur circle diameter on the sensor: ``A |z - v_o| / v_o``."""
    return pupil_mm * np.abs(np.asarray(sensor_mm) - np.asarray(image_mm)) / np.asarray(image_mm)


def depth_of_field_mm(focal_mm: float, f_number: float, sensor_mm: float, coc_mm: float
                      ) -> tuple[float, float]:
    """Near and far limits (object distances) whose blur circle stays within ``coc_mm``.

    Object images at ``v_o`` with ``A |v - v_o| / v_o <= c``: ``v_o`` in [v A/(A + c), v A/(A - c)].
    """
    pupil = focal_mm / f_number
    v_far = sensor_mm * pupil / (pupil + coc_mm)
    near = object_distance_mm(focal_mm, sensor_mm * pupil / (pupil - coc_mm)) if pupil > coc_mm else focal_mm
    far = object_distance_mm(focal_mm, v_far)
    return near, far


# --- vignetting --------------------------------------------------------------------------------

def relative_illumination(r: np.ndarray, a2: float, a4: float) -> np.ndarray:
    """``cos^4(atan r) * (1 + a2 r^2 + a4 r^4)``, r = image radius / focal length (float32 in, out)."""
    r2 = r * r
    natural = 1.0 / (1.0 + r2) ** 2
    return natural * (1.0 + r2 * (a2 + a4 * r2))


# --- PSF ---------------------------------------------------------------------------------------

def pillbox_kernel(diameter_px: float, oversample: int = 15) -> np.ndarray:
    """Uniform disc of ``diameter_px``, each tap the exact-ish (oversampled) fraction of the disc over it."""
    radius = max(float(diameter_px), 0.0) / 2.0
    half = int(math.ceil(radius + 0.5))
    n = 2 * half + 1
    offs = (np.arange(oversample) + 0.5) / oversample - 0.5
    grid = (np.arange(n) - half)[:, None] + offs[None, :]
    gx = grid.reshape(-1)
    inside = (gx[None, :] ** 2 + gx[:, None] ** 2) <= radius * radius
    kernel = inside.reshape(n, oversample, n, oversample).mean(axis=(1, 3)).astype(np.float64)
    if kernel.sum() <= 0:
        kernel[half, half] = 1.0
    return (kernel / kernel.sum()).astype(np.float32)


def gaussian_taps(sigma_px: float) -> np.ndarray:
    """Lindeberg's discrete Gaussian ``exp(-t) I_n(t)``, ``t = sigma^2``: variance exactly sigma^2 px^2.

    On area-sampled pixels this is the right kernel for a Gaussian blur at any sigma; a sampled
    Gaussian (``cv2.GaussianBlur``) loses most of its variance below sigma ~ 0.7 px (T. Lindeberg,
    "Scale-space for discrete signals", IEEE PAMI 12 (1990)).
    """
    from scipy.special import ive

    sigma = max(float(sigma_px), 0.0)
    if sigma < 1e-3:
        return np.ones(1, dtype=np.float32)
    half = int(math.ceil(4.0 * sigma)) + 1
    taps = ive(np.abs(np.arange(-half, half + 1)), sigma * sigma)
    return (taps / taps.sum()).astype(np.float32)


def psf_kernel(sigma_px: float, diameter_px: float) -> np.ndarray:
    """2-D PSF taps: the discrete Gaussian (sigma) convolved with a defocus pillbox (diameter)."""
    taps = gaussian_taps(sigma_px)
    gauss = np.outer(taps, taps)
    if diameter_px <= 0.0:
        return gauss
    disc = pillbox_kernel(diameter_px)
    size = disc.shape[0] + gauss.shape[0] - 1
    kernel = np.zeros((size, size), np.float32)
    half = gauss.shape[0] // 2
    kernel[half:half + disc.shape[0], half:half + disc.shape[0]] = disc
    kernel = cv2.filter2D(kernel, -1, gauss, borderType=cv2.BORDER_CONSTANT)
    return kernel / kernel.sum()


#: Defocus discs wider than this (px) are applied on a frame binned so that they span ~BIG_BLUR_PX / 2.
BIG_BLUR_PX = 48.0
#: Discs narrower than this (px) are folded into the Gaussian by their variance (d^2 / 16).
SMALL_BLUR_PX = 0.35

#: What ``blur`` renders, as the truth names it (``truth["psf"]``).
PSF_MODEL = "discrete-gaussian(sigma_px) * pillbox(blur_circle_px), applied to area-sampled pixels"


def _taps_response(taps: np.ndarray, freq: np.ndarray) -> np.ndarray:
    """Transfer function of symmetric 1-D taps (centred) at ``freq`` cycles/px: ``sum_k h_k cos(2 pi f k)``."""
    k = np.arange(taps.size, dtype=np.float64) - taps.size // 2
    return np.cos(2.0 * np.pi * freq[..., None] * k) @ taps.astype(np.float64)


def _kernel_response(kernel: np.ndarray, fx: np.ndarray, fy: np.ndarray) -> np.ndarray:
    """Transfer function of a centred 2-D kernel symmetric in x and in y (a disc): ``sum h_mn cos cos``."""
    k = np.arange(kernel.shape[0], dtype=np.float64) - kernel.shape[0] // 2
    cx = np.cos(2.0 * np.pi * fx[..., None] * k)  # (..., n) over columns
    cy = np.cos(2.0 * np.pi * fy[..., None] * k)  # (..., n) over rows
    return np.einsum("...m,mn,...n->...", cy, kernel.astype(np.float64), cx)


def system_mtf(freq_x: np.ndarray | float, freq_y: np.ndarray | float, sigma_px: float,
               diameter_px: float) -> np.ndarray:
    """The MTF the render implements at spatial frequency (``freq_x``, ``freq_y``) cycles/px (sensor px).

    Three factors, each the exact transfer function of what the render does (``PSF_MODEL``):

    - the pixel aperture: the chart is rasterised with exact area coverage, each pixel the mean of the
      irradiance over its square (100 % fill): ``sinc(fx) sinc(fy)``;
    - the lens's Gaussian, applied to that area-sampled image as Lindeberg's discrete Gaussian
      (``gaussian_taps``): the response of its taps, ~ ``exp(s^2 (cos 2 pi fx - 1)) exp(s^2 (cos 2 pi fy - 1))``
      (periodic in f, above the continuous ``exp(-2 pi^2 s^2 f^2)``: MTF50 +9 % at s = 0.78 px);
    - the defocus disc: the response of ``pillbox_kernel``'s taps (a disc under ``SMALL_BLUR_PX`` is
      folded into the Gaussian by its variance, as ``blur`` does).

    A disc wider than ``BIG_BLUR_PX`` is rendered on a k x k binned frame and resized back (``blur``),
    which is not shift-invariant: there the kernel's response at k f times the binning's ``sinc(k f)`` and
    the bilinear resize's ``sinc^2(k f)`` is the MTF averaged over the k^2 phases of the binning grid.
    Returns ``|OTF|`` with the broadcast shape of the frequencies.
    """
    fx = np.abs(np.asarray(freq_x, dtype=np.float64))
    fy = np.abs(np.asarray(freq_y, dtype=np.float64))
    fx, fy = np.broadcast_arrays(fx, fy)
    pixel = np.sinc(fx) * np.sinc(fy)
    sigma, diameter = max(float(sigma_px), 0.0), max(float(diameter_px), 0.0)
    if diameter < SMALL_BLUR_PX:
        taps = gaussian_taps(math.sqrt(sigma * sigma + diameter * diameter / 16.0))
        return np.abs(pixel * _taps_response(taps, fx) * _taps_response(taps, fy))
    k = 1 if diameter <= BIG_BLUR_PX else int(diameter // (BIG_BLUR_PX / 2.0))
    taps = gaussian_taps(sigma / k)
    lens = (_taps_response(taps, k * fx) * _taps_response(taps, k * fy)
            * _kernel_response(pillbox_kernel(diameter / k), k * fx, k * fy))
    if k > 1:
        lens = lens * (np.sinc(k * fx) * np.sinc(k * fy)) ** 3
    return np.abs(pixel * lens)


def edge_mtf(freq_cy_px: np.ndarray | float, angle_deg: float, sigma_px: float, diameter_px: float) -> np.ndarray:
    """``system_mtf`` along the normal of an edge ``angle_deg`` off a pixel axis (what a slanted edge measures)."""
    t = math.radians(angle_deg)
    f = np.asarray(freq_cy_px, dtype=np.float64)
    return system_mtf(f * math.cos(t), f * math.sin(t), sigma_px, diameter_px)


def blur(image: np.ndarray, sigma_px: float, diameter_px: float) -> np.ndarray:
    """``image`` (float32) convolved with the PSF (Gaussian sigma and pillbox diameter, px).

    The Gaussian is Lindeberg's discrete one (``gaussian_taps``) on the area-sampled image, the disc
    ``pillbox_kernel``'s taps: ``system_mtf`` is the transfer function of exactly this (``PSF_MODEL``).
    A disc under ``SMALL_BLUR_PX`` is folded into the Gaussian by its variance (d^2 / 16). A disc wider than
    ``BIG_BLUR_PX`` is applied to the image binned k x k (area mean) and the result resized back
    bilinearly: the extra variance, ~k^2 / 4, is under 1 % of the disc's d^2 / 16.
    """
    if diameter_px < SMALL_BLUR_PX:
        taps = gaussian_taps(math.sqrt(max(sigma_px, 0.0) ** 2 + diameter_px * diameter_px / 16.0))
        if taps.size == 1:
            return image
        return cv2.sepFilter2D(image, -1, taps, taps, borderType=cv2.BORDER_REFLECT)
    if diameter_px <= BIG_BLUR_PX:
        return cv2.filter2D(image, -1, psf_kernel(sigma_px, diameter_px), borderType=cv2.BORDER_REFLECT)
    k = int(diameter_px // (BIG_BLUR_PX / 2.0))
    height, width = image.shape
    pad_h, pad_w = -height % k, -width % k
    padded = cv2.copyMakeBorder(image, 0, pad_h, 0, pad_w, cv2.BORDER_REFLECT) if pad_h or pad_w else image
    small = cv2.resize(padded, (padded.shape[1] // k, padded.shape[0] // k), interpolation=cv2.INTER_AREA)
    small = cv2.filter2D(small, -1, psf_kernel(sigma_px / k, diameter_px / k), borderType=cv2.BORDER_REFLECT)
    return cv2.resize(small, (padded.shape[1], padded.shape[0]), interpolation=cv2.INTER_LINEAR)[:height, :width]
