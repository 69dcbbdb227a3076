"""The shared rate limiter, judged by the bundled server's own count of requests."""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager

import pytest

from massive_pipeline.massive.ratelimit import RateLimiterConfigError, SharedRateLimiter, reserve_for
from massive_pipeline.testing.devserver import DevServer
from massive_pipeline.testing.limiter_load import run_load
from massive_pipeline_tests import limiter_startup
from massive_pipeline_tests.conftest import _fresh_postgres_database

LIMIT, WINDOW = 5, 2.0


@pytest.fixture
def server():
    with DevServer(port=0) as srv:
        yield srv


def _accepted_aggs(srv: DevServer) -> list[float]:
    return sorted(r.time for r in srv.requests if r.kind == "aggs" and r.status == 200)


def _max_in_window(times: list[float], window: float) -> int:
    best, lo = 0, 0
    for hi, t in enumerate(times):
        while t - times[lo] >= window:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


fresh_postgres = contextmanager(_fresh_postgres_database)


@pytest.fixture
def backend_url(request, tmp_path):
    """A limiter backend nobody has used yet: a new SQLite file or PostgreSQL database; Redis after reset."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/limiter.sqlite"
    elif request.param == "redis":
        url = "redis://127.0.0.1:6379/0"
        with SharedRateLimiter(LIMIT, WINDOW, backend_url=url) as limiter:
            limiter.reset()
        yield url
    else:
        with fresh_postgres() as url:
            yield url


@pytest.mark.slow
@pytest.mark.parametrize("backend_url", ["sqlite", "redis", "postgres"], indirect=True)
def test_three_processes_never_exceed_the_window(server, backend_url):
    url = backend_url
    seconds = 16.0 if url.startswith("sqlite") else 8.0
    result = run_load(server.url, processes=3, limit=LIMIT, window=WINDOW, seconds=seconds, backend_url=url)
    times = _accepted_aggs(server)
    assert len(times) == result.requests_sent
    assert all(n > 0 for n in result.per_process), result.per_process  # every process got tokens
    # the judge is the server's clock, not the limiter's
    assert _max_in_window(times, WINDOW) <= LIMIT
    assert server.max_requests_in_window(WINDOW) <= LIMIT
    assert server.rejected_429_count() == 0
    # and the budget is actually used, not merely respected by being slow
    allowed = (times[-1] - times[0]) / WINDOW * LIMIT
    assert len(times) >= 0.75 * allowed, (len(times), allowed)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_six_processes_starting_at_once_on_a_new_backend(tmp_path, backend):
    """A deployment's first start: every process builds its limiter on an empty backend at once."""
    rounds, processes = 20, 6
    with limiter_startup.starting_line(processes) as line:
        for round_ in range(rounds):
            with (fresh_postgres() if backend == "postgres" else _sqlite_file(tmp_path, round_)) as url:
                outcomes = line.start(url)
                assert outcomes == ["ok"] * processes, f"round {round_}: {outcomes}"
                # one non-critical token each: counted once in each bucket and in the statistics
                with SharedRateLimiter(limiter_startup.LIMIT, limiter_startup.WINDOW,
                                       reserve=limiter_startup.RESERVE, backend_url=url) as limiter:
                    stats = limiter.stats()
                    assert limiter.used_in_last(limiter_startup.WINDOW) == (processes, processes)
                assert (stats.used, stats.acquired, stats.acquired_critical, stats.waiting) == (processes, processes, 0, 0)


@contextmanager
def _sqlite_file(tmp_path, round_: int):
    yield f"sqlite:///{tmp_path}/round-{round_}/limiter.sqlite"


@pytest.mark.parametrize("backend_url", ["sqlite", "redis", "postgres"], indirect=True)
def test_reset_works_on_a_backend_that_has_only_been_opened(backend_url):
    """`reset()` before any token was taken, with no reserve (so no process ever used the second bucket)."""
    with SharedRateLimiter(3, 30.0, backend_url=backend_url) as limiter:
        limiter.reset()
        limiter.acquire()
        assert limiter.stats().used == 1
        limiter.reset()
        assert (limiter.stats().used, limiter.stats().acquired) == (0, 0)


def test_reserve_keeps_tokens_for_critical_symbols(server, tmp_path):
    url = f"sqlite:///{tmp_path}/limiter.sqlite"
    reserve = 1
    flood_done = threading.Event()
    results: dict[str, object] = {}

    def flood() -> None:
        results["load"] = run_load(
            server.url, processes=2, limit=LIMIT, window=WINDOW, seconds=7.0, reserve=reserve, backend_url=url
        )
        flood_done.set()

    threading.Thread(target=flood, daemon=True).start()
    limiter = SharedRateLimiter(LIMIT, WINDOW, reserve=reserve, backend_url=url)
    # wait until the flood has used up the non-critical share of a window
    deadline = time.monotonic() + 30
    while limiter.stats().used < LIMIT - reserve:
        assert time.monotonic() < deadline, "the flood never started"
        time.sleep(0.05)
    critical_waits = [limiter.acquire(critical=True)]
    noncritical_wait = limiter.acquire(critical=False)
    assert flood_done.wait(60)
    limiter.close()
    # a critical request finds the reserved token at once; a non-critical one queues behind the flood
    assert max(critical_waits) < 0.3, critical_waits
    assert noncritical_wait > 0.5, noncritical_wait
    assert server.max_requests_in_window(WINDOW) <= LIMIT


def test_statistics_are_shared_between_processes(tmp_path):
    url = f"sqlite:///{tmp_path}/limiter.sqlite"
    first = SharedRateLimiter(3, 30.0, backend_url=url)
    second = SharedRateLimiter(3, 30.0, backend_url=url)
    for _ in range(3):
        first.acquire()
    stats = second.stats()
    assert (stats.used, stats.remaining, stats.acquired, stats.waiting) == (3, 0, 3, 0)
    assert stats.backend.startswith("sqlite:")
    first.close()
    second.close()


def test_reserve_sizes():
    assert reserve_for(5, 0.2) == 1
    assert reserve_for(1, 0.2) == 0
    assert reserve_for(100, 0.2) == 20
    assert reserve_for(5, 0.0) == 0
    assert reserve_for(2, 0.9) == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"limit": 0}, "at least 1"),
        ({"limit": 5, "reserve": 5}, "critical reserve"),
        ({"limit": 5, "backend_url": "mysql://u:hunter2@db/x"}, "mysql://u:***@db/x"),
        ({"limit": 5, "backend_url": "redis://:hunter2@127.0.0.1:1/0"}, "not reachable"),
    ],
)
def test_bad_settings_are_refused_clearly(kwargs, message):
    with pytest.raises(RateLimiterConfigError) as err:
        SharedRateLimiter(**kwargs)
    assert message in str(err.value)
    assert "hunter2" not in str(err.value)
