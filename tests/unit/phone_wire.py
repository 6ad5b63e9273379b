"""A hand-driven client of the twin phone's wire, and independent references to check its payloads by
(exact integer luma, Laplacian by slicing, per-quad loops, the sRGB formula): the phone server tests' own."""

from __future__ import annotations

import json
import socket

import cv2
import numpy as np

from station.raw10 import unpack_raw10

BLACK, WHITE = 64, 1023


class Wire:
    """A hand-driven client of the phone's wire."""

    def __init__(self, port: int, timeout_s: float = 10.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout_s)
        self.file = self.sock.makefile("rb")

    def send(self, obj: dict | bytes) -> None:
        self.sock.sendall(obj if isinstance(obj, bytes) else json.dumps(obj).encode() + b"\n")

    def reply(self) -> tuple[dict, bytes | None]:
        line = self.file.readline()
        assert line.endswith(b"\n"), f"no reply line: {line!r}"
        header = json.loads(line)
        payload = None
        if "payload_bytes" in header:
            payload = self.file.read(header["payload_bytes"])
        return header, payload

    def call(self, obj: dict | bytes) -> tuple[dict, bytes | None]:
        self.send(obj)
        return self.reply()

    def ok(self, obj: dict) -> tuple[dict, bytes | None]:
        header, payload = self.call(obj)
        assert header["ok"] is True, header
        return header["result"], payload

    def close(self) -> None:
        self.file.close()
        self.sock.close()


def decode_png(payload: bytes) -> np.ndarray:
    assert payload[:8] == b"\x89PNG\r\n\x1a\n"
    image = cv2.imdecode(np.frombuffer(payload, np.uint8), cv2.IMREAD_UNCHANGED)
    assert image is not None
    return image[..., ::-1] if image.ndim == 3 else image  # BGR -> RGB


def luma_ref(rgb: np.ndarray) -> np.ndarray:
    """DESIGN 7: Y' = 0.2126 R' + 0.7152 G' + 0.0722 B', rounded half up, in exact integer maths."""
    r, g, b = (rgb[..., i].astype(np.int64) for i in range(3))
    return (r * 2126 + g * 7152 + b * 722 + 5000) // 10000


def laplacian_ref(y: np.ndarray) -> np.ndarray:
    p = np.pad(y.astype(np.int64), 1, mode="edge")
    return np.abs(4 * p[1:-1, 1:-1] - p[1:-1, :-2] - p[1:-1, 2:] - p[:-2, 1:-1] - p[2:, 1:-1])


def quad_zebra_ref(raw: np.ndarray, threshold: int) -> np.ndarray:
    """Raw zebra on the preview grid by a loop over the four sites of each 2x2 quad."""
    flags = np.zeros((raw.shape[0] // 2, raw.shape[1] // 2), bool)
    for dy in range(2):
        for dx in range(2):
            flags |= raw[dy::2, dx::2] >= threshold
    return np.repeat(np.repeat(flags, 2, axis=0), 2, axis=1)


def srgb8(linear: float) -> float:
    """IEC 61966-2-1 sRGB encoding of a linear [0, 1] value, as an 8-bit code (unrounded)."""
    x = min(max(linear, 0.0), 1.0)
    return 255.0 * (12.92 * x if x <= 0.0031308 else 1.055 * x ** (1 / 2.4) - 0.055)


def unpack(meta: dict, payload: bytes) -> np.ndarray:
    return unpack_raw10(payload, meta["width"], meta["height"], meta["stride_bytes"])


def block_means(image: np.ndarray, n: int = 8) -> np.ndarray:
    h, w = image.shape[:2]
    return image[: h // n * n, : w // n * n].reshape(n, h // n, n, w // n).mean(axis=(1, 3))
