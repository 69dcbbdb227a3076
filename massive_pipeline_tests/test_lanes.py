"""The critical refresh has its own lane, in both instance configurations.

The critical lane is the priority refresh and the snapshots (`massive/purpose` priority_refresh,
snapshots): no run-queue tag limit, and its API-calling steps in pool `massive_api_critical`.
Everything else - backfills, the secondary queue, re-syncs, gap fills, the W1 rebuilds, detection,
retention - is capped by a tag limit, and only the critical symbols' bulk work (backfills,
re-syncs, gap fills of XAUUSD, EURUSD, BTCUSD) ever touches the critical pool, one step at a time
per run (the code location's executor). The tests take the numbers from `dagster.yaml` and
`deploy/dagster.yaml` and the runs from the code location's own schedules, and check the lane two
ways: by counting, and by asking the daemon's run queue which runs it would launch with the worst
mix of runs in progress and their steps holding their pool slots.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from dagster import (
    AssetKey,
    DagsterEvent,
    DagsterEventType,
    DagsterInstance,
    DagsterRun,
    DagsterRunStatus,
    Definitions,
    RunRequest,
    build_schedule_context,
    in_process_executor,
    instance_for_test,
    validate_run_config,
)
from dagster._core.instance.config import dagster_instance_config

from massive_pipeline.candles.assets import (
    BINANCE_BULK_POOL,
    BINANCE_CRITICAL_POOL,
    BULK_POOL,
    CRITICAL_LANE,
    CRITICAL_POOL,
    LANE_TAG,
    candle_key,
)
from massive_pipeline.candles.jobs import CRITICAL_STEPS_PER_RUN, IN_RUN_PROCESS_CONFIG, job_name_for
from massive_pipeline.core.catalog import Catalog, load_catalog, parse_catalog
from massive_pipeline.core.timeframes import Timeframe
from massive_pipeline.dagster_compat import registered_job_origin, runs_the_queue_would_launch
from massive_pipeline.definitions import build_definitions
from massive_pipeline.operations.queue import secondary_specs
from massive_pipeline.operations.runs import daily_run_request
from massive_pipeline.operations.schedules import GAP_DETECTION_JOB
from massive_pipeline.operations.settings import PURPOSE_TAG, SYMBOL_TAG, OperationsSettings, Purpose
from massive_pipeline.resources.candle_store import CandleStoreResource

ROOT = Path(__file__).resolve().parents[1]
INSTANCES = {"development": ROOT / "dagster.yaml", "production": ROOT / "deploy" / "dagster.yaml"}
BACKFILL_TAG = "dagster/backfill"
PARTITION_TAG = "dagster/partition"
CRITICAL_LANE_PURPOSES = (Purpose.PRIORITY_REFRESH, Purpose.SNAPSHOTS)
# Runs launched by hand (the UI outside a backfill; the command line, which does not queue) carry
# no purpose: both configs leave this many run slots and critical-pool slots for them.
BY_HAND = 2
TICK = "2026-10-07T12:05:00Z"  # a Wednesday noon: every market open, the store empty
BACKFILL_DAYS = ("2025-01-01", "2026-10-06")


@pytest.fixture
def env(monkeypatch, tmp_path: Path) -> Path:
    """The packaged catalog (the real critical symbols), an empty candle store, no API needed."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("MASSIVE_API_KEY", "test-key-123")
    monkeypatch.setenv("MASSIVE_DATABASE_URL", f"sqlite:///{tmp_path}/candles.sqlite")
    monkeypatch.setenv("MASSIVE_RATE_LIMIT_URL", f"sqlite:///{tmp_path}/limiter.sqlite")
    monkeypatch.delenv("MASSIVE_CATALOG", raising=False)
    monkeypatch.delenv("MASSIVE_MAX_RUNTIME", raising=False)
    return tmp_path


@pytest.fixture
def catalog(env) -> Catalog:
    return load_catalog()


@pytest.fixture
def defs(catalog: Catalog) -> Definitions:
    return build_definitions(catalog)


def instance_config(path: Path, home: Path) -> dict[str, Any]:
    """`path` as Dagster validates and reads it."""
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, home / "dagster.yaml")
    config, _ = dagster_instance_config(str(home))
    return dict(config)


def tag_limits(config: Mapping[str, Any]) -> dict[tuple[str, str | None], int]:
    return {(t["key"], t.get("value")): t["limit"] for t in config["concurrency"]["runs"]["tag_concurrency_limits"]}


def pool_of(defs: Definitions, key: AssetKey) -> str | None:
    return defs.resolve_assets_def(key).op.pool


def critical_lane_requests(defs: Definitions, instance: DagsterInstance) -> list[tuple[str, RunRequest]]:
    """(job, request) of every critical-lane run one tick asks for: the code location's own schedules."""
    repo = defs.get_repository_def()
    out = []
    for schedule in repo.schedule_defs:
        if schedule.tags.get(PURPOSE_TAG) not in {p.value for p in CRITICAL_LANE_PURPOSES}:
            continue
        with build_schedule_context(instance=instance, scheduled_execution_time=pd.Timestamp(TICK).to_pydatetime(),
                                    resources={"candle_store": CandleStoreResource()}, repository_def=repo) as context:
            data = schedule.evaluate_tick(context)
        out += [(r.job_name or schedule.job_name, r) for r in data.run_requests or []]
    return out


def test_critical_refresh_steps_and_backfill_steps_do_not_share_a_pool(defs: Definitions, catalog: Catalog):
    """A non-critical symbol's step (a backfill's, the queue's) is never in the critical pool; a
    critical symbol's fetched step and the snapshots always are, and carry the lane's op tag."""
    with instance_for_test() as instance:
        requests = critical_lane_requests(defs, instance)
    refresh_pools = {pool_of(defs, key) for _, r in requests for key in r.asset_selection or []}
    refresh_pools.add(pool_of(defs, AssetKey(["snapshots"])))
    assert refresh_pools - {None} == {CRITICAL_POOL}
    non_critical = [s for s in catalog if not s.is_critical]
    backfill_pools = {pool_of(defs, candle_key(s.symbol, tf)) for s in non_critical for tf in s.timeframes}
    assert backfill_pools - {None} == {BULK_POOL}
    assert not refresh_pools & backfill_pools - {None}
    for spec in catalog:
        base = defs.resolve_assets_def(candle_key(spec.symbol, spec.base_timeframe)).op
        assert (base.pool == CRITICAL_POOL) == spec.is_critical
        assert (base.tags[LANE_TAG] == CRITICAL_LANE) == spec.is_critical
    # one critical step in flight per run, in every job (the UI's asset backfills included)
    repo = defs.get_repository_def()
    for job in [*repo.get_all_jobs(), defs.resolve_implicit_global_asset_job_def()]:
        (executor,) = validate_run_config(job, {})["execution"].values()  # the run config its runs resolve to
        assert {"key": LANE_TAG, "value": CRITICAL_LANE, "limit": CRITICAL_STEPS_PER_RUN} in \
            executor["multiprocess"]["tag_concurrency_limits"], job.name
        # the small runs' switch: one step at a time in the run's process, which keeps the lane limit too
        (executor,) = validate_run_config(job, dict(IN_RUN_PROCESS_CONFIG))["execution"].values()
        assert set(executor) == {"in_process"}, job.name


def test_the_critical_lanes_runs_keep_their_steps_in_the_run_process(defs: Definitions, catalog: Catalog):
    """The priority refresh and the snapshots ask the lane executor for in-process steps (a
    subprocess per step costs more than the step's work); with an executor that does not take the
    switch (here Dagster's own in-process one), the requests carry no execution config at all."""
    with instance_for_test() as instance:
        requests = critical_lane_requests(defs, instance)
        assert {r.tags[PURPOSE_TAG] for _, r in requests} == {p.value for p in CRITICAL_LANE_PURPOSES}
        assert all(r.run_config == IN_RUN_PROCESS_CONFIG for _, r in requests)
        plain = build_definitions(catalog, executor=in_process_executor)
        assert all("execution" not in r.run_config for _, r in critical_lane_requests(plain, instance))


def test_binance_steps_have_their_own_lanes(env: Path):
    """Binance spends its own budget, so its fetched steps are in its own pools (critical and bulk
    as for Massive) and never take a Massive slot; the lane op tag is the same."""
    catalog = parse_catalog("""\
symbols:
  - {symbol: BTCUSD, ticker: "X:BTCUSD", asset_class: crypto, priority: critical, calendar: crypto, start: 2025-06-01}
  - {symbol: ETHUSD, ticker: "X:ETHUSD", asset_class: crypto, priority: low, calendar: crypto, start: 2025-06-01}
  - {symbol: BTCUSDT, ticker: BTCUSDT, provider: binance, asset_class: crypto, priority: critical, calendar: crypto,
     start: 2025-06-01}
  - {symbol: ETHUSDT, ticker: ETHUSDT, provider: binance, asset_class: crypto, priority: low, calendar: crypto,
     start: 2025-06-01}
""")
    defs = build_definitions(catalog)
    expected = {"BTCUSD": CRITICAL_POOL, "ETHUSD": BULK_POOL, "BTCUSDT": BINANCE_CRITICAL_POOL,
                "ETHUSDT": BINANCE_BULK_POOL}
    for spec in catalog:
        pools = {pool_of(defs, candle_key(spec.symbol, tf)) for tf in spec.timeframes}
        assert pools - {None} == {expected[spec.symbol]}, spec.symbol
        base = defs.resolve_assets_def(candle_key(spec.symbol, spec.base_timeframe)).op
        assert (base.tags[LANE_TAG] == CRITICAL_LANE) == spec.is_critical


@pytest.mark.parametrize("name", INSTANCES)
def test_the_limits_leave_the_critical_lane_its_runs_and_its_pool_slots(name: str, env: Path, defs: Definitions,
                                                                         catalog: Catalog):
    """Counting, from the file and the code location: with every capped kind of run at its limit
    (and the runs launched by hand), the refresh still finds a run slot for each of its runs and a
    critical-pool slot for each of its steps."""
    config = instance_config(INSTANCES[name], env / name)
    runs, pools = config["concurrency"]["runs"], config["concurrency"]["pools"]
    limits = tag_limits(config)
    # every kind of run outside the critical lane is capped; the critical lane is not
    for purpose in Purpose:
        assert ((PURPOSE_TAG, purpose.value) in limits) != (purpose in CRITICAL_LANE_PURPOSES), purpose
    assert (BACKFILL_TAG, None) in limits
    assert set(limits) <= {(BACKFILL_TAG, None)} | {(PURPOSE_TAG, p.value) for p in Purpose}

    with instance_for_test() as instance:
        requests = critical_lane_requests(defs, instance)
    # one run per critical symbol and job, and the snapshot run
    critical = [s.symbol for s in catalog.critical()]
    assert sorted(r.tags.get(SYMBOL_TAG, "") for _, r in requests) == sorted(["", *critical, *critical])
    refresh_runs = len(requests)
    refresh_steps = sum(min(CRITICAL_STEPS_PER_RUN, sum(pool_of(defs, k) == CRITICAL_POOL for k in r.asset_selection))
                        for _, r in requests if r.asset_selection) + 1  # + the snapshots step
    assert (refresh_runs, refresh_steps) == (7, 4)  # the packaged catalog: 3 daily, 3 weekly (W1 derived), 1 snapshot

    assert runs["max_concurrent_runs"] >= refresh_runs + sum(limits.values()) + BY_HAND

    # which capped kinds can hold a critical-pool slot at all
    repo = defs.get_repository_def()
    for spec in secondary_specs(catalog):  # the queue refreshes non-critical symbols only
        assert all(pool_of(defs, candle_key(spec.symbol, tf)) != CRITICAL_POOL for tf in spec.timeframes)
    weekly_keys = {k for s in repo.schedule_defs if s.tags.get(PURPOSE_TAG) == Purpose.WEEKLY_REFRESH.value
                   for k in _request_keys(defs, s.name, TICK)}
    assert weekly_keys and all(pool_of(defs, k) != CRITICAL_POOL for k in weekly_keys)
    for job_name in (GAP_DETECTION_JOB, "retention_job"):
        assert {node.pool for node in defs.resolve_job_def(job_name).all_node_defs} == {None}
    resync_keys = {k for s in repo.schedule_defs if s.tags.get(PURPOSE_TAG) == Purpose.RESYNC.value
                   for k in _request_keys(defs, s.name, "2026-10-07T04:00:00Z")}
    assert any(pool_of(defs, k) == CRITICAL_POOL for k in resync_keys)  # a re-sync of XAUUSD is bulk work
    bulk_on_critical = sum(limits[k] for k in [(BACKFILL_TAG, None), (PURPOSE_TAG, Purpose.RESYNC.value),
                                                (PURPOSE_TAG, Purpose.GAP_FILL.value)])
    critical_pool = pools["default_limit"]  # Dagster reads no per-pool limit from the file
    assert critical_pool >= refresh_steps + CRITICAL_STEPS_PER_RUN * (bulk_on_critical + BY_HAND)
    assert pools["granularity"] == "op"


def _request_keys(defs: Definitions, schedule_name: str, at: str) -> list[AssetKey]:
    repo = defs.get_repository_def()
    schedule = repo.get_schedule_def(schedule_name)
    with instance_for_test() as instance, build_schedule_context(
        instance=instance, scheduled_execution_time=pd.Timestamp(at).to_pydatetime(),
        resources={"candle_store": CandleStoreResource()}, repository_def=repo,
    ) as context:
        data = schedule.evaluate_tick(context)
    return [k for r in data.run_requests or [] for k in r.asset_selection or []]


@pytest.fixture
def lane_instance(request, env: Path) -> Iterator[tuple[DagsterInstance, dict[str, Any]]]:
    """An instance with the file's run queue, pools and run monitoring. The storage is not what is
    under test (test_deploy.py runs the production file's PostgreSQL storage): SQLite, with the
    event log - which holds the pools' slots - in one file instead of one per run, since creating
    a run writes a planned event per asset, partition and check. In production the bulk pool is
    capped as docs/deployment.md says."""
    name = request.param
    written = yaml.safe_load(INSTANCES[name].read_text())
    home = env / f"{name}_home"
    home.mkdir()
    kept = {k: written[k] for k in ("telemetry", "run_coordinator", "concurrency", "run_monitoring") if k in written}
    kept["event_log_storage"] = {"module": "dagster._core.storage.event_log", "class": "ConsolidatedSqliteEventLogStorage",
                                 "config": {"base_dir": str(home / "events")}}
    (home / "dagster.yaml").write_text(yaml.safe_dump(kept))
    with DagsterInstance.from_config(str(home)) as instance:
        storage = instance.event_log_storage
        assert storage.supports_global_concurrency_limits
        storage.initialize_concurrency_limit_to_default(CRITICAL_POOL)
        if name == "production":
            storage.set_concurrency_slots(BULK_POOL, 3)  # `dagster instance concurrency set massive_api 3`
        else:
            storage.initialize_concurrency_limit_to_default(BULK_POOL)
        yield instance, written


# The runs in progress in the worst mix started this long ago (backfills run for hours). Dagster's
# queue reserves a just-started run's root-step slots for its first 5 s in advance (the run has not
# claimed them yet); a tick that lands in those seconds waits one dequeue interval (README "Lanes").
STARTED_AGO_SECONDS = 3600


def _run(instance: DagsterInstance, defs: Definitions, job_name: str, keys: Sequence[AssetKey] | None,
         tags: Mapping[str, str], status: DagsterRunStatus) -> DagsterRun:
    """A run of the code location's job with its real execution plan (which names each step's
    pool), put in the queue as the QueuedRunCoordinator does (an enqueue event), or started
    STARTED_AGO_SECONDS ago."""
    job = defs.resolve_job_def(job_name)
    tags = dict(tags)
    if job.partitions_def is not None and not tags.get(PARTITION_TAG) and "dagster/asset_partition_range_start" not in tags:
        # one partition, as the daemon tags a run it creates from a request: Dagster plans one
        # materialization per asset and partition at creation, and the slots do not depend on them
        tags[PARTITION_TAG] = job.partitions_def.get_last_partition_key()
    run = instance.create_run_for_job(job, asset_selection=frozenset(keys) if keys else None, tags=tags,
                                      remote_job_origin=registered_job_origin("massive_pipeline", job_name))
    if status == DagsterRunStatus.QUEUED:
        instance.report_dagster_event(DagsterEvent.job_enqueue(run), run_id=run.run_id)
    else:
        assert status == DagsterRunStatus.STARTED
        instance.report_dagster_event(DagsterEvent(DagsterEventType.RUN_START.value, job_name=run.job_name),
                                      run_id=run.run_id, timestamp=time.time() - STARTED_AGO_SECONDS)
    run = instance.get_run_by_id(run.run_id)
    assert run is not None and run.status == status
    return run


def _pooled_steps(instance: DagsterInstance, run: DagsterRun) -> list[tuple[str, str]]:
    plan = instance.get_execution_plan_snapshot(run.execution_plan_snapshot_id)
    return [(step.key, step.pool) for step in plan.steps if step.pool is not None]


def _start_steps(instance: DagsterInstance, run: DagsterRun) -> dict[str, list[bool]]:
    """Claim the run's pool slots as its executor does, at most CRITICAL_STEPS_PER_RUN of the
    critical pool (the executor's lane limit) and every bulk step (those over the limit wait as
    pending claims, which the run queue counts against the pool too). {pool: [claimed, ...]}."""
    priority = int(run.tags.get("dagster/priority", "0"))
    out: dict[str, list[bool]] = {CRITICAL_POOL: [], BULK_POOL: []}
    for step_key, pool in _pooled_steps(instance, run):
        if pool == CRITICAL_POOL and len(out[pool]) >= CRITICAL_STEPS_PER_RUN:
            continue
        status = instance.event_log_storage.claim_concurrency_slot(pool, run.run_id, step_key, priority)
        out[pool].append(status.is_claimed)
    return out


@pytest.mark.parametrize("lane_instance", list(INSTANCES), indirect=True)
def test_the_run_queue_launches_the_refresh_first_even_with_the_worst_mix_running(
    lane_instance, defs: Definitions, catalog: Catalog,
):
    """Two long backfills (one of six symbols' M1, critical ones included; one of EURUSD and GBPUSD), the secondary queue, re-syncs and gap fills of critical symbols, the W1
    rebuild, detection, retention and two runs launched by hand are in progress at their limits,
    each holding its pool slots; more of each kind wait in the queue. The daemon's run queue then
    launches every run of the refresh tick (and none of the waiting bulk runs), and each of the
    refresh's steps claims a slot of the critical pool at once."""
    instance, written = lane_instance
    limits = tag_limits(written)
    settings = OperationsSettings()
    at = pd.Timestamp(TICK)
    daily = job_name_for(catalog.get("EURUSD"), Timeframe.D1)
    weekly = job_name_for(catalog.get("EURUSD"), Timeframe.W1)
    # a long backfill of the base timeframe of critical and non-critical symbols alike
    backfilled = [candle_key(s, Timeframe.M1) for s in ("XAUUSD", "EURUSD", "BTCUSD", "GBPUSD", "USDJPY", "AUDUSD")]

    def request_run(request: RunRequest, status: DagsterRunStatus, job_name: str = daily) -> DagsterRun:
        """The run the daemon creates for `request` (its partition key becomes the partition tag)."""
        tags = {**request.tags, **({PARTITION_TAG: request.partition_key} if request.partition_key else {})}
        return _run(instance, defs, request.job_name or job_name, request.asset_selection, tags, status)

    def bulk(request: RunRequest) -> RunRequest:
        """A bulk request with its base timeframe only: the derived steps have no pool and are not
        root steps, so they change nothing the queue or the pools decide (and each planned check
        costs an event at creation)."""
        return request.with_replaced_attrs(asset_selection=request.asset_selection[:1])

    def resync(symbol: str) -> RunRequest:
        return bulk(daily_run_request(catalog.get(symbol), at.date(), at.date(), Purpose.RESYNC, at,
                                      settings.runtime_tags(Purpose.RESYNC)))

    def queue(symbol: str) -> RunRequest:
        return bulk(daily_run_request(catalog.get(symbol), at.date(), at.date(), Purpose.SECONDARY_REFRESH, at))

    def gap_fill(symbol: str) -> dict[str, str]:
        return {PURPOSE_TAG: Purpose.GAP_FILL.value, SYMBOL_TAG: symbol, **settings.runtime_tags(Purpose.GAP_FILL)}

    running = [
        _run(instance, defs, daily, backfilled, {BACKFILL_TAG: "six-symbols"}, DagsterRunStatus.STARTED),
        _run(instance, defs, daily, [candle_key("EURUSD", Timeframe.M1), candle_key("GBPUSD", Timeframe.M1)],
             {BACKFILL_TAG: "two-symbols"}, DagsterRunStatus.STARTED),
        request_run(queue("GBPUSD"), DagsterRunStatus.STARTED),
        request_run(queue("USDJPY"), DagsterRunStatus.STARTED),
        request_run(resync("XAUUSD"), DagsterRunStatus.STARTED),
        request_run(resync("EURUSD"), DagsterRunStatus.STARTED),
        _run(instance, defs, daily, [candle_key("BTCUSD", Timeframe.M1)], gap_fill("BTCUSD"), DagsterRunStatus.STARTED),
        _run(instance, defs, daily, [candle_key("XAUUSD", Timeframe.M1)], gap_fill("XAUUSD"), DagsterRunStatus.STARTED),
        _run(instance, defs, weekly, [candle_key("GBPUSD", Timeframe.W1)],
             {PURPOSE_TAG: Purpose.WEEKLY_REFRESH.value}, DagsterRunStatus.STARTED),
        _run(instance, defs, GAP_DETECTION_JOB, None, {PURPOSE_TAG: Purpose.GAP_DETECTION.value},
             DagsterRunStatus.STARTED),
        _run(instance, defs, "retention_job", None, {PURPOSE_TAG: Purpose.RETENTION.value}, DagsterRunStatus.STARTED),
        # a broker export's comparison (no API step, so no pool: any job without pools stands for it)
        _run(instance, defs, GAP_DETECTION_JOB, None, {PURPOSE_TAG: Purpose.BROKER_COMPARISON.value},
             DagsterRunStatus.STARTED),
        # by hand: the UI's "Materialize" of critical assets, outside any backfill
        _run(instance, defs, daily, [candle_key("XAUUSD", Timeframe.M1)], {}, DagsterRunStatus.STARTED),
        _run(instance, defs, daily, [candle_key("BTCUSD", Timeframe.M1)], {}, DagsterRunStatus.STARTED),
    ]
    in_progress = {}
    for run in running:
        in_progress[run.run_id] = _start_steps(instance, run)
    assert len(running) == sum(limits.values()) + BY_HAND  # every capped kind at its limit
    # the critical symbols' bulk runs hold the critical slots they could take; in production (bulk
    # pool capped at 3) the bulk pool is full and steps wait for it
    assert sum(c for claims in in_progress.values() for c in claims[CRITICAL_POOL]) == 8
    assert all(all(claims[CRITICAL_POOL]) for claims in in_progress.values())
    bulk_pool = instance.event_log_storage.get_concurrency_info(BULK_POOL)
    if bulk_pool.slot_count == 3:
        assert bulk_pool.active_slot_count == 3 and bulk_pool.pending_step_count > 0

    # waiting behind them: one more of each capped kind, some with a priority above the refresh's
    waiting = [
        _run(instance, defs, daily, [candle_key("XAUUSD", Timeframe.M1)], {BACKFILL_TAG: "third", "dagster/priority": "50"},
             DagsterRunStatus.QUEUED),
        request_run(queue("AUDUSD"), DagsterRunStatus.QUEUED),
        request_run(resync("BTCUSD"), DagsterRunStatus.QUEUED),
        _run(instance, defs, daily, [candle_key("EURUSD", Timeframe.M1)], {**gap_fill("EURUSD"), "dagster/priority": "50"},
             DagsterRunStatus.QUEUED),
    ]
    refresh = [request_run(r, DagsterRunStatus.QUEUED, job) for job, r in critical_lane_requests(defs, instance)]
    assert sorted(run.job_name for run in refresh) == sorted([daily] * 3 + [weekly] * 3 + ["snapshots_job"])
    assert len(refresh) == 7

    launched = [run.run_id for run in runs_the_queue_would_launch(instance)]
    assert set(launched) == {run.run_id for run in refresh}, "the refresh runs, and only they, are launched"

    # each launched refresh run's steps claim their slots in the critical pool, none waits
    claims = [c for run in refresh for c in _start_steps(instance, run)[CRITICAL_POOL]]
    assert claims == [True] * 4  # 3 symbols' base timeframe + the snapshots; W1 is derived (no pool)
    critical = instance.event_log_storage.get_concurrency_info(CRITICAL_POOL)
    assert critical.slot_count == written["concurrency"]["pools"]["default_limit"]
    assert critical.active_slot_count == 12 and critical.pending_step_count == 0
    assert not {run.run_id for run in waiting} & set(launched)

