"""An hour of unattended operation at the free plan's 5 requests a minute, on an accelerated clock.

The code location's own schedules (5-minute priority refresh, snapshots, hourly weekly bars) and the
secondary-queue sensor tick as Dagster's daemon would tick them, every 30 simulated seconds; the
runs they request go through the real run queue of an instance configured from
`deploy/dagster.yaml` (run limits, tag limits, pools), dequeued by Dagster's run queue daemon and run
by the run launcher in processes of a gRPC code server, against the bundled server. A two-year
backfill of EURUSD (critical) and one of GBPUSD (high) are submitted at the start, as
`massive-pipeline backfill --submit` submits them, and compete for run slots, pool slots and API
budget throughout. A simulated minute lasts
60/speedup real seconds for the limiter and for the server's own rate limit alike, so any 429 would
be a real one. Prints the requests per simulated minute, whether every critical symbol was
refreshed at every 5-minute tick and the worst lag from a tick to that refresh's end, the 429s,
how far each backfill got (API pages answered, bars written), and per secondary symbol whether it stayed within its freshness
limit or was reported as behind, with the reason the queue gave.

    python benchmarks/bench_simulated_hour.py                      # the packaged 46-symbol catalog, 12 min
    python benchmarks/bench_simulated_hour.py --minutes 15 --catalog my.yaml --speedup 10

Each candle run costs about 2.5 CPU seconds (seven steps with their quality checks), so the speedup
a machine sustains depends on its cores: at 10x two cores cannot keep up with the full catalog's
runs (they start late in simulated time, which the report would show as missed refreshes), at 5x
they can. The test suite runs the 5-symbol test catalog at 10x.

With 43 non-critical symbols and 5 requests a minute not every symbol can be fresh: the high tier
is, and the rest are reported behind with "waiting for budget". Exit status 1 when a 429 was
answered, a critical refresh was missed, a backfill made no progress, or a symbol fell behind
without a reason.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import warnings

import pandas as pd


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalog", help="catalog YAML (default: the packaged one)")
    parser.add_argument("--minutes", type=int, default=60, help="simulated minutes (default 60)")
    parser.add_argument("--speedup", type=float, default=5.0,
                        help="simulated seconds per real second (default 5: 5 requests per 12 real s)")
    parser.add_argument("--start", default="2026-10-14T14:00:00Z",
                        help="simulated start, UTC (default a Wednesday 14:00, when every market trades)")
    parser.add_argument("--backfill", action="append", metavar="SYMBOL:DAYS",
                        help="a backfill submitted at the start (default EURUSD:730 and GBPUSD:730)")
    args = parser.parse_args()

    warnings.filterwarnings("ignore")
    os.environ.setdefault("DAGSTER_HOME", tempfile.mkdtemp(prefix="massive-bench-home-"))
    os.environ.pop("MASSIVE_REDIS_URL", None)
    from massive_pipeline.core.catalog import load_catalog
    from massive_pipeline.testing.simulation import SimulationConfig, run_simulation

    catalog = load_catalog(args.catalog)
    backfills = tuple((item.split(":")[0], int(item.split(":")[1])) for item in args.backfill or [])
    config = SimulationConfig(start=pd.Timestamp(args.start), minutes=args.minutes, speedup=args.speedup,
                              **({"backfills": backfills} if backfills else {}))
    print(f"{len(catalog)} symbols ({len(catalog.critical())} critical); {args.minutes} simulated minutes "
          f"in about {args.minutes * 60 / args.speedup:.0f} s", flush=True)
    report = run_simulation(catalog, config, progress=lambda line: print(line, flush=True))
    print(report.format())
    print("RESULT:", "ok" if report.ok else "FAILED")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
