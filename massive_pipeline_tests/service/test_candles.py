"""`GET /candles` against a live `massive-pipeline serve`: every format gives back exactly the stored
bars, paging reassembles the range, forming bars only on request, bad parameters named; and
`load_bars`, the one read the service makes, over a series with a long closed stretch."""

from __future__ import annotations

import io
import json

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from massive_pipeline.core.timeframes import Timeframe
from massive_pipeline.service.candles import load_bars
from massive_pipeline.store import CandleStore
from massive_pipeline.testing.query_log import query_log
from massive_pipeline_tests.service.conftest import FIRST_DAY, FORMING_H1, REVISED_FROM, Served

LEADING = ["ts", "open", "high", "low", "close", "volume"]


def normalized(frame: pd.DataFrame) -> pd.DataFrame:
    """A bars frame in the store's read types, whatever format it was parsed from."""
    out = pd.DataFrame(
        {
            "ts": pd.to_datetime(frame["ts"], utc=True).dt.as_unit("us"),
            **{c: frame[c].astype("float64") for c in ("open", "high", "low", "close", "volume", "vwap")},
            "trades": frame["trades"].astype("Int64"),
            "source": frame["source"].astype(object),
            "ingested_at": pd.to_datetime(frame["ingested_at"], utc=True).dt.as_unit("us"),
            "complete": frame["complete"]
            .map(lambda v: v if isinstance(v, bool) else str(v).lower() == "true")
            .astype(bool),
        }
    )
    return out.reset_index(drop=True)


def parse(fmt: str, body: bytes) -> pd.DataFrame:
    if fmt == "json":
        return pd.DataFrame(json.loads(body)["bars"])
    if fmt == "csv":
        # round_trip: the CSV holds each float's exact repr; pandas' default parser may miss the last digit
        return pd.read_csv(
            io.BytesIO(body), dtype={"source": str, "complete": str}, float_precision="round_trip"
        )
    if fmt == "parquet":
        return pq.read_table(io.BytesIO(body)).to_pandas()
    return pa.ipc.open_stream(body).read_all().to_pandas()


@pytest.mark.parametrize("fmt", ["json", "csv", "parquet", "arrow"])
@pytest.mark.parametrize("timeframe", ["M1", "H1"])
def test_each_format_round_trips_to_the_stored_bars(served: Served, client, fmt: str, timeframe: str):
    stored = served.stored("EURUSD", timeframe, include_forming=True)
    answer = client.get(
        "/candles",
        params={
            "symbol": "EURUSD",
            "timeframe": timeframe,
            "format": fmt,
            "include_forming": "true",
            "limit": 50_000,
        },
    )
    assert answer.status_code == 200, answer.text
    assert (
        answer.headers["content-type"].split(";")[0]
        == {
            "json": "application/json",
            "csv": "text/csv",
            "parquet": "application/vnd.apache.parquet",
            "arrow": "application/vnd.apache.arrow.stream",
        }[fmt]
    )
    frame = parse(fmt, answer.content)
    assert list(frame.columns[:6]) == LEADING
    assert len(frame) == len(stored) > 0 and "Link" not in answer.headers
    pd.testing.assert_frame_equal(normalized(frame), normalized(stored), check_exact=True)


def test_text_formats_write_iso_8601_utc(client):
    answer = client.get(
        "/candles", params={"symbol": "EURUSD", "timeframe": "M1", "limit": 2, "format": "csv"}
    )
    lines = answer.text.splitlines()
    assert lines[0].split(",")[:6] == LEADING
    assert lines[1].startswith("2026-10-05T00:00:00Z,") and lines[2].startswith("2026-10-05T00:01:00Z,")
    body = client.get("/candles", params={"symbol": "EURUSD", "timeframe": "M1", "limit": 1}).json()
    assert body["bars"][0]["ts"] == "2026-10-05T00:00:00Z" and body["bars"][0]["ingested_at"].endswith("Z")


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_paging_reassembles_the_whole_range(served: Served, client, fmt: str):
    stored = served.stored("EURUSD", "M1", include_forming=False)
    url, params, pages = "/candles", {"symbol": "EURUSD", "timeframe": "M1", "limit": 1000, "format": fmt}, []
    while url is not None:
        answer = client.get(url, params=params)
        assert answer.status_code == 200, answer.text
        frame = parse(fmt, answer.content)
        assert len(frame) <= 1000
        pages.append(frame)
        link = answer.headers.get("Link")
        if fmt == "json":
            assert (answer.json()["next"] is None) == (link is None)
        url, params = (None, None) if link is None else (link.split(">")[0].lstrip("<"), None)
    assert [len(p) for p in pages] == [1000, 1000, 1000, 1000, len(stored) - 4000]
    pd.testing.assert_frame_equal(
        normalized(pd.concat(pages, ignore_index=True)), normalized(stored), check_exact=True
    )


def test_forming_bars_only_when_asked(served: Served, client):
    base = {"symbol": "EURUSD", "timeframe": "H1", "limit": 1000}
    without = client.get("/candles", params=base).json()["bars"]
    with_forming = client.get("/candles", params={**base, "include_forming": "true"}).json()["bars"]
    assert len(with_forming) == len(without) + 1 == 3 * 24 + 1
    assert (
        with_forming[-1]["ts"] == FORMING_H1.strftime("%Y-%m-%dT%H:%M:%SZ")
        and with_forming[-1]["complete"] is False
    )
    assert all(bar["complete"] for bar in without)


@pytest.mark.parametrize(
    ("start", "end", "first", "count"),
    [
        ("2026-10-06", "2026-10-07", "2026-10-06T00:00:00Z", 1440),
        ("2026-10-06T10:00:00Z", "2026-10-06T10:05:00+00:00", "2026-10-06T10:00:00Z", 5),
        ("2026-10-06T12:00:00+02:00", "2026-10-06T10:30:00", "2026-10-06T10:00:00Z", 30),
    ],
)
def test_start_and_end_are_utc_days_or_timestamps_with_end_exclusive(client, start, end, first, count):
    body = client.get(
        "/candles", params={"symbol": "eurusd", "timeframe": "1min", "start": start, "end": end}
    ).json()
    assert body["count"] == len(body["bars"]) == count
    assert body["bars"][0]["ts"] == first and body["symbol"] == "EURUSD" and body["timeframe"] == "M1"


@pytest.mark.parametrize(
    ("query", "status", "parameter"),
    [
        ({"timeframe": "M1"}, 422, "symbol"),
        ({"symbol": "EURUSD"}, 422, "timeframe"),
        ({"symbol": "EURUSD", "timeframe": "M7"}, 422, "timeframe"),
        ({"symbol": "SPX500", "timeframe": "M1"}, 200, None),
        ({"symbol": "EURUSD", "timeframe": "M1", "start": "yesterday"}, 422, "start"),
        ({"symbol": "EURUSD", "timeframe": "M1", "end": "2026-13-01"}, 422, "end"),
        ({"symbol": "EURUSD", "timeframe": "M1", "start": "2026-10-06", "end": "2026-10-06"}, 422, "end"),
        ({"symbol": "EURUSD", "timeframe": "M1", "start": "3000-01-01"}, 422, "start"),
        ({"symbol": "EURUSD", "timeframe": "M1", "format": "xlsx"}, 422, "format"),
        ({"symbol": "EURUSD", "timeframe": "M1", "limit": "0"}, 422, "limit"),
        ({"symbol": "EURUSD", "timeframe": "M1", "limit": "50001"}, 422, "limit"),
        ({"symbol": "EURUSD", "timeframe": "M1", "limit": "many"}, 422, "limit"),
        ({"symbol": "EURUSD", "timeframe": "M1", "include_forming": "perhaps"}, 422, "include_forming"),
        ({"symbol": "EURUSD", "timeframe": "M1", "cursor": "not-a-cursor"}, 400, "cursor"),
        ({"symbol": "NOSUCH", "timeframe": "M1"}, 404, "symbol"),
    ],
)
def test_bad_parameters_get_a_4xx_naming_them(client, query, status, parameter):
    answer = client.get("/candles", params=query)
    assert answer.status_code == status, answer.text
    if parameter is not None:
        body = answer.json()
        assert body["parameter"] == parameter
        assert body["detail"].startswith(f"{parameter}:") or repr(query[parameter]) in body["detail"]
        assert "\n" not in body["detail"]


def test_a_cursor_belongs_to_its_series(client):
    first = client.get("/candles", params={"symbol": "EURUSD", "timeframe": "M1", "limit": 10})
    cursor = first.headers["X-Next-Cursor"]
    other = client.get("/candles", params={"symbol": "EURUSD", "timeframe": "H1", "cursor": cursor})
    assert (
        other.status_code == 400
        and other.json()["detail"] == "cursor: was issued for EURUSD M1, not EURUSD H1"
    )
    resumed = client.get(
        "/candles", params={"symbol": "EURUSD", "timeframe": "M1", "limit": 1, "cursor": cursor}
    )
    assert resumed.json()["bars"][0]["ts"] == "2026-10-05T00:10:00Z"


def test_the_revised_values_are_served(served: Served, client):
    """The second write changed five closes: the answer has the store's current values."""
    ts = REVISED_FROM.strftime("%Y-%m-%dT%H:%M:%SZ")
    bar = client.get(
        "/candles", params={"symbol": "EURUSD", "timeframe": "M1", "start": ts, "limit": 1}
    ).json()["bars"][0]
    stored = served.stored("EURUSD", "M1", start=REVISED_FROM, end=REVISED_FROM + pd.Timedelta(minutes=1))
    assert bar["close"] == stored["close"].iloc[0]


def test_load_bars_fills_a_page_across_a_long_closed_stretch(tmp_path):
    """Ten bars, a 30-day hole, ten bars: the windowed read still returns full pages in order."""
    store = CandleStore(f"sqlite:///{tmp_path}/sparse.sqlite")
    store.create_schema()
    times = [FIRST_DAY + pd.Timedelta(minutes=i) for i in range(10)]
    times += [FIRST_DAY + pd.Timedelta(days=30, minutes=i) for i in range(10)]
    bars = pd.DataFrame({"ts": times, "open": 1.0, "high": 1.0, "low": 1.0, "close": 1.0, "volume": 1.0})
    store.write_window("EURUSD", "M1", times[0], times[-1] + pd.Timedelta(minutes=1), bars)
    page = load_bars(store, "EURUSD", Timeframe.M1, None, None, 15)
    assert list(page.bars["ts"]) == times[:15] and page.more
    rest = load_bars(store, "EURUSD", Timeframe.M1, None, None, 15, page.last_ts)
    assert list(rest.bars["ts"]) == times[15:] and not rest.more
    bounded = load_bars(store, "EURUSD", Timeframe.M1, times[5], times[12], 100)
    assert list(bounded.bars["ts"]) == times[5:12] and not bounded.more
    empty = load_bars(store, "EURUSD", Timeframe.M1, None, None, 5, times[-1])
    assert empty.bars.empty and not empty.more and list(empty.bars.columns) == list(page.bars.columns)
    assert load_bars(store, "GBPUSD", Timeframe.M1, None, None, 5).bars.empty
    store.dispose()


@pytest.mark.postgres
def test_a_page_is_one_query_however_long_the_market_was_closed(postgres_url: str):
    store = CandleStore(postgres_url)
    store.create_schema()
    times = [FIRST_DAY + pd.Timedelta(minutes=i) for i in range(10)]
    times += [FIRST_DAY + pd.Timedelta(days=30, minutes=i) for i in range(10)]
    bars = pd.DataFrame({"ts": times, "open": 1.0, "high": 1.0, "low": 1.0, "close": 1.0, "volume": 1.0})
    store.write_window("EURUSD", "M1", times[0], times[-1] + pd.Timedelta(minutes=1), bars)
    with query_log() as log:
        page = load_bars(store, "EURUSD", Timeframe.M1, None, None, 12, times[3])
    assert list(page.bars["ts"]) == times[4:16] and page.more
    assert len(log.candle_queries()) == 1, log.candle_queries()
    store.dispose()
