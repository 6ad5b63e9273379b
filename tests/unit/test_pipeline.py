"""station.pipeline: the analysis pool (bounded, errors at take time, serial mode) and the record it leaves.

The record equality test runs ``station run --plan factory`` on two fresh twins with the same seed, one serial
(``--analysis-workers 0``) and one pipelined (``--analysis-workers 2``), and compares the two records
measurement by measurement: every value exactly equal (each frame's analysis runs whole on one thread; no
sum is split across threads, so no round-off may differ), with the same units, limits and verdicts, and the
same tests with the same outcomes. The main camera's zebra calibration runs by default; the subset that takes
every pipelined procedure (zebra, peaking focus search, sweep and flats, adapter focus, geometry, shading)
and the whole plan (RAW integrity too) are ``slow``.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from station.cli import main
from station.config import twin_config
from station.pipeline import (
    Pipeline,
    StreamAbortedError,
    analysis_pool,
    override_workers,
    workers_for,
    workers_overridden,
)
from station.procedures import ProcedureError

# --- the pool --------------------------------------------------------------------------------------------------


def test_in_flight_is_bounded_and_submit_waits() -> None:
    """At most ``in_flight`` analyses are queued or running: a submit past that waits for one to finish."""
    finished = 0
    lock = threading.Lock()
    seen_in_flight: list[int] = []

    def work(_: int) -> None:
        nonlocal finished
        time.sleep(0.03)
        with lock:
            finished += 1

    with Pipeline(workers=2, in_flight=3) as pool:
        jobs = []
        for i in range(10):
            jobs.append(pool.submit(f"job {i}", work, i))
            with lock:
                seen_in_flight.append(len(jobs) - finished)
        for job in jobs:
            job.result()
        assert pool.peak_in_flight == 3
    assert max(seen_in_flight) <= 3
    assert finished == 10


def test_unbounded_would_show_more_in_flight() -> None:
    """The bound is what holds submits back: with room for all, ten slow jobs are in flight at once."""
    with Pipeline(workers=1, in_flight=10) as pool:
        gate = threading.Event()
        jobs = [pool.submit(f"job {i}", gate.wait, 5.0) for i in range(10)]
        assert pool.peak_in_flight == 10
        gate.set()
        assert all(job.result() for job in jobs)


def _fails(message: str) -> float:
    raise ProcedureError(message)


@pytest.mark.parametrize("workers", [0, 1, 2])
def test_error_surfaces_where_the_result_is_taken(workers: int) -> None:
    """The analysis's own exception (same type and message) comes out of ``result()``, not ``submit``, with a
    note naming the step and the traceback reaching into the analysis; the jobs after it are unaffected."""
    with Pipeline(workers) as pool:
        bad = pool.submit("sfr: edges at ring 12.5 deg", _fails, "3 measurable edges")
        good = pool.submit("sfr: edges at ring 13 deg", float, "2.5")
        with pytest.raises(ProcedureError, match="3 measurable edges") as caught:
            bad.result()
        assert good.result() == 2.5
    assert caught.value.exit_code == 3  # a setup fault stays one, so the record classifies it as before
    assert "(analysis step: sfr: edges at ring 12.5 deg)" in caught.value.__notes__
    frames = [f.name for f in traceback.extract_tb(caught.value.__traceback__)]
    assert "_fails" in frames
    with pytest.raises(ProcedureError):  # taken twice: the same error, the note once
        bad.result()
    assert caught.value.__notes__.count("(analysis step: sfr: edges at ring 12.5 deg)") == 1


def test_serial_mode_runs_inline_at_submit() -> None:
    """workers=0: the analysis runs in the caller's thread, at once, in submission order."""
    order: list[tuple[int, int]] = []
    with Pipeline(0) as pool:
        assert pool.serial
        jobs = [pool.submit(f"job {i}", lambda i=i: order.append((i, threading.get_ident())) or i) for i in range(4)]
        assert [i for i, _ in order] == [0, 1, 2, 3]  # before any result is taken
        assert {t for _, t in order} == {threading.get_ident()}
        assert [job.result() for job in jobs] == [0, 1, 2, 3]
        assert pool.peak_in_flight == 0


def _analysis(seed: int) -> tuple[float, np.ndarray]:
    """A frame analysis's kind of work: a big reduction and a least-squares fit."""
    rng = np.random.default_rng(seed)
    frame = rng.integers(64, 1023, size=(512, 768), dtype=np.uint16)
    a = np.column_stack([np.ones(200), np.arange(200.0), np.arange(200.0) ** 2])
    fit = np.linalg.lstsq(a, frame[:200, 5].astype(np.float64), rcond=None)[0]
    return float(frame.astype(np.float64).var()), fit


def test_serial_and_pooled_results_are_identical() -> None:
    """The same analyses serial and on two threads give bit-identical results, in submission order."""
    with Pipeline(0) as serial, Pipeline(2) as pooled:
        a = [serial.submit(f"frame {k}", _analysis, k).result() for k in range(6)]
        jobs = [pooled.submit(f"frame {k}", _analysis, k) for k in range(6)]
        b = [job.result() for job in jobs]
    for (var_a, fit_a), (var_b, fit_b) in zip(a, b, strict=True):
        assert var_a == var_b
        assert np.array_equal(fit_a, fit_b)


@pytest.mark.parametrize("workers", [0, 1])
def test_stream_gives_the_items_in_order(workers: int) -> None:
    """A stream's analysis sees every item put, in order, serial or on the pool (where it consumes them as
    they come: the first item is taken before the last is put)."""
    consumed_before_end = threading.Event()
    first_taken = threading.Event()

    def analyse(items: Any) -> list[int]:
        out = []
        for item in items:
            out.append(item * 10)
            first_taken.set()
        return out

    with Pipeline(workers) as pool, pool.stream("views", analyse) as stream:
        for k in range(5):
            stream.put(k)
            if k == 0 and workers and first_taken.wait(5.0):
                consumed_before_end.set()
        result = stream.finish()
    assert result == [0, 10, 20, 30, 40]
    assert consumed_before_end.is_set() == bool(workers)


def test_stream_stops_its_analysis_when_the_capture_loop_fails() -> None:
    """An error in the capture loop ends the stream: the worker's analysis raises ``StreamAbortedError`` at once
    instead of going on with the views it has, and the capture loop's error is the one the caller sees."""
    seen: list[int] = []
    with Pipeline(1) as pool:
        stream = pool.stream("geometry views", lambda items: [seen.append(i) for i in items])
        with pytest.raises(RuntimeError, match="mount stalled"), stream:
            stream.put(1)
            raise RuntimeError("mount stalled")
        with pytest.raises(StreamAbortedError, match="geometry views"):
            stream.finish()
    assert seen == [1]


def test_shot_decodes_its_pngs_on_first_use_where_it_is_used() -> None:
    """A shot keeps the phone's PNG payloads and decodes them on first use (on the pool when an analysis
    there uses them): once, to the same arrays ``decode_png`` / ``decode_mask`` give; a payload that is no
    PNG is a ``DeviceError`` naming the format where it is used."""
    import cv2

    from station.errors import DeviceError
    from station.procedures.captures import Shot, decode_mask, decode_png

    rgb = np.random.default_rng(1).integers(0, 256, size=(24, 32, 3), dtype=np.uint8)
    preview_png = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))[1].tobytes()
    mask = np.zeros((24, 32), np.uint8)
    mask[3:9, 4:20] = 255
    mask_png = cv2.imencode(".png", mask)[1].tobytes()
    shot = Shot("main", {"seq": 7}, pngs={"preview": preview_png, "peaking_mask": mask_png})
    with Pipeline(1) as pool:
        decoded = pool.submit("decode", lambda s: (s.preview, s.masks), shot).result()
    assert np.array_equal(decoded[0], rgb) and np.array_equal(decoded[0], decode_png(preview_png))
    assert np.array_equal(decoded[1]["peaking_mask"], decode_mask(mask_png)) and decoded[1]["peaking_mask"].sum() == 96
    assert shot.preview is decoded[0] and not shot.pngs  # decoded once, the payloads let go
    broken = Shot("main", {"seq": 8}, pngs={"zebra_mask": b"not a png"})
    for _ in range(2):  # and again on a second use
        with pytest.raises(DeviceError, match="zebra_mask payload"):
            broken.masks  # noqa: B018 - the property decodes
    assert Shot("main", {}).preview is None


# --- how many workers -----------------------------------------------------------------------------------------

def test_workers_come_from_the_override_then_the_config() -> None:
    config = twin_config(5025, 5026, "/dev/pts/9", 7000, 7001)
    station = type("S", (), {"config": config})()
    assert workers_for(station) == config.analysis_workers == 1
    with workers_overridden(0):
        assert workers_for(station) == 0
        assert analysis_pool(station).serial
    assert workers_for(station) == 1
    assert not analysis_pool(station).serial
    with pytest.raises(ValueError, match="0..16"):
        override_workers(17)
    with pytest.raises(ValueError, match="0..16"):
        Pipeline(-1)


def test_run_rejects_a_bad_worker_count(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--plan", "factory", "--analysis-workers", "99", "--no-report"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["station run: error: --analysis-workers 99: expected 0..16 threads (0: serial)"]


def test_bench_plan_rejects_a_bad_worker_count(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "plan", "--analysis-workers", "-1", "--json"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["station bench: error: --analysis-workers -1: expected 0..16 threads (0: serial)"]


def test_station_file_key_is_checked(tmp_path: Path) -> None:
    from station.config import load_config, to_toml
    from station.errors import ConfigError

    text = to_toml(twin_config(5025, 5026, "/dev/pts/9", 7000, 7001))
    good = tmp_path / "good.toml"
    good.write_text(text.replace('name = "twin"', 'name = "twin"\nanalysis_workers = 3'))
    assert load_config(good).analysis_workers == 3
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace('name = "twin"', 'name = "twin"\nanalysis_workers = -1'))
    with pytest.raises(ConfigError, match=r"bad.toml.*station.analysis_workers"):
        load_config(bad)


# --- the record: pipelined equals serial -------------------------------------------------------------------

LENS = "summicron-m-50-f2"
SEED = 3
#: The default run: the main camera's zebra calibration (a light sweep of ten frames, each summarised on the
#: pool behind the next light change), cheap enough for the default suite (two runs of one test).
SUBSET = "test_zebra_calibration and not lens"
#: Every pipelined procedure once: zebra light sweep through the lens, the peaking focus search, sweep and flats,
#: the adapter's through-focus sweep, geometry through the lens, shading (slow: a few minutes).
SUBSET_WIDE = ("test_lens_zebra_calibration or test_adapter_focus or test_lens_geometry or test_lens_shading "
               "or test_lens_peaking_calibration")
FIELDS = ("name", "case", "unit", "low", "high", "value", "verdict")


def _record(workers: int, select: str | None, reports: Path) -> dict[str, Any]:
    import json

    argv = [sys.executable, "-m", "station", "run", "--plan", "factory", "--lens", LENS, "--reports", str(reports),
            "--no-report", "--analysis-workers", str(workers), "--", "-p", "no:cacheprovider",
            f"--twin-seed={SEED}"] + (["-k", select] if select else [])
    done = subprocess.run(argv, capture_output=True, text=True, timeout=1800)
    records = sorted((reports / "records").glob("*.json"))
    assert records, f"no record (exit {done.returncode}): {(done.stdout + done.stderr)[-2000:]}"
    return json.loads(records[-1].read_text())


def _compare(select: str | None) -> int:
    with tempfile.TemporaryDirectory(prefix="pipeline-equality-") as tmp:
        serial = _record(0, select, Path(tmp) / "serial")
        piped = _record(2, select, Path(tmp) / "piped")
    assert [(t["name"], t["outcome"]) for t in serial["tests"]] == [(t["name"], t["outcome"]) for t in piped["tests"]]
    assert serial["outcome"] == piped["outcome"]
    a = [{k: m[k] for k in FIELDS} for m in serial["measurements"]]
    b = [{k: m[k] for k in FIELDS} for m in piped["measurements"]]
    assert [(m["name"], m["case"]) for m in a] == [(m["name"], m["case"]) for m in b]  # same order too
    for ma, mb in zip(a, b, strict=True):
        assert ma == mb, f"{ma['name']} [{ma['case']}]: serial {ma} != pipelined {mb}"
    return len(a)


def test_pipelined_record_equals_serial_zebra_sweep() -> None:
    assert _compare(SUBSET) >= 3  # clip level, T_raw, T_luma


@pytest.mark.slow
def test_pipelined_record_equals_serial_every_pipelined_procedure() -> None:
    assert _compare(SUBSET_WIDE) >= 15  # zebra, adapter focus, geometry, shading, peaking measurements all there


@pytest.mark.slow
def test_pipelined_record_equals_serial_whole_factory_plan() -> None:
    assert _compare(None) >= 60
