"""`GET /gaps` and `GET /revisions` with their symbol/timeframe filters."""

from __future__ import annotations

import pytest

from massive_pipeline_tests.service.conftest import REVISED_BARS, REVISED_FROM, Served


def test_gaps_lists_the_recorded_gaps(client):
    body = client.get("/gaps").json()
    assert body["count"] == 2 and body["by_status"] == {"detected": 1, "filled": 1}
    first = body["gaps"][0]
    assert (
        first["symbol"],
        first["timeframe"],
        first["gap_start"],
        first["gap_end"],
        first["candles_missing"],
    ) == ("EURUSD", "M1", "2026-10-05T03:00:00Z", "2026-10-05T03:10:00Z", 10)
    assert first["status"] == "detected" and first["filled_at"] is None
    assert body["gaps"][1]["filled_at"] is not None


@pytest.mark.parametrize(
    ("query", "count"),
    [
        ({"status": "filled"}, 1),
        ({"status": "unfillable"}, 0),
        ({"symbol": "eurusd"}, 2),
        ({"symbol": "GBPUSD"}, 0),
        ({"timeframe": "1min"}, 2),
        ({"timeframe": ["H1", "D1"]}, 0),
        ({"symbol": "GBPUSD,EURUSD", "timeframe": "M1"}, 2),
    ],
)
def test_gap_filters(client, query, count):
    assert client.get("/gaps", params=query).json()["count"] == count


def test_revisions_show_old_and_new_values(served: Served, client):
    body = client.get("/revisions", params={"symbol": "EURUSD"}).json()
    assert body["count"] == body["shown"] == REVISED_BARS
    stored = served.stored("EURUSD", "M1").set_index("ts")
    for rev in body["revisions"]:
        assert rev["run_id"] == "revising-run" and rev["timeframe"] == "M1"
        assert rev["new_close"] == pytest.approx(rev["old_close"] + 1e-5, abs=1e-12)
        assert rev["new_close"] == stored.loc[rev["ts"].replace("Z", "+00:00"), "close"]
    assert body["revisions"][0]["ts"] == REVISED_FROM.strftime("%Y-%m-%dT%H:%M:%SZ")
    newest = client.get("/revisions", params={"limit": 2}).json()
    assert newest["count"] == REVISED_BARS and [r["ts"] for r in newest["revisions"]] == [
        r["ts"] for r in body["revisions"][-2:]
    ]


@pytest.mark.parametrize(
    ("query", "count"),
    [
        ({"timeframe": "H1"}, 0),
        ({"since": "2199-01-01"}, 0),
        ({"since": "2026-01-01T00:00:00Z"}, REVISED_BARS),
        ({"symbol": "GBPUSD"}, 0),
    ],
)
def test_revision_filters(client, query, count):
    assert client.get("/revisions", params=query).json()["count"] == count


@pytest.mark.parametrize(
    ("path", "query", "status", "parameter"),
    [
        ("/gaps", {"status": "open"}, 422, "status"),
        ("/gaps", {"timeframe": "M2"}, 422, "timeframe"),
        ("/gaps", {"symbol": "NOSUCH"}, 404, "symbol"),
        ("/revisions", {"since": "last week"}, 422, "since"),
        ("/revisions", {"limit": "0"}, 422, "limit"),
        ("/revisions", {"symbol": "NOSUCH"}, 404, "symbol"),
    ],
)
def test_bad_filters_are_named(client, path, query, status, parameter):
    answer = client.get(path, params=query)
    assert answer.status_code == status and answer.json()["parameter"] == parameter, answer.text
