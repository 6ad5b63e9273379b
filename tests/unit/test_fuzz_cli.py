"""A seeded random CLI campaign (issue 10 Build 2): mutated DNGs and TIFFs through ``station analyze shading`` and
``station analyze sfr``, in process. Every input ends with exit 0 or 2 and, for 2, one line on stderr naming the
file; no exception escapes ``station.cli.main`` (a traceback), none hangs (an alarm). An accepted file gives a
finite result. The default run takes a few seeds; ``-m slow`` runs the long campaign. (Station TOMLs are fuzzed at
library level in ``test_fuzz_parsers``: a valid one would make ``station run`` open devices.)
"""

from __future__ import annotations

import json
import math
import random
import signal
from pathlib import Path

import pytest

from station.cli import main
from station.dng import dng_bytes
from tests.unit.fuzz_corpus import flat_frame, patch_tag, self_pointing_ifd

BASE = dng_bytes(flat_frame(64, 48))
TAGS = (256, 257, 258, 259, 273, 277, 278, 279, 33421, 33422, 50710, 50713, 50714, 50717, 50829, 330)


def mutant_dng(rng: random.Random) -> bytes:
    buf = BASE
    for _ in range(rng.randint(1, 3)):
        kind = rng.choice((3, 4, 5))
        n = rng.randint(1, 4) * (2 if kind == 5 else 1)
        top = 65535 if kind == 3 else 2**32 - 1
        buf = patch_tag(buf, rng.choice(TAGS), kind, tuple(rng.choice((0, 1, 2, 7, 1023, top, rng.randint(0, top)))
                                                            for _ in range(n)))
    roll = rng.random()
    if roll < 0.1:
        buf = self_pointing_ifd(buf)
    elif roll < 0.2:
        buf = buf[:rng.randint(0, len(buf))]
    elif roll < 0.3:
        flip = bytearray(buf)
        for _ in range(8):
            flip[rng.randrange(len(flip))] = rng.randrange(256)
        buf = bytes(flip)
    return buf


def mutant_tiff(rng: random.Random) -> bytes:
    import io

    import numpy as np
    import tifffile

    shape = rng.choice([(1, 1), (2, 2), (48, 64), (48, 64, 3), (5, 300)])
    dtype = rng.choice([np.uint8, np.uint16, np.float32, np.float64])
    data = np.asarray(np.random.default_rng(rng.randrange(1000)).uniform(0, 200, shape)).astype(dtype)
    if dtype in (np.float32, np.float64) and rng.random() < 0.5:
        data.flat[rng.randrange(data.size)] = rng.choice([np.nan, np.inf, -np.inf])
    out = io.BytesIO()
    tifffile.imwrite(out, data, photometric="rgb" if data.ndim == 3 else "minisblack")
    buf = out.getvalue()
    return self_pointing_ifd(buf) if rng.random() < 0.1 else buf


@pytest.fixture
def alarm():
    def hang(signum: int, frame: object) -> None:
        raise TimeoutError("no answer within 20 s: a hang")

    old = signal.signal(signal.SIGALRM, hang)
    yield lambda: signal.alarm(20)
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


def _numbers(value: object) -> list[float]:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return []
    if isinstance(value, int | float):
        return [float(value)]
    if isinstance(value, dict):
        return [v for item in value.values() for v in _numbers(item)]
    return [v for item in value for v in _numbers(item)]  # type: ignore[union-attr]


def _campaign(tmp_path: Path, capsys: pytest.CaptureFixture[str], alarm, seeds: range) -> dict[str, int]:
    counts = {"accepted": 0, "refused": 0}
    for seed in seeds:
        rng = random.Random(seed)
        dng = tmp_path / f"m{seed}.dng"
        dng.write_bytes(mutant_dng(rng))
        tif = tmp_path / f"t{seed}.tif"
        tif.write_bytes(mutant_tiff(rng))
        for argv, path in ((["analyze", "shading", str(dng), "--json"], dng),
                           (["analyze", "sfr", str(dng), "--json"], dng),
                           (["analyze", "shading", str(tif), "--json"], tif)):
            alarm()
            code = main(argv)  # an exception escaping here is a traceback: the test fails
            out, err = capsys.readouterr()
            assert code in (0, 2), (seed, argv, code, err)
            if code == 2:
                lines = err.strip().splitlines()
                assert len(lines) == 1 and "Traceback" not in err, (seed, err)
                assert str(path) in lines[0], (seed, lines[0])
                counts["refused"] += 1
            else:
                doc = json.loads(out)
                assert all(math.isfinite(v) for v in _numbers(doc)), (seed, argv)
                counts["accepted"] += 1
    return counts


def test_random_cli_inputs_exit_cleanly(tmp_path: Path, capsys: pytest.CaptureFixture[str], alarm) -> None:
    counts = _campaign(tmp_path, capsys, alarm, range(3))
    assert counts["refused"] >= 3  # the garbled ones are refused, each in one line


@pytest.mark.slow
def test_random_cli_inputs_long_campaign(tmp_path: Path, capsys: pytest.CaptureFixture[str], alarm) -> None:
    counts = _campaign(tmp_path, capsys, alarm, range(1000, 1300))
    print(f"CLI campaign: 900 inputs, {counts['refused']} refused in one line, {counts['accepted']} accepted, "
          "0 tracebacks, 0 hangs")
