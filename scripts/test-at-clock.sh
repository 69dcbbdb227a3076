#!/usr/bin/env bash
# Runs the test suite with the wall clock set to another instant, to prove that no test depends on
# the day or hour it runs (a Saturday, just after midnight UTC on a Monday, a weekday noon):
#   bash scripts/test-at-clock.sh "2026-12-05 10:00:00" [pytest arguments…]
# Every Python process of the run (pytest and all it starts) shifts its wall clock by one offset,
# target minus now, through scripts/shifted_clock/sitecustomize.py (time-machine); the monotonic
# clock stays real, and PostgreSQL and Redis keep the real clock, as servers on other hosts would.
set -euo pipefail
cd "$(dirname "$0")/.."
instant=${1:?usage: test-at-clock.sh "YYYY-MM-DD HH:MM:SS" [pytest args…]}
shift
make install >/dev/null
offset=$(( $(date -u -d "$instant" +%s) - $(date -u +%s) ))
echo "clock set to $instant UTC ($(date -u -d "$instant" '+%A')), offset ${offset} s"
export PYTHONPATH="$PWD/scripts/shifted_clock${PYTHONPATH:+:$PYTHONPATH}"
MASSIVE_TEST_CLOCK_OFFSET="$offset" MASSIVE_TEST_SHIFTED_CLOCK="$instant" TZ=UTC \
  exec bash scripts/run-tests.sh -p no:time_machine \
  -W "ignore:Module already imported so cannot be rewritten; time_machine:pytest.PytestAssertRewriteWarning" "$@"
