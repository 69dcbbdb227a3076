"""`massive-pipeline ui` (what `make ui` runs): the Dagster UI wired to the bundled server.

After `make demo` a user wants to watch the unattended operation work, not read 40-line errors
about a key they do not have. This command starts the bundled Massive-compatible server in this
process and `dagster dev` as a child process whose environment points the code location at it
(`MASSIVE_BASE_URL`, a demo `MASSIVE_API_KEY` the server accepts, the demo's `DAGSTER_HOME`, the
schedules and sensors running), so the 5-minute priority refresh, the secondary queue and the
snapshots really run. Once the code location has loaded it asks the webserver for one round of the
priority refresh right away - the UI's own *Test schedule* → *Launch runs* (a dry run of each
`priority_refresh_*` schedule, then `launchRun` for its requests), so the runs are ordinary queued
runs with the schedule's tags - instead of leaving the user to wait for the next 5-minute mark.
Ctrl-C (or SIGTERM) stops `dagster dev` and what it started, then the server.

Against the real API use `dagster dev` with your own `MASSIVE_API_KEY` (README): the bundled server
is what this command is for, so it never passes a key of yours to it.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from massive_pipeline.cli.args import UsageError
from massive_pipeline.core.paths import dagster_home

DEMO_API_KEY = "demo-key"  # what the demo uses; the bundled server is told to accept only this key
LOCATION_NAME = "massive_pipeline"  # as in workspace.yaml, so the instance's schedule state is the same
REPOSITORY_NAME = "__repository__"  # the repository a `Definitions` object becomes
PRIORITY_PREFIX = "priority_refresh_"
LAUNCHED_BY_TAG = "massive/launched_by"
READY_TIMEOUT = 300.0  # seconds for the webserver to answer and the code location to load
STOP_TIMEOUT = 150.0  # `dagster dev` waits up to 60 s for each of its webserver and daemon

_LOCATIONS = """
query { workspaceOrError { __typename ... on Workspace { locationEntries {
  name loadStatus locationOrLoadError { __typename ... on PythonError { message } } } } } }
"""
_AUTOMATION = """
query ($sel: RepositorySelector!) { repositoryOrError(repositorySelector: $sel) {
  __typename ... on Error { message }
  ... on Repository { schedules { name pipelineName scheduleState { status } }
                      sensors { name sensorState { status } } } } }
"""
_DRY_RUN = """
mutation ($sel: ScheduleSelector!, $ts: Float) { scheduleDryRun(selectorData: $sel, timestamp: $ts) {
  __typename ... on Error { message }
  ... on DryRunInstigationTick { evaluationResult {
    skipReason error { message }
    runRequests { jobName runConfigYaml tags { key value } assetSelection { path } } } } } }
"""
_LAUNCH = """
mutation ($params: ExecutionParams!) { launchRun(executionParams: $params) {
  __typename ... on Error { message } ... on LaunchRunSuccess { run { runId } } } }
"""


# What the functions below need of the webserver: a GraphQL query with variables, answered with `data`.
Query = Callable[..., dict[str, Any]]


class UiError(RuntimeError):
    """`dagster dev` did not come up (exited, or its code location did not load in time)."""


def ui_environment(base: Mapping[str, str], *, server_url: str, home: Path, rate_limit: int) -> dict[str, str]:
    """`dagster dev`'s environment: the caller's, pointed at the bundled server.

    The key is the demo's, whatever the caller exported: a real key has no business with the
    bundled server. The pipeline's limiter allows what the server allows, so no run meets a 429.
    """
    env = dict(base)
    env.update({
        "DAGSTER_HOME": str(home),
        "MASSIVE_BASE_URL": server_url,
        "MASSIVE_API_KEY": DEMO_API_KEY,
        "MASSIVE_RATE_LIMIT_PER_MINUTE": str(rate_limit),
        "MASSIVE_AUTOMATION": "running",  # what the user opens this UI to watch
        "PYTHONUNBUFFERED": "1",
    })
    return env


def write_workspace(directory: Path) -> Path:
    """A workspace naming the code location as workspace.yaml does, from whatever directory."""
    path = directory / "workspace.yaml"
    path.write_text(yaml.safe_dump({"load_from": [{"python_module": {
        "module_name": "massive_pipeline.definitions", "location_name": LOCATION_NAME}}]}))
    return path


@dataclass
class GraphQL:
    """The webserver's GraphQL endpoint, the interface the UI itself uses."""

    url: str
    timeout: float = 60.0

    def __call__(self, query: str, **variables: Any) -> dict[str, Any]:
        response = httpx.post(f"{self.url}/graphql", json={"query": query, "variables": variables},
                              timeout=self.timeout)
        response.raise_for_status()
        body = response.json()
        if body.get("errors"):
            raise UiError(f"GraphQL error: {body['errors'][0].get('message')}")
        return body["data"]


def location_state(graphql: Query) -> tuple[bool, str | None]:
    """(loaded, load error) of the code location; not loaded and no error while it is loading."""
    data = graphql(_LOCATIONS)["workspaceOrError"]
    for entry in data.get("locationEntries", []):
        if entry["name"] != LOCATION_NAME:
            continue
        loaded = entry["loadStatus"] == "LOADED"
        error = entry.get("locationOrLoadError") or {}
        return loaded, error.get("message") if error.get("__typename") == "PythonError" else None
    return False, None


def wait_until_ready(url: str, alive: Callable[[], bool], timeout: float = READY_TIMEOUT) -> GraphQL:
    """Poll the webserver, then its code location, until loaded; fail if `dagster dev` exits."""
    graphql = GraphQL(url)
    deadline = time.monotonic() + timeout
    while True:
        if not alive():
            raise UiError("dagster dev exited before the UI was ready (its output is above)")
        try:
            loaded, error = location_state(graphql)
        except (httpx.HTTPError, UiError, ValueError):
            loaded, error = False, None  # the webserver is still starting
        if error is not None:
            raise UiError(f"the code location {LOCATION_NAME} did not load: {error.splitlines()[0]}")
        if loaded:
            return graphql
        if time.monotonic() > deadline:
            raise UiError(f"the UI at {url} was not ready within {timeout:.0f} s")
        time.sleep(0.5)


@dataclass
class Kickoff:
    """What the immediate priority refresh did: runs launched, and why a schedule asked for none."""

    run_ids: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _selector(**extra: str) -> dict[str, str]:
    return {"repositoryName": REPOSITORY_NAME, "repositoryLocationName": LOCATION_NAME, **extra}


def automation(graphql: Query) -> dict[str, Any]:
    data = graphql(_AUTOMATION, sel=_selector())["repositoryOrError"]
    if data["__typename"] != "Repository":
        raise UiError(f"repository not found: {data.get('message')}")
    return data


def stopped_automation(repository: Mapping[str, Any]) -> list[str]:
    """Schedules and sensors that will not tick (turned off in this instance, or MASSIVE_AUTOMATION)."""
    stopped = [s["name"] for s in repository["schedules"] if s["scheduleState"]["status"] != "RUNNING"]
    return stopped + [s["name"] for s in repository["sensors"] if s["sensorState"]["status"] != "RUNNING"]


def kick_off_priority_refresh(graphql: Query, repository: Mapping[str, Any], now: float) -> Kickoff:
    """One round of every `priority_refresh_*` schedule now, as the UI's *Test schedule* launches it.

    The runs carry the schedule's own tags (`massive/purpose=priority_refresh`, …) plus
    `massive/launched_by=ui`, so the schedule's next tick treats them as its own (a symbol whose run
    is still in progress is not requested twice). A schedule turned off in this instance is left off.
    """
    result = Kickoff()
    for schedule in sorted(repository["schedules"], key=lambda s: s["name"]):
        name = schedule["name"]
        if not name.startswith(PRIORITY_PREFIX) or schedule["scheduleState"]["status"] != "RUNNING":
            continue
        tick = graphql(_DRY_RUN, sel=_selector(scheduleName=name), ts=now)["scheduleDryRun"]
        evaluation = tick.get("evaluationResult") if tick["__typename"] == "DryRunInstigationTick" else None
        if evaluation is None:
            result.notes.append(f"{name}: {tick.get('message', tick['__typename'])}")
            continue
        if evaluation.get("error"):
            result.notes.append(f"{name}: error {evaluation['error']['message'].splitlines()[0]}")
            continue
        requests = evaluation.get("runRequests") or []
        if not requests:
            result.notes.append(f"{name}: {evaluation.get('skipReason') or 'nothing requested'}")
        for request in requests:
            tags = [t for t in request["tags"] if t["key"] != LAUNCHED_BY_TAG] + [{"key": LAUNCHED_BY_TAG, "value": "ui"}]
            params = {
                "selector": _selector(jobName=request.get("jobName") or schedule["pipelineName"])
                | ({"assetSelection": request["assetSelection"]} if request.get("assetSelection") else {}),
                "runConfigData": yaml.safe_load(request["runConfigYaml"]) or {},
                "executionMetadata": {"tags": tags},
            }
            launched = graphql(_LAUNCH, params=params)["launchRun"]
            if launched["__typename"] == "LaunchRunSuccess":
                result.run_ids.append(launched["run"]["runId"])
            else:
                result.notes.append(f"{name}: launch failed: {launched.get('message', launched['__typename'])}")
    return result


def _report_and_kick_off(graphql: Query, *, refresh_now: bool) -> None:
    """Say which schedules and sensors will not tick, and start the priority refresh now.

    Neither is needed for the UI to work, so a failure here is one line, and the UI stays up.
    """
    try:
        repository = automation(graphql)
        stopped = stopped_automation(repository)
        if stopped:
            print(f"turned off in this instance (start them under Automation): {', '.join(stopped)}", flush=True)
        if refresh_now:
            kick = kick_off_priority_refresh(graphql, repository, time.time())
            print(f"priority refresh started now: {len(kick.run_ids)} run(s) {' '.join(r[:8] for r in kick.run_ids)}",
                  flush=True)
            for note in kick.notes:
                print(f"  {note}", flush=True)
    except (httpx.HTTPError, UiError, ValueError) as exc:
        print(f"could not start the priority refresh now ({exc}); the schedules start it at the next 5-minute mark",
              flush=True)


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def stop_dagster_dev(child: subprocess.Popen[bytes], timeout: float = STOP_TIMEOUT) -> None:
    """SIGINT to `dagster dev` (its own shutdown of webserver and daemon), then its session's leftovers.

    `dagster dev` runs in a session of its own, so Ctrl-C reaches it once, from here, and this
    function can end whatever it started (a run still in progress) by that session's group id.
    """
    group = child.pid
    if child.poll() is None:
        child.send_signal(signal.SIGINT)
        # too slow, or a second Ctrl-C: no more waiting, the group is ended below
        with contextlib.suppress(subprocess.TimeoutExpired, KeyboardInterrupt):
            child.wait(timeout=timeout)
    for sig, grace in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(group, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            try:
                os.killpg(group, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)


def cmd_ui(args: argparse.Namespace) -> int:
    from massive_pipeline.testing.devserver import DevServer

    if args.rate_limit < 1:
        raise UsageError(f"--rate-limit must be at least 1, got {args.rate_limit}")
    home = dagster_home()
    url = f"http://{args.host}:{args.port}"
    with DevServer(port=args.devserver_port, rate_limit=args.rate_limit, rate_window_seconds=60.0,
                   api_keys={DEMO_API_KEY}) as server, tempfile.TemporaryDirectory(prefix="massive-ui-") as tmp:
        env = ui_environment(os.environ, server_url=server.url, home=home, rate_limit=args.rate_limit)
        workspace = write_workspace(Path(tmp))
        print(f"bundled Massive-compatible server at {server.url} ({args.rate_limit} requests/minute)", flush=True)
        print(f"DAGSTER_HOME={home}", flush=True)
        # Ctrl-C, SIGTERM and a closed terminal all mean "stop both". SIGINT gets Python's own
        # handler explicitly: a process started in the background inherits SIGINT ignored, and so
        # would `dagster dev`, which then could not be stopped by the SIGINT sent to it below.
        previous = {signal.SIGINT: signal.signal(signal.SIGINT, signal.default_int_handler)}
        previous.update({s: signal.signal(s, _raise_interrupt) for s in (signal.SIGTERM, signal.SIGHUP)})
        child: subprocess.Popen[bytes] | None = None
        try:
            child = subprocess.Popen(
                [sys.executable, "-m", "dagster", "dev", "-w", str(workspace), "-h", args.host, "-p", str(args.port)],
                env=env, start_new_session=True, stdin=subprocess.DEVNULL,
            )
            print(f"dagster dev started (pid {child.pid}); the UI will be at {url}", flush=True)
            running = child
            graphql = wait_until_ready(url, lambda: running.poll() is None)
            _report_and_kick_off(graphql, refresh_now=args.refresh_now)
            print(f"\nUI ready at {url} - Runs shows the priority refresh (every 5 min), Automation the "
                  "secondary_queue sensor and the schedules. Ctrl-C stops dagster dev and the server.", flush=True)
            return child.wait()
        except KeyboardInterrupt:
            print("\nstopping dagster dev and the bundled server ...", flush=True)
            return 0
        except UiError as exc:
            print(f"massive-pipeline: error: {exc}", file=sys.stderr, flush=True)
            return 1
        finally:
            if child is not None:
                stop_dagster_dev(child)
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def register(sub: argparse._SubParsersAction) -> None:
    ui = sub.add_parser(
        "ui", help="the Dagster UI (dagster dev) wired to the bundled server, schedules and sensors running; "
                   "what `make ui` runs after `make demo`",
    )
    ui.add_argument("--host", default="127.0.0.1", help="the webserver's host (default 127.0.0.1)")
    ui.add_argument("--port", type=int, default=3000, help="the webserver's port (default 3000)")
    ui.add_argument("--devserver-port", type=int, default=0, help="the bundled server's port (default: a free one)")
    ui.add_argument("--rate-limit", type=int, default=5,
                    help="requests per minute of the bundled server and the pipeline's limiter (default 5, the free plan)")
    ui.add_argument("--no-refresh-now", dest="refresh_now", action="store_false",
                    help="do not start a priority refresh at once; wait for the schedules' next 5-minute mark")
    ui.set_defaults(func=cmd_ui)
