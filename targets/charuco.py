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
from typing import Any

import cv2
import numpy as np

from targets.base import BLACK, WHITE, Chart, ChartNotFound, Detection, Painter, gray_for_detection

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


def default_spec(width_mm: float = 400.0, height_mm: float = 300.0) -> CharucoSpec:
    """The station's board for a sheet: 11 x 8 squares of DICT_5X5_100, as large as fits in 92 % of it."""
    square = np.floor(min(0.92 * width_mm / 11, 0.92 * height_mm / 8) * 2) / 2
    if square <= 0:
        raise ValueError(f"sheet {width_mm} x {height_mm} mm is too small for a ChArUco board")
    return CharucoSpec(11, 8, float(square), float(0.75 * square), "DICT_5X5_100")


class CharucoChart(Chart):
    """A ChArUco board centred on a white sheet; black 0.03, white 0.9 reflectance.

    Chart mm = board mm + ``board_origin_mm`` (the board's top-left outer corner on the sheet).
    """

    name = "charuco"
    title = "ChArUco board (geometric calibration, OpenCV objdetect)"

    def __init__(self, spec: CharucoSpec | None = None, width_mm: float | None = None,
                 height_mm: float | None = None, **kwargs: Any) -> None:
        if spec is None:
            width_mm, height_mm = width_mm or 400.0, height_mm or 300.0
            spec = default_spec(width_mm, height_mm)
        margin = spec.square_mm / 2
        super().__init__(width_mm or spec.board_width_mm + 2 * margin,
                         height_mm or spec.board_height_mm + 2 * margin, **kwargs)
        if spec.board_width_mm > self.width_mm + 1e-9 or spec.board_height_mm > self.height_mm + 1e-9:
            raise ValueError(
                f"ChArUco board {spec.board_width_mm:g} x {spec.board_height_mm:g} mm does not fit a"
                f" {self.width_mm:g} x {self.height_mm:g} mm sheet"
            )
        self.spec = spec
        self.board_origin_mm = np.array([(self.width_mm - spec.board_width_mm) / 2,
                                         (self.height_mm - spec.board_height_mm) / 2])

    def paint(self, painter: Painter) -> None:
        spec, (ox, oy) = self.spec, self.board_origin_mm
        painter.rect(0, 0, self.width_mm, self.height_mm, WHITE, self.background)
        quads, ids = spec.marker_corners_mm()
        centres = quads.mean(axis=1)
        white = set(zip(*(np.floor(centres / spec.square_mm).astype(int).T[::-1]), strict=True))  # (row, col)
        for row in range(spec.squares_y):
            for col in range(spec.squares_x):
                if (row, col) not in white:
                    painter.rect(ox + col * spec.square_mm, oy + row * spec.square_mm, spec.square_mm,
                                 spec.square_mm, BLACK, WHITE)
        dictionary = spec.cv_dictionary()
        cells = dictionary.markerSize + 2
        for quad, marker_id in zip(quads, ids, strict=True):
            mask = cv2.aruco.generateImageMarker(dictionary, int(marker_id), cells, borderBits=1) < 128
            painter.cells(mask, ox + quad[0, 0], oy + quad[0, 1], spec.marker_mm / cells, BLACK, WHITE)

    def features_mm(self) -> dict[str, Any]:
        corners, ids = self.spec.chessboard_corners_mm()
        quads, marker_ids = self.spec.marker_corners_mm()
        return {"corners": corners + self.board_origin_mm, "ids": ids, "object_points_mm": corners,
                "marker_corners": quads + self.board_origin_mm, "marker_ids": marker_ids,
                "board_origin_mm": self.board_origin_mm.copy()}

    def info(self) -> dict[str, Any]:
        d = super().info()
        s = self.spec
        d.update(squares_x=s.squares_x, squares_y=s.squares_y, square_mm=s.square_mm, marker_mm=s.marker_mm,
                 dictionary=s.dictionary, legacy_pattern=s.legacy, spec=s.to_text(),
                 board_width_mm=s.board_width_mm, board_height_mm=s.board_height_mm,
                 board_origin_mm=[round(float(v), 6) for v in self.board_origin_mm],
                 corners=s.n_corners, markers=s.n_markers,
                 corner_ids="row * (squares_x - 1) + col, at ((col + 1), (row + 1)) * square_mm on the board")
        return d

    def detect(self, image: np.ndarray) -> Detection:
        """OpenCV's CharucoDetector: corners (N,2) px with their ids, and the homography from them."""
        gray = gray_for_detection(self.name, image)
        detector = cv2.aruco.CharucoDetector(self.spec.cv_board())
        try:
            corners, ids, marker_corners, marker_ids = detector.detectBoard(gray)
        except cv2.error as exc:
            raise ChartNotFound(self.name, f"OpenCV failed: {str(exc).strip().splitlines()[-1]}") from None
        n = 0 if ids is None else int(np.asarray(ids).size)
        if n < 4:
            markers = 0 if marker_ids is None else int(np.asarray(marker_ids).size)
            board = self.spec.to_text()
            raise ChartNotFound(self.name, f"{n} ChArUco corners and {markers} markers of {board} found,"
                                           " need 4 corners")
        corners = np.asarray(corners, dtype=np.float64).reshape(-1, 2)  # OpenCV 4.x: (N,1,2); 5.x: (N,2)
        ids = np.asarray(ids, dtype=np.int32).reshape(-1)
        order = np.argsort(ids)
        corners, ids = corners[order], ids[order]
        truth, _ = self.spec.chessboard_corners_mm()
        H, _ = cv2.findHomography(truth[ids] + self.board_origin_mm, corners, 0)
        markers = {}
        if marker_ids is not None:
            for quad, mid in zip(marker_corners, np.asarray(marker_ids).reshape(-1), strict=True):
                markers[int(mid)] = np.asarray(quad, dtype=np.float64).reshape(4, 2)
        return Detection(self.name, True, None if H is None else H / H[2, 2], corners=corners, ids=ids,
                         markers=markers)
