"""What the real Massive API does and the bundled server only does when switched on, and how the
client reports it: empty and short answers, revisions, DELAYED, empty pages that announce more,
rows with bad fields, and the real day/week bar stamps (across daylight-saving changes).

Every test runs the real client against the bundled HTTP server with a fixed server clock.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from massive_pipeline.massive import (
    FetchResult,
    MassiveAuthError,
    MassiveClient,
    MassiveNotEntitledError,
    MassivePaginationError,
    MassiveProvider,
)
from massive_pipeline.massive.stamps import normalize_stamps
from massive_pipeline.testing.devserver import DevServer, FaultConfigError

KEY = "real-api-key-42"
NOW = "2024-12-01T00:00:00Z"
TICKER = "X:BTCUSD"  # 24/7: every minute of the window has a bar
START = pd.Timestamp("2024-03-04T00:00:00Z")
END = pd.Timestamp("2024-03-04T04:00:00Z")
OHLCV = ["open", "high", "low", "close", "volume"]


class NoSleep:
    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture(scope="module")
def server() -> Iterator[DevServer]:
    with DevServer(api_keys={KEY}, now=NOW) as srv:
        yield srv


@pytest.fixture(scope="module")
def paged() -> Iterator[DevServer]:
    """Pages of 60 minutes, so the 4-hour window takes 4 pages."""
    with DevServer(api_keys={KEY}, now=NOW, page_size=60) as srv:
        yield srv


@pytest.fixture(autouse=True)
def _clean(server: DevServer, paged: DevServer) -> None:
    server.reset()
    paged.reset()


@pytest.fixture
def make_client() -> Iterator[Callable[..., MassiveClient]]:
    clients: list[MassiveClient] = []

    def make(srv: DevServer, **kwargs: Any) -> MassiveClient:
        client = MassiveClient(srv.url, KEY, sleep=NoSleep(), jitter=0.0, **kwargs)
        clients.append(client)
        return client

    yield make
    for c in clients:
        c.close()


def fetch(client: MassiveClient, ticker: str = TICKER, multiplier: int = 1, timespan: str = "minute",
          start: pd.Timestamp = START, end: pd.Timestamp = END) -> FetchResult:
    return client.get_aggregates(ticker, multiplier, timespan, start, end)


def ms(ts: pd.Timestamp | str) -> int:
    return pd.Timestamp(ts).value // 1_000_000


@pytest.fixture
def clean(server: DevServer, make_client: Callable[..., MassiveClient]) -> pd.DataFrame:
    bars = fetch(make_client(server)).bars
    assert len(bars) > 200  # a few crypto minutes before 06:00 UTC have no bar, as in the real data
    server.clear_requests()
    return bars


# -- 1. empty and short answers -------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["missing", "null", "list"])
def test_an_empty_answer_for_a_range_with_data_is_returned_empty_and_said(
    server: DevServer, make_client: Callable[..., MassiveClient], clean: pd.DataFrame, mode: str
) -> None:
    server.set_faults(empty_answer=mode)
    raw = httpx.get(f"{server.url}/v2/aggs/ticker/{TICKER}/range/1/minute/{ms(START)}/{ms(END) - 1}",
                    headers={"Authorization": f"Bearer {KEY}"}).json()
    assert raw["status"] == "OK" and raw["resultsCount"] == 0
    assert ("results" in raw) == (mode != "missing") and raw.get("results") == {"null": None, "list": []}.get(mode)

    result = fetch(make_client(server))
    assert result.bars.empty and list(result.bars.columns) == list(clean.columns)
    assert result.empty and result.bars_received == 0 and result.statuses == ("OK",)
    assert result.requests == 1 and result.stopped_early is None


def test_a_short_answer_holds_the_first_part_of_the_range(
    server: DevServer, make_client: Callable[..., MassiveClient], clean: pd.DataFrame
) -> None:
    server.set_faults(short_answer_fraction=0.5)
    result = fetch(make_client(server))
    half = len(clean) // 2
    assert not result.empty and result.bars_received == half
    pd.testing.assert_frame_equal(result.bars, clean.iloc[:half].reset_index(drop=True))


# -- 2. revisions ---------------------------------------------------------------------------------


def test_the_second_fetch_returns_changed_values_for_exactly_the_revised_bars(
    paged: DevServer, make_client: Callable[..., MassiveClient]
) -> None:
    client = make_client(paged)
    reference = fetch(client).bars
    revised_ts = [reference["ts"].iloc[i] for i in (5, 70, 200)]  # on pages 1, 2 and 4
    paged.set_faults(revised_bars=[ms(t) for t in revised_ts], revise_skip_fetches=1)

    first, second = fetch(client), fetch(client)
    assert first.pages == second.pages == 4
    pd.testing.assert_frame_equal(first.bars, reference)  # every page of the first fetch unrevised
    changed = (second.bars[OHLCV] != reference[OHLCV]).any(axis=1)
    assert second.bars.loc[changed, "ts"].tolist() == revised_ts
    assert (second.bars.loc[changed, OHLCV] != reference.loc[changed, OHLCV]).all().all()
    assert (second.bars.loc[changed, "high"] >= second.bars.loc[changed, ["open", "close"]].max(axis=1)).all()
    pd.testing.assert_frame_equal(second.bars[~changed], reference[~changed])


def test_revision_switches_are_validated() -> None:
    with DevServer() as srv:
        with pytest.raises(FaultConfigError, match="revised_bars"):
            srv.set_faults(revised_bars=["2024-03-04"])
        with pytest.raises(FaultConfigError, match="problem_fields"):
            srv.set_faults(problem_fields=[[0, "x", "null"]])
        with pytest.raises(FaultConfigError, match="empty_answer"):
            srv.set_faults(empty_answer="none")
        assert srv.faults.revised_bars == [] and srv.faults.empty_answer == ""


# -- 3. DELAYED -----------------------------------------------------------------------------------


def test_delayed_is_accepted_and_reported(
    server: DevServer, make_client: Callable[..., MassiveClient], clean: pd.DataFrame
) -> None:
    server.set_faults(delayed_status=True)
    result = fetch(make_client(server))
    assert result.statuses == ("DELAYED",) and result.provider_status == "DELAYED"
    pd.testing.assert_frame_equal(result.bars, clean)


# -- 4. empty pages that announce another page -----------------------------------------------------


def test_a_few_empty_pages_are_followed_to_the_data(
    paged: DevServer, make_client: Callable[..., MassiveClient], clean: pd.DataFrame
) -> None:
    paged.set_faults(empty_pages_next=2)
    result = fetch(make_client(paged))
    pd.testing.assert_frame_equal(result.bars, clean)
    assert result.empty_pages == 2 and result.pages == 6 and result.stopped_early is None


def test_endless_empty_pages_stop_with_a_warning(
    paged: DevServer, make_client: Callable[..., MassiveClient], caplog: pytest.LogCaptureFixture
) -> None:
    paged.set_faults(empty_pages_next=1000)
    with caplog.at_level(logging.WARNING, logger="massive_pipeline.massive.client"):
        result = fetch(make_client(paged, max_empty_pages=3))
    assert result.requests == 3 and paged.request_count() == 3
    assert result.bars.empty and result.empty_pages == 3
    assert "3 consecutive pages without results" in result.stopped_early
    assert [r.getMessage() for r in caplog.records if "may be incomplete" in r.getMessage()] == result.warnings
    assert KEY not in caplog.text


def test_pages_per_fetch_have_a_hard_cap(paged: DevServer, make_client: Callable[..., MassiveClient]) -> None:
    paged.set_faults(empty_pages_next=1000)
    with pytest.raises(MassivePaginationError, match="exceeded 5 pages") as err:
        fetch(make_client(paged, max_empty_pages=100, max_pages=5))
    assert paged.request_count() == 5 and KEY not in str(err.value)


# -- 5. rows with a null or non-numeric field ------------------------------------------------------


def test_bad_fields_are_flagged_and_a_row_without_t_is_counted(
    server: DevServer, make_client: Callable[..., MassiveClient], clean: pd.DataFrame
) -> None:
    t = [ms(clean["ts"].iloc[i]) for i in (10, 11, 12, 13, 14)]
    server.set_faults(problem_fields=[[t[0], "o", "null"], [t[1], "h", "text"], [t[2], "c", "missing"],
                                      [t[3], "t", "null"], [t[4], "v", "null"], [t[4], "l", "text"]])
    result = fetch(make_client(server))
    bars = result.bars.set_index("ts")
    expected = clean.drop(index=13).set_index("ts")
    assert list(bars.index) == list(expected.index)  # only the row without t is gone
    assert result.unplaceable == 1 and result.unplaceable_sample == ["page 1 results[13]: t is null"]
    assert result.bars_received == len(clean) and result.problem_rows == 4
    problems = bars["provider_problem"].dropna()
    assert problems.to_dict() == {
        clean["ts"].iloc[10]: "o is null",
        clean["ts"].iloc[11]: "h is 'abc' (not a number)",
        clean["ts"].iloc[12]: "c missing",
        clean["ts"].iloc[14]: "l is 'abc' (not a number); v is null",
    }
    nan = bars[OHLCV].isna()
    assert nan.sum().to_dict() == {"open": 1, "high": 1, "low": 1, "close": 1, "volume": 1}
    good = bars["provider_problem"].isna()
    pd.testing.assert_frame_equal(bars.loc[good, OHLCV], expected.loc[good, OHLCV])


# -- 7. day and week stamps ------------------------------------------------------------------------


def raw_stamps(srv: DevServer, ticker: str, span: str, start: str, end: str) -> list[pd.Timestamp]:
    body = httpx.get(f"{srv.url}/v2/aggs/ticker/{ticker}/range/1/{span}/{start}/{end}", params={"limit": 50000},
                     headers={"Authorization": f"Bearer {KEY}"}).json()
    return [pd.Timestamp(r["t"], unit="ms", tz="UTC") for r in body["results"]]


@pytest.mark.parametrize(("start", "end", "before", "after"), [
    ("2024-03-06", "2024-03-13", 5, 4),  # DST begins Sunday 2024-03-10
    ("2024-10-30", "2024-11-06", 4, 5),  # DST ends Sunday 2024-11-03
])
def test_index_and_crypto_days_are_stamped_at_eastern_midnight_and_stored_on_utc_days(
    server: DevServer, make_client: Callable[..., MassiveClient], start: str, end: str, before: int, after: int
) -> None:
    client = make_client(server)
    for ticker in ("I:SPX", "X:BTCUSD"):
        stamps = raw_stamps(server, ticker, "day", start, end)
        # the Sunday of the change still starts at the old offset (clocks change at 02:00)
        dst_day = pd.Timestamp(start, tz="UTC") + pd.Timedelta(days=5)
        assert {t.hour for t in stamps if t < dst_day} == {before}
        assert {t.hour for t in stamps if t >= dst_day} == {after}
        assert all(t.tz_convert("America/New_York").hour == 0 for t in stamps)

        result = fetch(client, ticker, 1, "day", pd.Timestamp(start, tz="UTC"),
                       pd.Timestamp(end, tz="UTC") + pd.Timedelta(days=1))
        assert result.bars["ts"].tolist() == [t.floor("D") for t in stamps]
        assert result.restamped == len(stamps) > 0


def test_a_crypto_day_bar_covers_the_eastern_day(server: DevServer, make_client: Callable[..., MassiveClient]) -> None:
    client = make_client(server)
    day = fetch(client, "X:BTCUSD", 1, "day", pd.Timestamp("2024-07-02T00:00Z"), pd.Timestamp("2024-07-03T00:00Z"))
    minutes = fetch(client, "X:BTCUSD", 1, "minute", pd.Timestamp("2024-07-02T04:00Z"),
                    pd.Timestamp("2024-07-03T04:00Z")).bars
    bar = day.bars.iloc[0]
    assert bar["ts"] == pd.Timestamp("2024-07-02T00:00Z")
    assert (bar["open"], bar["close"]) == (minutes["open"].iloc[0], minutes["close"].iloc[-1])
    assert bar["high"] == minutes["high"].max() and bar["low"] == minutes["low"].min()


def test_forex_days_are_utc_and_weeks_start_sunday(server: DevServer, make_client: Callable[..., MassiveClient]) -> None:
    days = raw_stamps(server, "C:EURUSD", "day", "2024-03-04", "2024-03-15")
    assert days and all(t == t.floor("D") for t in days)
    weeks = raw_stamps(server, "C:EURUSD", "week", "2024-03-04", "2024-03-24")
    # Sundays; the last holds Sunday 2024-03-24's evening session
    assert [str(t) for t in weeks] == [f"2024-03-{d:02d} 00:00:00+00:00" for d in (3, 10, 17, 24)]
    spx_weeks = raw_stamps(server, "I:SPX", "week", "2024-03-04", "2024-03-24")
    local = [t.tz_convert("America/New_York") for t in spx_weeks]
    assert [(t.day, t.weekday(), t.hour) for t in local] == [(d, 6, 0) for d in (3, 10, 17, 24)]
    assert [t.hour for t in spx_weeks] == [5, 5, 4, 4]  # Sunday midnight Eastern, across the DST change

    client = make_client(server)
    for ticker in ("C:EURUSD", "I:SPX"):
        result = fetch(client, ticker, 1, "week", pd.Timestamp("2024-03-04T00:00Z"), pd.Timestamp("2024-03-25T00:00Z"))
        assert [str(t) for t in result.bars["ts"]] == [f"2024-03-{d:02d} 00:00:00+00:00" for d in (4, 11, 18)]
    fx_days = fetch(client, "C:EURUSD", 1, "day", pd.Timestamp("2024-03-04T00:00Z"), pd.Timestamp("2024-03-16T00:00Z"))
    assert fx_days.restamped == 0 and fx_days.bars["ts"].tolist() == days


def test_the_pipeline_grid_switch_serves_utc_days(server: DevServer) -> None:
    server.set_faults(bar_stamps="utc")
    assert all(t == t.floor("D") for t in raw_stamps(server, "I:SPX", "day", "2024-03-06", "2024-03-13"))
    weeks = raw_stamps(server, "I:SPX", "week", "2024-03-04", "2024-03-24")
    assert [t.weekday() for t in weeks] == [0, 0, 0] and all(t == t.floor("D") for t in weeks)


def test_normalize_stamps_puts_days_and_weeks_on_the_grid() -> None:
    ts = pd.to_datetime(["2024-03-09T05:00Z", "2024-03-10T05:00Z", "2024-03-11T04:00Z", "2024-03-11T00:00Z"])
    bars = pd.DataFrame({"ts": ts, "open": np.arange(4.0)})
    days, moved = normalize_stamps(bars, 1, "day")
    assert [str(t.date()) for t in days["ts"]] == ["2024-03-09", "2024-03-10", "2024-03-11", "2024-03-11"]
    assert moved.tolist() == [True, True, True, False] and (days["ts"] == days["ts"].dt.floor("D")).all()
    weeks, moved = normalize_stamps(bars, 1, "week")
    assert [str(t) for t in weeks["ts"]] == ["2024-03-04 00:00:00+00:00"] + ["2024-03-11 00:00:00+00:00"] * 3
    assert moved.tolist() == [True, True, True, False]
    same, moved = normalize_stamps(bars, 1, "hour")
    assert same is bars and not moved.any()


# -- 6. snapshots not on the plan (the schedule side is in test_operations_snapshots) --------------


def test_a_snapshot_endpoint_not_on_the_plan_fails_once_without_retry(
    server: DevServer, make_client: Callable[..., MassiveClient]
) -> None:
    server.set_faults(snapshots_not_entitled=True)
    client = make_client(server)
    with pytest.raises(MassiveNotEntitledError, match="403 You are not entitled.*not entitled: the plan") as err:
        client.get_snapshot("C:EURUSD")
    assert isinstance(err.value, MassiveAuthError) and err.value.status == 403
    assert server.request_count("snapshot") == 1 and KEY not in str(err.value)
    assert len(fetch(client).bars) > 200  # aggregates stay served


def test_not_authorized_in_a_200_is_the_same_plan_problem() -> None:
    body = {"status": "NOT_AUTHORIZED", "request_id": "x", "message": "You are not entitled to this data."}
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=body))
    with MassiveClient("https://api.example.test", KEY, transport=transport, sleep=NoSleep()) as client, \
            pytest.raises(MassiveNotEntitledError, match="NOT_AUTHORIZED You are not entitled"):
        client.get_snapshot("X:BTCUSD")


def test_the_provider_asks_each_market_once_and_names_the_endpoints(
    server: DevServer, make_client: Callable[..., MassiveClient]
) -> None:
    server.set_faults(snapshots_not_entitled=True)
    provider = MassiveProvider(make_client(server))
    with pytest.raises(MassiveNotEntitledError, match="not on this plan") as err:
        provider.snapshots(["C:EURUSD", "C:XAUUSD", "C:GBPUSD", "X:BTCUSD", "X:ETHUSD"])
    assert server.request_count("snapshot") == 3  # /v3/snapshot, one forex, one crypto
    assert "/v3/snapshot" in str(err.value) and "markets/forex" in str(err.value) and "markets/crypto" in str(err.value)
