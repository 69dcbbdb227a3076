"""What a user sees in the Dagster UI after `massive-pipeline demo`: the candle assets, their
lineage from the base timeframe (and on to the features group), the demo's materialized partitions and the check results.

Every assertion reads the page's DOM after waiting for it to render; the screenshots go to
test-artifacts/browser/ for a person to look at.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pandas as pd
import pytest
from dagster import AssetCheckKey, DagsterInstance
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from massive_pipeline.candles.assets import build_candle_assets
from massive_pipeline.candles.partitions import planned_ranges
from massive_pipeline.cli.demo import DEMO_DAYS
from massive_pipeline.core.catalog import load_catalog
from massive_pipeline.core.timeframes import Timeframe
from massive_pipeline.features.assets import FEATURE_TIMEFRAMES
from massive_pipeline.quality.checks import CHECKS
from massive_pipeline.store import CandleStore
from massive_pipeline_tests.browser.conftest import DEMO_END, UI

# in the serial phase (scripts/run-tests.sh): the demo behind them runs once, and the refreshes they
# watch must finish within their own `dagster/max_runtime`, which the parallel phase's load would exceed
pytestmark = [pytest.mark.slow, pytest.mark.serial]

T = TypeVar("T")
RENDER_TIMEOUT = 60
SYMBOL = "eurusd"
BASE = Timeframe.M1.key
DERIVED = {tf.key for tf in Timeframe} - {BASE}
DEMO_START = DEMO_END - dt.timedelta(days=DEMO_DAYS - 1)
CHECK_NAMES = sorted(c.name for c in CHECKS)  # every candle asset carries each of the quality checks

# Asset nodes of the lineage graph (SVG foreignObjects) with their boxes, and the lineage edges
# (SVG paths drawn with the lineage-edge colour and an arrow head) as start and end points.
_GRAPH_JS = """
const nodes = Array.from(document.querySelectorAll('foreignObject')).map(f => {
  const name = f.querySelector('[data-tooltip]');
  return {name: name ? name.getAttribute('data-tooltip') : null, text: f.textContent,
          x: +f.getAttribute('x'), y: +f.getAttribute('y'), w: +f.getAttribute('width'), h: +f.getAttribute('height')};
}).filter(n => n.name);
const edges = Array.from(document.querySelectorAll('svg path[marker-end]'))
  .filter(p => (p.getAttribute('stroke') || '').includes('lineage-edge'))
  .map(p => p.getAttribute('d'));
return {nodes: nodes, edges: edges};
"""


def _wait(driver: WebDriver, condition: Callable[[WebDriver], T | None], what: str) -> T:
    return WebDriverWait(driver, RENDER_TIMEOUT, poll_frequency=0.2).until(
        lambda d: condition(d), message=f"the page did not show {what} within {RENDER_TIMEOUT} s"
    )


def _body_text(driver: WebDriver) -> str:
    return driver.find_element(By.TAG_NAME, "body").text


def _text_with(*needles: str | tuple[str, ...]) -> Callable[[WebDriver], str | None]:
    """A wait condition: the page's text once it contains every one of `needles` (any of a tuple)."""

    def condition(driver: WebDriver) -> str | None:
        text = _body_text(driver)
        ok = all(any(n in text for n in (needle if isinstance(needle, tuple) else (needle,))) for needle in needles)
        return text if ok else None

    return condition


def _endpoints(path: str) -> tuple[tuple[float, float], tuple[float, float]]:
    numbers = [float(n) for n in re.findall(r"-?\d+(?:\.\d+)?", path)]
    return (numbers[0], numbers[1]), (numbers[-2], numbers[-1])


def _node_at(nodes: list[dict], x: float, y: float, side: str) -> str | None:
    """The node whose right (edge start) or left (edge end, before the arrow head) side is at x, y."""
    for node in nodes:
        edge_x = node["x"] + node["w"] if side == "right" else node["x"]
        if abs(edge_x - x) <= 12 and node["y"] <= y <= node["y"] + node["h"]:
            return node["name"]
    return None


def _graph(driver: WebDriver) -> dict | None:
    graph = driver.execute_script(_GRAPH_JS)
    names = {n["name"] for n in graph["nodes"]}
    loaded = all("filled" in n["text"] and "Loading" not in n["text"] for n in graph["nodes"])
    if names >= {BASE, *DERIVED} and len(graph["edges"]) >= len(DERIVED) and loaded:
        return graph
    return None


def _check_keys(ui: UI) -> dict[str, list[AssetCheckKey]]:
    """The asset checks the code location defines for each of the symbol's candle assets, by timeframe."""
    catalog = load_catalog(Path(ui.demo.env["MASSIVE_CATALOG"]))
    keys = {a.key.path[-1]: sorted(a.check_keys, key=lambda k: k.name)
            for a in build_candle_assets(catalog) if a.key.path[:2] == ["candles", SYMBOL]}
    for timeframe, checks in keys.items():
        assert [k.name for k in checks] == CHECK_NAMES, f"{timeframe}: {checks}"
    return keys


def _latest_check_statuses(ui: UI, keys: list[AssetCheckKey]) -> dict[str, str]:
    """What the demo's runs recorded for each check, read from the instance the UI serves."""
    with DagsterInstance.from_config(str(ui.demo.home)) as instance:
        latest = instance.event_log_storage.get_latest_asset_check_execution_by_key(keys)
    return {key.name: latest[key].status.value if key in latest else "never evaluated" for key in keys}


def test_global_lineage_lists_a_group_per_symbol(ui: UI, browser: WebDriver, artifacts: Path) -> None:
    browser.get(f"{ui.url}/asset-groups")
    groups = _text_with("btcusd", "eurusd", "xauusd")
    text = _wait(browser, lambda d: (t := groups(d)) and "fetching statuses" not in t and t,
                 "the three symbol groups with their statuses")
    assert "Global asset lineage" in text
    browser.save_screenshot(str(artifacts / "global-lineage.png"))


def test_asset_graph_shows_candle_assets_and_their_lineage(ui: UI, browser: WebDriver, artifacts: Path) -> None:
    browser.get(f"{ui.url}/locations/massive_pipeline/asset-groups/{SYMBOL}")
    graph = _wait(browser, _graph, f"the {SYMBOL} asset nodes and their lineage edges")
    browser.save_screenshot(str(artifacts / "asset-graph-eurusd.png"))
    nodes = graph["nodes"]
    assert {n["name"] for n in nodes} == {BASE, *DERIVED}
    edges, leaving = set(), set()
    for path in graph["edges"]:
        (x0, y0), (x1, y1) = _endpoints(path)
        source, target = _node_at(nodes, x0, y0, "right"), _node_at(nodes, x1, y1, "left")
        if target is None:  # an edge to an asset of another group, drawn as a link at the graph's edge
            leaving.add(source)
        else:
            edges.add((source, target))
    # from m1 to every derived timeframe, but W1, which is the week of the stored D1 (m1 -> d1 -> w1)
    spec = load_catalog(Path(ui.demo.env["MASSIVE_CATALOG"])).get(SYMBOL)
    expected = {(spec.derived_from(tf).key, tf.key) for tf in Timeframe if tf.key in DERIVED}
    assert (Timeframe.D1.key, Timeframe.W1.key) in expected and (BASE, Timeframe.H1.key) in expected
    assert edges == expected, "lineage must run from each derived timeframe's source"
    # the only lineage leaving the group: the candles the features group takes as inputs
    assert leaving == {tf.key for tf in FEATURE_TIMEFRAMES}, leaving
    for node in nodes:
        # every node was materialized by the demo and shows its partitions and its checks row
        assert "Partitions" in node["text"] and "filled" in node["text"], node["text"]
        assert "Asset checks" in node["text"], node["text"]
        assert "Latest event" in node["text"] and "Never" not in node["text"], node["text"]
    # every node shows its check results: the demo's bars pass every check of every timeframe
    _check_keys(ui)
    n = len(CHECK_NAMES)
    for node in nodes:
        assert f"Asset checks{n} / {n} Passed" in node["text"].replace("\u2009", " "), node["text"]


def test_check_results_are_shown(ui: UI, browser: WebDriver, artifacts: Path) -> None:
    keys = _check_keys(ui)[BASE]
    recorded = _latest_check_statuses(ui, keys)
    succeeded = AssetCheckExecutionRecordStatus.SUCCEEDED.value
    assert recorded and all(s == succeeded for s in recorded.values()), f"the demo's check results: {recorded}"
    browser.get(f"{ui.url}/assets/candles/{SYMBOL}/{BASE}?view=checks")
    text = _wait(browser, _text_with(f"Checks ({len(keys)})", *recorded), f"the {len(keys)} checks of {BASE}")
    lines = [line.strip() for line in text.splitlines()]
    for name in recorded:
        assert lines[lines.index(name) + 1] == "Succeeded", f"check {name} is not shown as succeeded"
    browser.find_element(By.XPATH, "//*[normalize-space(text())='schema']").click()
    text = _wait(browser, _text_with("Evaluation result", "Passed", "Partition"), "the schema check's latest result")
    assert "blocking" in text
    browser.save_screenshot(str(artifacts / "checks-eurusd-m1.png"))


def test_partitions_page_shows_the_demo_days_and_their_metadata(ui: UI, browser: WebDriver, artifacts: Path) -> None:
    browser.get(f"{ui.url}/assets/candles/{SYMBOL}/{BASE}?view=partitions")
    # a forex base also holds the days back to the evening that opens the demo's first New York
    # session and week (D1_NY, W1_NY): the range the demo's plan gives its base
    catalog = load_catalog(Path(ui.demo.env["MASSIVE_CATALOG"]))
    [base] = [r for r in planned_ranges([catalog.get(SYMBOL)], list(Timeframe), DEMO_START, DEMO_END)
              if r.timeframe is Timeframe.M1]
    base_first = dt.date.fromisoformat(base.first)
    days = (DEMO_END - base_first).days + 1
    text = _wait(browser, _text_with(f"Materialized ({days})"), f"Materialized ({days})")
    assert "Failed (0)" in text
    # The demo covered completed days only (DEMO_END), so the store holds the same bars whenever
    # the test runs. One ranged run wrote the whole window, and Dagster records the run's metadata
    # on each partition's materialization: the partition shown says what its run stored.
    first = pd.Timestamp(base_first, tz="UTC")
    after = pd.Timestamp(DEMO_END + dt.timedelta(days=1), tz="UTC")
    shown_day = pd.Timestamp(DEMO_END, tz="UTC")
    store = CandleStore(f"sqlite:///{ui.demo.home / 'candles.sqlite'}")
    try:
        in_run = store.count(SYMBOL.upper(), Timeframe.M1, first, after)
        on_day = store.count(SYMBOL.upper(), Timeframe.M1, shown_day, after)
        everything = store.count(SYMBOL.upper(), Timeframe.M1)
    finally:
        store.dispose()
    assert everything == in_run, "the demo stored bars outside its days"
    assert 0 < on_day < in_run, (on_day, in_run)  # the partition shown is one trading day of the run's seven
    # the list holds every day since the catalog's start and renders only those in view (newest
    # first), so go to the partition the way its link does rather than scrolling for it
    browser.get(f"{ui.url}/assets/candles/{SYMBOL}/{BASE}?view=partitions&partition={DEMO_END.isoformat()}")
    shown = (str(in_run), f"{in_run:,}")
    text = _wait(browser, _text_with("rows_written", shown, first.isoformat(), after.isoformat()),
                 f"rows_written = {in_run} and the run's window for partition {DEMO_END}")
    assert "api_requests" in text
    browser.save_screenshot(str(artifacts / "partitions-eurusd-m1.png"))
