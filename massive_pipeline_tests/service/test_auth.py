"""Bearer-token auth when `MASSIVE_SERVICE_TOKEN` is set: 401 without or with a wrong token, `/health`
and the OpenAPI document open."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from massive_pipeline_tests.service.conftest import Served, seed_store, serve

TOKEN = "service-token-for-tests"


@pytest.fixture(scope="module")
def guarded(tmp_path_factory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("service_token")
    url = f"sqlite:///{tmp}/candles.sqlite"
    seed_store(url)
    yield from serve(tmp, url, "sqlite (token)", MASSIVE_SERVICE_TOKEN=TOKEN)


PROTECTED = [
    ("GET", "/candles?symbol=EURUSD&timeframe=M1&limit=1"),
    ("GET", "/symbols"),
    ("GET", "/symbols/EURUSD"),
    ("GET", "/status"),
    ("GET", "/gaps"),
    ("GET", "/revisions"),
    ("POST", "/sync"),
]


@pytest.mark.parametrize(("method", "path"), PROTECTED)
@pytest.mark.parametrize("authorization", [None, "Bearer wrong-token", f"Basic {TOKEN}", "Bearer"])
def test_without_the_token_every_endpoint_but_health_is_401(guarded: Served, method, path, authorization):
    headers = {} if authorization is None else {"Authorization": authorization}
    with guarded.client() as client:
        answer = client.request(
            method,
            path,
            headers=headers,
            json={"symbol": "EURUSD", "start": "2026-10-01", "end": "2026-10-02"},
        )
    assert answer.status_code == 401, answer.text
    assert answer.headers["WWW-Authenticate"] == "Bearer"
    assert answer.json()["detail"].startswith("authorization: ") and TOKEN not in answer.text


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_with_the_token_they_answer(guarded: Served, method, path):
    with guarded.client(headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        answer = client.request(
            method, path, json={"symbol": "EURUSD", "start": "2026-10-01", "end": "2026-10-02"}
        )
    assert answer.status_code in (200, 202), answer.text


def test_health_and_the_openapi_document_stay_open(guarded: Served):
    with guarded.client() as client:
        assert client.get("/health").status_code == 200
        document = client.get("/openapi.json").json()
    assert "HTTPBearer" in document["components"]["securitySchemes"]
    assert document["paths"]["/candles"]["get"]["security"] == [{"HTTPBearer": []}]
    assert "security" not in document["paths"]["/health"]["get"]
