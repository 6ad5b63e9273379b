#!/usr/bin/env bash
# CI: exiftool 12.57 (Debian bookworm's libimage-exiftool-perl) for tests/unit/test_dng_exiftool.py,
# which checks every DNG the station writes with `exiftool -validate -warning`. Idempotent.
set -euo pipefail
if command -v exiftool >/dev/null 2>&1; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends libimage-exiftool-perl
exiftool -ver
