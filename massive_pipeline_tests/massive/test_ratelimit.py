"""The shared rate limiter, judged by the bundled server's own count of requests."""

from __future__ import annotations

import os
import sqlite3
import sys
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager

import pytest

from massive_pipeline.massive.ratelimit import (
    RateLimiterConfigError,
    RequestWeightError,
    SharedRateLimiter,
    reserve_for,
)
from massive_pipeline.testing.devserver import DevServer
from massive_pipeline.testing.limiter_load import run_load, weight_of
from massive_pipeline_tests import limiter_mix, limiter_startup
from massive_pipeline_tests.conftest import _fresh_postgres_database, redis_test_url
from massive_pipeline_tests.processes import ROOT, pipeline_env, start, wait_until
from massive_pipeline_tests.virtual_time import VirtualTime

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
        url = redis_test_url()
        with SharedRateLimiter(LIMIT, WINDOW, backend_url=url) as limiter:
            limiter.reset()
        yield url
    else:
        with fresh_postgres() as url:
            yield url


# judged by arrival times at the server within a window's latency margin: in the serial phase, away
# from the parallel phase's load (scripts/run-tests.sh)
@pytest.mark.serial
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


@pytest.mark.parametrize("backend", ["sqlite", "postgres", "redis"])
def test_six_processes_starting_at_once_on_a_new_backend(tmp_path, backend):
    """A deployment's first start: every process builds its limiter on an empty backend at once."""
    rounds, processes = 20, 6
    fresh = {"postgres": lambda _: fresh_postgres(), "redis": lambda _: _empty_redis(),
             "sqlite": lambda round_: _sqlite_file(tmp_path, round_)}[backend]
    with limiter_startup.starting_line(processes) as line:
        for round_ in range(rounds):
            with fresh(round_) as url:
                outcomes = line.start(url)
                assert outcomes == ["ok"] * processes, f"round {round_}: {outcomes}"
                # one non-critical request each: counted once in the log and in the statistics
                with SharedRateLimiter(limiter_startup.LIMIT, limiter_startup.WINDOW,
                                       reserve=limiter_startup.RESERVE, backend_url=url) as limiter:
                    stats = limiter.stats()
                    assert limiter.used_in_last(limiter_startup.WINDOW) == (processes, processes)
                assert (stats.used, stats.acquired, stats.acquired_critical, stats.waiting) == (processes, processes, 0, 0)


@contextmanager
def _sqlite_file(tmp_path, round_: int):
    yield f"sqlite:///{tmp_path}/round-{round_}/limiter.sqlite"


@contextmanager
def _empty_redis():
    """Redis has no schema: a new backend is one without the limiter's keys (its script is loaded on use)."""
    url = redis_test_url()
    with SharedRateLimiter(LIMIT, WINDOW, backend_url=url) as limiter:
        limiter.reset()
    yield url


@pytest.mark.parametrize("backend_url", ["sqlite", "redis", "postgres"], indirect=True)
def test_reset_works_on_a_backend_that_has_only_been_opened(backend_url):
    """`reset()` before any token was taken, with no reserve (so no process ever used the second bucket)."""
    with SharedRateLimiter(3, 30.0, backend_url=backend_url) as limiter:
        limiter.reset()
        limiter.acquire()
        assert limiter.stats().used == 1
        limiter.reset()
        assert (limiter.stats().used, limiter.stats().acquired) == (0, 0)


# judged by arrival times at the server within a window's latency margin: in the serial phase, away
# from the parallel phase's load (scripts/run-tests.sh)
@pytest.mark.serial
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


# -- the critical reserve, played on a virtual clock (deterministic) ----------------------------------

MODEL_LIMIT, MODEL_WINDOW, MODEL_RESERVE = 5, 60.0, 1


def _model(tmp_path, vt: VirtualTime) -> Callable[[], SharedRateLimiter]:
    """One limiter per actor, as one per process, on one SQLite file and the virtual clock (no margin,
    so the times are the model's own)."""
    url = f"sqlite:///{tmp_path}/limiter.sqlite"
    return lambda: SharedRateLimiter(MODEL_LIMIT, MODEL_WINDOW, reserve=MODEL_RESERVE, backend_url=url,
                                     margin_ms=0, clock=vt.now, sleep=vt.sleep)


def _flood(vt: VirtualTime, make: Callable[[], SharedRateLimiter], sent: list[tuple[float, bool]],
           until: float) -> Callable[[], None]:
    """A process sending non-critical requests back to back, as a backfill does."""
    def body() -> None:
        with make() as limiter:
            while vt.now() < until:
                limiter.acquire(critical=False)
                sent.append((vt.now(), False))
    return body


def _assert_budget_held(sent: list[tuple[float, bool]]) -> None:
    everything = sorted(t for t, _ in sent)
    noncritical = sorted(t for t, critical in sent if not critical)
    assert _max_in_window(everything, MODEL_WINDOW) <= MODEL_LIMIT, everything
    assert _max_in_window(noncritical, MODEL_WINDOW) <= MODEL_LIMIT - MODEL_RESERVE, noncritical


def _opening(vt: VirtualTime, make, sent: list[tuple[float, bool]], schedule: list[tuple[float, bool]]):
    """One process sending requests at the given (time, critical) instants, noting when each was sent."""

    def requests() -> None:
        with make() as limiter:
            for at, critical in schedule:
                if at > vt.now():
                    vt.sleep(at - vt.now())
                limiter.acquire(critical=critical)
                sent.append((vt.now(), critical))

    return requests


def _critical_request(vt: VirtualTime, make, sent: list[tuple[float, bool]], asked: dict[str, float]):
    """One critical request, noting in `asked` when it asked and when it was served."""

    def request() -> None:
        with make() as limiter:
            asked["at"] = vt.now()
            limiter.acquire(critical=True)
            asked["served"] = vt.now()
            sent.append((vt.now(), True))

    return request


def test_reserve_holds_in_the_modelled_scenario(tmp_path):
    """5 a minute, reserve 1: four critical requests and one other at t=0, three processes flooding
    non-critical requests from t=1, a critical request at 61.5 s.

    With two buckets the flood's non-critical tokens, taken at t=1 and spent at t=60, expired at
    t=61 while their requests had just been sent: five non-critical requests in [60, 61], and the
    critical request of 61.5 s waited until 120 s.
    """
    vt = VirtualTime()
    make = _model(tmp_path, vt)
    sent: list[tuple[float, bool]] = []
    asked: dict[str, float] = {}

    vt.spawn(0.0, _opening(vt, make, sent, [(0.0, True)] * 4 + [(0.0, False)]))
    for _ in range(3):
        vt.spawn(1.0, _flood(vt, make, sent, until=130.0))
    vt.spawn(61.5, _critical_request(vt, make, sent, asked))
    vt.run()

    _assert_budget_held(sent)
    assert asked["served"] - asked["at"] < 0.01, asked  # the reserve was there: served at once
    assert sum(1 for t, critical in sent if not critical and t <= 130) >= 8  # the flood was not starved


def test_a_waiting_critical_request_gets_the_first_token_that_frees_up(tmp_path):
    """A full window (two critical, three non-critical entries) and two processes flooding: a critical
    request asking at 45 s is served when the oldest entry expires (60 s), even though the floods
    were waiting first and a non-critical request would fit then too."""
    vt = VirtualTime()
    make = _model(tmp_path, vt)
    sent: list[tuple[float, bool]] = []
    asked: dict[str, float] = {}

    vt.spawn(0.0, _opening(vt, make, sent, [(0.0, True), (10.0, False), (20.0, False), (30.0, True)]))
    for _ in range(2):
        vt.spawn(31.0, _flood(vt, make, sent, until=130.0))
    vt.spawn(45.0, _critical_request(vt, make, sent, asked))
    vt.run()

    _assert_budget_held(sent)
    assert 60.0 <= asked["served"] <= 60.01, asked


# -- the critical reserve across real processes, judged by the bundled server -------------------------

# judged by arrival times at the server within a window's latency margin: in the serial phase, away
# from the parallel phase's load (scripts/run-tests.sh)
@pytest.mark.serial
@pytest.mark.slow
@pytest.mark.parametrize("backend_url", ["sqlite", "redis", "postgres"], indirect=True)
def test_reserve_holds_against_three_flooding_processes(backend_url):
    """Three processes flood non-critical requests, a fourth sends critical ones in bursts of three, at
    5 per 2 s with a reserve of 1, against the server's own log (the server enforcing 5 per 2 s too).

    "Within one window" is the limiter's window: the plan's plus the latency margin, the longest the
    oldest request of a full window can still count. The margin is 250 ms here rather than the
    default 100 ms: on two shared cores a process can be descheduled for more than 100 ms between
    its decision and its request reaching the server (the simulation keeps 600 ms for that reason).
    With two buckets, bursts like these let five non-critical requests into a window and kept a
    critical request waiting about 4 s.
    """
    reserve, margin_ms = 1, 250
    limiter_window = WINDOW + margin_ms / 1000
    with DevServer(port=0, rate_limit=LIMIT, rate_window_seconds=WINDOW) as srv:
        result = limiter_mix.run_mix(srv.url, backend_url=backend_url, limit=LIMIT, window=WINDOW,
                                     reserve=reserve, seconds=6.0, margin_ms=margin_ms)
        records = sorted((r for r in srv.requests if r.kind == "aggs"), key=lambda r: r.time)
        rejected = srv.rejected_429_count()
    critical = [r.time for r in records if limiter_mix.CRITICAL_TICKER in r.path]
    noncritical = [r.time for r in records if limiter_mix.NONCRITICAL_TICKER in r.path]
    assert rejected == 0
    assert len(critical) + len(noncritical) == len(records)
    assert _max_in_window([r.time for r in records], WINDOW) <= LIMIT
    assert _max_in_window(noncritical, WINDOW) <= LIMIT - reserve
    # the k-th critical request the server answered is the k-th the critical process asked for
    assert len(critical) == len(result.critical_asked) >= 3, (len(critical), len(result.critical_asked))
    waits = [served - asked for served, asked in zip(critical, result.critical_asked, strict=True)]
    print(f"\n{backend_url.split(':')[0]}: worst critical wait {max(waits):.3f} s (window {WINDOW:g} s, "
          f"limiter window {limiter_window:g} s); "
          f"critical waits {[round(w, 3) for w in waits]}; "
          f"non-critical sent per process {result.noncritical_sent}")
    # at most one limiter window, plus the waiter's wake-up and the request's way to the server: 0.4 s
    # on two shared cores (a clean-clone CI run saw 2.366 s against a 2.25 s window); without the
    # reserve the critical process waited about 4 s, so the bound still tells the two apart
    assert max(waits) <= limiter_window + 0.4, waits
    assert all(n > 0 for n in result.noncritical_sent), result.noncritical_sent
    # the floods did use what the critical process left
    allowed = (records[-1].time - records[0].time) / WINDOW * LIMIT
    assert len(records) >= 0.75 * allowed, (len(records), allowed)


_WAITER = """
import sys
from massive_pipeline.massive.ratelimit import SharedRateLimiter
SharedRateLimiter(1, 60.0, backend_url=sys.argv[1], lease_seconds=float(sys.argv[2])).acquire()
"""


# a lease renewed in real time (every quarter lease): a process starved longer than its lease by the
# parallel phase's load stops counting as waiting, as it should; so it runs in the serial phase
@pytest.mark.serial
@pytest.mark.parametrize("backend_url", ["sqlite", "redis", "postgres"], indirect=True)
def test_a_killed_waiter_stops_counting_as_waiting(backend_url, tmp_path):
    """`waiting` is the live waiters' leases, not a counter a killed process can leave behind."""
    lease = 1.0
    with SharedRateLimiter(1, 60.0, backend_url=backend_url) as limiter:
        limiter.acquire()  # the window's only token: the next request waits a minute
        env = pipeline_env(PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
        waiter = start([sys.executable, "-c", _WAITER, backend_url, str(lease)], env=env,
                                 log=tmp_path / "waiter.log", name="waiting process")
        try:
            wait_until(lambda: limiter.stats().waiting == 1, timeout=60, what="the process waits",
                                 interval=0.05, on_timeout=waiter.output)
            # while it lives it renews its lease: still counted after several leases
            renewed_until = time.monotonic() + 3 * lease
            while time.monotonic() < renewed_until:
                assert limiter.stats().waiting == 1, waiter.output()
                time.sleep(0.05)  # sampling a period, not waiting for a condition
        finally:
            waiter.kill9()
        killed = time.monotonic()
        wait_until(lambda: limiter.stats().waiting == 0, timeout=10, what="the killed waiter is forgotten",
                             interval=0.05)
        assert time.monotonic() - killed <= lease + 0.5
        assert limiter.stats().used == 1  # and it never sent anything


# -- budgets per provider and request weight ----------------------------------------------------------

def _max_units_in_window(sent: list[tuple[float, int]], window: float) -> int:
    """The most units of weight any window of `window` seconds holds, from (time, weight) pairs."""
    sent = sorted(sent)
    best, lo, units = 0, 0, 0
    for t, weight in sent:
        units += weight
        while t - sent[lo][0] >= window:
            units -= sent[lo][1]
            lo += 1
        best = max(best, units)
    return best


@pytest.mark.parametrize("backend_url", ["sqlite", "redis", "postgres"], indirect=True)
def test_two_budgets_in_one_backend_do_not_see_each_other(backend_url):
    """A full Massive budget leaves Binance's untouched, and the other way round, in every backend."""
    with SharedRateLimiter(3, 30.0, backend_url=backend_url) as massive, \
            SharedRateLimiter(10, 30.0, budget="binance", reserve=2, backend_url=backend_url) as binance:
        binance.reset()  # Redis keeps keys between tests; the fixture reset only Massive's
        for _ in range(3):
            massive.acquire()
        assert binance.stats().used == 0
        assert binance.used_in_last(30.0) == (0, 0)
        # a full Massive window would make a Massive request wait 30 s: Binance's goes at once
        assert binance.acquire(critical=False, weight=8) < 1.0
        assert binance.acquire(critical=True, weight=2) < 1.0
        m, b = massive.stats(), binance.stats()
        assert (m.budget, m.used, m.remaining, m.acquired, m.requests, m.acquired_critical) == ("massive", 3, 0, 3, 3, 0)
        assert (b.budget, b.used, b.remaining, b.acquired, b.requests, b.acquired_critical) == ("binance", 10, 0, 10, 2, 2)
        assert binance.used_in_last(30.0) == (10, 8)
        assert massive.used_in_last(30.0) == (3, 3)
        binance.reset()  # forgets Binance's requests only
        assert (binance.stats().used, massive.stats().used, massive.stats().acquired) == (0, 3, 3)


def test_the_massive_budget_keeps_its_tables(tmp_path):
    """A deployment that upgrades keeps its window: the default budget logs where it always did."""
    path = tmp_path / "limiter.sqlite"
    with SharedRateLimiter(3, 30.0, backend_url=f"sqlite:///{path}") as massive, \
            SharedRateLimiter(9, 30.0, budget="binance", backend_url=f"sqlite:///{path}") as binance:
        massive.acquire()
        binance.acquire(weight=4)
    with sqlite3.connect(path) as conn:
        counts = {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
                  for t in ("limiter_log", "binance_limiter_log")}
    assert counts == {"limiter_log": 1, "binance_limiter_log": 4}


WEIGHT_LIMIT, WEIGHT_RESERVE = 12, 3


def _weighted_model(backend_url: str, vt: VirtualTime) -> Callable[[], SharedRateLimiter]:
    return lambda: SharedRateLimiter(WEIGHT_LIMIT, MODEL_WINDOW, budget="binance", reserve=WEIGHT_RESERVE,
                                     backend_url=backend_url, margin_ms=0, clock=vt.now, sleep=vt.sleep)


@pytest.mark.parametrize("backend_url", ["sqlite", "redis", "postgres"], indirect=True)
def test_weighted_requests_never_exceed_the_window(backend_url):
    """Three actors flooding requests of weights 1, 2 and 5, and critical requests of weight 3 now and
    then, 12 units a minute with 3 reserved: no window holds more than 12 units or more than 9
    non-critical ones, each critical request is served within a window, and the floods fill the rest."""
    vt = VirtualTime()
    make = _weighted_model(backend_url, vt)
    with make() as limiter:
        limiter.reset()
    sent: list[tuple[float, int, bool]] = []
    served: list[float] = []

    def flood(weight: int) -> Callable[[], None]:
        def body() -> None:
            with make() as limiter:
                while vt.now() < 300.0:
                    limiter.acquire(critical=False, weight=weight)
                    sent.append((vt.now(), weight, False))
        return body

    def critical() -> None:
        with make() as limiter:
            for at in (30.0, 95.0, 170.0, 250.0):
                vt.sleep(at - vt.now())
                limiter.acquire(critical=True, weight=3)
                served.append(vt.now() - at)
                sent.append((vt.now(), 3, True))

    for weight in (1, 2, 5):
        vt.spawn(0.0, flood(weight))
    vt.spawn(0.0, critical)
    vt.run()

    assert _max_units_in_window([(t, w) for t, w, _ in sent], MODEL_WINDOW) <= WEIGHT_LIMIT
    assert _max_units_in_window([(t, w) for t, w, c in sent if not c], MODEL_WINDOW) <= WEIGHT_LIMIT - WEIGHT_RESERVE
    assert len(served) == 4 and max(served) <= MODEL_WINDOW + 0.01, served
    assert {w for _, w, c in sent if not c} == {1, 2, 5}  # no weight starved
    units = sum(w for t, w, _ in sent if t < 300.0)
    assert units >= 0.75 * WEIGHT_LIMIT * 300.0 / MODEL_WINDOW, units
    with make() as limiter:
        stats = limiter.stats()
    assert stats.acquired == sum(w for _, w, _ in sent) and stats.requests == len(sent)
    assert stats.acquired_critical == 12


# judged by arrival times at the server within a window's latency margin: in the serial phase, away
# from the parallel phase's load (scripts/run-tests.sh)
@pytest.mark.serial
@pytest.mark.slow
@pytest.mark.parametrize("backend_url", ["sqlite", "redis", "postgres"], indirect=True)
def test_three_weighted_processes_never_exceed_the_window(server, backend_url):
    """Three processes started at once on the Binance budget, requests of weight 1, 2 and 3 at 8 units
    per 2 s, judged by the server's log; Massive's budget on the same backend is left untouched."""
    limit = 8
    with SharedRateLimiter(limit, WINDOW, budget="binance", backend_url=backend_url) as binance:
        binance.reset()
    seconds = 16.0 if backend_url.startswith("sqlite") else 8.0
    # 400 ms for latency jitter (the real 60 s window has 600 ms): a weight-3 request decided late
    # and sent fast can arrive within 2 s of one decided 2.1 s earlier that the loaded machine slowed
    result = run_load(server.url, processes=3, limit=limit, window=WINDOW, seconds=seconds,
                      backend_url=backend_url, budget="binance", weights=[1, 2, 3], margin_ms=400)
    sent = [(r.time, weight_of(r.path)) for r in server.requests if r.kind == "aggs" and r.status == 200]
    assert len(sent) == result.requests_sent
    assert all(n > 0 for n in result.per_process), result.per_process
    assert _max_units_in_window(sent, WINDOW) <= limit
    times = sorted(t for t, _ in sent)
    allowed = (times[-1] - times[0]) / (WINDOW + 0.4) * limit
    assert sum(w for _, w in sent) >= 0.7 * allowed, (sum(w for _, w in sent), allowed)
    with SharedRateLimiter(limit, WINDOW, budget="binance", backend_url=backend_url) as binance, \
            SharedRateLimiter(LIMIT, WINDOW, backend_url=backend_url) as massive:
        assert (binance.stats().acquired, binance.stats().requests) == (sum(w for _, w in sent), len(sent))
        assert (massive.stats().acquired, massive.stats().requests, massive.stats().used) == (0, 0, 0)


@pytest.mark.parametrize(
    ("kwargs", "acquire", "message"),
    [
        ({"limit": 10}, {"weight": 11}, "request weight 11 exceeds the massive budget's limit of 10"),
        ({"limit": 10, "reserve": 3, "budget": "binance"}, {"weight": 8},
         "non-critical share of 7 (limit 10 - reserve 3)"),
        ({"limit": 10}, {"weight": 0}, "at least 1, got 0"),
    ],
)
def test_weights_a_budget_can_never_hold_are_refused(tmp_path, kwargs, acquire, message):
    with SharedRateLimiter(**kwargs, backend_url=f"sqlite:///{tmp_path}/l.sqlite") as limiter:
        with pytest.raises(RequestWeightError) as err:
            limiter.acquire(**acquire)
        assert message in str(err.value)
        # a critical request may use the reserve too
        limiter.acquire(critical=True, weight=kwargs["limit"])
        assert limiter.stats().used == kwargs["limit"]


@pytest.mark.parametrize("budget", ["", "Binance", "binance-spot", "1x", "a" * 25, "x;drop"])
def test_bad_budget_names_are_refused_clearly(tmp_path, budget):
    with pytest.raises(RateLimiterConfigError) as err:
        SharedRateLimiter(5, budget=budget, backend_url=f"sqlite:///{tmp_path}/l.sqlite")
    assert str(err.value).startswith(f"rate limit budget name {budget!r} must be")
