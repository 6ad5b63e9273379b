"""``station run``: a plan (station/plans/<plan>) under pytest, on the twin or on a bench.

Everything the operator gives is checked before anything starts (a bad station file, lens,
serial, limits or baseline is one line and exit 2). The plan then runs in-process with
``pytest.main``: pytest's progress on the terminal between a header and a footer that says
the outcome and where the record, the profiles and the report are. Exit codes (DESIGN 8):
0 pass, 1 product failed, 2 usage or config error, 3 station fault (before 1), 130 interrupted.
"""

from __future__ import annotations

import argparse
import re
import time
from pathlib import Path
from typing import Any

from station.errors import ConfigError, StationError
from station.pipeline import MAX_WORKERS, workers_overridden

PLANS = ("factory", "lens", "regression")
_LENS_RE = re.compile(r"^[a-z0-9][a-z0-9.\-]*\Z")
_BUILD_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+\-]{0,63}\Z")
#: pytest's own exit codes when no record says better: ok, failed, interrupted, internal, usage, none ran.
_PYTEST_EXIT = {0: 0, 1: 1, 2: 130, 3: 3, 4: 2, 5: 2}


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "run", help="run a plan (factory or regression) on the twin or a bench",
        description="Run a station plan under pytest: on a twin started for the run, or on the bench "
                    "of --station FILE. Exit 0 pass, 1 product failed, 2 usage or config error, "
                    "3 station fault.")
    parser.add_argument("--plan", choices=PLANS, default="factory", help="the plan (default factory)")
    parser.add_argument("--station", metavar="FILE", help="station TOML of a bench (default: run on a twin)")
    parser.add_argument("--dut-serial", metavar="SN", help="serial of the phone under test (checked on a bench)")
    parser.add_argument("--firmware", metavar="BUILD",
                        help="firmware build the phone must run (the twin runs this build; default golden)")
    parser.add_argument("--baseline", metavar="FILE", help="regression baseline JSON (station baseline save)")
    parser.add_argument("--lens", metavar="ID", action="append", default=[],
                        help="M lens to test (repeatable; default: the configured lenses)")
    parser.add_argument("--operator", metavar="prompt|twin|tcp://HOST:PORT",
                        help="who makes the chart, lens and aperture changes: twin (default on the twin), prompt "
                             "(default on a bench), or a line's automation at tcp://HOST:PORT")
    parser.add_argument("--lens-catalog", metavar="FILE",
                        help="lens catalogue TOML adding to or overriding the station's shipped one")
    parser.add_argument("--twin-fault", metavar="NAME[=VALUE]", action="append", default=[],
                        help="inject a twin fault (repeatable; `station twin faults` lists them)")
    parser.add_argument("--limits", metavar="FILE",
                        help="the product's limits TOML (default: the shipped station/data/limits/m-phone.toml)")
    parser.add_argument("--reports", metavar="DIR", default="reports",
                        help="where the run writes records, results and the report (default ./reports)")
    parser.add_argument("--no-report", action="store_true", help="do not build the HTML report at the end")
    parser.add_argument("--analysis-workers", metavar="N", type=int,
                        help="threads analysing frames behind the next capture (0: serial; default: the station "
                             "file's [station] analysis_workers, else 1)")
    parser.add_argument("pytest_args", nargs=argparse.REMAINDER, metavar="-- PYTEST_ARGS",
                        help="after --, options for pytest (-k EXPR, -x, -v ...)")
    parser.set_defaults(func=run)


def plans_dir() -> Path:
    """The plans shipped in the package (``station/plans``), found through ``importlib.resources``."""
    from importlib import resources

    return Path(str(resources.files("station.plans")))


def check_args(args: argparse.Namespace) -> dict[str, Any]:
    """Check every option before anything starts; ``ConfigError``/``InputError`` (exit 2) naming it."""
    from station.baseline import load_baseline
    from station.config import load_config
    from station.limits import load_limits
    from station.records import check_serial
    from station.twin.faults import parse_fault_args

    plan_dir = plans_dir() / args.plan
    if not plan_dir.is_dir():
        raise ConfigError(f"--plan {args.plan}: no plan folder at {plan_dir}")
    checked: dict[str, Any] = {"plan_dir": plan_dir, "station": None}
    if args.station:
        if args.twin_fault:
            raise ConfigError("--twin-fault applies to the twin only; drop it or drop --station")
        checked["station"] = load_config(args.station)
    else:
        parse_fault_args(args.twin_fault)
    if args.dut_serial is not None:
        check_serial(args.dut_serial)
    if args.firmware is not None:
        if not _BUILD_RE.match(args.firmware):
            raise ConfigError(f"--firmware {args.firmware!r}: expected a build name (letters, digits, . _ + -)")
        if checked["station"] is None:
            from station.twin.firmware import FIRMWARE_BUILDS

            if args.firmware not in FIRMWARE_BUILDS:
                raise ConfigError(f"--firmware {args.firmware!r}: the twin has no such build; allowed: "
                                  f"{', '.join(FIRMWARE_BUILDS)}")
    workers = getattr(args, "analysis_workers", None)
    if workers is not None and not 0 <= workers <= MAX_WORKERS:
        raise ConfigError(f"--analysis-workers {workers}: expected 0..{MAX_WORKERS} threads (0: serial)")
    lenses = list(dict.fromkeys(args.lens))
    for lens in lenses:
        if not _LENS_RE.match(lens):
            raise ConfigError(f"--lens {lens!r}: expected a lower-case lens id such as summicron-m-50-f2")
    from station.lens_catalog import m_lenses, use_catalog
    from station.operator import parse_operator

    use_catalog(args.lens_catalog)
    known = m_lenses()
    unknown = [lens for lens in lenses if lens not in known]
    if unknown:
        raise ConfigError(f"--lens {unknown[0]!r}: not in the station's lens catalogue; known: "
                          f"{', '.join(sorted(known))} (add it with --lens-catalog FILE)")
    twin = checked["station"] is None or checked["station"].twin is not None
    parse_operator(args.operator, on_twin=twin)
    checked["lenses"] = lenses
    checked["limits"] = load_limits(args.limits)
    checked["baseline"] = load_baseline(args.baseline) if args.baseline else None
    extra = list(args.pytest_args or [])
    checked["pytest_args"] = extra[1:] if extra[:1] == ["--"] else extra
    return checked


def pytest_argv(args: argparse.Namespace, checked: dict[str, Any], run_id: str, results: Path) -> list[str]:
    argv = [str(checked["plan_dir"]), "-p", "no:cacheprovider", "-W", "ignore::pytest.PytestAssertRewriteWarning",
            "--alluredir", str(results),
            "--reports", str(Path(args.reports)), "--run-id", run_id, "--plan-name", args.plan,
            "--limits", checked["limits"].path]
    for option in ("station", "dut_serial", "firmware", "baseline", "operator", "lens_catalog"):
        value = getattr(args, option)
        if value is not None:
            argv += [f"--{option.replace('_', '-')}", str(value)]
    for lens in checked["lenses"]:
        argv += ["--lens", lens]
    for fault in args.twin_fault:
        argv += ["--twin-fault", fault]
    return argv + checked["pytest_args"]


def _where(checked: dict[str, Any], args: argparse.Namespace) -> str:
    config = checked["station"]
    if config is None:
        faults = f", faults {', '.join(args.twin_fault)}" if args.twin_fault else ""
        return f"the twin (firmware {args.firmware or 'golden'}{faults})"
    return f"station {config.name} ({config.source})"


def run(args: argparse.Namespace) -> int:
    import pytest

    from station.records import EXIT_CODES, load_record, new_run_id

    checked = check_args(args)
    reports = Path(args.reports)
    for _ in range(5):  # a fresh run folder: never two runs in one
        run_id = new_run_id()
        run_dir = reports / "runs" / run_id
        try:
            run_dir.mkdir(parents=True)
            break
        except FileExistsError:
            continue
        except OSError as exc:
            raise ConfigError(f"--reports {reports}: cannot create {run_dir} ({exc.strerror})") from None
    else:
        raise ConfigError(f"--reports {reports}: no fresh run folder could be made")
    results = run_dir / "allure-results"
    print(f"station run: plan {args.plan} on {_where(checked, args)}, run {run_id}", flush=True)
    started = time.monotonic()
    with workers_overridden(getattr(args, "analysis_workers", None)):
        code = int(pytest.main(pytest_argv(args, checked, run_id, results)))
    elapsed_s = time.monotonic() - started

    written = sorted((reports / "records").glob(f"*-{run_id}.json"))
    record_path = written[-1] if written else None
    record = load_record(record_path) if record_path is not None else None
    if record is not None and record.get("outcome"):
        exit_code, outcome = int(record["exit_code"]), str(record["outcome"])
    else:
        exit_code = _PYTEST_EXIT.get(code, 3)
        outcome = next((k for k, v in EXIT_CODES.items() if v == exit_code), "aborted")

    from station.db.spool import upload_after_run  # store and forward: never raises, bounded wait

    database_line = upload_after_run(reports, record_path, checked["station"])
    report_line = "not built (--no-report)"
    if not args.no_report and results.is_dir() and any(results.glob("*-result.json")):
        from station.report import build_report

        name = f"M-Station {args.plan} {(record or {}).get('dut', {}).get('serial') or ''} {run_id}"
        try:
            report_line = str(build_report(results, run_dir / "report.html", report_name=" ".join(name.split())))
        except StationError as exc:
            report_line = f"not built: {str(exc).removeprefix('report: ')}"
    elif not args.no_report:
        report_line = "not built (no test results)"
    _footer(outcome, exit_code, elapsed_s, record, record_path, report_line)
    print(f"  database: {database_line}")
    return exit_code


def _number(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, int | float) else str(value)


def _failed_measurements(record: dict[str, Any] | None) -> list[str]:
    """One line per failed measurement: name [case], value and unit, limits (a dimensionless unit prints none)."""
    lines = []
    for m in (record or {}).get("measurements", []):
        if m.get("verdict") != "fail":
            continue
        unit = m.get("unit") or ""
        unit = "" if unit in ("1", "") else f" {unit}"
        low, high = m.get("low"), m.get("high")
        limits = " and ".join(x for x in (f">= {_number(low)}" if low is not None else "",
                                          f"<= {_number(high)}" if high is not None else "") if x) or "no limits"
        case = f" [{m['case']}]" if m.get("case") else ""
        line = f"{m.get('name')}{case} = {_number(m.get('value'))}{unit}, limits {limits}"
        if m.get("regression_verdict") == "fail":
            line += (f"; baseline {_number(m.get('baseline'))}{unit}, delta {_number(m.get('delta'))}{unit}"
                     f" (tolerance {m.get('tolerance')})")
        lines.append(line)
    return lines


def _footer(outcome: str, exit_code: int, elapsed_s: float, record: dict[str, Any] | None,
            record_path: Path | None, report_line: str) -> None:
    counts: dict[str, int] = {}
    marginal = 0
    if record is not None:
        for test in record.get("tests", []):
            counts[test["outcome"]] = counts.get(test["outcome"], 0) + 1
        marginal = sum(1 for m in record.get("measurements", []) if m.get("verdict") == "marginal")
    tally = ", ".join(f"{n} {k}" for k, n in counts.items()) or "no test ran"
    extra = f", {marginal} marginal measurement(s)" if marginal else ""
    incomplete = ""
    if record is not None and record.get("incomplete"):
        incomplete = f", INCOMPLETE: {record.get('tests_never_ran', 0)} test(s) of the plan never ran"
    print(f"station run: {outcome.upper()} (exit {exit_code}): {tally}{extra}{incomplete} in {elapsed_s:.1f} s")
    if record is not None and record.get("reason"):
        print(f"  reason:   {record['reason']}")
    for line in _failed_measurements(record):
        print(f"  failed:   {line}")
    if record is not None:
        operator = record.get("operator") or {}
        print(f"  operator: {record.get('operator_requests', 0)} request(s) ({operator.get('kind') or 'none'})")
    if record is not None:
        safe = record.get("safe_state") or {}
        if safe.get("problems"):
            print(f"  SAFE STATE NOT CONFIRMED: {'; '.join(safe['problems'])}")
    profiles = (record or {}).get("profiles", [])
    run_dir = (record or {}).get("paths", {}).get("run_dir")
    print(f"  record:   {record_path or 'none written'}")
    print(f"  profiles: {len(profiles)} in {Path(run_dir) / 'profiles'}" if profiles and run_dir
          else "  profiles: none written")
    print(f"  report:   {report_line}")
