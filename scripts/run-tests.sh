#!/usr/bin/env bash
# The README's test suite, in two phases (`make test`, `.ci/run`, `scripts/test-at-clock.sh`):
#   1. everything but the `serial` tests, on TEST_WORKERS pytest-xdist workers (default 4: most tests
#      wait on subprocesses, servers and the limiter's windows, so four workers keep two cores busy);
#      `--dist worksteal` lets an idle worker take queued tests from a busy one (a few tests take minutes);
#   2. the `serial` tests alone: they measure timing in real time (a cadence, arrival windows, runs
#      within their max runtime), which the first phase's load would distort.
# Extra arguments go to both phases (e.g. a path); a phase with nothing to run is not a failure.
set -uo pipefail
cd "$(dirname "$0")/.."
python=${TEST_PYTHON:-.venv/bin/python}
workers=${TEST_WORKERS:-4}
status=0
"$python" -m pytest -q -p no:cacheprovider --durations=25 -n "$workers" --dist worksteal -m "not serial" "$@"
rc=$?; [ "$rc" -eq 5 ] || [ "$rc" -eq 0 ] || status=$rc
"$python" -m pytest -q -p no:cacheprovider --durations=5 -m serial "$@"
rc=$?; [ "$rc" -eq 5 ] || [ "$rc" -eq 0 ] || status=$rc
exit "$status"
