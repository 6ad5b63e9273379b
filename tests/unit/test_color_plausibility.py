"""Issue 10 item 6: ``station analyze color`` refuses, in one line, patches that are not a ColorChecker 24."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from calibration.color import MAX_CCM_ENTRY, calibrate_color, plausibility_problems, reference_patches
from station.cli import main

#: A warm light and a camera mix (rows sum to 1), as in the CLI colour tests.
MIX = np.array([[0.72, 0.22, 0.06], [0.10, 0.80, 0.10], [0.05, 0.28, 0.67]])
LIGHT = np.array([1.3, 1.0, 0.6])
BOX = (40, 30, 600, 400)  # the 4x6 patch grid in the chart image below


def chart_image(reference: np.ndarray, seed: int = 3) -> np.ndarray:
    """A 16-bit linear RGB image of the 24 patches (given linear sRGB values) on a dark surround."""
    x0, y0, w, h = BOX
    img = np.full((480, 680, 3), 0.02)
    for i, rgb in enumerate(reference):
        r, c = divmod(i, 6)
        cw, ch = w / 6, h / 4
        img[int(y0 + r * ch) + 4:int(y0 + (r + 1) * ch) - 4, int(x0 + c * cw) + 4:int(x0 + (c + 1) * cw) - 4] = rgb
    cam = (img @ MIX.T) * LIGHT * 0.6
    cam *= 1 + np.random.default_rng(seed).normal(0, 0.003, cam.shape)
    return np.clip(np.round(cam * 65535), 0, 65535).astype(np.uint16)


def concrete_with_a_box(seed: int = 5) -> np.ndarray:
    """A box on concrete: grey grain everywhere, a brown cardboard box where the patches would be."""
    rng = np.random.default_rng(seed)
    grain = cv2.GaussianBlur(rng.normal(0, 1, (480, 680)), (0, 0), 3)
    img = (0.22 + 0.03 * grain)[..., None] * np.array([1.0, 0.98, 0.95])
    img[120:330, 200:470] = np.array([0.30, 0.21, 0.12]) * (1 + 0.05 * grain[120:330, 200:470, None])
    img[200:205, 200:470] = 0.05  # the flap's shadow
    return np.clip(np.round(img * LIGHT * 65535 / 1.4), 0, 65535).astype(np.uint16)


def _write(tmp_path: Path, name: str, rgb16: np.ndarray) -> str:
    path = tmp_path / name
    cv2.imwrite(str(path), rgb16[..., ::-1])
    return str(path)


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["analyze", "color", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def _box() -> str:
    return ",".join(str(v) for v in BOX)


def test_a_true_chart_passes_the_gate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, ref = reference_patches()
    code, out, err = _run(capsys, _write(tmp_path, "chart.png", chart_image(ref)), "--patches", _box(), "--json")
    assert code == 0, err


@pytest.mark.parametrize(("name", "make", "says"), [
    ("concrete.png", lambda ref: concrete_with_a_box(), "not a grey ramp"),
    ("upside-down.png", lambda ref: chart_image(ref[::-1]), "not a grey ramp"),  # patch order reversed
    ("shuffled.png", lambda ref: chart_image(ref[np.random.default_rng(2).permutation(24)]), "not a ColorChecker"),
])
def test_no_chart_is_refused_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str,
                                         make, says: str) -> None:
    _, ref = reference_patches()
    path = _write(tmp_path, name, make(ref))
    for extra in ((), ("--json",)):
        code, out, err = _run(capsys, path, "--patches", _box(), *extra)
        lines = err.strip().splitlines()
        assert code == 2 and out == "" and len(lines) == 1, (code, out, err)
        assert name in lines[0] and "not a ColorChecker 24" in lines[0] and says in lines[0], lines[0]


def test_each_check_of_the_gate_on_patch_values() -> None:
    """Each check fires on its own fault and not on a true chart (camera = mix of the reference)."""
    _, ref = reference_patches()
    camera = (ref @ MIX.T) * LIGHT
    assert plausibility_problems(calibrate_color(camera)) == []
    tinted = camera.copy()
    tinted[19:23] *= np.array([[1.0, 1.0, 1.0], [1.6, 1.0, 1.0], [1.0, 1.0, 1.7], [1.0, 1.5, 1.0]])
    assert any("not neutral" in p for p in plausibility_problems(calibrate_color(tinted)))
    swapped = camera.copy()
    swapped[[12, 13, 14]] = swapped[[14, 12, 13]]  # blue, green, red patches moved round
    assert any("hues are out of order" in p for p in plausibility_problems(calibrate_color(swapped)))
    flat = np.tile(camera[19:23].mean(axis=0), (24, 1)) * (1 + np.random.default_rng(1).normal(0, 0.02, (24, 3)))
    problems = plausibility_problems(calibrate_color(flat))
    assert any("grey ramp" in p for p in problems) and any("colour matrix" in p and f"{MAX_CCM_ENTRY:g}" in p
                                                          for p in problems), problems
