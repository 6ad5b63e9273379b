"""The lens profile's pydantic model: one error lists every problem with its key; no section is dropped."""

from __future__ import annotations

import copy

import pytest

from calibration.profile import ProfileError, validate_profile
from tests.unit.test_profile import sample_profile


def test_every_problem_of_a_profile_in_one_error() -> None:
    doc = copy.deepcopy(sample_profile())
    doc["geometry"].pop("rms_px")
    doc["color"]["wb_gains"] = [1.0, "one", 1.0]
    doc["sharpness"] = {"x": 1}  # a section schema 1 does not know: an error, never silently dropped
    with pytest.raises(ProfileError) as err:
        validate_profile(doc)
    text = str(err.value)
    assert text.startswith("profile: 3 problems: ") and "\n" not in text, text
    assert "geometry.rms_px: missing" in text
    assert "color.wb_gains[1]: 'one' is not a number" in text
    assert "sharpness: unknown key (allowed: " in text and "geometry" in text


def test_a_null_section_is_not_an_absent_one() -> None:
    doc = copy.deepcopy(sample_profile())
    doc["shading"] = None
    with pytest.raises(ProfileError, match="shading: None is not a table"):
        validate_profile(doc)
