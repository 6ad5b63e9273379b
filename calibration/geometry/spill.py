"""The images ``calibrate_images`` keeps for the re-refinement from the model, one per view: a large image is
spilled to a temporary ``.npy`` file as soon as its board is found and mapped back read-only (``np.load(...,
mmap_mode="r")``) for its own view's re-refinement only, so a 50 MP calibration holds about one frame at a time
instead of every view's (100 MB each as uint16). Exact: the map gives the very bytes that were saved."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

#: Images at least this large (bytes) are spilled when ``spill`` is left to the size: a 50 MP uint16 green is
#: 100 MB; the CI readout's 2048 x 1536 (6 MB) stays in memory.
SPILL_MIN_BYTES = 32 << 20


class ViewImages:
    """name -> image, in memory or spilled to a temporary folder that ``close()`` (or leaving ``with``, on an
    error too) deletes. ``spill``: True always, False never, None when an image is ``SPILL_MIN_BYTES`` or more.

    ``images[name]`` of a spilled image is a fresh read-only memory map: drop it when its view is done (its
    pages then leave the process)."""

    def __init__(self, spill: bool | None = None) -> None:
        self._spill = spill
        self._memory: dict[str, np.ndarray] = {}
        self._files: dict[str, Path] = {}
        self._dir: tempfile.TemporaryDirectory[str] | None = None

    def __enter__(self) -> ViewImages:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._memory.clear()
        self._files.clear()
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    def _spills(self, image: np.ndarray) -> bool:
        return self._spill if self._spill is not None else image.nbytes >= SPILL_MIN_BYTES

    def add(self, name: str, image: np.ndarray) -> None:
        """Keep ``image`` for view ``name`` (a second image of the same name replaces the first)."""
        image = np.asarray(image)
        self._memory.pop(name, None)
        if not self._spills(image):
            self._files.pop(name, None)
            self._memory[name] = image
            return
        if self._dir is None:
            self._dir = tempfile.TemporaryDirectory(prefix="geometry-views-")
        # named by count, never by the view's name (it comes from outside)
        path = self._files.get(name) or Path(self._dir.name) / f"view{len(self._files)}.npy"
        np.save(path, np.ascontiguousarray(image), allow_pickle=False)
        self._files[name] = path

    def __getitem__(self, name: str) -> np.ndarray:
        if name in self._memory:
            return self._memory[name]
        return np.load(self._files[name], mmap_mode="r", allow_pickle=False)

    def __contains__(self, name: object) -> bool:
        return name in self._memory or name in self._files

    def __iter__(self) -> Iterator[str]:
        yield from self._memory
        yield from (name for name in self._files if name not in self._memory)

    def __len__(self) -> int:
        return len(self._memory) + len(self._files)

    @property
    def spilled(self) -> list[str]:
        """Names of the views whose image is on disk."""
        return list(self._files)
