"""The first run as the README tells it: `make demo`, then `make ui` - and the UI shows things working.

`massive-pipeline ui` (what `make ui` runs) is started on a copy of the demo's `$DAGSTER_HOME`
(a fresh instance after a demo; the other browser tests keep the demo's own untouched), with a real
looking key exported that must neither be used nor printed. Within the test's deadline the Runs page
lists a successful priority refresh that fetched from the bundled server, no schedule or sensor
tick has errored, and Ctrl-C stops `dagster dev`, everything it started, and the bundled server.

The daemon ticks on the wall clock, so the assertions hold at any hour of any day: BTCUSD trades
24/7 and its last demo bar (DEMO_END) is always behind, so the immediate refresh always has
something to fetch, on a Saturday too.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from massive_pipeline.cli.ui import LOCATION_NAME, REPOSITORY_NAME, GraphQL
from massive_pipeline_tests.browser.conftest import DEMO_CATALOG, DemoHome
from massive_pipeline_tests.processes import Proc, cli, free_port, http_ok, pipeline_env, start, wait_until

# in the serial phase (scripts/run-tests.sh): the demo behind them runs once, and the refreshes they
# watch must finish within their own `dagster/max_runtime`, which the parallel phase's load would exceed
pytestmark = [pytest.mark.slow, pytest.mark.serial]

# One non-critical symbol, so that the secondary_queue sensor exists and requests a run too (crypto:
# always due); daily bars only, so its run is one step and the critical runs keep the two cores.
CATALOG = DEMO_CATALOG + (
    '  - {symbol: ETHUSD, ticker: "X:ETHUSD", asset_class: crypto, priority: high, calendar: crypto, start: 2025-06-01,\n'
    "     base_timeframe: D1}\n"
)
USER_KEY = "sk-live-must-never-reach-the-bundled-server-0123"
RUN_DEADLINE = 360  # the "within 6 minutes"; the refresh is started at once, so far less is needed
STOP_DEADLINE = 180
ALL = 1 << 40  # Proc.output keeps a tail; the whole log is wanted here

_RUNS = """
query ($purpose: String!) { runsOrError(filter: {tags: [{key: "massive/purpose", value: $purpose}]}) {
  ... on Runs { results { runId status jobName tags { key value } } } } }
"""
# `statuses` makes the webserver read the instance's ticks; without it a repository-wide query goes
# through a batch loader that can answer with no ticks at all (seen with Dagster 1.13.27)
_TICK_FIELDS = """status
  failed: ticks(statuses: [FAILURE], limit: 200) { error { message } }
  ticked: ticks(statuses: [SUCCESS, SKIPPED, FAILURE], limit: 1) { status }"""
_TICKS = f"""
query ($sel: RepositorySelector!) {{ repositoryOrError(repositorySelector: $sel) {{ ... on Repository {{
  schedules {{ name scheduleState {{ {_TICK_FIELDS} }} }}
  sensors {{ name sensorState {{ {_TICK_FIELDS} }} }} }} }} }}
"""


@dataclass
class FirstRun:
    proc: Proc
    url: str
    home: Path
    graphql: GraphQL


def _dagster_dev_pid(output: str) -> int:
    match = re.search(r"dagster dev started \(pid (\d+)\)", output)
    assert match, f"massive-pipeline ui did not say it started dagster dev:\n{output}"
    return int(match.group(1))


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture(scope="module")
def first_run(demo_home: DemoHome, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FirstRun]:
    root = tmp_path_factory.mktemp("first-run")
    home = root / "dagster_home"
    # a copy holds the demo's runs and candles; the rate limiter's state starts over, as a new
    # window would a minute after the demo
    shutil.copytree(demo_home.home, home, ignore=shutil.ignore_patterns("massive-ratelimit.sqlite*"))
    catalog = root / "catalog.yaml"
    catalog.write_text(CATALOG)
    port = free_port()
    env = pipeline_env(DAGSTER_HOME=str(home), MASSIVE_CATALOG=str(catalog), MASSIVE_API_KEY=USER_KEY)
    proc = start(cli("ui", "--port", str(port)), env=env, log=root / "ui.log", name="massive-pipeline ui")
    try:
        wait_until(lambda: (assert_alive(proc) and "UI ready at" in proc.output(ALL)), timeout=300,
                   interval=0.5, what="massive-pipeline ui to say the UI is ready", on_timeout=proc.output)
        url = f"http://127.0.0.1:{port}"
        yield FirstRun(proc, url, home, GraphQL(url))
    finally:
        proc.stop(timeout=STOP_DEADLINE)


def assert_alive(proc: Proc) -> bool:
    assert proc.alive(), f"{proc.name} exited:\n{proc.output()}"
    return True


def _succeeded(run: FirstRun, purpose: str, job_prefix: str) -> dict | None:
    """A successful run of `purpose` whose job starts with `job_prefix`, if there is one yet."""
    assert_alive(run.proc)
    runs = run.graphql(_RUNS, purpose=purpose)["runsOrError"]["results"]
    failed = [r for r in runs if r["status"] == "FAILURE"]
    assert not failed, f"{purpose} runs failed: {[r['runId'][:8] for r in failed]}"
    done = [r for r in runs if r["status"] == "SUCCESS" and r["jobName"].startswith(job_prefix)]
    return done[0] if done else None


def _daily_refresh_and_snapshots(run: FirstRun) -> dict | None:
    """The priority refresh of the daily job (the one that fetches M1), once it and a snapshot run succeeded."""
    daily = _succeeded(run, "priority_refresh", "candles_daily_")
    return daily if daily and _succeeded(run, "snapshots", "snapshots_job") else None


def test_make_ui_shows_a_successful_priority_refresh_and_no_errored_tick(
    first_run: FirstRun, browser: WebDriver, artifacts: Path
) -> None:
    output = first_run.proc.output(ALL)
    assert re.search(r"priority refresh started now: [1-9]\d* run\(s\)", output), output
    ran = wait_until(lambda: _daily_refresh_and_snapshots(first_run), timeout=RUN_DEADLINE, interval=1.0,
                     what="a successful priority refresh run and snapshot run", on_timeout=first_run.proc.output)
    tags = {t["key"]: t["value"] for t in ran["tags"]}
    assert tags["massive/launched_by"] == "ui" and tags["massive/symbol"] in {"XAUUSD", "EURUSD", "BTCUSD"}

    # the Runs page, filtered by the tag the README tells users to filter by, lists it as succeeded
    browser.get(f"{first_run.url}/runs?q%5B0%5D=tag%3Amassive%2Fpurpose%3Dpriority_refresh")
    short = ran["runId"][:8]
    WebDriverWait(browser, 60, poll_frequency=0.25).until(
        lambda d: short in (text := d.find_element("tag name", "body").text) and "Success" in text,
        message=f"the Runs page did not list run {short} as a success",
    )
    browser.save_screenshot(str(artifacts / "first-run-priority-refresh.png"))

    repository = first_run.graphql(_TICKS, sel={"repositoryName": REPOSITORY_NAME,
                                                "repositoryLocationName": LOCATION_NAME})["repositoryOrError"]
    states = {s["name"]: s["scheduleState"] for s in repository["schedules"]}
    states |= {s["name"]: s["sensorState"] for s in repository["sensors"]}
    needed = [n for n in states if n.startswith("priority_refresh_")] + ["secondary_queue"]
    assert {n: states[n]["status"] for n in needed} == dict.fromkeys(needed, "RUNNING")
    errored = {name: [t["error"]["message"].splitlines()[0] for t in state["failed"]] for name, state in states.items()}
    assert {k: v for k, v in errored.items() if v} == {}
    assert states["secondary_queue"]["ticked"], "the secondary queue sensor has not ticked"
    assert USER_KEY not in output


def test_ctrl_c_stops_dagster_dev_and_the_bundled_server(first_run: FirstRun) -> None:
    output = first_run.proc.output(ALL)
    dev_pid = _dagster_dev_pid(output)
    server = re.search(r"bundled Massive-compatible server at (http://\S+)", output)
    assert server and http_ok(f"{server.group(1)}/_dev/health") and _group_alive(dev_pid)
    os.killpg(first_run.proc.pid, signal.SIGINT)  # what Ctrl-C in the terminal sends to the foreground group
    code = first_run.proc.wait(timeout=STOP_DEADLINE)
    assert code == 0, first_run.proc.output()
    assert not _group_alive(dev_pid), "processes started by dagster dev are still running"
    assert not http_ok(f"{first_run.url}/server_info") and not http_ok(f"{server.group(1)}/_dev/health")
