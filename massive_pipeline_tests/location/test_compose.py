"""The composition is built once per CLI command: `massive_pipeline.location` builds nothing at
import, and the CLI never imports `massive_pipeline.definitions` (the module Dagster loads, which
builds the code location when imported)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd

from massive_pipeline.store import CandleStore
from massive_pipeline.testing.devserver import DevServer
from massive_pipeline_tests.processes import ROOT, pipeline_env

_COUNTED_BACKFILL = """
import json, sys
import massive_pipeline.location as location
builds = []
compose = location.build_definitions
def counted(*args, **kwargs):
    builds.append(1)
    return compose(*args, **kwargs)
location.build_definitions = counted
from massive_pipeline.cli import main
rc = main(sys.argv[1:])
print(json.dumps({"rc": rc, "builds": len(builds), "dagster_module": "massive_pipeline.definitions" in sys.modules}))
"""


def test_importing_the_composition_builds_nothing():
    out = subprocess.run(
        [sys.executable, "-c", "import sys, massive_pipeline.location; print('massive_pipeline.definitions' in sys.modules)"],
        capture_output=True, text=True, check=True, env=pipeline_env(PYTHONPATH=str(ROOT)), cwd=ROOT)
    assert out.stdout.strip() == "False"


def test_a_cli_backfill_composes_the_code_location_once(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    store_url = f"sqlite:///{tmp_path}/candles.sqlite"
    with DevServer(port=0, now=pd.Timestamp("2026-10-09", tz="UTC")) as server:
        env = pipeline_env(
            PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
            DAGSTER_HOME=str(home), MASSIVE_BASE_URL=server.url, MASSIVE_API_KEY="compose-test-key",
            MASSIVE_DATABASE_URL=store_url, MASSIVE_RATE_LIMIT_URL=f"sqlite:///{tmp_path}/limiter.sqlite",
            MASSIVE_RATE_LIMIT_PER_MINUTE="1000", MASSIVE_AUTOMATION="stopped")
        out = subprocess.run(
            [sys.executable, "-c", _COUNTED_BACKFILL, "backfill", "--symbols", "BTCUSD", "--timeframes", "D1",
             "--start", "2026-10-06", "--end", "2026-10-07"],
            capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    assert figures == {"rc": 0, "builds": 1, "dagster_module": False}, figures
    store = CandleStore(store_url)
    try:
        assert store.count("BTCUSD", "D1") == 2  # and the one composition did the work
    finally:
        store.dispose()
