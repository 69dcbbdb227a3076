"""A one-day refresh run with its steps as subprocesses against the same run in the run's process.

    python benchmarks/bench_small_runs.py [--symbol BTCUSD] [--rounds 3]

The run is what the priority refresh asks for: the symbol's daily job (its base and every timeframe
derived from it up to D1) over yesterday's partition, through `execute_job` on a fresh instance
against the bundled server (unthrottled), as the run process of a launched run executes it. Each
round runs the lane executor's two ways back to back, alternating which goes first, so the noisy
shared machine weighs on both alike:

- `subprocesses`: the executor's default, one subprocess per step (each imports the code location);
- `in run process`: `IN_RUN_PROCESS_CONFIG`, what the schedules and sensors give their small runs.

Printed per way: the run's wall seconds from its first event to its last (median over the rounds),
the CPU seconds of this process and its children over the run, and the ratio subprocesses / in run
process of both.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import statistics
import sys
import tempfile
from pathlib import Path

from dagster import DagsterInstance, build_reconstructable_job, execute_job

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from massive_pipeline.candles.assets import candle_key  # noqa: E402 - after the repository is on sys.path
from massive_pipeline.candles.jobs import IN_RUN_PROCESS_CONFIG, job_name_for  # noqa: E402
from massive_pipeline.core.catalog import load_catalog  # noqa: E402
from massive_pipeline.core.timeframes import Timeframe  # noqa: E402
from massive_pipeline.operations.runs import daily_timeframes  # noqa: E402
from massive_pipeline.testing.devserver import DevServer  # noqa: E402

WAYS = {"subprocesses": {}, "in run process": dict(IN_RUN_PROCESS_CONFIG)}


def candle_job(job_name: str):
    """The reconstructor the run and its step subprocesses call: the code location's job."""
    from massive_pipeline.definitions import build_definitions

    return build_definitions().resolve_job_def(job_name)


def _cpu() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def run_once(symbol: str, run_config: dict, day: str) -> tuple[float, float]:
    """(run seconds first event to last, CPU seconds) of one run of the symbol's daily job."""
    (spec,) = [s for s in load_catalog() if s.symbol == symbol]
    job_name = job_name_for(spec, Timeframe.D1)
    recon = build_reconstructable_job("bench_small_runs", candle_job.__name__, reconstructable_args=(job_name,),
                                      reconstructor_working_directory=str(Path(__file__).parent))
    keys = [candle_key(symbol, tf) for tf in daily_timeframes(spec)]
    cpu = _cpu()
    with DagsterInstance.get() as instance, execute_job(
            recon, instance, run_config=run_config, tags={"dagster/partition": day}, asset_selection=keys) as result:
        if not result.success:
            raise SystemExit(f"run {result.run_id} failed: {[e.message for e in result.all_events if e.is_failure]}")
        records = instance.get_records_for_run(result.run_id).records
    stamps = [r.event_log_entry.timestamp for r in records]
    return max(stamps) - min(stamps), _cpu() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbol", default="BTCUSD")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    day = (dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)).isoformat()
    results: dict[str, list[tuple[float, float]]] = {way: [] for way in WAYS}
    with tempfile.TemporaryDirectory() as tmp, DevServer(port=0) as server:
        home = Path(tmp) / "home"
        home.mkdir()
        os.environ.update({
            "DAGSTER_HOME": str(home), "MASSIVE_API_KEY": "bench-key", "MASSIVE_BASE_URL": server.url,
            "MASSIVE_RATE_LIMIT_PER_MINUTE": "100000", "MASSIVE_RATE_LIMIT_URL": f"sqlite:///{tmp}/limiter.sqlite",
            "MASSIVE_DATABASE_URL": f"sqlite:///{tmp}/candles.sqlite",
        })
        (home / "dagster.yaml").write_text("")
        run_once(args.symbol, WAYS["in run process"], day)  # the store's schema and the first fetch, not timed
        for k in range(args.rounds):
            order = list(WAYS) if k % 2 == 0 else list(reversed(WAYS))
            for way in order:
                results[way].append(run_once(args.symbol, WAYS[way], day))
    print(f"{args.symbol} one-day refresh ({day}), daily job, {args.rounds} rounds, bundled server:")
    medians = {way: (statistics.median(r for r, _ in rs), statistics.median(c for _, c in rs))
               for way, rs in results.items()}
    for way, (wall, cpu) in medians.items():
        print(f"  {way:<15} run {wall:6.1f} s   CPU {cpu:6.1f} s")
    (sub_wall, sub_cpu), (in_wall, in_cpu) = medians["subprocesses"], medians["in run process"]
    print(f"  ratio subprocesses / in run process: run {sub_wall / in_wall:.1f}x, CPU {sub_cpu / in_cpu:.1f}x")


if __name__ == "__main__":
    main()
