"""The application as a whole: its OpenAPI document, and schemathesis generating requests from it
against the live service, valid and invalid ones, with no answer a server error and none holding
the Massive API key (the sentinel the server's environment really holds)."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from massive_pipeline_tests.service.conftest import API_KEY_SENTINEL, Served

OPERATIONS = {
    "GET /candles",
    "GET /symbols",
    "GET /symbols/{symbol}",
    "GET /status",
    "GET /gaps",
    "GET /revisions",
    "GET /health",
    "POST /sync",
}
# examples per operation and generation mode: 8 operations x 2 modes x this, per store backend
EXAMPLES = 50


def test_the_openapi_document_lists_every_endpoint(client):
    document = client.get("/openapi.json").json()
    listed = {f"{method.upper()} {path}" for path, item in document["paths"].items() for method in item}
    assert listed == OPERATIONS
    candles = {p["name"]: p for p in document["paths"]["/candles"]["get"]["parameters"]}
    assert set(candles) == {
        "symbol",
        "timeframe",
        "start",
        "end",
        "format",
        "limit",
        "cursor",
        "include_forming",
    }
    assert (
        candles["symbol"]["required"]
        and candles["timeframe"]["required"]
        and not candles["start"]["required"]
    )


def test_the_server_really_holds_the_key_it_must_never_answer(served: Served):
    """Without this the sentinel checks could not fail: the key is in the serving process's environment."""
    environ = Path(f"/proc/{served.proc.pid}/environ").read_bytes().split(b"\0")
    assert f"MASSIVE_API_KEY={API_KEY_SENTINEL}".encode() in environ


def _exercise(served: Served, strategy: st.SearchStrategy, codes: set[int]) -> None:
    """Send `EXAMPLES` generated requests; fail on a 5xx or the key in an answer."""

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def exercise(case) -> None:
        response = case.call(base_url=served.url, timeout=60)
        codes.add(response.status_code)
        assert API_KEY_SENTINEL.encode() not in response.content  # bytes: parquet and arrow answers too
        case.validate_response(response, checks=[not_a_server_error])

    exercise()


def test_schemathesis_finds_no_server_error(served: Served):
    schema = schemathesis.openapi.from_url(f"{served.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.label for op in operations} == OPERATIONS
    seen: dict[str, set[int]] = {}
    started = time.monotonic()
    document = httpx.get(f"{served.url}/openapi.json", timeout=30).json()
    # an operation without parameters or body has no invalid request to generate
    takes_input = {
        f"{m.upper()} {path}": bool(op.get("parameters") or op.get("requestBody"))
        for path, item in document["paths"].items()
        for m, op in item.items()
    }
    for operation in operations:
        codes = seen.setdefault(operation.label, set())
        modes = [GenerationMode.POSITIVE] + (
            [GenerationMode.NEGATIVE] if takes_input[operation.label] else []
        )
        for mode in modes:
            _exercise(served, operation.as_strategy(generation_mode=mode), codes)
        # the documented examples (EURUSD, H1, a seeded day) lead the generator to stored bars
        examples = schema.get_strategies_from_examples(operation)
        if examples:
            _exercise(served, st.one_of(*examples), codes)
    print(
        f"schemathesis ({served.backend}): {len(operations)} operations in {time.monotonic() - started:.1f} s; "
        + "; ".join(f"{label}: {sorted(codes)}" for label, codes in sorted(seen.items()))
    )
    assert set(seen) == OPERATIONS
    # the generated requests reached past validation: every read answered 200 at least once
    assert all(200 in seen[label] for label in OPERATIONS if label.startswith("GET")), seen
    assert any(code >= 400 for codes in seen.values() for code in codes)


@pytest.mark.parametrize("path", ["/docs", "/openapi.json"])
def test_the_documentation_pages_are_served(client, path):
    assert client.get(path).status_code == 200
