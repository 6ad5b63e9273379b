"""Analytic slanted edges for the SFR tests, independent of ``calibration``.

An edge blurred by a Gaussian PSF (sigma px) and integrated over each square pixel exactly:
the pixel value is ``lo + (hi - lo) * mean over the pixel of Phi(d / sigma)`` with ``d`` the signed
distance to the edge line. With ``Psi2(t) = ((t^2 + 1) Phi(t) + t phi(t)) / 2`` (a second
antiderivative of Phi) the pixel integral of ``Phi((a x + b y - c) / s)`` over
``[x0, x1] x [y0, y1]`` is ``s^2 / (a b) * sum(+-Psi2(corner))`` (inclusion-exclusion).

The true MTF normal to the edge: the Gaussian's ``exp(-2 pi^2 sigma^2 f^2)`` times the square pixel's
aperture along that direction, ``|sinc(f cos t) sinc(f sin t)|`` (for t = 0 the familiar ``|sinc(f)|``).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import brentq
from scipy.special import ndtr

_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def _psi2(t: np.ndarray) -> np.ndarray:
    return 0.5 * ((t * t + 1.0) * ndtr(t) + t * np.exp(-0.5 * t * t) * _INV_SQRT_2PI)


def edge_image(size: tuple[int, int], angle_deg: float, sigma_px: float, *, lo: float = 0.2,
               hi: float = 0.8, offset_px: float = 0.0, horizontal: bool = False) -> np.ndarray:
    """(H, W) image of a dark-to-light edge tilted ``angle_deg`` off vertical (or horizontal).

    The edge passes ``offset_px`` from the image centre; dark on the left (top for horizontal).
    """
    h, w = size
    if horizontal:
        return edge_image((w, h), angle_deg, sigma_px, lo=lo, hi=hi, offset_px=offset_px).T
    t = math.radians(angle_deg)
    a, b = math.cos(t), -math.sin(t)
    cx, cy = (w - 1) / 2.0, (h - 1) / 2.0
    c = a * cx + b * cy + offset_px
    x = np.arange(w, dtype=np.float64)[None, :]
    y = np.arange(h, dtype=np.float64)[:, None]
    s = sigma_px
    if abs(b) < 1e-9:
        # Vertical edge: the y integral is trivial; Psi1(t) = t Phi(t) + phi(t).
        def psi1(u: np.ndarray) -> np.ndarray:
            return u * ndtr(u) + np.exp(-0.5 * u * u) * _INV_SQRT_2PI
        frac = s * (psi1((x + 0.5 - c) / s) - psi1((x - 0.5 - c) / s)) + 0.0 * y
    else:
        def corner(dx: float, dy: float) -> np.ndarray:
            return _psi2((a * (x + dx) + b * (y + dy) - c) / s)
        frac = (s * s / (a * b)) * (corner(0.5, 0.5) - corner(0.5, -0.5) - corner(-0.5, 0.5)
                                    + corner(-0.5, -0.5))
    return lo + (hi - lo) * frac


def edge_image_supersampled(size: tuple[int, int], angle_deg: float, sigma_px: float, n: int = 64,
                            *, lo: float = 0.2, hi: float = 0.8) -> np.ndarray:
    """The same edge by brute force, ``n x n`` point samples per pixel (to check ``edge_image``)."""
    h, w = size
    t = math.radians(angle_deg)
    a, b = math.cos(t), -math.sin(t)
    c = a * (w - 1) / 2.0 + b * (h - 1) / 2.0
    sub = (np.arange(n) + 0.5) / n - 0.5
    xs = (np.arange(w)[:, None] + sub[None, :]).ravel()
    ys = (np.arange(h)[:, None] + sub[None, :]).ravel()
    val = ndtr((a * xs[None, :] + b * ys[:, None] - c) / sigma_px)
    return lo + (hi - lo) * val.reshape(h, n, w, n).mean(axis=(1, 3))


def true_mtf(freq_cy_px: np.ndarray | float, sigma_px: float, angle_deg: float = 0.0) -> np.ndarray:
    """Gaussian PSF times the square pixel aperture, normal to an edge at ``angle_deg``."""
    f = np.asarray(freq_cy_px, dtype=np.float64)
    t = math.radians(angle_deg)
    return (np.exp(-2.0 * math.pi ** 2 * sigma_px ** 2 * f * f)
            * np.abs(np.sinc(f * math.cos(t)) * np.sinc(f * math.sin(t))))


def true_mtf50(sigma_px: float, angle_deg: float = 0.0) -> float:
    """Frequency (c/px) where ``true_mtf`` first falls to 0.5."""
    return float(brentq(lambda f: float(true_mtf(f, sigma_px, angle_deg)) - 0.5, 1e-6, 0.99))


def chart_image(size: tuple[int, int], squares: list[tuple[float, float, float, float]], *, lo: float = 0.1,
                hi: float = 0.8, blur_px: float = 1.0, supersample: int = 4, noise: float = 0.0,
                seed: int = 0) -> np.ndarray:
    """(H, W) linear chart: dark squares ``(cx, cy, side, angle_deg)`` on a light ground, box-integrated
    (``supersample``^2 points per pixel), Gaussian blur ``blur_px``, optional Gaussian noise."""
    import cv2

    h, w = size
    s = supersample
    canvas = np.full((h * s, w * s), 255, np.uint8)
    for cx, cy, side, angle in squares:
        t = math.radians(angle)
        u = np.array([math.cos(t), math.sin(t)]) * side / 2.0
        v = np.array([-math.sin(t), math.cos(t)]) * side / 2.0
        c = np.array([cx, cy])
        corners = np.array([c - u - v, c + u - v, c + u + v, c - u + v])
        pts = np.round(((corners + 0.5) * s - 0.5) * 16).astype(np.int32)  # pixel centres at integers
        cv2.fillPoly(canvas, [pts], 0, lineType=cv2.LINE_8, shift=4)
    frac = cv2.resize(canvas.astype(np.float32) / 255.0, (w, h), interpolation=cv2.INTER_AREA)
    img = lo + (hi - lo) * frac
    if blur_px > 0:
        img = cv2.GaussianBlur(img, (0, 0), blur_px)
    if noise > 0:
        img = img + np.random.default_rng(seed).normal(0.0, noise, img.shape).astype(np.float32)
    return img.astype(np.float32)


def square_sides(square: tuple[float, float, float, float]) -> list[tuple[float, float, str]]:
    """Midpoints (x, y) and orientation of a ``chart_image`` square's four sides."""
    cx, cy, side, angle = square
    t = math.radians(angle)
    out = []
    for k in range(4):
        a = t + k * math.pi / 2.0
        nx, ny = math.cos(a), math.sin(a)
        orientation = "vertical" if abs(nx) > abs(ny) else "horizontal"
        out.append((cx + nx * side / 2.0, cy + ny * side / 2.0, orientation))
    return out
