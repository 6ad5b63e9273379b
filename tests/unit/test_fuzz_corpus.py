"""Issue 10's crafted-input corpus through the CLI, in process: one line naming the file or key, the right exit code,
no traceback, no hang (each case under an alarm)."""

from __future__ import annotations

import logging
import signal
from pathlib import Path

import pytest

from station.cli import main
from tests.unit.fuzz_corpus import Case, corpus, materialise

CASES = corpus()
HANG_S = 20


@pytest.fixture
def alarm():
    def hang(signum: int, frame: object) -> None:
        raise TimeoutError(f"no answer within {HANG_S} s: a hang")

    old = signal.signal(signal.SIGALRM, hang)
    signal.alarm(HANG_S)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_crafted_input_gets_one_line_and_its_exit_code(case: Case, tmp_path: Path, alarm: None,
                                                       capsys: pytest.CaptureFixture[str],
                                                       caplog: pytest.LogCaptureFixture) -> None:
    argv = materialise(case, tmp_path)
    caplog.set_level(logging.WARNING)
    code = main(argv)
    logged = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert not logged, f"more lines would reach stderr through logging: {logged}"
    out, err = capsys.readouterr()
    assert code == case.exit_code, (code, out[-400:], err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err and case.says in lines[0], lines[0]
    files = [a for a in argv if a.startswith(str(tmp_path)) or a == "/dev/zero"]
    options = [a for a in argv if a.startswith("--") and a != "--no-report"]
    named = files + options + [f" {o[2:]}:" for o in options]  # a file, an option, or its key
    assert any(n in lines[0] for n in named), f"the line names no file or option: {lines[0]}"


def test_the_corpus_covers_every_found_case() -> None:
    """Issue 10 Found 1-4 and their neighbours: every case stays in the suite."""
    assert len(CASES) >= 31 and len({c.name for c in CASES}) == len(CASES)
