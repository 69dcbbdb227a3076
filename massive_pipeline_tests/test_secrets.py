"""The API key never leaves the client in text: not in errors (nor their causes and tracebacks),
not in reprs, not in any log record, whatever goes wrong."""

from __future__ import annotations

import logging
import socket
import traceback
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pandas as pd
import pytest

from massive_pipeline.massive import (
    MassiveAuthError,
    MassiveClient,
    MassiveConnectionError,
    MassiveError,
    MassiveNotFoundError,
    MassivePaginationError,
    MassiveRateLimitError,
    MassiveResponseError,
    MassiveServerError,
    MassiveTimeoutError,
    Redactor,
    redact,
)
from massive_pipeline.testing.devserver import DevServer

KEY = "SECRET-KEY-abc123XYZ"
NOW = "2024-06-01T00:00:00Z"
TICKER = "C:EURUSD"
START = pd.Timestamp("2024-03-05T00:00:00Z")
END = pd.Timestamp("2024-03-05T03:00:00Z")


def no_sleep(seconds: float) -> None:
    """Retries are exercised, not waited for."""


@pytest.fixture(scope="module")
def server() -> Iterator[DevServer]:
    with DevServer(api_keys={KEY}, now=NOW) as srv:
        yield srv


@pytest.fixture(autouse=True)
def _debug_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, httpx and httpcore included


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fetch(client: MassiveClient, **kwargs: Any) -> None:
    client.get_aggregates(TICKER, 1, "minute", START, END, **kwargs)


# name -> (fault settings, client settings, call, expected error type); None faults = special server
SCENARIOS: dict[str, tuple[dict[str, Any], dict[str, Any], Callable[[MassiveClient], object], type[MassiveError]]] = {
    "403": ({"not_entitled": True}, {}, fetch, MassiveAuthError),
    "429 exhausted": ({"throttle_429_next": 5}, {"max_retries": 2}, fetch, MassiveRateLimitError),
    "5xx exhausted": ({"server_errors_next": 5}, {"max_retries": 2}, fetch, MassiveServerError),
    "html 504 exhausted": ({"html_504_next": 5}, {"max_retries": 2}, fetch, MassiveServerError),
    "malformed": ({"malformed_json_next": 5}, {}, fetch, MassiveResponseError),
    "shape": ({"unexpected_shape_next": 1}, {}, fetch, MassiveResponseError),
    "pagination": ({"stuck_next_url": True}, {}, lambda c: fetch(c, limit=60), MassivePaginationError),
    "404": ({}, {}, lambda c: c.get_snapshot("C:nope"), MassiveNotFoundError),
    "400": ({}, {}, lambda c: c.get_aggregates(TICKER, 1, "month", START, END), MassiveError),
}


def texts_of(exc: BaseException) -> list[str]:
    """Everything a log handler, a Dagster failure or a developer could print of an exception."""
    out = ["".join(traceback.format_exception(exc))]
    seen: set[int] = set()
    stack: list[BaseException | None] = [exc]
    while stack:
        e = stack.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        out += [str(e), repr(e), repr(vars(e)) if hasattr(e, "__dict__") else "", repr(e.args)]
        stack += [e.__cause__, e.__context__]
    return out


def assert_no_key(exc: BaseException, caplog: pytest.LogCaptureFixture) -> None:
    for text in texts_of(exc):
        assert KEY not in text
    assert caplog.records, "expected the failure to be logged"
    for record in caplog.records:
        assert KEY not in record.getMessage()
        assert KEY not in logging.Formatter("%(name)s %(message)s %(exc_text)s").format(record)


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_key_absent_from_errors_and_logs(name: str, server: DevServer, caplog: pytest.LogCaptureFixture) -> None:
    faults, settings, call, expected = SCENARIOS[name]
    server.reset()
    server.set_faults(**faults)
    with MassiveClient(server.url, KEY, sleep=no_sleep, **settings) as client, pytest.raises(expected) as info:
        call(client)
    assert_no_key(info.value, caplog)
    assert KEY not in repr(client)


def test_key_absent_on_401(caplog: pytest.LogCaptureFixture) -> None:
    with DevServer(api_keys={"another-key"}, now=NOW) as srv, MassiveClient(srv.url, KEY, sleep=no_sleep) as client, \
            pytest.raises(MassiveAuthError) as info:
        fetch(client)
    assert_no_key(info.value, caplog)


def test_key_absent_on_timeout(caplog: pytest.LogCaptureFixture) -> None:
    with DevServer(api_keys={KEY}, now=NOW) as srv, \
            MassiveClient(srv.url, KEY, sleep=no_sleep, timeout=0.2, max_retries=1) as client:
        srv.set_faults(delay_seconds=5.0)
        with pytest.raises(MassiveTimeoutError) as info:
            fetch(client)
    assert_no_key(info.value, caplog)
    assert isinstance(info.value.__cause__, httpx.TimeoutException)


def test_key_absent_on_connection_refused(caplog: pytest.LogCaptureFixture) -> None:
    with MassiveClient(f"http://127.0.0.1:{closed_port()}", KEY, sleep=no_sleep, max_retries=1) as client, \
            pytest.raises(MassiveConnectionError) as info:
        fetch(client)
    assert_no_key(info.value, caplog)


def test_key_echoed_by_the_server_is_redacted(caplog: pytest.LogCaptureFixture) -> None:
    """A proxy or API that echoes the key (in a body or a next_url) still cannot leak it through us."""
    echo = f"bad request for apiKey={KEY} with Authorization: Bearer {KEY}"
    answers = iter([
        httpx.Response(200, json={"status": "OK", "results": [], "next_url": f"https://h.test/v2/p?apiKey={KEY}"}),
        httpx.Response(500, json={"status": "ERROR", "error": echo}),
        httpx.Response(500, text=f"<html><title>{KEY}</title></html>"),
    ])
    with MassiveClient("https://h.test", KEY, sleep=no_sleep, max_retries=1,
                       transport=httpx.MockTransport(lambda request: next(answers))) as client, \
            pytest.raises(MassiveServerError) as info:
        fetch(client)
    assert "***" in str(info.value)
    assert_no_key(info.value, caplog)


def test_bad_rows_in_universal_snapshot_errors_are_redacted() -> None:
    body = {"status": "OK", "results": [{"ticker": "C:EURUSD", "error": "NOT_FOUND", "message": f"key {KEY}"}]}
    with MassiveClient("https://h.test", KEY, transport=httpx.MockTransport(
            lambda request: httpx.Response(200, json=body))) as client:
        _, errors = client.get_universal_snapshot(["C:EURUSD"])
    assert KEY not in errors["C:EURUSD"] and "***" in errors["C:EURUSD"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"GET /v2/x?apiKey={KEY}&cursor=1", "GET /v2/x?apiKey=***&cursor=1"),
        (f'{{"apikey": "{KEY}"}}', '{"apikey": "***"}'),
        (f"Authorization: Bearer {KEY}", "Authorization: Bearer ***"),
        (f"plain {KEY} text", "plain *** text"),
        ("nothing secret here", "nothing secret here"),
    ],
)
def test_redact(text: str, expected: str) -> None:
    assert redact(text, [KEY]) == expected
    assert Redactor(KEY)(text) == expected
    assert KEY not in repr(Redactor(KEY))


def test_redact_masks_api_key_params_even_without_knowing_the_key() -> None:
    assert redact("https://h/v2?apiKey=other-secret&x=1") == "https://h/v2?apiKey=***&x=1"
