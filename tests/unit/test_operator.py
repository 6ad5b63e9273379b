"""The operator interface: requests as a person reads them, the TCP protocol of a line's automation (every
field checked before it is sent, every answer checked), ``--operator`` parsing; the station's lens catalogue;
procedures and plans never read the twin."""

from __future__ import annotations

import json
import re
import socket
import threading
from pathlib import Path

import pytest

from station.errors import ConfigError, DeviceError
from station.lens_catalog import get_lens, read_catalog_file, shipped_catalog, use_catalog
from station.operator.protocol import OperatorRequest, parse_operator
from station.operator.tcp import TcpOperator, request_message


def _server(answer) -> tuple[int, list[dict], threading.Thread]:
    """A one-connection line server answering each request with ``answer(msg)`` (bytes)."""
    server = socket.create_server(("127.0.0.1", 0))
    got: list[dict] = []

    def serve() -> None:
        conn, _ = server.accept()
        with conn, conn.makefile("rwb") as stream:
            for line in stream:
                msg = json.loads(line)
                got.append(msg)
                stream.write(answer(msg))
                stream.flush()
        server.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return server.getsockname()[1], got, thread


def test_a_request_reads_as_step_n_of_total_with_sensor_lens_and_the_charts_human_name() -> None:
    r = OperatorRequest("chart", 5, 17, sensor="m", chart="sfr", chart_spec="sfr", chart_title="slanted edge",
                        size_mm=(400.0, 300.0))
    assert r.text() == "step 5 of 17, sensor m: put the sfr chart (400 x 300 mm) on the chart holder [slanted edge]"
    lens = OperatorRequest("lens", 6, 17, lens="summicron-m-50-f2", lens_name="Summicron-M 50 mm f/2",
                           aperture=2.0, attempt=2, problem="the adapter reads no lens")
    assert lens.text() == ("step 6 of 17: mount the M lens Summicron-M 50 mm f/2, aperture ring at f/2 "
                           "(again: the adapter reads no lens)")
    assert OperatorRequest("lens", 7).text() == "step 7: take the M lens off the adapter (bare M sensor)"


def test_the_tcp_operator_sends_one_json_line_and_waits_for_its_answer() -> None:
    port, got, thread = _server(lambda m: json.dumps({"id": m["id"], "ok": True}).encode() + b"\n")
    op = TcpOperator("127.0.0.1", port, answer_timeout_s=5.0)
    op.chart(OperatorRequest("chart", 1, chart="flat", chart_spec="flat", size_mm=(400.0, 300.0)))
    op.lens(OperatorRequest("lens", 2, lens=None))
    op.aperture(OperatorRequest("aperture", 3, lens="summicron-m-50-f2", aperture=8.0))
    op.close()
    thread.join(5)
    assert got == [{"id": 1, "action": "chart", "step": 1, "chart": "flat", "size_mm": [400.0, 300.0]},
                   {"id": 2, "action": "lens", "step": 2, "lens": None, "aperture": None},
                   {"id": 3, "action": "aperture", "step": 3, "lens": "summicron-m-50-f2", "aperture": 8.0}]


@pytest.mark.parametrize(("reply", "match"), [
    (lambda m: json.dumps({"id": m["id"], "ok": False, "error": "gripper jammed"}).encode() + b"\n",
     r"^operator: could not chart .*gripper jammed$"),
    (lambda m: json.dumps({"id": 99, "ok": True}).encode() + b"\n", r"^operator: .* answered id 99 to request 1$"),
    (lambda m: b"\x00\xffgarbage\n", r"^operator: .* not a JSON object$"),
])
def test_a_failed_or_wrong_answer_is_a_station_fault_naming_the_operator(reply, match: str) -> None:
    port, _, _ = _server(reply)
    op = TcpOperator("127.0.0.1", port, answer_timeout_s=5.0)
    with pytest.raises(DeviceError, match=match) as info:
        op.chart(OperatorRequest("chart", 1, chart="flat"))
    assert info.value.device == "operator"
    op.close()


def test_no_answer_in_time_and_nobody_listening_are_station_faults() -> None:
    port, _, _ = _server(lambda m: b"")  # never answers a line
    op = TcpOperator("127.0.0.1", port, answer_timeout_s=0.3)
    with pytest.raises(DeviceError, match=r"no answer from tcp://127.0.0.1:\d+ within 0.3 s"):
        op.chart(OperatorRequest("chart", 1, chart="flat"))
    op.close()
    with socket.create_server(("127.0.0.1", 0)) as probe:
        free = probe.getsockname()[1]
    with pytest.raises(DeviceError, match="cannot connect"):
        TcpOperator("127.0.0.1", free).chart(OperatorRequest("chart", 1, chart="flat"))


@pytest.mark.parametrize("request_", [
    OperatorRequest("chart", 1, chart="flat\n{\"id\": 9}"),
    OperatorRequest("lens", 1, lens="../etc", aperture=2.0),
    OperatorRequest("aperture", 1, lens="summicron-m-50-f2", aperture=float("nan")),
])
def test_nothing_unchecked_reaches_the_line(request_: OperatorRequest) -> None:
    with pytest.raises(DeviceError, match="refusing to send"):
        request_message(1, request_)


@pytest.mark.parametrize(("text", "on_twin", "expected"), [
    (None, True, ("twin", None, None)), (None, False, ("prompt", None, None)),
    ("prompt", True, ("prompt", None, None)), ("tcp://line-7.local:4100", False, ("tcp", "line-7.local", 4100)),
])
def test_operator_option(text, on_twin: bool, expected) -> None:
    assert parse_operator(text, on_twin=on_twin) == expected


@pytest.mark.parametrize(("text", "on_twin"), [("robot", True), ("tcp://host", True), ("tcp://h:99999", True),
                                                ("twin", False), ("tcp://a b:1", True)])
def test_a_bad_operator_option_is_a_config_error(text: str, on_twin: bool) -> None:
    with pytest.raises(ConfigError, match="--operator"):
        parse_operator(text, on_twin=on_twin)


def test_the_shipped_lens_catalogue_has_every_m_lens_with_a_distinct_6_bit_code() -> None:
    lenses = shipped_catalog()
    m = {k: v for k, v in lenses.items() if v.mount == "m"}
    assert {"summicron-m-50-f2", "summilux-m-35-f1.4", "elmarit-m-28-f2.8", "noctilux-m-50-f0.95"} <= set(m)
    assert len({v.code for v in m.values()}) == len(m) and all(0 <= v.code <= 63 for v in m.values())
    summicron = m["summicron-m-50-f2"]
    # thin lens, independent of the code: the ring at close focus is the whole throw, at infinity 0
    assert summicron.ring_for_distance_deg(summicron.close_focus_mm) == pytest.approx(summicron.focus_throw_deg)
    assert summicron.ring_for_distance_deg(float("inf")) == 0.0
    assert lenses["main"].mount == "phone" and lenses["main"].code is None


def test_a_user_adds_and_overrides_lenses_with_a_catalogue_file(tmp_path: Path) -> None:
    extra = tmp_path / "mine.toml"
    extra.write_text('["apo-summicron-m-90-f2"]\nname = "APO-Summicron-M 90 mm f/2 ASPH"\nfocal_length_mm = 90.0\n'
                     'apertures = [2.0, 2.8, 4.0, 5.6, 8.0, 11.0, 16.0]\nclose_focus_mm = 1000.0\n'
                     'focus_throw_deg = 180.0\ncode = 33\n')
    try:
        use_catalog(extra)
        assert get_lens("apo-summicron-m-90-f2").code == 33
        assert get_lens("summicron-m-50-f2").code == 3  # the shipped ones stay
    finally:
        use_catalog(None)
    with pytest.raises(ConfigError, match="not in the station's lens catalogue"):
        get_lens("apo-summicron-m-90-f2")


@pytest.mark.parametrize(("text", "match"), [
    ('[x]\nname = "x"\nfocal_length_mm = 50.0\napertures = [2.0]\nclose_focus_mm = 700.0\nfocus_throw_deg = 90.0'
     '\ncode = 64\n', r"\[x\] code = 64: expected the 6-bit code"),
    ('[x]\nfocal_length_mm = 50.0\napertures = [4.0, 2.0]\nclose_focus_mm = 700.0\n', r"\[x\] apertures: .*widest"),
    ('[x]\nfocal = 50\n', r"\[x\] focal: unknown key"),
    ("[x\n", "not valid TOML"),
])
def test_a_bad_catalogue_names_the_file_and_key(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(str(path)) + ".*" + match):
        read_catalog_file(path)


def test_procedures_and_plans_never_import_the_twin() -> None:
    root = Path(__file__).resolve().parents[2] / "station"
    offenders = [f"{p.relative_to(root.parent)}:{n}" for folder in ("procedures", "plans")
                 for p in (root / folder).rglob("*.py")
                 for n, line in enumerate(p.read_text().splitlines(), 1) if "station.twin" in line]
    assert offenders == []  # as `grep -rn "station.twin" station/procedures station/plans`
    imports = [p.name for p in (root / "operator").rglob("*.py")
               if re.search(r"^\s*(from|import) station\.twin", p.read_text(), re.MULTILINE)]
    assert imports == []  # the twin stand-in is handed the station's control interface


def test_the_tcp_request_says_of_how_many_while_the_plan_has_not_gone_past_it() -> None:
    flat = OperatorRequest("chart", 3, 12, chart="flat", chart_spec="flat")
    assert request_message(1, flat) == {"id": 1, "action": "chart", "step": 3, "of": 12, "chart": "flat"}
    assert "of" not in request_message(2, OperatorRequest("chart", 13, 12, chart="flat", chart_spec="flat"))
    assert "of" not in request_message(3, OperatorRequest("chart", 1, chart="flat", chart_spec="flat"))


def test_a_dry_pass_counts_only_the_changes_the_scene_would_ask_for() -> None:
    from station.scene import planned_requests

    lens = "summicron-m-50-f2"
    needs = [("lens", None, None), ("chart", "flat"), ("chart", "flat"),  # 2: the second flat is up already
             ("lens", lens, None), ("lens", lens, 2.0),  # 1: wide open is f/2
             ("aperture", lens, 8.0), ("aperture", lens, 8.0), ("chart", "sfr"), ("lens", None, None)]  # 3
    assert planned_requests(needs) == 6
    with pytest.raises(ValueError, match="expected chart, lens or aperture"):
        planned_requests([("light", 50.0)])


def test_the_factory_plan_asks_at_most_12_times_per_phone_with_one_lens() -> None:
    from station.plans.factory import scene_needs
    from station.scene import planned_requests

    assert planned_requests(scene_needs(["summicron-m-50-f2"])) <= 12
    # a second lens costs its mount and its rings, never fewer requests than one lens
    assert planned_requests(scene_needs(["summicron-m-50-f2", "elmarit-m-28-f2.8"])) > 12


def test_the_lens_plan_declares_what_a_one_lens_run_asks() -> None:
    """The lens plan's "of N" (its ``scene_needs``) for one lens is the 7 changes a run of it asks for (lens on
    wide open, flat field, f/8, ChArUco, slanted edges, wide open, Siemens star: ``station run --plan lens
    --lens summicron-m-50-f2``'s record, 7 requests); two lenses ask twice as often, the star up when the next
    lens goes on."""
    from station.plans.lens import scene_needs
    from station.scene import planned_requests

    assert planned_requests(scene_needs(["summicron-m-50-f2"])) == 7
    assert planned_requests(scene_needs(["summicron-m-50-f2", "elmarit-m-28-f2.8"])) == 14
