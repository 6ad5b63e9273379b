"""EMVA 1288 data sets on disk: the descriptor file (read with a size bound, parsed by
``calibration.emva1288.parse_descriptor``) and its images (PNG/TIFF as stored). ``calibration`` reads no files."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from calibration.emva1288 import EmvaDescriptor, SensorAnalysisError, parse_descriptor

#: Largest descriptor file read, bytes (a descriptor is a few kB of text).
MAX_DESCRIPTOR_BYTES = 1 << 20


def load_descriptor(path: str | Path) -> EmvaDescriptor:
    """Read and parse an EMVA 1288 descriptor file (``calibration.emva1288.parse_descriptor``).
    SensorAnalysisError on a malformed or oversized file, OSError if it cannot be read."""
    path = Path(path)
    with path.open("rb") as handle:
        data = handle.read(MAX_DESCRIPTOR_BYTES + 1)
    if len(data) > MAX_DESCRIPTOR_BYTES:
        raise SensorAnalysisError(f"{path}: over {MAX_DESCRIPTOR_BYTES} bytes: not an EMVA 1288 descriptor")
    return parse_descriptor(data.decode("utf-8", errors="replace"), path)


def read_image_unchanged(path: Path) -> np.ndarray:
    """A PNG/TIFF as stored (16-bit kept), first channel if several; SensorAnalysisError if unreadable."""
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise SensorAnalysisError(f"{path}: cannot read image")
    return img[..., 0] if img.ndim == 3 else img
