"""`GET /status`: the report `massive-pipeline status` prints, from the same library function, as JSON."""

from __future__ import annotations

import pandas as pd
from dagster import DagsterInstance

from massive_pipeline.core.catalog import parse_catalog
from massive_pipeline.operations.status import current_status
from massive_pipeline.store import CandleStore
from massive_pipeline_tests.conftest import SMALL_CATALOG
from massive_pipeline_tests.service.conftest import Served

VOLATILE = ("age_seconds",)


def _stable(series: list[dict]) -> list[dict]:
    return [{k: v for k, v in s.items() if k not in VOLATILE} for s in series]


def test_status_is_the_library_report_as_json(served: Served, client):
    body = client.get("/status", params={"all_timeframes": "true"}).json()
    catalog = parse_catalog(SMALL_CATALOG)
    store = CandleStore(served.store_url)
    instance = DagsterInstance.from_config(str(served.dagster_home))
    try:
        report = current_status(catalog, store, instance, now=pd.Timestamp(body["at"]))
        expected = report.as_json()
        assert store.sync_status().empty  # a GET writes nothing back, unlike the command
    finally:
        store.dispose()
        instance.dispose()
    assert _stable(body["series"]) == _stable(expected["series"])
    assert len(body["series"]) == sum(len(s.timeframes) for s in catalog)
    assert body["limiter"]["limit"] == 5 and body["limiter_error"] is None
    assert body["limiter_line"].startswith("limiter: ") and body["store"].startswith(served.backend[:6])
    m1 = next(s for s in body["series"] if (s["symbol"], s["timeframe"]) == ("EURUSD", "M1"))
    assert m1["rows"] == len(served.stored("EURUSD", "M1")) and m1["queue"] == "critical: every 5 min"
    assert m1["open_gaps"] == 1  # one of the two seeded gaps is filled


def test_status_shows_each_symbols_base_timeframe_unless_asked(client):
    body = client.get("/status", params={"symbol": "EURUSD,SPX500"}).json()
    assert [(s["symbol"], s["timeframe"]) for s in body["series"]] == [("EURUSD", "M1"), ("SPX500", "M1")]
    assert client.get("/status", params={"symbol": "NOSUCH"}).status_code == 404
