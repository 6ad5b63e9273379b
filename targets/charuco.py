"""ChArUco board: chessboard with ArUco markers in its white squares (OpenCV's objdetect/aruco).

Board coordinates follow OpenCV's ``CharucoBoard``: origin at the board's top-left outer corner,
x right, y down, in mm (``square_mm``/``marker_mm`` are passed to OpenCV as they are, so object
points come out in mm). Inner corner ``id = row * (squares_x - 1) + col`` sits at
``((col + 1) * square_mm, (row + 1) * square_mm)``.

Legacy pattern: OpenCV 4.6 changed where the first marker goes on boards with an EVEN number of
rows (squares_y); boards printed by older OpenCV need ``legacy=True``. With an odd squares_y (the
5x7 board of OpenCV's ArUco tutorial) both patterns are the same board.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import cv2
import numpy as np

#: ArUco dictionary names OpenCV knows (``cv2.aruco.DICT_*``).
ARUCO_DICTIONARIES = tuple(sorted(n for n in dir(cv2.aruco) if n.startswith("DICT_")))


def canonical_dictionary_name(name: str) -> str:
    """``"6x6_250"`` or ``"dict_6x6_250"`` -> ``"DICT_6X6_250"``; ValueError if OpenCV lacks it."""
    key = name.strip().upper()
    if not key.startswith("DICT_"):
        key = "DICT_" + key
    if key not in ARUCO_DICTIONARIES:
        raise ValueError(f"unknown ArUco dictionary {name!r} (expected e.g. DICT_5X5_100, DICT_6X6_250)")
    return key


def aruco_dictionary(name: str) -> cv2.aruco.Dictionary:
    """OpenCV's predefined ArUco dictionary called ``name`` (``"DICT_5X5_100"``); ValueError if unknown."""
    return cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, canonical_dictionary_name(name)))


@dataclass(frozen=True)
class CharucoSpec:
    """A ChArUco board: squares across (x) and down (y), square and marker side in mm, dictionary."""

    squares_x: int
    squares_y: int
    square_mm: float
    marker_mm: float
    dictionary: str = "DICT_5X5_100"
    legacy: bool = False

    def __post_init__(self) -> None:
        if self.squares_x < 2 or self.squares_y < 2:
            raise ValueError(
                f"ChArUco board needs at least 2x2 squares, got {self.squares_x}x{self.squares_y}"
            )
        if not (self.square_mm > 0 and 0 < self.marker_mm < self.square_mm):
            raise ValueError(
                f"ChArUco marker side must be in (0, square side): square {self.square_mm} mm,"
                f" marker {self.marker_mm} mm"
            )
        object.__setattr__(self, "dictionary", canonical_dictionary_name(self.dictionary))
        dictionary = aruco_dictionary(self.dictionary)
        if self.n_markers > dictionary.bytesList.shape[0]:
            raise ValueError(
                f"ChArUco board {self.squares_x}x{self.squares_y} needs {self.n_markers} markers,"
                f" {self.dictionary} has {dictionary.bytesList.shape[0]}"
            )

    @property
    def n_markers(self) -> int:
        """Markers on the board: one per white square."""
        return (self.squares_x * self.squares_y) // 2

    @property
    def n_corners(self) -> int:
        """Inner chessboard corners (the ChArUco corners)."""
        return (self.squares_x - 1) * (self.squares_y - 1)

    @property
    def board_width_mm(self) -> float:
        return self.squares_x * self.square_mm

    @property
    def board_height_mm(self) -> float:
        return self.squares_y * self.square_mm

    def cv_dictionary(self) -> cv2.aruco.Dictionary:
        """The board's ArUco dictionary."""
        return aruco_dictionary(self.dictionary)

    def cv_board(self) -> cv2.aruco.CharucoBoard:
        """OpenCV's board (lengths in mm), legacy pattern set as the spec says."""
        size = (self.squares_x, self.squares_y)
        square, marker = float(self.square_mm), float(self.marker_mm)
        board = cv2.aruco.CharucoBoard(size, square, marker, self.cv_dictionary())
        board.setLegacyPattern(bool(self.legacy))
        return board

    def chessboard_corners_mm(self) -> tuple[np.ndarray, np.ndarray]:
        """Inner corners in board mm (N,2) float64 and their ChArUco ids (N,) int32, id order."""
        n = self.n_corners
        ids = np.arange(n, dtype=np.int32)
        cols = ids % (self.squares_x - 1)
        rows = ids // (self.squares_x - 1)
        xy = np.stack([(cols + 1) * self.square_mm, (rows + 1) * self.square_mm], axis=1).astype(np.float64)
        return xy, ids

    def marker_corners_mm(self) -> tuple[np.ndarray, np.ndarray]:
        """Marker corners in board mm (M,4,2) (clockwise from top-left, as OpenCV) and marker ids (M,)."""
        board = self.cv_board()
        obj = np.asarray(board.getObjPoints(), dtype=np.float64).reshape(-1, 4, 3)[:, :, :2]
        ids = np.asarray(board.getIds(), dtype=np.int32).reshape(-1)
        return obj, ids

    def to_text(self) -> str:
        """The spec as ``parse_board_spec`` reads it."""
        squares = f"{self.squares_x}x{self.squares_y}"
        text = f"charuco:{squares}:{self.square_mm:g}:{self.marker_mm:g}:{self.dictionary}"
        return text + (":legacy" if self.legacy else "")


_SPEC_RE = re.compile(
    r"^charuco:(?P<sx>\d+)x(?P<sy>\d+):(?P<sq>[0-9.eE+-]+):(?P<mk>[0-9.eE+-]+)"
    r"(?::(?P<dict>[A-Za-z0-9_]+))?(?::(?P<legacy>legacy))?$"
)


def parse_board_spec(text: str) -> CharucoSpec:
    """Parse ``charuco:SXxSY:SQUARE_MM:MARKER_MM[:DICT][:legacy]`` (e.g. ``charuco:5x7:40:20:DICT_6X6_250``).

    Raises ValueError with a one-line message on a malformed or impossible spec.
    """
    m = _SPEC_RE.match(text.strip())
    if not m:
        raise ValueError(
            f"bad ChArUco board spec {text!r}: expected charuco:SXxSY:SQUARE_MM:MARKER_MM[:DICT][:legacy],"
            " e.g. charuco:5x7:40:20:DICT_6X6_250"
        )
    try:
        square_mm, marker_mm = float(m["sq"]), float(m["mk"])
    except ValueError:
        msg = f"bad ChArUco board spec {text!r}: square and marker sizes must be numbers"
        raise ValueError(msg) from None
    dictionary, legacy = m["dict"] or "DICT_5X5_100", bool(m["legacy"])
    if dictionary.lower() == "legacy" and not legacy:
        dictionary, legacy = "DICT_5X5_100", True
    try:
        return CharucoSpec(
            int(m["sx"]), int(m["sy"]), square_mm, marker_mm, canonical_dictionary_name(dictionary), legacy
        )
    except ValueError as exc:
        raise ValueError(f"bad ChArUco board spec {text!r}: {exc}") from None
