#!/usr/bin/env bash
# Runs the test suite with the machine's clock set to another instant, to prove that no test depends
# on the day or hour it runs (a Saturday, just after midnight UTC on a Monday, a weekday noon):
#   bash scripts/test-at-clock.sh "2026-12-05 10:00:00" [pytest arguments…]
# libfaketime (Debian's `faketime`) shifts the clock of every process of the run by one offset
# (target minus now, so processes started later agree with the first: `@instant` would restart each
# new process at the instant); the PostgreSQL and Redis servers keep the real clock.
set -euo pipefail
cd "$(dirname "$0")/.."
instant=${1:?usage: test-at-clock.sh "YYYY-MM-DD HH:MM:SS" [pytest args…]}
shift
if ! command -v faketime >/dev/null 2>&1; then
  as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq faketime >/dev/null
fi
make install >/dev/null
offset=$(( $(date -u -d "$instant" +%s) - $(date -u +%s) ))
echo "clock set to $instant UTC ($(date -u -d "$instant" '+%A')), offset ${offset} s"
spec="+${offset}s"; [ "$offset" -lt 0 ] && spec="${offset}s"
# FORCE_MONOTONIC_FIX: condition waits on the shifted monotonic clock (libfaketime's README)
MASSIVE_TEST_SHIFTED_CLOCK="$instant" TZ=UTC FAKETIME_FORCE_MONOTONIC_FIX=1 exec faketime -f "$spec" .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
