"""`GET /symbols` and `/symbols/{symbol}`: the catalog entry and each series as the store holds it."""

from __future__ import annotations

import pytest

from massive_pipeline.core.catalog import parse_catalog
from massive_pipeline_tests.conftest import SMALL_CATALOG
from massive_pipeline_tests.service.conftest import Served


def _iso(ts) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_symbols_lists_the_catalog_with_each_series(served: Served, client):
    body = client.get("/symbols").json()
    catalog = parse_catalog(SMALL_CATALOG)
    assert [s["symbol"] for s in body["symbols"]] == [s.symbol for s in catalog]
    eurusd = next(s for s in body["symbols"] if s["symbol"] == "EURUSD")
    series = {s["timeframe"]: s for s in eurusd["series"]}
    # forex has the New York close convention by default: its D1_NY and W1_NY series follow the UTC ones
    assert list(series) == ["M1", "M5", "M15", "M30", "H1", "H4", "D1", "W1", "D1_NY", "W1_NY"]
    assert series["D1_NY"]["source"] == "derived" and series["D1_NY"]["rows"] == 0  # not seeded
    btcusd = next(s for s in body["symbols"] if s["symbol"] == "BTCUSD")
    assert [s["timeframe"] for s in btcusd["series"]] == ["M1", "M5", "M15", "M30", "H1", "H4", "D1", "W1"]
    for tf in ("M1", "H1"):
        stored = served.stored("EURUSD", tf)
        assert series[tf]["rows"] == len(stored)
        assert (series[tf]["first_bar"], series[tf]["last_bar"]) == (
            _iso(stored["ts"].iloc[0]),
            _iso(stored["ts"].iloc[-1]),
        )
        # the seeded bars end in October: far behind the market, whatever day the test runs
        assert series[tf]["freshness"]["label"] == "stale" and series[tf]["freshness"]["stale"] is True
    assert series["M5"] == {
        **series["M5"],
        "rows": 0,
        "first_bar": None,
        "last_bar": None,
        "source": "derived",
    }
    assert series["M5"]["freshness"]["label"] == "no data"
    assert series["M1"]["source"] == "base"
    spx = next(s for s in body["symbols"] if s["symbol"] == "SPX500")
    assert spx["fetch"] == ["D1"] and {s["timeframe"]: s["source"] for s in spx["series"]}["D1"] == "fetch"


def test_one_symbol_is_its_catalog_entry_and_series(client):
    body = client.get("/symbols/eurusd").json()
    assert {
        k: body[k]
        for k in ("symbol", "ticker", "asset_class", "priority", "calendar", "start", "base_timeframe")
    } == {
        "symbol": "EURUSD",
        "ticker": "C:EURUSD",
        "asset_class": "forex",
        "priority": "critical",
        "calendar": "forex",
        "start": "2025-06-01",
        "base_timeframe": "M1",
    }
    assert body["series"][0]["timeframe"] == "M1" and body["series"][0]["rows"] > 0


@pytest.mark.parametrize("name", ["NOSUCH", "EURUSX"])
def test_an_unknown_symbol_is_404_naming_it(client, name):
    answer = client.get(f"/symbols/{name}")
    assert answer.status_code == 404
    assert (
        answer.json()["detail"].startswith(f"unknown symbol {name!r}")
        and answer.json()["parameter"] == "symbol"
    )
