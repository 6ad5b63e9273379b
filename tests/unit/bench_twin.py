"""The twin as pure hardware for the bench rehearsal: its wires served, its station TOML without ``[twin]``
(so nothing changes the world but the operator), the mount homed as an operator does at power-on,
the Siemens star left on the holder."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from station.cli.twin import bench_toml
from station.config import TwinConfig, to_toml
from station.devices.grbl_mount import GrblMount
from station.devices.phone import PhoneClient
from station.twin.runner import Twin


@dataclass
class BenchTwin:
    toml: Path  # the bench's station TOML (no [twin])
    control: str  # the twin's control address: for the test-side robot only
    serial: str  # the phone's serial


@contextlib.contextmanager
def bench_twin(folder: Path, seed: int = 1, faults: dict | None = None) -> Iterator[BenchTwin]:
    with Twin(TwinConfig(time_scale=0.0, seed=seed, faults=dict(faults or {}))) as twin:
        config = twin.config
        assert config is not None and config.twin is not None
        with GrblMount(config.mount) as mount:
            mount.home()
            mount.set_aux_output(True)
        with PhoneClient(config.dut, name="dut") as phone:
            serial = str(phone.info()["serial"])
        from station.twin.control_client import TwinControl

        with TwinControl(config.twin.control) as control:
            control.chart_set("siemens")  # whatever the last shift left on the holder
        path = folder / "bench.toml"
        path.write_text(bench_toml(to_toml(config)))
        yield BenchTwin(path, config.twin.control, serial)
