"""The real camera reference data (``/work/shared/reference``, see its README): where it lies, and the skip
with a reason that a test using it takes when it is absent. Never committed to this repository."""

from __future__ import annotations

from pathlib import Path

import pytest

REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "reference"


def reference_dir(name: str) -> Path:
    """The reference data set ``name``: a folder of ``REFERENCE``; the calling test skips, naming the folder,
    when it is not there."""
    folder = REFERENCE / name
    if not folder.is_dir():
        pytest.skip(f"reference data not present: {folder}")
    return folder
