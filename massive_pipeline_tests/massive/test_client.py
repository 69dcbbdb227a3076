"""The Massive client against the bundled dev server (and a mock transport for shapes it never sends).

Retries never really wait: the client gets a recording `sleep`, and the tests assert the waits it
asked for (Retry-After honoured, throttle wait, exponential backoff).
"""

from __future__ import annotations

import logging
import random
import socket
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pandas as pd
import pytest

from massive_pipeline.core.timeframes import Timeframe
from massive_pipeline.massive import (
    BarProvider,
    ClientStats,
    FetchResult,
    MassiveAuthError,
    MassiveClient,
    MassiveConnectionError,
    MassiveError,
    MassiveNotFoundError,
    MassivePaginationError,
    MassiveProvider,
    MassiveRateLimitError,
    MassiveResponseError,
    MassiveServerError,
    MassiveTimeoutError,
    Snapshot,
)
from massive_pipeline.testing.devserver import DevServer

KEY = "test-key-123"
NOW = "2024-06-01T00:00:00Z"
TICKER = "X:BTCUSD"  # crypto trades 24/7, so every window has bars
START = pd.Timestamp("2024-03-04T00:00:00Z")
END = pd.Timestamp("2024-03-04T05:00:00Z")
AGGS_PATH = f"/v2/aggs/ticker/{TICKER}/range/1/minute/"


class RecordingSleep:
    """Stands in for time.sleep: remembers each requested wait and returns at once."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture(scope="module")
def server() -> Iterator[DevServer]:
    with DevServer(api_keys={KEY}, seed=0, now=NOW) as srv:
        yield srv


@pytest.fixture(autouse=True)
def _clean_server(server: DevServer) -> None:
    server.reset()


@pytest.fixture
def sleep() -> RecordingSleep:
    return RecordingSleep()


@pytest.fixture
def make_client(server: DevServer, sleep: RecordingSleep) -> Iterator[Callable[..., MassiveClient]]:
    clients: list[MassiveClient] = []

    def make(**kwargs: Any) -> MassiveClient:
        kwargs.setdefault("sleep", sleep)
        kwargs.setdefault("jitter", 0.0)
        client = MassiveClient(kwargs.pop("base_url", server.url), kwargs.pop("api_key", KEY), **kwargs)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def fetch(client: MassiveClient, **kwargs: Any) -> FetchResult:
    return client.get_aggregates(TICKER, 1, "minute", START, END, **kwargs)


@pytest.fixture(scope="module")
def clean_bars(server: DevServer) -> pd.DataFrame:
    """The window as one clean single-page fetch: the reference the fault tests must reproduce.
    Module-scoped fixtures are set up before the function-scoped reset, so the one test this is
    first built for may find the faults the previous test left: reset here too."""
    server.reset()
    with MassiveClient(server.url, KEY) as client:
        result = fetch(client)
    assert result.pages == 1 and len(result.bars) > 200
    return result.bars


# ---------------------------------------------------------------- bars and pagination
def test_pagination_over_pages_returns_every_bar_once_and_equals_single_page(clean_bars: pd.DataFrame) -> None:
    with DevServer(api_keys={KEY}, page_size=100, seed=0, now=NOW) as paged, \
            MassiveClient(paged.url, KEY) as client:
        result = fetch(client)
        assert paged.request_count() == result.requests == result.pages
    assert result.pages >= 3
    assert result.duplicates == 0
    assert result.bars["ts"].is_unique and result.bars["ts"].is_monotonic_increasing
    pd.testing.assert_frame_equal(result.bars, clean_bars)


def test_bars_have_the_documented_columns_and_dtypes(make_client: Callable[..., MassiveClient]) -> None:
    bars = fetch(make_client()).bars
    assert list(bars.columns) == ["ts", "open", "high", "low", "close", "volume", "vwap", "trades", "provider_problem"]
    assert str(bars["ts"].dtype) == "datetime64[ns, UTC]"
    assert bars["provider_problem"].dtype == object and bars["provider_problem"].isna().all()
    for col in ("open", "high", "low", "close", "volume", "vwap"):
        assert bars[col].dtype == "float64", col
    assert str(bars["trades"].dtype) == "Int64"
    assert bars["vwap"].notna().all()


def test_window_is_half_open_and_sent_inclusive(server: DevServer, make_client: Callable[..., MassiveClient]) -> None:
    start, end = pd.Timestamp("2024-03-04T01:00Z"), pd.Timestamp("2024-03-04T02:00Z")
    bars = make_client().get_aggregates(TICKER, 1, "minute", start, end).bars
    assert bars["ts"].min() >= start and bars["ts"].max() < end
    assert bars["ts"].max() == pd.Timestamp("2024-03-04T01:59Z")
    start_ms, end_ms = start.value // 10**6, end.value // 10**6
    assert server.requests[0].path == f"{AGGS_PATH}{start_ms}/{end_ms - 1}"


def test_naive_timestamps_are_taken_as_utc(make_client: Callable[..., MassiveClient], clean_bars: pd.DataFrame) -> None:
    result = make_client().get_aggregates(TICKER, 1, "minute", START.tz_localize(None), END.tz_localize(None))
    pd.testing.assert_frame_equal(result.bars, clean_bars)


def test_empty_window_gives_empty_typed_frame(make_client: Callable[..., MassiveClient]) -> None:
    # The server's clock stops at NOW: nothing exists after it.
    result = make_client().get_aggregates(TICKER, 1, "minute", pd.Timestamp("2024-07-01T00:00Z"),
                                           pd.Timestamp("2024-07-01T01:00Z"))
    assert result.bars.empty and result.pages == 1
    assert str(result.bars["ts"].dtype) == "datetime64[ns, UTC]"


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("C:EUR/USD", 1, "minute", START, END), "ticker"),
        ((TICKER, 0, "minute", START, END), "multiplier"),
        ((TICKER, 1, "minutes", START, END), "timespan"),
        ((TICKER, 1, "minute", END, START), "start"),
        ((TICKER, 1, "minute", "not a date", END), "start"),
    ],
)
def test_bad_arguments_are_refused_before_any_request(
    server: DevServer, make_client: Callable[..., MassiveClient], args: tuple[Any, ...], fragment: str
) -> None:
    with pytest.raises(ValueError, match=fragment):
        make_client().get_aggregates(*args)
    assert server.request_count(None) == 0


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [({"api_key": " "}, "MASSIVE_API_KEY"), ({"timeout": httpx.Timeout(None)}, "timeout"),
     ({"base_url": "api.massive.com"}, "base_url"), ({"max_retries": -1}, "max_retries")],
)
def test_bad_client_settings_are_refused(make_client: Callable[..., MassiveClient], kwargs: dict[str, Any],
                                         fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        make_client(**kwargs)


# ---------------------------------------------------------------- auth
def test_401_fails_fast_with_a_clear_message(server: DevServer, make_client: Callable[..., MassiveClient],
                                             sleep: RecordingSleep) -> None:
    client = make_client(api_key="not-the-key")
    with pytest.raises(MassiveAuthError) as info:
        fetch(client)
    message = str(info.value)
    assert message.startswith(f"Massive API refused GET {AGGS_PATH}")
    assert "401 Unknown API Key" in message and "MASSIVE_API_KEY" in message
    assert info.value.status == 401
    assert server.request_count() == 1 and client.stats.requests == 1 and sleep.waits == []


def test_403_says_not_entitled_and_does_not_retry(server: DevServer, make_client: Callable[..., MassiveClient],
                                                  sleep: RecordingSleep) -> None:
    server.set_faults(not_entitled=True)
    with pytest.raises(MassiveAuthError, match="403.*not entitled") as info:
        fetch(make_client())
    assert info.value.status == 403
    assert server.request_count() == 1 and sleep.waits == []


# ---------------------------------------------------------------- 429
def test_429_storm_is_survived_waiting_retry_after(server: DevServer, make_client: Callable[..., MassiveClient],
                                                   sleep: RecordingSleep, clean_bars: pd.DataFrame) -> None:
    server.set_faults(throttle_429_next=4, retry_after_seconds=7)
    client = make_client()
    result = fetch(client)
    pd.testing.assert_frame_equal(result.bars, clean_bars)
    assert sleep.waits == [7.0, 7.0, 7.0, 7.0]
    assert client.stats.retries == 4 and client.stats.throttled_429 == 4
    assert server.request_count() == result.requests == 5


def test_429_without_retry_after_waits_the_throttle_wait(server: DevServer, make_client: Callable[..., MassiveClient],
                                                         sleep: RecordingSleep) -> None:
    server.set_faults(throttle_429_next=2, send_retry_after=False)
    fetch(make_client(throttle_wait=12.5))
    assert sleep.waits == [12.5, 12.5]


def test_retry_after_is_capped(server: DevServer, make_client: Callable[..., MassiveClient],
                               sleep: RecordingSleep) -> None:
    server.set_faults(throttle_429_next=1, retry_after_seconds=900)
    fetch(make_client(max_retry_after=45.0))
    assert sleep.waits == [45.0]


def test_429_exhaustion_raises_rate_limit_error(server: DevServer, make_client: Callable[..., MassiveClient],
                                                sleep: RecordingSleep) -> None:
    server.set_faults(throttle_429_next=10, retry_after_seconds=3)
    with pytest.raises(MassiveRateLimitError, match=f"429.*{AGGS_PATH}|{AGGS_PATH}.*429") as info:
        fetch(make_client(max_retries=3))
    assert info.value.status == 429
    assert server.request_count() == 4 and sleep.waits == [3.0, 3.0, 3.0]


# ---------------------------------------------------------------- 5xx, timeouts, connections
def test_5xx_burst_with_html_504_is_survived_with_exponential_backoff(
    server: DevServer, make_client: Callable[..., MassiveClient], sleep: RecordingSleep, clean_bars: pd.DataFrame
) -> None:
    server.set_faults(server_errors_next=2, html_504_next=1)
    client = make_client(backoff_base=0.5)
    result = fetch(client)
    pd.testing.assert_frame_equal(result.bars, clean_bars)
    assert sleep.waits == [0.5, 1.0, 2.0]
    assert client.stats.retries == 3 and client.stats.server_errors == 3
    assert [r.status for r in server.requests] == [500, 502, 504, 200]


def test_backoff_is_jittered_and_capped(server: DevServer, make_client: Callable[..., MassiveClient],
                                        sleep: RecordingSleep) -> None:
    server.set_faults(server_errors_next=5)
    fetch(make_client(backoff_base=1.0, backoff_max=5.0, jitter=0.5, rng=random.Random(3)))
    bounds = [(1.0, 1.5), (2.0, 3.0), (4.0, 5.0), (5.0, 5.0), (5.0, 5.0)]
    assert len(sleep.waits) == 5
    for wait, (low, high) in zip(sleep.waits, bounds, strict=True):
        assert low <= wait <= high
    assert sleep.waits[0] != 1.0 or sleep.waits[1] != 2.0  # the jitter is really applied


def test_5xx_exhaustion_names_request_and_last_status(server: DevServer, make_client: Callable[..., MassiveClient],
                                                      sleep: RecordingSleep) -> None:
    server.set_faults(server_errors_next=10)
    with pytest.raises(MassiveServerError) as info:
        fetch(make_client(max_retries=2))
    assert info.value.status == 503  # the server rotates 500, 502, 503
    assert AGGS_PATH in str(info.value) and "503" in str(info.value) and "3 attempts" in str(info.value)
    assert server.request_count() == 3 and len(sleep.waits) == 2


def test_html_504_exhaustion_reports_the_page_title_not_the_html(
    server: DevServer, make_client: Callable[..., MassiveClient]
) -> None:
    server.set_faults(html_504_next=3)
    with pytest.raises(MassiveServerError, match="504.*Gateway Time-out") as info:
        fetch(make_client(max_retries=2))
    assert info.value.status == 504 and "<" not in str(info.value)


def test_slow_answers_raise_timeout_error_after_retries(sleep: RecordingSleep) -> None:
    with DevServer(api_keys={KEY}, now=NOW) as slow, \
            MassiveClient(slow.url, KEY, timeout=httpx.Timeout(0.2), max_retries=2, sleep=sleep) as client:
        slow.set_faults(delay_seconds=5.0)
        with pytest.raises(MassiveTimeoutError, match=f"{AGGS_PATH}.*timeout.*3 attempts"):
            fetch(client)
        stats = client.stats
    assert stats.requests == 3 and stats.timeouts == 3 and len(sleep.waits) == 2


def test_connection_refused_raises_connection_error(make_client: Callable[..., MassiveClient],
                                                    sleep: RecordingSleep) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = make_client(base_url=f"http://127.0.0.1:{port}", max_retries=1)
    with pytest.raises(MassiveConnectionError, match="unreachable") as info:
        fetch(client)
    assert isinstance(info.value, MassiveServerError)
    assert client.stats.connection_errors == 2 and len(sleep.waits) == 1


# ---------------------------------------------------------------- bodies
def test_one_truncated_body_is_retried(server: DevServer, make_client: Callable[..., MassiveClient],
                                       clean_bars: pd.DataFrame) -> None:
    server.set_faults(malformed_json_next=1)
    client = make_client()
    pd.testing.assert_frame_equal(fetch(client).bars, clean_bars)
    assert client.stats.malformed == 1 and client.stats.retries == 1


def test_malformed_json_gives_clear_error_after_bounded_retries(
    server: DevServer, make_client: Callable[..., MassiveClient]
) -> None:
    server.set_faults(malformed_json_next=5)
    with pytest.raises(MassiveResponseError, match=f"GET {AGGS_PATH}.* not JSON"):
        fetch(make_client(malformed_retries=2))
    assert server.request_count() == 3


def test_unexpected_shape_fails_at_once_naming_the_request(
    server: DevServer, make_client: Callable[..., MassiveClient], sleep: RecordingSleep
) -> None:
    server.set_faults(unexpected_shape_next=1)
    with pytest.raises(MassiveResponseError, match=f"GET {AGGS_PATH}.*unexpected shape.*'status'"):
        fetch(make_client())
    assert server.request_count() == 1 and sleep.waits == []


def test_non_advancing_next_url_raises_pagination_error(server: DevServer,
                                                        make_client: Callable[..., MassiveClient]) -> None:
    server.set_faults(stuck_next_url=True)
    with pytest.raises(MassivePaginationError, match=f"GET {AGGS_PATH}.*does not advance"):
        fetch(make_client(), limit=100)
    assert server.request_count() <= 3


def test_404_is_a_response_error_naming_the_path(make_client: Callable[..., MassiveClient]) -> None:
    with pytest.raises(MassiveNotFoundError, match="tickers/C:nope: 404 not found") as info:
        make_client().get_snapshot("C:nope")
    assert isinstance(info.value, MassiveResponseError) and info.value.status == 404


def test_other_4xx_is_a_massive_error_with_status_and_message(make_client: Callable[..., MassiveClient]) -> None:
    # The dev server does not serve monthly bars and answers 400.
    with pytest.raises(MassiveError, match="400 .*timespan") as info:
        make_client().get_aggregates(TICKER, 1, "month", START, END)
    assert info.value.status == 400 and type(info.value) is MassiveError


# ---------------------------------------------------------------- rate limiter hook, stats, logs
def test_acquire_is_called_before_every_attempt_pages_and_retries_included(sleep: RecordingSleep) -> None:
    with DevServer(api_keys={KEY}, page_size=100, now=NOW) as paged:
        seen: list[int] = []
        with MassiveClient(paged.url, KEY, acquire=lambda: seen.append(paged.request_count(None)),
                           sleep=sleep) as client:
            paged.set_faults(throttle_429_next=1, server_errors_next=1)
            result = fetch(client)
            stats = client.stats
        total = paged.request_count(None)
    assert result.pages >= 3
    assert total == result.requests == stats.requests == result.pages + 2
    # Each acquire happened just before its own request: the server had seen 0, 1, 2, ... so far.
    assert seen == list(range(total))


def test_stats_count_attempts_pages_and_retries(server: DevServer, make_client: Callable[..., MassiveClient]) -> None:
    server.set_faults(throttle_429_next=1, server_errors_next=1)
    client = make_client()
    before = client.stats
    fetch(client, limit=100)
    spent = client.stats - before
    assert isinstance(spent, ClientStats)
    assert spent.requests == server.request_count(None) == spent.pages + 2
    assert (spent.retries, spent.throttled_429, spent.server_errors) == (2, 1, 1)


def test_requests_logged_at_debug_and_retries_at_warning(
    server: DevServer, make_client: Callable[..., MassiveClient], caplog: pytest.LogCaptureFixture
) -> None:
    logger = logging.getLogger("massive_pipeline.test_client")
    server.set_faults(server_errors_next=1)
    with caplog.at_level(logging.DEBUG, logger=logger.name):
        fetch(make_client(logger=logger))
    mine = [r for r in caplog.records if r.name == logger.name]
    debug = [r.getMessage() for r in mine if r.levelno == logging.DEBUG]
    warnings = [r.getMessage() for r in mine if r.levelno == logging.WARNING]
    assert len(debug) == 2 and "-> 500" in debug[0] and "-> 200" in debug[1]
    assert len(warnings) == 1 and AGGS_PATH in warnings[0] and "retrying in 0.50s" in warnings[0]


# ---------------------------------------------------------------- snapshots
def test_single_ticker_snapshots(make_client: Callable[..., MassiveClient]) -> None:
    client = make_client()
    fx = client.get_snapshot("C:EURUSD")
    assert fx.ticker == "C:EURUSD" and fx.bid is not None and fx.ask is not None and fx.bid < fx.ask
    assert fx.spread == pytest.approx(fx.ask - fx.bid)
    assert fx.day_low <= fx.last <= fx.day_high
    assert fx.timestamp <= pd.Timestamp(NOW) and fx.timestamp.tzinfo is not None
    crypto = client.get_snapshot("X:BTCUSD")
    assert crypto.bid is None and crypto.last == crypto.day_close
    assert "raw" not in repr(crypto) and crypto.raw["ticker"] == "X:BTCUSD"
    with pytest.raises(ValueError, match="I:SPX"):
        client.get_snapshot("I:SPX")


def test_universal_snapshot_reports_unknown_tickers_separately(make_client: Callable[..., MassiveClient]) -> None:
    snaps, errors = make_client().get_universal_snapshot(["C:EURUSD", "X:BTCUSD", "I:SPX", "C:nope", "C:EURUSD"])
    assert [s.ticker for s in snaps] == ["C:EURUSD", "X:BTCUSD", "I:SPX"]
    assert errors == {"C:nope": "NOT_FOUND: Ticker not found."}
    spx = snaps[2]
    assert spx.last is not None and spx.bid is None and spx.day_open is not None


def test_universal_and_single_snapshots_agree(make_client: Callable[..., MassiveClient]) -> None:
    client = make_client()
    (universal,), _ = client.get_universal_snapshot(["C:EURUSD"])
    single = client.get_snapshot("C:EURUSD")
    assert (universal.bid, universal.ask, universal.day_close) == (single.bid, single.ask, single.day_close)
    assert universal.timestamp == single.timestamp


def test_snapshot_to_dict_is_json_ready(make_client: Callable[..., MassiveClient]) -> None:
    d = make_client().get_snapshot("C:EURUSD").to_dict()
    assert "raw" not in d and pd.Timestamp(d["timestamp"]).tzinfo is not None


# ---------------------------------------------------------------- provider
def test_provider_maps_timeframes_to_api_bar_sizes(server: DevServer, make_client: Callable[..., MassiveClient]) -> None:
    provider = MassiveProvider(make_client())
    assert isinstance(provider, BarProvider) and provider.name == "massive"
    bars = provider.fetch_bars(TICKER, Timeframe.H1, START, END).bars
    assert list(bars["ts"]) == list(pd.date_range(START, END, freq="1h", inclusive="left"))
    assert server.requests[-1].path.startswith(f"/v2/aggs/ticker/{TICKER}/range/1/hour/")
    provider.fetch_bars(TICKER, Timeframe.M15, START, END)
    assert server.requests[-1].path.startswith(f"/v2/aggs/ticker/{TICKER}/range/15/minute/")


def test_provider_snapshots_via_universal_endpoint(server: DevServer, make_client: Callable[..., MassiveClient]) -> None:
    snaps, errors = MassiveProvider(make_client()).snapshots(["C:EURUSD", "X:BTCUSD", "C:nope"])
    assert [s.ticker for s in snaps] == ["C:EURUSD", "X:BTCUSD"]
    assert set(errors) == {"C:nope"} and "404" in errors["C:nope"]
    paths = [r.path for r in server.requests]
    assert paths[0] == "/v3/snapshot" and paths[1:] == ["/v2/snapshot/locale/global/markets/forex/tickers/C:nope"]


# ---------------------------------------------------------------- shapes the dev server never sends
ROW = {"t": 1709510400000, "o": 1.0, "h": 2.0, "l": 0.5, "c": 1.5, "v": 10}


def mock_client(handler: Callable[[httpx.Request], httpx.Response], **kwargs: Any) -> MassiveClient:
    kwargs.setdefault("sleep", RecordingSleep())
    return MassiveClient("https://api.example.test", KEY, transport=httpx.MockTransport(handler), **kwargs)


def rows(*minutes: int, **extra: Any) -> list[dict[str, Any]]:
    return [{**ROW, "t": ROW["t"] + m * 60_000, **extra} for m in minutes]


@pytest.mark.parametrize(
    ("results", "fragment"),
    [
        ([*rows(0), "row"], r"results\[1\] is str"),
        ({"t": 1}, "'results' is dict"),
    ],
)
def test_bad_rows_name_the_request_and_row(results: Any, fragment: str) -> None:
    body = {"status": "OK", "results": results}
    with mock_client(lambda request: httpx.Response(200, json=body)) as client, \
            pytest.raises(MassiveResponseError, match=f"GET {AGGS_PATH}.*{fragment}"):
        fetch(client)


@pytest.mark.parametrize(
    ("bad", "problem"),
    [
        ({k: v for k, v in ROW.items() if k != "c"}, "c missing"),
        ({**ROW, "o": "1.1"}, "o is '1.1' (not a number)"),
        ({**ROW, "h": None}, "h is null"),
        ({**ROW, "v": True}, "v is True (not a number)"),
        ({**ROW, "o": None, "l": "abc"}, "o is null; l is 'abc' (not a number)"),
    ],
)
def test_a_bad_field_flags_its_row_and_keeps_the_others(bad: dict[str, Any], problem: str) -> None:
    body = {"status": "OK", "results": [*rows(0, 1), {**bad, "t": ROW["t"] + 2 * 60_000}, *rows(3)]}
    with mock_client(lambda request: httpx.Response(200, json=body)) as client:
        result = fetch(client)
    bars = result.bars
    assert len(bars) == 4 and result.problem_rows == 1 and result.unplaceable == 0
    assert bars["provider_problem"].tolist() == [None, None, problem, None]
    flagged = bars.iloc[2]
    for key, col in {"o": "open", "h": "high", "l": "low", "c": "close", "v": "volume"}.items():
        assert pd.isna(flagged[col]) == (key in problem.replace("; ", " ").split()), col
    assert bars.drop(index=2)[["open", "high", "low", "close", "volume"]].notna().all().all()
    assert any(problem.split(";")[0] in w for w in result.warnings)


@pytest.mark.parametrize("bad_t", [{"t": None}, {"t": "soon"}, {}])
def test_a_row_without_t_is_counted_not_placed(bad_t: dict[str, Any]) -> None:
    row = {k: v for k, v in ROW.items() if k != "t"} | bad_t
    body = {"status": "OK", "results": [*rows(0), row, *rows(1)]}
    with mock_client(lambda request: httpx.Response(200, json=body)) as client:
        result = fetch(client)
    assert len(result.bars) == 2 and result.unplaceable == 1 and result.bars_received == 3
    assert result.unplaceable_sample == [f"page 1 results[1]: t {'missing' if not bad_t else 'is ' + (repr(bad_t['t']) + ' (not a number)' if bad_t['t'] else 'null')}"]
    assert result.bars["provider_problem"].isna().all()


def test_missing_results_is_no_data_and_delayed_is_ok() -> None:
    with mock_client(lambda request: httpx.Response(200, json={"status": "DELAYED", "resultsCount": 0})) as client:
        assert fetch(client).bars.empty


def test_duplicates_across_pages_are_kept_once_and_counted() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if "cursor" not in request.url.params:
            return httpx.Response(200, json={"status": "OK", "results": rows(0, 1, 2),
                                             "next_url": f"{request.url.copy_with(query=None)}?cursor=2"})
        return httpx.Response(200, json={"status": "OK", "results": rows(2, 3, 1)})

    with mock_client(handler) as client:
        result = fetch(client)
    assert result.duplicates == 2 and result.pages == 2
    assert list(result.bars["ts"]) == [pd.Timestamp(ROW["t"] + m * 60_000, unit="ms", tz="UTC") for m in range(4)]


def test_next_url_drops_api_key_and_never_leaves_the_configured_host() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if len(seen) == 1:
            return httpx.Response(200, json={"status": "OK", "results": rows(0),
                                             "next_url": "https://evil.test/v2/next?cursor=abc&apiKey=LEAKED"})
        return httpx.Response(200, json={"status": "OK", "results": rows(1)})

    with mock_client(handler) as client:
        assert len(fetch(client).bars) == 2
    page2 = seen[1]
    assert page2.url.host == "api.example.test" and page2.url.path == "/v2/next"
    assert dict(page2.url.params) == {"cursor": "abc"}
    assert page2.headers["authorization"] == f"Bearer {KEY}"
    assert all(KEY not in str(r.url) for r in seen)


def test_repeated_next_url_is_a_pagination_error_and_pages_are_capped() -> None:
    count = {"n": 0}

    def repeating(request: httpx.Request) -> httpx.Response:
        count["n"] += 1
        return httpx.Response(200, json={"status": "OK", "results": rows(count["n"]),
                                         "next_url": "https://api.example.test/v2/same?cursor=x"})

    with mock_client(repeating) as client, pytest.raises(MassivePaginationError, match="repeats an earlier page"):
        fetch(client)
    assert count["n"] == 2

    def endless(request: httpx.Request) -> httpx.Response:
        n = int(request.url.params.get("cursor", "0"))
        return httpx.Response(200, json={"status": "OK", "results": rows(n),
                                         "next_url": f"https://api.example.test/v2/more?cursor={n + 1}"})

    with mock_client(endless, max_pages=5) as client, pytest.raises(MassivePaginationError, match="5 pages"):
        fetch(client)


def test_retry_after_as_http_date_and_garbage() -> None:
    answers = iter([
        httpx.Response(429, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, json={"status": "ERROR"}),
        httpx.Response(429, headers={"Retry-After": "soon"}, json={"status": "ERROR"}),
        httpx.Response(200, json={"status": "OK"}),
    ])
    sleep = RecordingSleep()
    with mock_client(lambda request: next(answers), sleep=sleep, throttle_wait=9.0) as client:
        fetch(client)
    assert sleep.waits == [0.0, 9.0]  # a date in the past means "now"; garbage means the throttle wait


def test_universal_snapshot_is_batched_by_250() -> None:
    batches: list[list[str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        tickers = request.url.params["ticker.any_of"].split(",")
        batches.append(tickers)
        results = [{"ticker": t, "session": {"close": 1.0}, "last_updated": 1717200000000000000} for t in tickers]
        return httpx.Response(200, json={"status": "OK", "results": results})

    tickers = [f"C:T{i:04d}" for i in range(300)]
    with mock_client(handler) as client:
        snaps, errors = client.get_universal_snapshot(tickers)
    assert [len(b) for b in batches] == [250, 50]
    assert [s.ticker for s in snaps] == tickers and errors == {}
    assert snaps[0].timestamp == pd.Timestamp(1717200000000000000, unit="ns", tz="UTC")


def _snapshot_v2(ticker: str) -> dict[str, Any]:
    return {"status": "OK", "ticker": {"ticker": ticker, "day": {"o": 1, "h": 2, "l": 0.5, "c": 1.5, "v": 9},
                                       "lastQuote": {"a": 1.6, "b": 1.4, "t": 1717200000000}}}


@pytest.mark.parametrize("universal_status", [403, 404])
def test_provider_falls_back_to_single_ticker_snapshots(universal_status: int) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v3/snapshot":
            return httpx.Response(universal_status, json={"status": "NOT_AUTHORIZED", "message": "no"})
        ticker = request.url.path.rsplit("/", 1)[1]
        if ticker == "C:GONE":
            return httpx.Response(404, json={"status": "NOT_FOUND", "message": "Ticker not found."})
        return httpx.Response(200, json=_snapshot_v2(ticker))

    with mock_client(handler) as client:
        snaps, errors = MassiveProvider(client).snapshots(["C:EURUSD", "C:GONE", "I:SPX"])
    assert [s.ticker for s in snaps] == ["C:EURUSD"]
    assert snaps[0] == Snapshot("C:EURUSD", 1.4, 1.6, 0.2, 1.5, 1.0, 2.0, 0.5, 1.5, 9.0,
                                pd.Timestamp(1717200000000, unit="ms", tz="UTC"))
    assert set(errors) == {"C:GONE", "I:SPX"}
    assert "404" in errors["C:GONE"] and "only C: (forex) and X: (crypto)" in errors["I:SPX"]


def test_provider_lets_a_bad_key_propagate() -> None:
    with mock_client(lambda request: httpx.Response(401, json={"status": "ERROR", "error": "Unknown API Key"})) \
            as client, pytest.raises(MassiveAuthError, match="401"):
        MassiveProvider(client).snapshots(["C:EURUSD"])


def test_errors_survive_pickling() -> None:
    import pickle

    err = MassiveServerError("Massive API failed GET /x: 503", method="GET", path="/x", status=503)
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is MassiveServerError and str(back) == str(err) and back.status == 503
