#!/bin/sh
# The installed wheel runs outside the checkout: build it, install it into a fresh venv in a temp folder, run a
# short factory subset on the twin there (the self-check and the main sensor's shading: plans, limits, lens
# catalogue and the pytest plugin all come from the wheel) and check exit 0 and the record.
set -eu
PYTHON="${PYTHON:-python3}"
CHECKOUT="$(cd "$(dirname "$0")/.." && pwd)"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/m-station-install.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
echo "check-install: building the wheel of $CHECKOUT"
"$PYTHON" -m build --wheel --outdir "$WORK/dist" "$CHECKOUT" >"$WORK/build.log" 2>&1 || { tail -20 "$WORK/build.log"; exit 1; }
echo "check-install: installing $(ls "$WORK/dist") into a fresh venv in $WORK"
"$PYTHON" -m venv "$WORK/venv"
"$WORK/venv/bin/python" -m pip install --quiet "$WORK"/dist/*.whl
mkdir "$WORK/line"
cd "$WORK/line"
echo "check-install: station run in $WORK/line (factory: self-check and main shading, on the twin)"
"$WORK/venv/bin/station" run --lens summicron-m-50-f2 --no-report --reports "$WORK/line/reports" \
    -- -k "test_01_selfcheck or (test_02_flat and test_shading and not bare and not lens)"
"$WORK/venv/bin/python" - "$WORK" <<'PY'
import glob, json, sys
import station
work = sys.argv[1]
assert station.__file__.startswith(work), f"station imported from {station.__file__}, not the installed wheel"
(path,) = glob.glob(f"{work}/line/reports/records/*.json")
record = json.load(open(path))
assert record["outcome"] == "pass" and record["exit_code"] == 0, record["reason"]
assert record["plan"] == "factory" and len(record["tests"]) == 5, [t["name"] for t in record["tests"]]
assert record["limits"]["path"].startswith(work), record["limits"]
assert record["operator_requests"] >= 1
print(f"check-install: PASS ({len(record['tests'])} tests, limits {record['limits']['path']})")
PY
