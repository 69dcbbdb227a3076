"""A Dagster webserver on the demo's `$DAGSTER_HOME`, and headless Chromium to look at it.

The webserver loads the code location from `dagster code-server start` over gRPC, exactly as the
compose stack's `webserver` and `user_code` services do. The browser is Debian's `chromium`
driven by Debian's `chromedriver`; nothing is downloaded.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from massive_pipeline_tests.processes import (
    BIN,
    ROOT,
    Proc,
    free_port,
    http_ok,
    pipeline_env,
    start,
    wait_until,
)

# The demo runs over these completed days, not the last 7 up to today: on the wall clock today's
# partition is still forming and the page's counts would depend on the hour the test runs.
DEMO_END = dt.date(2026, 10, 7)  # a Wednesday; the 7 days hold a forex weekend
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ARTIFACTS = ROOT / "test-artifacts" / "browser"
DEMO_CATALOG = """\
symbols:
  - {symbol: XAUUSD, ticker: "C:XAUUSD", asset_class: metal, priority: critical, calendar: metals, start: 2025-06-01}
  - {symbol: EURUSD, ticker: "C:EURUSD", asset_class: forex, priority: critical, calendar: forex, start: 2025-06-01}
  - {symbol: BTCUSD, ticker: "X:BTCUSD", asset_class: crypto, priority: critical, calendar: crypto, start: 2025-06-01}
"""
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    # tall enough for a forex group's ten timeframes (D1_NY and W1_NY too) in one column of the
    # asset graph, so every node and every edge leaving the group is on screen
    "--window-size=1600,2800",
)


@dataclass(frozen=True)
class DemoHome:
    home: Path
    env: dict[str, str]
    demo_output: str


@dataclass(frozen=True)
class UI:
    url: str
    demo: DemoHome


@pytest.fixture(scope="package")
def demo_home(tmp_path_factory: pytest.TempPathFactory) -> DemoHome:
    """`massive-pipeline demo` run into a fresh `$DAGSTER_HOME`, as the README tells a user to."""
    root = tmp_path_factory.mktemp("ui")
    home = root / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")  # what `make demo` does
    catalog = root / "catalog.yaml"
    catalog.write_text(DEMO_CATALOG)
    env = pipeline_env(DAGSTER_HOME=str(home), MASSIVE_CATALOG=str(catalog))
    demo = start([str(BIN / "massive-pipeline"), "demo", "--end", DEMO_END.isoformat()],
                 env=env, log=root / "demo.log", name="demo")
    # a bound for a hung demo, not a wait for it: about 90 s alone, more beside the suite's other workers
    code = demo.wait(timeout=480)
    assert code == 0, f"massive-pipeline demo failed:\n{demo.output()}"
    # The community sign-up dialog shows once per instance; this one has "seen" it, as a user
    # who dismissed it would have.
    (home / ".nux").mkdir(exist_ok=True)
    (home / ".nux" / "nux.yaml").write_text(yaml.safe_dump({"seen": 1}))
    return DemoHome(home, env, demo.output(20000))


@pytest.fixture(scope="package")
def ui(demo_home: DemoHome, tmp_path_factory: pytest.TempPathFactory) -> Iterator[UI]:
    root = tmp_path_factory.mktemp("servers")
    grpc_port, web_port = free_port(), free_port()
    procs: list[Proc] = []
    try:
        code_server = start(
            [str(BIN / "dagster"), "code-server", "start", "-h", "127.0.0.1", "-p", str(grpc_port),
             "-m", "massive_pipeline.definitions", "--location-name", "massive_pipeline"],
            env=demo_home.env, log=root / "code-server.log", name="code server",
        )
        procs.append(code_server)

        def code_server_healthy() -> bool:
            assert code_server.alive(), f"code server exited:\n{code_server.output()}"
            check = start([str(BIN / "dagster"), "api", "grpc-health-check", "-p", str(grpc_port)],
                          env=demo_home.env, log=root / "health.log", name="health check")
            return check.wait(timeout=30) == 0

        wait_until(code_server_healthy, timeout=120, interval=0.5, what="code server health check",
                   on_timeout=code_server.output)
        workspace = root / "workspace.yaml"
        workspace.write_text(yaml.safe_dump({"load_from": [{"grpc_server": {
            "host": "127.0.0.1", "port": grpc_port, "location_name": "massive_pipeline"}}]}))
        web = start([str(BIN / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(web_port), "-w", str(workspace)],
                    env=demo_home.env, log=root / "webserver.log", name="webserver")
        procs.append(web)
        url = f"http://127.0.0.1:{web_port}"

        def web_ready() -> bool:
            assert web.alive(), f"webserver exited:\n{web.output()}"
            return http_ok(f"{url}/server_info")

        wait_until(web_ready, timeout=120, interval=0.25, what="webserver /server_info", on_timeout=web.output)
        yield UI(url, demo_home)
    finally:
        for proc in reversed(procs):
            proc.stop()


@pytest.fixture(scope="package")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webdriver.Chrome]:
    assert CHROMIUM.exists() and CHROMEDRIVER.exists(), (
        "Debian's chromium and chromium-driver are needed: bash scripts/ensure-services.sh installs them"
    )
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="package")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
