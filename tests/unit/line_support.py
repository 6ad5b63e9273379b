"""Test support for the line's database: real records (station.records), a private PostgreSQL cluster."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from station.measurements import Limits, measure
from station.records import RunRecord, new_run_id


def write_record(folder: Path, serial: str, value: float, *, station: str = "line-1", outcome_fail: bool = False,
                 start: str | None = None) -> Path:
    """A run record written the way a run writes it (RunRecord, a measurement against limits)."""
    record = RunRecord(new_run_id() + uuid.uuid4().hex[:2], folder, plan="factory")
    record.update(station={"name": station}, dut={"serial": serial}, firmware="golden",
                  limits={"product": "m-phone", "version": "2.0"}, **({"start": start} if start else {}))
    record.add_measurement(measure("mtf50_centre_cpp", value, Limits("c/px", low=0.2), case="main"), "t::sfr")
    record.add_test("t::sfr", "sfr", "failed" if outcome_fail else "passed")
    record.add_profile(folder / "p.json", "t::profile", case="main", sensor="main", digest="sha256:ab")
    record.finish()
    path = record.write()
    assert path is not None
    return path


def _pg_bin() -> str | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return str(Path(found[-1]).parent) if found else shutil.which("initdb") and str(Path(shutil.which("initdb")).parent)


def require_postgres(reason: str) -> None:
    """Skip with ``reason``, unless CI=true says PostgreSQL must be there (then fail)."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true but {reason}")
    pytest.skip(reason)


@dataclass
class PrivateCluster:
    """A PostgreSQL cluster of the test's own, to stop and start under a running station."""

    bin: str
    data: Path
    port: int
    as_user: list[str]

    @property
    def url(self) -> str:
        return f"postgresql://station@127.0.0.1:{self.port}/postgres"

    def _ctl(self, *args: str) -> None:
        subprocess.run([*self.as_user, f"{self.bin}/pg_ctl", "-D", str(self.data), *args], check=True,
                       capture_output=True, timeout=60)

    def start(self) -> None:
        self._ctl("-l", str(self.data.parent / "log"), "-w", "-o",
                  f"-p {self.port} -k {self.data.parent} -c listen_addresses=127.0.0.1 -c fsync=off", "start")

    def kill(self) -> None:
        self._ctl("-m", "immediate", "stop")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def private_postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateCluster]:
    bindir = _pg_bin()
    if not bindir:
        require_postgres("no PostgreSQL server binaries (Debian's postgresql; .ci/postgres.sh installs it)")
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="m-station-pg-"))  # under /tmp: the postgres user must reach it
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb refuses root: run the cluster as the postgres user
        if shutil.which("runuser") is None or subprocess.run(["id", "postgres"], capture_output=True).returncode:
            require_postgres("running as root without a postgres user to own the cluster")
        shutil.chown(root, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    cluster = PrivateCluster(str(bindir), root / "data", _free_port(), as_user)
    subprocess.run([*as_user, f"{bindir}/initdb", "-D", str(cluster.data), "-U", "station", "-A", "trust",
                    "--no-sync"], check=True, capture_output=True, timeout=120)
    cluster.start()
    try:
        yield cluster
    finally:
        subprocess.run([*as_user, f"{bindir}/pg_ctl", "-D", str(cluster.data), "-m", "immediate", "stop"],
                       capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)
