"""``station.devices.wire_time``: per-device sums, the union over threads, nesting, a driver's hook on a socket."""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest

from station.config import DutConfig
from station.devices import wire_time
from station.devices.phone import PhoneClient

NAP_S = 0.05


def _nap(device: str) -> None:
    with wire_time.waiting(device):
        time.sleep(NAP_S)


def test_sums_by_device_and_the_union_over_threads_counts_overlap_once() -> None:
    before = wire_time.snapshot()
    started = threading.Barrier(2)

    def worker() -> None:
        started.wait()
        _nap("pool-a")

    threads = [threading.Thread(target=worker) for _ in range(2)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed_s = time.perf_counter() - t0
    _nap("pool-b")
    spent = wire_time.snapshot().since(before)
    assert spent.blocks == {"pool-a": 2, "pool-b": 1}
    assert spent.by_device_s["pool-a"] >= 2 * NAP_S
    assert spent.by_device_s["pool-b"] >= NAP_S
    # the two pool-a naps overlapped: the union is about one nap for them, not two
    assert NAP_S * 2 <= spent.busy_s <= elapsed_s + spent.by_device_s["pool-b"] + 1e-3
    assert spent.busy_s < sum(spent.by_device_s.values())


def test_a_nested_block_is_counted_once_and_an_exception_still_counts() -> None:
    before = wire_time.snapshot()
    with pytest.raises(RuntimeError), wire_time.waiting("outer"):
        _nap("inner")
        raise RuntimeError("wire broke")
    spent = wire_time.snapshot().since(before)
    assert spent.blocks == {"outer": 1}  # the inner block was never counted on its own
    assert spent.by_device_s["outer"] >= NAP_S
    assert spent.busy_s == pytest.approx(spent.by_device_s["outer"])


def test_the_phone_driver_accounts_its_wait_for_a_slow_reply() -> None:
    """A phone service that answers each line after a delay: the waits land on the driver's name."""
    delay_s = 0.15
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def serve() -> None:
        conn, _ = server.accept()
        with conn, conn.makefile("rb") as lines:
            for _line in lines:  # the constructor's info, then ours
                time.sleep(delay_s)
                conn.sendall(json.dumps({"ok": True, "result": {"serial": "X1"}}).encode() + b"\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    before = wire_time.snapshot()
    t0 = time.perf_counter()
    try:
        with PhoneClient(DutConfig(host="127.0.0.1", port=port, timeout_s=5.0), name="dut-slow") as phone:
            result, payload = phone.request("info")
        elapsed_s = time.perf_counter() - t0
    finally:
        server.close()
        thread.join(5)
    spent = wire_time.snapshot().since(before)
    assert result == {"serial": "X1"} and payload is None
    assert 2 * delay_s * 0.9 <= spent.by_device_s["dut-slow"] <= elapsed_s
