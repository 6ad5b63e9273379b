#!/usr/bin/env bash
# The Debian packages the tests use, installed when missing (one apt-get update):
#   postgresql             the records database's PostgreSQL tests (.ci/postgres.sh starts a throwaway cluster)
#   chromium               headless checks of `station stats --html` and the Allure report
#   libimage-exiftool-perl exiftool -validate on every DNG the station writes
set -euo pipefail
missing=()
ls -d /usr/lib/postgresql/*/bin >/dev/null 2>&1 || missing+=(postgresql)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v exiftool >/dev/null 2>&1 || missing+=(libimage-exiftool-perl)
if [ ${#missing[@]} -gt 0 ]; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    echo "installing: ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "exiftool $(exiftool -ver); $(chromium --version 2>/dev/null | head -1); $(ls -d /usr/lib/postgresql/*/bin | tail -1)"
