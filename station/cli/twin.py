"""``station twin``: the twin in the foreground, printing the station TOML that points at it.

``station twin lenses|sensors|firmware|faults --json`` print the twin's truth and what it
can inject, without starting anything.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from station.cli.common import add_station_options, print_json, twin_settings
from station.config import to_toml
from station.errors import ConfigError

CATALOGS = ("lenses", "sensors", "firmware", "faults")


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("twin", help="run the twin (prints its station TOML), or print its catalogs",
                            description="Run the twin in the foreground until Ctrl-C; it prints the "
                                        "station TOML that points at it. With a catalog name, print "
                                        "that catalog instead.")
    parser.add_argument("catalog", nargs="?", choices=CATALOGS, help="print a catalog and exit")
    parser.add_argument("--json", action="store_true", help="catalogs as JSON")
    parser.add_argument("-o", "--output", metavar="FILE", help="also write the station TOML to FILE")
    parser.add_argument("--time-scale", type=float, default=1.0,
                        help="real seconds per simulated second of hardware time (default 1: real time)")
    parser.add_argument("--bench-toml", action="store_true",
                        help="print the station TOML without its [twin] table: the twin as pure hardware, a "
                             "bench whose changes an operator makes (--operator prompt or tcp://...)")
    parser.add_argument("--host", default="127.0.0.1", help="address to serve on (default 127.0.0.1)")
    add_station_options(parser)
    parser.set_defaults(func=run)


def catalog(name: str) -> Any:
    """The twin's catalog ``name`` as JSON-able data."""
    if name == "faults":
        from station.twin.faults import all_faults

        return {"faults": all_faults()}
    if name == "firmware":
        from station.twin.firmware import firmware_catalog

        return {"firmware": firmware_catalog()}
    if name == "lenses":
        from station.twin.lenses import lens_catalog
        from station.twin.render import lens_truth

        mounts = {k: v for k, v in lens_truth().items() if k not in ("main", "m")}
        return {"lenses": lens_catalog(), "mounts": mounts}
    from station.twin.render import sensor_truth

    return {"sensors": sensor_truth()}


def run(args: argparse.Namespace) -> int:
    if args.catalog:
        data = catalog(args.catalog)
        if args.json:
            print_json(data)
        else:
            for key, value in next(iter(data.values())).items():
                summary = value if isinstance(value, str) else ", ".join(
                    f"{k}={v}" for k, v in value.items() if not isinstance(v, (dict, list)))
                print(f"{key}: {summary}")
        return 0
    if args.station:
        raise ConfigError("station twin serves a twin; --station names a bench and does not apply")
    if args.time_scale < 0:
        raise ConfigError(f"--time-scale {args.time_scale}: must be >= 0")
    from station.atomic import atomic_write_text
    from station.devices.grbl_mount import GrblMount
    from station.twin.runner import Twin

    say = lambda text: print(f"# {text}", file=sys.stderr, flush=True)  # noqa: E731 - progress on stderr
    say("starting the twin: light, lux meter, mount controller, phone ...")
    twin = Twin(twin_settings(args, args.time_scale), host=args.host)
    config = twin.start()
    say(f"homing the mount on {config.mount.port} (simulated homing takes a few seconds) ...")
    with GrblMount(config.mount) as mount:  # the operator homes the bench at power-on
        mount.home()
        mount.set_aux_output(True)  # and closes the light's power relay
    from station.devices.phone import PhoneClient

    with PhoneClient(config.dut, name="dut") as phone:
        serial = phone.info().get("serial")
    say(f"ready: phone serial {serial} (give it as --dut-serial)")
    stop = threading.Event()
    # Ctrl-C and SIGTERM stop it, even when started with SIGINT ignored (a parent such as a pytest-xdist worker
    # passes that on, and Python then installs no KeyboardInterrupt handler)
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        text = bench_toml(to_toml(config)) if args.bench_toml else to_toml(config)
        if args.output:
            atomic_write_text(Path(args.output), text)
        kind = "pure hardware (no [twin]: an operator makes every change)" if args.bench_toml else "twin"
        sys.stdout.write(f"# M-Station twin as {kind}; phone serial {serial}; Ctrl-C stops it. "
                         f"Save this as station.toml:\n{text}")
        sys.stdout.flush()
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        twin.stop()
        print("# twin stopped", file=sys.stderr)
    return 0


def bench_toml(text: str) -> str:
    """A station TOML without its ``[twin]`` tables: the twin's wires as a bench's, no control interface."""
    kept: list[str] = []
    skipping = False
    for line in text.splitlines():
        if line.startswith("["):
            skipping = line.strip() == "[twin]" or line.startswith("[twin.")
        if not skipping:
            kept.append(line)
    return "\n".join(kept).rstrip("\n") + "\n"
