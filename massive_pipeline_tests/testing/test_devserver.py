"""The bundled Massive-compatible server: shapes, prices, paging, auth, rate limit, faults, admin."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import httpx
import numpy as np
import pandas as pd
import pytest

from massive_pipeline.core.timeframes import Timeframe
from massive_pipeline.testing.devserver import DevServer, FaultConfig, FaultConfigError
from massive_pipeline.testing.devserver.instruments import resolve_instrument
from massive_pipeline.testing.devserver.prices import minute_bars

# A Wednesday, 30 s into a minute; the week before it is a full forex week after the US DST change.
NOW = pd.Timestamp("2024-03-20T12:00:30Z")
NOW_MS = NOW.value // 1_000_000
KEY = "test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}


def ms(ts: str) -> int:
    return pd.Timestamp(ts, tz="UTC").value // 1_000_000


@pytest.fixture(scope="module")
def server() -> Iterator[DevServer]:
    with DevServer(now=NOW) as srv:
        yield srv


@pytest.fixture
def srv(server: DevServer) -> Iterator[DevServer]:
    """The shared server with no faults, an empty log and the clock at NOW."""
    server.reset()
    server.now = NOW
    yield server
    server.reset()
    server.now = NOW


@pytest.fixture
def client(srv: DevServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=srv.url, headers=AUTH, timeout=30) as c:
        yield c


def aggs(client: httpx.Client, ticker: str, mult: int, span: str, start: str, end: str, **params) -> dict:
    r = client.get(f"/v2/aggs/ticker/{ticker}/range/{mult}/{span}/{start}/{end}", params=params)
    assert r.status_code == 200, r.text
    return r.json()


def walk(client: httpx.Client, first_url: str, params: dict | None = None, max_pages: int = 200) -> list[dict]:
    """Every page of a paginated answer, following next_url as-is (plus the key when it travels
    as `apiKey`, since next_url never carries it; httpx's `params=` would replace the cursor)."""
    auth = {"apiKey": params["apiKey"]} if params and "apiKey" in params else {}
    pages = [client.get(first_url, params=params).json()]
    while "next_url" in pages[-1]:
        assert len(pages) < max_pages, "next_url does not end"
        pages.append(client.get(httpx.URL(pages[-1]["next_url"]).copy_merge_params(auth)).json())
    return pages


def frame(results: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(results, columns=["t", "o", "h", "l", "c", "v", "vw", "n"])


# -- startup and shapes ----------------------------------------------------------------------------


def test_starts_on_port_zero_quickly_and_stops() -> None:
    began = time.perf_counter()
    srv = DevServer().start()
    try:
        assert time.perf_counter() - began < 0.5
        assert srv.port > 0 and srv.url == f"http://127.0.0.1:{srv.port}"
        assert httpx.get(f"{srv.url}/_dev/health").json()["status"] == "OK"
        with pytest.raises(RuntimeError, match="already running"):
            srv.start()
    finally:
        srv.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{srv.url}/_dev/health", timeout=2)


def test_aggregates_shape_and_bar_invariants(srv: DevServer, client: httpx.Client) -> None:
    body = aggs(client, "C:EURUSD", 1, "minute", "2024-03-12", "2024-03-12")
    assert set(body) == {"ticker", "queryCount", "resultsCount", "adjusted", "status", "request_id", "results"}
    assert body["ticker"] == "C:EURUSD" and body["status"] == "OK" and body["adjusted"] is True
    df = frame(body["results"])
    assert body["resultsCount"] == body["queryCount"] == len(df) > 1300
    assert set(body["results"][0]) == {"t", "o", "h", "l", "c", "v", "vw", "n"}
    assert (df.t % 60_000 == 0).all() and df.t.is_monotonic_increasing and df.t.is_unique
    assert df.t.min() >= ms("2024-03-12") and df.t.max() < ms("2024-03-13")
    assert (df.h >= df[["o", "c"]].max(axis=1)).all() and (df.l <= df[["o", "c"]].min(axis=1)).all()
    assert ((df.vw >= df.l) & (df.vw <= df.h)).all() and (df.v > 0).all() and (df.n > 0).all()
    assert 0.9 < df.c.mean() < 1.3  # EURUSD-like
    # Consecutive minutes: open = previous close.
    consecutive = df.t.diff() == 60_000
    assert (df.o[consecutive].to_numpy() == df.c.shift()[consecutive].to_numpy()).all()


@pytest.mark.parametrize(
    ("ticker", "low", "high"),
    [("C:USDJPY", 120, 190), ("C:XAUUSD", 1800, 3200), ("C:XAGUSD", 18, 45), ("X:BTCUSD", 25_000, 120_000),
     ("X:ETHUSD", 1000, 7000), ("I:SPX", 4000, 7500), ("I:NDX", 14_000, 26_000), ("I:DJI", 30_000, 52_000)],
)
def test_price_levels_per_instrument(ticker: str, low: float, high: float) -> None:
    bars = minute_bars(resolve_instrument(ticker), ms("2024-03-11"), ms("2024-03-16"))
    assert len(bars) > 0 and low < bars.c.min() and bars.c.max() < high


def test_generated_bars_are_consistent_for_every_asset_class() -> None:
    for ticker in ("C:EURUSD", "C:XAGUSD", "X:SOLUSD", "I:DAX", "X:NOTLISTED", "C:ABCDEF"):
        bars = minute_bars(resolve_instrument(ticker), ms("2024-01-01"), ms("2024-02-01"))
        assert len(bars) > 0, ticker
        assert (bars.h >= np.maximum(bars.o, bars.c)).all() and (bars.l <= np.minimum(bars.o, bars.c)).all()
        assert (bars.l > 0).all() and (bars.v > 0).all() and (np.diff(bars.t) > 0).all()


def test_a_year_of_minutes_is_generated_quickly() -> None:
    inst = resolve_instrument("X:BTCUSD")
    began = time.perf_counter()
    bars = minute_bars(inst, ms("2021-01-01"), ms("2022-01-01"), seed=12345)
    assert time.perf_counter() - began < 3.0
    assert len(bars) > 500_000


def test_same_minute_same_bar_whatever_the_range(srv: DevServer, client: httpx.Client) -> None:
    day = frame(aggs(client, "C:XAUUSD", 1, "minute", "2024-03-13", "2024-03-13")["results"])
    week = frame(aggs(client, "C:XAUUSD", 1, "minute", "2024-03-11", "2024-03-17", limit=50000)["results"])
    inside = week[(week.t >= ms("2024-03-13")) & (week.t < ms("2024-03-14"))].reset_index(drop=True)
    pd.testing.assert_frame_equal(day, inside)
    by_ms = frame(aggs(client, "C:XAUUSD", 1, "minute", str(ms("2024-03-13T10:00")), str(ms("2024-03-13T10:09")))
                  ["results"])
    assert by_ms.t.tolist() == day[(day.t >= ms("2024-03-13T10:00")) & (day.t <= ms("2024-03-13T10:09"))].t.tolist()
    assert len(by_ms) == 10  # both ends inclusive


def test_seed_and_revision_change_prices_but_not_timestamps() -> None:
    inst = resolve_instrument("C:EURUSD")
    base = minute_bars(inst, ms("2024-03-12"), ms("2024-03-13"))
    again = minute_bars(inst, ms("2024-03-12"), ms("2024-03-13"))
    revised = minute_bars(inst, ms("2024-03-12"), ms("2024-03-13"), revision=1)
    other_seed = minute_bars(inst, ms("2024-03-12"), ms("2024-03-13"), seed=7)
    assert np.array_equal(base.c, again.c)
    assert np.array_equal(base.t, revised.t) and not np.array_equal(base.c, revised.c)
    assert not np.array_equal(base.c, other_seed.c)


# -- pagination ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_pages() -> Iterator[tuple[DevServer, httpx.Client]]:
    with DevServer(now=NOW, page_size=1000) as srv, httpx.Client(base_url=srv.url, timeout=30) as c:
        yield srv, c


def test_pages_union_equals_one_big_request(client: httpx.Client, small_pages) -> None:
    srv, small = small_pages
    path = "/v2/aggs/ticker/C:EURUSD/range/1/minute/2024-03-11/2024-03-15"
    srv.clear_requests()
    pages = walk(small, path, {"apiKey": "secret-in-query", "limit": 50000})
    assert len(pages) > 5 and all(p["resultsCount"] <= 1000 for p in pages)
    for page in pages[:-1]:
        assert "secret-in-query" not in page["next_url"] and "cursor=" in page["next_url"]
        assert page["next_url"].startswith(srv.url + "/v2/aggs/ticker/C:EURUSD/range/1/minute/")
    union = frame([r for p in pages for r in p["results"]])
    assert union.t.is_unique
    whole = frame(aggs(client, "C:EURUSD", 1, "minute", "2024-03-11", "2024-03-15", limit=50000)["results"])
    pd.testing.assert_frame_equal(union, whole)
    records = srv.requests
    assert [r.page for r in records] == list(range(1, len(pages) + 1))
    assert all("secret" not in r.path for r in records)


@pytest.mark.parametrize(("mult", "span"), [(5, "minute"), (1, "hour"), (4, "hour"), (1, "day")])
def test_pages_never_split_an_aggregated_bar(client: httpx.Client, small_pages, mult: int, span: str) -> None:
    _, small = small_pages
    path = f"/v2/aggs/ticker/X:BTCUSD/range/{mult}/{span}/2024-03-11/2024-03-14"
    pages = walk(small, path, {"apiKey": KEY, "limit": 50000})
    assert all(p["queryCount"] <= 1000 or p["resultsCount"] == 1 for p in pages)
    union = frame([r for p in pages for r in p["results"]])
    whole = frame(aggs(client, "X:BTCUSD", mult, span, "2024-03-11", "2024-03-14", limit=50000)["results"])
    pd.testing.assert_frame_equal(union, whole)


def test_descending_pages_mirror_ascending(client: httpx.Client, small_pages) -> None:
    _, small = small_pages
    path = "/v2/aggs/ticker/C:EURUSD/range/1/hour/2024-03-11/2024-03-15"
    desc = walk(small, path, {"apiKey": KEY, "sort": "desc", "limit": 50000})
    assert len(desc) > 1
    rows = [r for p in desc for r in p["results"]]
    asc = aggs(client, "C:EURUSD", 1, "hour", "2024-03-11", "2024-03-15", limit=50000)["results"]
    assert rows == asc[::-1]


def test_limit_caps_minutes_scanned_per_request(srv: DevServer, client: httpx.Client) -> None:
    body = aggs(client, "C:EURUSD", 1, "minute", "2024-03-12", "2024-03-12", limit=100)
    assert body["resultsCount"] == 100 and "next_url" in body
    default = aggs(client, "C:EURUSD", 1, "minute", "2024-03-11", "2024-03-15")
    assert default["resultsCount"] == 5000
    hourly = aggs(client, "C:EURUSD", 1, "hour", "2024-03-11", "2024-03-15", limit=600)
    assert hourly["queryCount"] <= 600 and hourly["resultsCount"] == 10  # whole hours only


def test_day_and_week_requests_count_days_not_minutes(client: httpx.Client) -> None:
    # the provider keeps day aggregates: a D1 or W1 request's `limit` counts days, so a year of
    # forex days is one page at the default limit (it is 300,000 minutes)
    year = aggs(client, "C:EURUSD", 1, "day", "2023-03-01", "2024-02-29")
    assert "next_url" not in year and 250 < year["resultsCount"] == year["queryCount"] < 320
    weeks = aggs(client, "C:EURUSD", 1, "week", "2023-03-06", "2024-03-03")
    assert "next_url" not in weeks and weeks["resultsCount"] in (52, 53) and weeks["queryCount"] < 330
    # and it caps them: 20 days a page, whole weeks (5 or 6 forex days each) within the cap
    pages = walk(client, "/v2/aggs/ticker/C:EURUSD/range/1/day/2024-01-01/2024-02-29", {"limit": 20})
    assert [p["queryCount"] for p in pages[:-1]] == [20] * (len(pages) - 1) and pages[-1]["queryCount"] <= 20
    days = [r["t"] for p in pages for r in p["results"]]
    assert days == [r["t"] for r in aggs(client, "C:EURUSD", 1, "day", "2024-01-01", "2024-02-29")["results"]]
    week_pages = walk(client, "/v2/aggs/ticker/C:EURUSD/range/1/week/2024-01-01/2024-02-29", {"limit": 12})
    assert len(week_pages) >= 4 and all(p["queryCount"] <= 12 for p in week_pages)


# -- aggregation and calendars --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mult", "span", "tf"),
    [(5, "minute", Timeframe.M5), (1, "hour", Timeframe.H1), (4, "hour", Timeframe.H4),
     (1, "day", Timeframe.D1), (1, "week", Timeframe.W1)],
)
def test_aggregated_bars_equal_pandas_aggregation(srv: DevServer, client: httpx.Client, mult: int, span: str,
                                                  tf: Timeframe) -> None:
    srv.set_faults(bar_stamps="utc")  # the pipeline's grid; the real stamps are tested in test_real_api_behaviour
    minutes = frame(aggs(client, "C:EURUSD", 1, "minute", "2024-03-04", "2024-03-17", limit=50000)["results"])
    ts = pd.to_datetime(minutes.t, unit="ms", utc=True)
    minutes["bucket"] = pd.DatetimeIndex(tf.floor(pd.DatetimeIndex(ts))).as_unit("ms").asi8
    minutes["pv"] = minutes.vw * minutes.v
    grouped = minutes.groupby("bucket")
    expected = pd.DataFrame({
        "t": grouped.t.first().index, "o": grouped.o.first().values, "h": grouped.h.max().values,
        "l": grouped.l.min().values, "c": grouped.c.last().values, "v": grouped.v.sum().values,
        "vw": (grouped.pv.sum() / grouped.v.sum()).values, "n": grouped.n.sum().values,
    })
    got = frame(aggs(client, "C:EURUSD", mult, span, "2024-03-04", "2024-03-17", limit=50000)["results"])
    pd.testing.assert_frame_equal(got, expected, check_dtype=False, rtol=1e-9)


def test_forex_has_no_saturday_and_metals_keep_the_daily_break(client: httpx.Client) -> None:
    eur = frame(aggs(client, "C:EURUSD", 1, "minute", "2024-03-04", "2024-03-17", limit=50000)["results"])
    eur_ny = pd.to_datetime(eur.t, unit="ms", utc=True).dt.tz_convert("America/New_York")
    assert not (eur_ny.dt.dayofweek == 5).any()
    assert not ((eur_ny.dt.dayofweek == 4) & (eur_ny.dt.hour >= 17)).any()
    assert ((eur_ny.dt.dayofweek == 6) & (eur_ny.dt.hour >= 17)).any()  # the week opens Sunday 17:00 NY

    gold = frame(aggs(client, "C:XAUUSD", 1, "minute", "2024-03-04", "2024-03-17", limit=50000)["results"])
    gold_ny = pd.to_datetime(gold.t, unit="ms", utc=True).dt.tz_convert("America/New_York")
    in_break = (gold_ny.dt.dayofweek <= 3) & (gold_ny.dt.hour == 17)
    assert not in_break.any() and not (gold_ny.dt.dayofweek == 5).any()
    assert ((gold_ny.dt.dayofweek <= 3) & (gold_ny.dt.hour == 18)).any()

    btc = frame(aggs(client, "X:BTCUSD", 1, "minute", "2024-03-16", "2024-03-16")["results"])
    assert len(btc) > 1400  # crypto trades on Saturday

    spx = frame(aggs(client, "I:SPX", 1, "minute", "2024-03-11", "2024-03-17", limit=50000)["results"])
    spx_ny = pd.to_datetime(spx.t, unit="ms", utc=True).dt.tz_convert("America/New_York")
    minute_of_day = spx_ny.dt.hour * 60 + spx_ny.dt.minute
    assert len(spx) == 5 * 390 and minute_of_day.between(9 * 60 + 30, 16 * 60 - 1).all()


def test_thin_hours_miss_a_few_minutes_busy_hours_none(client: httpx.Client) -> None:
    eur = frame(aggs(client, "C:EURUSD", 1, "minute", "2024-03-11", "2024-03-14", limit=50000)["results"])
    hour = pd.to_datetime(eur.t, unit="ms", utc=True).dt.hour
    assert (hour.between(8, 15)).sum() == 4 * 8 * 60
    late = (hour >= 21).sum()
    assert 0.9 * 4 * 180 < late < 0.995 * 4 * 180


def test_no_bar_after_now(srv: DevServer, client: httpx.Client) -> None:
    body = aggs(client, "X:BTCUSD", 1, "minute", "2024-03-20", "2024-03-21")
    assert max(r["t"] for r in body["results"]) == ms("2024-03-20T11:59")  # the last complete minute
    hourly = aggs(client, "X:BTCUSD", 1, "hour", "2024-03-20", "2030-01-01")
    assert max(r["t"] for r in hourly["results"]) == ms("2024-03-20T11:00")
    srv.now = "2024-03-20T12:05:00Z"
    later = aggs(client, "X:BTCUSD", 1, "minute", "2024-03-20", "2024-03-21")
    assert max(r["t"] for r in later["results"]) == ms("2024-03-20T12:04")
    assert later["results"][: len(body["results"])] == body["results"]
    srv.now = None  # wall clock: never a bar from the future
    real = aggs(client, "X:BTCUSD", 1, "minute", str(int(time.time() * 1000) - 600_000), "2100-01-01")
    assert max(r["t"] for r in real["results"]) + 60_000 <= time.time() * 1000


# -- parameters, tickers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "params", "needle"),
    [
        ("/v2/aggs/ticker/C:EURUSD/range/1/minute/2024-03-11/2024-03-12", {"limit": 50001}, "limit"),
        ("/v2/aggs/ticker/C:EURUSD/range/1/month/2024-03-11/2024-03-12", {}, "timespan"),
        ("/v2/aggs/ticker/C:EURUSD/range/0/minute/2024-03-11/2024-03-12", {}, "multiplier"),
        ("/v2/aggs/ticker/C:EURUSD/range/1/minute/2024-13-11/2024-03-12", {}, "from"),
        ("/v2/aggs/ticker/C:EURUSD/range/1/minute/2024-03-11/yesterday", {}, "to"),
        ("/v2/aggs/ticker/C:EURUSD/range/1/minute/2024-03-11/2024-03-12", {"sort": "up"}, "sort"),
    ],
)
def test_bad_parameters_are_400_with_a_message(client: httpx.Client, path: str, params: dict, needle: str) -> None:
    r = client.get(path, params=params)
    assert r.status_code == 400
    body = r.json()
    assert body["status"] == "ERROR" and body["request_id"] and needle in body["error"]


def test_unknown_tickers(client: httpx.Client) -> None:
    malformed = aggs(client, "EURUSD", 1, "minute", "2024-03-12", "2024-03-12")
    assert malformed["resultsCount"] == 0 and "results" not in malformed and malformed["status"] == "OK"
    unlisted = aggs(client, "C:QQQZZZ", 1, "minute", "2024-03-12", "2024-03-12")
    assert unlisted["resultsCount"] > 0  # inferred as a forex pair from the prefix
    saturday = aggs(client, "C:QQQZZZ", 1, "minute", "2024-03-16", "2024-03-16")
    assert saturday["resultsCount"] == 0 and "results" not in saturday
    r = client.get("/v3/nothing/here")
    assert r.status_code == 404 and r.json()["status"] == "NOT_FOUND"


# -- snapshots -------------------------------------------------------------------------------------


def test_forex_and_crypto_snapshots_agree_with_the_minute_bars(client: httpx.Client) -> None:
    r = client.get("/v2/snapshot/locale/global/markets/forex/tickers/C:EURUSD")
    assert r.status_code == 200
    snap = r.json()["ticker"]
    last = aggs(client, "C:EURUSD", 1, "minute", "2024-03-20", "2024-03-20")["results"][-1]
    assert snap["ticker"] == "C:EURUSD" and snap["min"]["t"] == last["t"] and snap["min"]["c"] == last["c"]
    quote = snap["lastQuote"]
    assert quote["b"] < last["c"] < quote["a"] and quote["a"] - quote["b"] < 0.0005
    assert last["t"] <= quote["t"] <= NOW_MS
    day = aggs(client, "C:EURUSD", 1, "day", "2024-03-20", "2024-03-20")["results"][0]
    assert {k: snap["day"][k] for k in "ohlc"} == {k: day[k] for k in "ohlc"}
    prev = aggs(client, "C:EURUSD", 1, "day", "2024-03-19", "2024-03-19")["results"][0]
    assert snap["prevDay"]["c"] == prev["c"]
    assert snap["todaysChange"] == pytest.approx(last["c"] - prev["c"])

    crypto = client.get("/v2/snapshot/locale/global/markets/crypto/tickers/X:BTCUSD").json()["ticker"]
    btc_last = aggs(client, "X:BTCUSD", 1, "minute", "2024-03-20", "2024-03-20")["results"][-1]
    assert crypto["lastTrade"]["p"] == btc_last["c"] and crypto["lastTrade"]["s"] > 0
    assert "lastQuote" not in crypto
    assert client.get("/v2/snapshot/locale/global/markets/forex/tickers/X:BTCUSD").status_code == 404


def test_universal_snapshot_items_and_paging(client: httpx.Client) -> None:
    tickers = "C:EURUSD,X:BTCUSD,I:SPX,nonsense,C:XAUUSD"
    r = client.get("/v3/snapshot", params={"ticker.any_of": tickers, "limit": 2})
    pages = walk(client, "/v3/snapshot", {"ticker.any_of": tickers, "limit": 2})
    assert r.status_code == 200 and len(pages) == 3
    items = [i for p in pages for i in p["results"]]
    assert [i["ticker"] for i in items] == tickers.split(",")
    by = {i["ticker"]: i for i in items}
    assert by["nonsense"]["error"] == "NOT_FOUND"
    assert by["C:EURUSD"]["type"] == "fx" and by["C:XAUUSD"]["type"] == "fx"
    assert by["C:EURUSD"]["last_quote"]["bid"] < by["C:EURUSD"]["last_quote"]["ask"]
    assert by["X:BTCUSD"]["type"] == "crypto" and by["X:BTCUSD"]["last_trade"]["price"] > 0
    assert by["I:SPX"]["type"] == "indices" and by["I:SPX"]["market_status"] == "closed"  # NYSE opens 13:30 UTC
    assert by["X:BTCUSD"]["market_status"] == "open"
    assert by["I:SPX"]["value"] == by["I:SPX"]["session"]["close"]
    for item in (by["C:EURUSD"], by["X:BTCUSD"]):
        session = item["session"]
        assert session["low"] <= session["close"] <= session["high"] and session["volume"] > 0
    assert by["C:EURUSD"]["session"]["close"] == aggs(
        client, "C:EURUSD", 1, "minute", "2024-03-20", "2024-03-20")["results"][-1]["c"]
    too_many = ",".join(f"C:AAA{i:03d}" for i in range(251))
    assert client.get("/v3/snapshot", params={"ticker.any_of": too_many}).status_code == 400


# -- authentication --------------------------------------------------------------------------------


def test_authentication_errors() -> None:
    with DevServer(api_keys={"good"}, now=NOW) as srv:
        url = f"{srv.url}/v2/aggs/ticker/C:EURUSD/range/1/hour/2024-03-12/2024-03-12"
        missing = httpx.get(url)
        assert missing.status_code == 401
        assert missing.json()["error"] == "API Key was not provided" and missing.json()["status"] == "ERROR"
        assert missing.json()["request_id"]
        wrong = httpx.get(url, headers={"Authorization": "Bearer bad"})
        assert wrong.status_code == 401 and wrong.json()["error"] == "Unknown API Key"
        assert httpx.get(url, headers={"Authorization": "Bearer good"}).status_code == 200
        assert httpx.get(url, params={"apiKey": "good"}).status_code == 200
        assert [r.status for r in srv.requests] == [401, 401, 200, 200]
        assert all("good" not in r.path and "bad" not in r.path for r in srv.requests)
    with pytest.raises(TypeError, match="api_keys"):
        DevServer(api_keys="good")
    with pytest.raises(ValueError, match="page_size"):
        DevServer(page_size=50001)
    with DevServer(api_keys=(k for k in ["gen"]), now=NOW) as from_generator:
        assert from_generator.api_keys == {"gen"}
    with DevServer(now=NOW) as anykey:
        base = f"{anykey.url}/v2/aggs/ticker/C:EURUSD/range/1/hour/2024-03-12/2024-03-12"
        assert httpx.get(base, headers={"Authorization": "Bearer whatever"}).status_code == 200
        assert httpx.get(base).status_code == 401


def test_not_entitled_is_403(srv: DevServer, client: httpx.Client) -> None:
    srv.set_faults(not_entitled=True)
    r = client.get("/v2/aggs/ticker/C:EURUSD/range/1/hour/2024-03-12/2024-03-12")
    assert r.status_code == 403
    body = r.json()
    assert body["status"] == "NOT_AUTHORIZED" and body["message"].startswith("You are not entitled to this data.")
    assert client.get("/v3/snapshot", params={"ticker.any_of": "C:EURUSD"}).status_code == 403


# -- rate limit ------------------------------------------------------------------------------------


def _hit(client: httpx.Client) -> httpx.Response:
    return client.get("/v2/aggs/ticker/C:EURUSD/range/1/hour/2024-03-12/2024-03-12")


def test_rate_limit_answers_429_past_the_limit() -> None:
    with DevServer(rate_limit=3, rate_window_seconds=60, now=NOW) as srv, \
            httpx.Client(base_url=srv.url, headers=AUTH, timeout=30) as c:
        statuses = [_hit(c) for _ in range(5)]
        assert [r.status_code for r in statuses] == [200, 200, 200, 429, 429]
        rejected = statuses[3]
        assert rejected.json()["error"].startswith("You've exceeded the maximum requests per minute")
        assert rejected.json()["status"] == "ERROR" and rejected.json()["request_id"]
        assert 1 <= int(rejected.headers["Retry-After"]) <= 60
        assert srv.max_requests_in_window(60) == 3 and srv.rejected_429_count() == 2
        srv.set_faults(send_retry_after=False)
        assert "Retry-After" not in _hit(c).headers
        assert httpx.get(f"{srv.url}/_dev/health").status_code == 200  # admin is never limited
        assert srv.request_count("aggs") == 6


def test_rate_limit_is_exact_under_concurrency() -> None:
    with DevServer(rate_limit=5, rate_window_seconds=60, now=NOW) as srv, ThreadPoolExecutor(16) as pool, \
            httpx.Client(base_url=srv.url, headers=AUTH, timeout=30) as c:
        codes = [r.status_code for r in pool.map(lambda _: _hit(c), range(40))]
        assert codes.count(200) == 5 and codes.count(429) == 35
        assert srv.max_requests_in_window(60) == 5 and srv.rejected_429_count() == 35


def test_rate_window_slides() -> None:
    window = 0.4
    with DevServer(rate_limit=2, rate_window_seconds=window, now=NOW) as srv, \
            httpx.Client(base_url=srv.url, headers=AUTH, timeout=30) as c:
        assert [_hit(c).status_code for _ in range(3)] == [200, 200, 429]
        first_admitted = srv.requests[0].time
        pause = threading.Event()
        deadline = time.monotonic() + 5
        while _hit(c).status_code == 429:
            assert time.monotonic() < deadline, "the window never slid"
            pause.wait(0.02)
        admitted = [r.time for r in srv.requests if r.status == 200]
        assert admitted[2] - first_admitted >= window - 1e-6
        assert srv.max_requests_in_window(window) == 2
        assert srv.max_requests_in_window(10) == 3  # a longer window sees more


def test_max_requests_in_window_from_the_log() -> None:
    with DevServer(now=NOW) as srv, httpx.Client(base_url=srv.url, headers=AUTH) as c:
        for _ in range(4):
            _hit(c)
        assert srv.max_requests_in_window(60) == 4
        srv.clear_requests()
        assert srv.max_requests_in_window(60) == 0 and srv.request_count() == 0


# -- faults ----------------------------------------------------------------------------------------

HOUR_PATH = "/v2/aggs/ticker/C:EURUSD/range/1/hour/2024-03-12/2024-03-12"


def test_server_errors_rotate_then_recover(srv: DevServer, client: httpx.Client) -> None:
    srv.set_faults(server_errors_next=4)
    responses = [client.get(HOUR_PATH) for _ in range(5)]
    assert [r.status_code for r in responses] == [500, 502, 503, 500, 200]
    assert all(r.json()["status"] == "ERROR" for r in responses[:4])
    assert srv.faults.server_errors_next == 0


def test_html_504(srv: DevServer, client: httpx.Client) -> None:
    srv.set_faults(html_504_next=1)
    r = client.get(HOUR_PATH)
    assert r.status_code == 504 and r.headers["content-type"].startswith("text/html") and "<html>" in r.text
    assert client.get(HOUR_PATH).status_code == 200


def test_throttle_storm_with_and_without_retry_after(srv: DevServer, client: httpx.Client) -> None:
    srv.set_faults(throttle_429_next=2, retry_after_seconds=2.5)
    storm = [client.get(HOUR_PATH) for _ in range(2)]
    assert all(r.status_code == 429 and r.headers["Retry-After"] == "3" for r in storm)
    assert client.get(HOUR_PATH).status_code == 200
    srv.set_faults(throttle_429_next=1, send_retry_after=False)
    r = client.get(HOUR_PATH)
    assert r.status_code == 429 and "Retry-After" not in r.headers
    assert srv.rejected_429_count() == 3 and srv.max_requests_in_window(60) == 1


def test_malformed_and_unexpected_bodies(srv: DevServer, client: httpx.Client) -> None:
    srv.set_faults(malformed_json_next=1, unexpected_shape_next=1)
    truncated = client.get(HOUR_PATH)
    assert truncated.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(truncated.text)
    odd = client.get(HOUR_PATH)
    assert odd.status_code == 200 and odd.json() == {"foo": 1}
    assert "results" in client.get(HOUR_PATH).json()


def test_bad_rows_and_spikes(srv: DevServer, client: httpx.Client) -> None:
    clean = frame(aggs(client, "C:EURUSD", 1, "minute", "2024-03-12", "2024-03-12")["results"])
    bad_t, spike_t = int(clean.t[100]), int(clean.t[200])
    srv.set_faults(bad_rows=[bad_t], spikes=[spike_t])
    dirty = frame(aggs(client, "C:EURUSD", 1, "minute", "2024-03-12", "2024-03-12")["results"])
    broken = dirty.h < dirty.l
    assert dirty.t[broken].tolist() == [bad_t]
    row = dirty.set_index("t").loc[spike_t]
    assert row.c == pytest.approx(clean.set_index("t").loc[spike_t].c * 1.2, rel=1e-4)
    assert row.h >= max(row.o, row.c) and row.l <= min(row.o, row.c)
    unchanged = ~dirty.t.isin([bad_t, spike_t])
    pd.testing.assert_frame_equal(dirty[unchanged], clean[unchanged])

    srv.set_faults(bad_rows=[], spikes=[], bad_rows_fraction=0.1)
    first = frame(aggs(client, "C:EURUSD", 1, "minute", "2024-03-12", "2024-03-12")["results"])
    second = frame(aggs(client, "C:EURUSD", 1, "minute", "2024-03-12", "2024-03-12")["results"])
    share = (first.h < first.l).mean()
    assert 0.06 < share < 0.14
    pd.testing.assert_frame_equal(first, second)


def test_holes_are_never_served(srv: DevServer, client: httpx.Client) -> None:
    hole = (ms("2024-03-12T10:00"), ms("2024-03-12T11:30"))
    clean = frame(aggs(client, "C:EURUSD", 1, "minute", "2024-03-12", "2024-03-12")["results"])
    srv.set_faults(holes=[hole])
    holed = frame(aggs(client, "C:EURUSD", 1, "minute", "2024-03-12", "2024-03-12")["results"])
    outside = (clean.t < hole[0]) | (clean.t >= hole[1])
    pd.testing.assert_frame_equal(holed, clean[outside].reset_index(drop=True))
    hourly = [r["t"] for r in aggs(client, "C:EURUSD", 1, "hour", "2024-03-12", "2024-03-12")["results"]]
    assert ms("2024-03-12T10:00") not in hourly and ms("2024-03-12T11:00") in hourly


def test_stuck_next_url(srv: DevServer, client: httpx.Client) -> None:
    srv.set_faults(stuck_next_url=True)
    path = "/v2/aggs/ticker/C:EURUSD/range/1/minute/2024-03-12/2024-03-12"
    first = client.get(path, params={"limit": 100}).json()
    second = client.get(first["next_url"]).json()
    third = client.get(second["next_url"]).json()
    assert first["results"] == second["results"] == third["results"]
    assert second["next_url"] == third["next_url"]
    single = client.get(HOUR_PATH).json()  # even a complete answer points back at itself
    assert "next_url" in single


def test_delay_makes_a_client_time_out(srv: DevServer) -> None:
    srv.set_faults(delay_seconds=0.5)
    with httpx.Client(base_url=srv.url, headers=AUTH, timeout=0.1) as impatient, pytest.raises(httpx.ReadTimeout):
        impatient.get(HOUR_PATH)
    with httpx.Client(base_url=srv.url, headers=AUTH, timeout=5) as patient:
        began = time.perf_counter()
        assert patient.get(HOUR_PATH).status_code == 200
        assert time.perf_counter() - began >= 0.5


def test_revision_changes_prices_deterministically(srv: DevServer, client: httpx.Client) -> None:
    base = aggs(client, "C:EURUSD", 1, "hour", "2024-03-12", "2024-03-12")["results"]
    srv.set_faults(revision=2)
    revised = aggs(client, "C:EURUSD", 1, "hour", "2024-03-12", "2024-03-12")["results"]
    assert [r["t"] for r in revised] == [r["t"] for r in base] and revised != base
    assert aggs(client, "C:EURUSD", 1, "hour", "2024-03-12", "2024-03-12")["results"] == revised


def test_fault_validation_names_the_field(srv: DevServer) -> None:
    with pytest.raises(FaultConfigError, match="server_errorz"):
        srv.set_faults(server_errorz=1)
    with pytest.raises(FaultConfigError, match="delay_seconds"):
        srv.set_faults(delay_seconds=-1)
    with pytest.raises(FaultConfigError, match="holes"):
        srv.set_faults(html_504_next=1, holes=[(5, 1)])
    assert srv.faults == FaultConfig()  # a rejected change changes nothing


# -- admin endpoints and concurrency -----------------------------------------------------------------


def test_admin_endpoints_drive_a_server_over_http() -> None:
    with DevServer(api_keys={"k"}, rate_limit=100) as srv, httpx.Client(base_url=srv.url) as admin:
        health = admin.get("/_dev/health").json()
        assert health["status"] == "OK" and health["now"] is None
        assert admin.post("/_dev/now", json={"now": "2024-03-20T12:00:30Z"}).json()["now"].startswith("2024-03-20")
        assert srv.now == NOW
        assert admin.post("/_dev/faults", json={"server_errors_next": 1, "holes": [[1, 2]]}).status_code == 200
        assert srv.faults.server_errors_next == 1 and srv.faults.holes == [(1, 2)]
        bad = admin.post("/_dev/faults", json={"nope": 1})
        assert bad.status_code == 400 and "nope" in bad.json()["error"]
        api = {"Authorization": "Bearer k"}
        assert admin.get(HOUR_PATH, headers=api).status_code == 500
        assert admin.get(HOUR_PATH, headers=api).status_code == 200
        records = admin.get("/_dev/requests").json()
        assert [(r["kind"], r["status"], r["page"]) for r in records] == [("aggs", 500, 1), ("aggs", 200, 1)]
        assert records[0]["path"] == HOUR_PATH and records[0]["method"] == "GET"
        stats = admin.get("/_dev/stats", params={"window": 60}).json()
        assert stats == {"requests": 2, "rejected_429": 0, "window_seconds": 60.0, "max_in_window": 2}
        assert admin.get("/_dev/faults").json()["server_errors_next"] == 0
        assert admin.post("/_dev/reset").status_code == 200
        assert admin.get("/_dev/requests").json() == [] and srv.faults.holes == []
        assert srv.request_count(None) == 0  # admin calls are not API requests


def test_concurrent_clients_get_identical_answers(server: DevServer) -> None:
    server.reset()
    url = f"{server.url}/v2/aggs/ticker/X:ETHUSD/range/15/minute/2024-03-11/2024-03-14"

    def fetch(_: int) -> list[dict]:
        return httpx.get(url, headers=AUTH, params={"limit": 50000}, timeout=30).json()["results"]

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(fetch, range(16)))
    assert all(a == answers[0] for a in answers) and len(answers[0]) == 4 * 96
    assert server.request_count("aggs") == 16
    assert all(urlsplit(url).path == r.path for r in server.requests)


def test_catalog_calendar_decides_index_hours(client: httpx.Client) -> None:
    dax = frame(aggs(client, "I:DAX", 1, "minute", "2024-03-11", "2024-03-17", limit=50000)["results"])
    berlin = pd.to_datetime(dax.t, unit="ms", utc=True).dt.tz_convert("Europe/Berlin")
    minute_of_day = berlin.dt.hour * 60 + berlin.dt.minute
    assert len(dax) == 5 * 510 and minute_of_day.between(9 * 60, 17 * 60 + 29).all()


def test_serve_forever_in_the_foreground_until_stopped() -> None:
    srv = DevServer(now=NOW)
    urls: list[str] = []
    ready = threading.Event()
    thread = threading.Thread(target=srv.serve_forever, kwargs={"ready": lambda u: (urls.append(u), ready.set())})
    thread.start()
    try:
        assert ready.wait(5)
        assert httpx.get(f"{urls[0]}/_dev/health").json()["now"].startswith("2024-03-20")
    finally:
        srv.stop()
        thread.join(5)
    assert not thread.is_alive()


def test_cli_entry_point_prints_its_url_and_stops_on_ctrl_c() -> None:
    code = "from massive_pipeline.testing.devserver import serve_forever_cli; serve_forever_cli('127.0.0.1', 0, rate_limit=2)"
    # started with SIGINT ignored, as a parent can leave it (exec keeps an ignored signal): Ctrl-C must still stop it
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        first = proc.stdout.readline()
        url = re.search(r"http://127\.0\.0\.1:\d+", first)
        assert url, first + proc.stderr.read()
        with httpx.Client(base_url=url.group(0), headers=AUTH) as c:
            assert [_hit(c).status_code for _ in range(3)] == [200, 200, 429]
            assert c.get("/_dev/stats").json()["max_in_window"] == 2
        proc.send_signal(signal.SIGINT)
        # communicate, not wait: it drains both pipes, so a chatty server cannot block on a full one
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, out + err
        assert "Massive dev server stopped." in out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_custom_catalog_decides_calendars_of_its_tickers(monkeypatch, tmp_path, client: httpx.Client) -> None:
    path = tmp_path / "catalog.yaml"
    path.write_text(
        "symbols:\n"
        '  - {symbol: FOO, ticker: "I:FOOIDX", asset_class: index, priority: low, calendar: xetra, start: 2024-01-01}\n'
    )
    monkeypatch.setenv("MASSIVE_CATALOG", str(path))
    foo = frame(aggs(client, "I:FOOIDX", 1, "minute", "2024-03-12", "2024-03-12")["results"])
    hours = pd.to_datetime(foo.t, unit="ms", utc=True).dt.tz_convert("Europe/Berlin").dt.hour
    assert len(foo) == 510 and hours.min() == 9 and hours.max() == 17
    monkeypatch.delenv("MASSIVE_CATALOG")
    unlisted = frame(aggs(client, "I:FOOIDX", 1, "minute", "2024-03-12", "2024-03-12")["results"])
    assert len(unlisted) == 390  # back to the prefix rule: a US index
