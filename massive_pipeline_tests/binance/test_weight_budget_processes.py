"""Three processes fetching Binance klines at once share one weight budget: judged by the bundled
Binance server's own log, no window ever carries more weight than the budget, and Massive's budget
in the same backend is not touched (issue: a budget per provider)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from massive_pipeline.massive.ratelimit import SharedRateLimiter
from massive_pipeline.testing.binance_server import BinanceServer
from massive_pipeline.testing.limiter_load import BINANCE_KLINES_PER_REQUEST, run_binance_load
from massive_pipeline_tests.conftest import _fresh_postgres_database, redis_test_url
from massive_pipeline_tests.massive.test_ratelimit import _max_units_in_window

LIMIT, WINDOW = 20, 2.0  # weight units per window: a scale model of 1,200 a minute
# the limiter's allowance for the gap between deciding and arriving, as on the real 60 s window
# (1 % of it); a 2 s window's own 100 ms is thinner than request latency jitters on a loaded machine
MARGIN_MS = 600


@pytest.fixture
def backend_url(request, tmp_path) -> Iterator[str]:
    """A limiter backend nobody has used yet (Redis: both budgets reset)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/limiter.sqlite"
    elif request.param == "redis":
        url = redis_test_url()
        for budget in ("massive", "binance"):
            with SharedRateLimiter(LIMIT, WINDOW, budget=budget, backend_url=url) as limiter:
                limiter.reset()
        yield url
    else:
        with contextmanager(_fresh_postgres_database)() as url:
            yield url


# judged by arrival times at the server within a window's latency margin: in the serial phase, away
# from the parallel phase's load (scripts/run-tests.sh)
@pytest.mark.serial
@pytest.mark.parametrize("backend_url", ["sqlite", "redis", "postgres"], indirect=True)
def test_three_binance_processes_never_pass_the_weight_budget(backend_url):
    # the server's clock runs in real time, so its arrival stamps are the judge
    with BinanceServer(port=0, now="2026-03-31T12:00:00Z", speed=1.0) as server:
        result = run_binance_load(server.url, limit=LIMIT, window=WINDOW, seconds=6.0, backend_url=backend_url,
                                  margin_ms=MARGIN_MS)
        log = [r for r in server.kline_requests() if r.status == 200]
    assert len(log) == result.requests_sent
    assert all(n >= 1 for n in result.per_process), result.per_process  # no process starved
    assert {r.weight for r in log} == {1, 2, 5}  # one process per weight band
    assert sorted({r.limit for r in log}) == list(BINANCE_KLINES_PER_REQUEST)
    heaviest = _max_units_in_window([(r.time_ms / 1000, r.weight) for r in log], WINDOW)
    print(f"\n{backend_url.split(':')[0]}: {len(log)} requests, weight {sum(r.weight for r in log)} in "
          f"{result.seconds:.1f} s, heaviest {WINDOW:g} s window {heaviest} of {LIMIT}")
    assert heaviest <= LIMIT
    with SharedRateLimiter(LIMIT, WINDOW, budget="binance", backend_url=backend_url) as binance, \
            SharedRateLimiter(5, 60.0, backend_url=backend_url) as massive:
        assert binance.stats().acquired == sum(r.weight for r in log)
        assert massive.stats().acquired == 0 and massive.stats().used == 0  # Massive's budget untouched
