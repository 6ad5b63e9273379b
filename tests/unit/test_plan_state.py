"""Issue 11 item 3: the plans pass what one test captures for another through a session store with explicit
scope (``station.plans.helpers.Kept``, the ``kept`` fixture), not module-level dicts: ``-k`` on a test whose
input another test takes fails in one line naming that test, never with a KeyError or a silent skip."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from station.cli import main
from station.plans.helpers import Kept


def test_station_run_of_the_lateral_ca_alone_says_it_needs_test_sfr(tmp_path: Path, capsys) -> None:
    reports = tmp_path / "reports"
    code = main(["run", "--reports", str(reports), "--no-report", "--", "-k", "test_lateral_ca and not lens"])
    out = capsys.readouterr().out
    (record,) = [json.loads(p.read_text()) for p in (reports / "records").glob("*.json")]
    (test,) = record["tests"]
    assert code == 1 and test["name"] == "test_lateral_ca" and test["outcome"] == "failed", out
    assert test["message"].startswith("Failed: sfr/main: needs the slanted-edge capture, which test_sfr takes")
    assert "\n" not in test["message"] and "Traceback" not in out


def test_kept_gives_what_was_kept_and_fails_naming_the_test_that_keeps_it() -> None:
    kept = Kept()
    kept["sfr/main"] = capture = object()
    assert kept.need("sfr/main", "the slanted-edge capture", "test_sfr") is capture
    with pytest.raises(pytest.fail.Exception, match=r"^sfr/m/x: needs the edges, which test_y takes"):
        kept.need("sfr/m/x", "the edges", "test_y")


def test_take_hands_a_kept_thing_over_once_and_lets_it_go() -> None:
    """Issue 13: what one test keeps for one other goes from the session's store when taken."""
    import gc
    import weakref

    class Capture:
        pass

    kept = Kept()
    kept["sfr/main"] = Capture()
    alive = weakref.ref(kept["sfr/main"])
    taken = kept.take("sfr/main", "the slanted-edge capture", "test_sfr")
    assert taken is alive() and "sfr/main" not in kept
    del taken
    gc.collect()
    assert alive() is None  # the store held the only other reference
    with pytest.raises(pytest.fail.Exception, match=r"^sfr/main: needs the slanted-edge capture, which test_sfr"):
        kept.take("sfr/main", "the slanted-edge capture", "test_sfr")
    kept["raw_colour/m"] = colour = object()
    assert kept.take_if("raw_colour/m") is colour and kept.take_if("raw_colour/m") is None


def test_spilled_lumas_read_back_equal_and_hold_no_anonymous_memory() -> None:
    """The peaking flats a plan keeps between its flat and Siemens phases are memory-mapped from an unlinked
    file: equal to the lumas, read-only, and no file left behind."""
    import os

    import numpy as np

    from station.procedures.preview_sweep import spilled

    lumas = [np.random.default_rng(i).integers(0, 256, (48, 64), dtype=np.uint8) for i in range(2)]
    back = spilled(lumas)
    assert all(isinstance(b, np.memmap) and not b.flags.writeable for b in back)
    assert all(np.array_equal(a, b) for a, b in zip(lumas, back, strict=True))
    assert not any(os.path.exists(b.filename) for b in back)
