#!/usr/bin/env bash
# Headless Chromium for the test that opens `station stats --html` (Debian's chromium, installed when missing).
set -euo pipefail
if ! command -v chromium >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
chromium --version
