"""Shared rate limiter across processes: does the budget hold, and is it used?

Three processes share one limiter (default backend: a SQLite file) at 5 requests per 2 s, an
accelerated stand-in for the free plan's 5 per minute, for 60 s against the bundled server.
Prints the most requests the server saw in any 2 s window (must be <= 5) and the share of the
allowed rate the three reached together (goal >= 90%).

    python benchmarks/bench_ratelimit.py [--seconds 60] [--backend sqlite|redis|postgres]
"""

from __future__ import annotations

import argparse
import tempfile

from massive_pipeline.massive.ratelimit import SharedRateLimiter
from massive_pipeline.testing.devserver import DevServer
from massive_pipeline.testing.limiter_load import run_load

LIMIT, WINDOW = 5, 2.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--processes", type=int, default=3)
    parser.add_argument("--backend", choices=("sqlite", "redis", "postgres"), default="sqlite")
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="massive-bench-")
    backend_url = {
        "sqlite": f"sqlite:///{tmp}/limiter.sqlite",
        "redis": "redis://127.0.0.1:6379/0",
        "postgres": "postgresql://postgres@127.0.0.1:5432/test",
    }[args.backend]
    SharedRateLimiter(LIMIT, WINDOW, backend_url=backend_url).reset()
    with DevServer(port=0) as server:
        result = run_load(
            server.url, processes=args.processes, limit=LIMIT, window=WINDOW, seconds=args.seconds,
            backend_url=backend_url,
        )
        times = sorted(r.time for r in server.requests if r.kind == "aggs" and r.status == 200)
        span = times[-1] - times[0]
        allowed = span / WINDOW * LIMIT
        worst = server.max_requests_in_window(WINDOW)
        print(f"backend {args.backend}: {args.processes} processes, {LIMIT} requests per {WINDOW:g} s, "
              f"{result.seconds:.1f} s")
        print(f"requests answered: {len(times)} (per process {result.per_process}); 429 answers: "
              f"{server.rejected_429_count()}")
        print(f"most requests in any {WINDOW:g} s window: {worst} (limit {LIMIT}) -> "
              f"{'OK' if worst <= LIMIT else 'EXCEEDED'}")
        print(f"share of the allowed rate reached: {len(times)}/{allowed:.1f} = {len(times) / allowed:.1%} "
              f"(goal >= 90%)")


if __name__ == "__main__":
    main()
