"""The only door to Dagster's private API: each name here has no public equivalent in Dagster 1.13.

Keeping them in one module means a Dagster upgrade that moves one of them breaks one import with
an obvious fix, not a dozen scattered ones. Everything else in the package uses public names.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dagster import DagsterInstance, DagsterRun
    from dagster._core.test_utils import create_test_daemon_workspace_context
    from dagster._daemon.backfill import execute_backfill_iteration
    from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import QueuedRunCoordinatorDaemon

# Per-partition asset check evaluations emitted from a ranged run must name the materialization
# they judged, or the UI shows a check's status against no partition; the evaluation's
# `target_materialization_data` takes this record, which Dagster does not export.
from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluationTargetMaterializationData,
)

# The per-asset partition ranges an asset backfill is built from (see PartitionBackfill below);
# JobSubsetSelector: how the simulation asks the code server for a run request's job subset, as the sensor daemon does.
from dagster._core.definitions.selector import (
    JobSubsetSelector,
    PartitionRangeSelector,
    PartitionsByAssetSelector,
    PartitionsSelector,
)

# What `define_asset_job` returns before `Definitions` resolves it: used in type hints only.
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

# `massive-pipeline backfill --submit` adds the asset backfill the UI's "Launch backfill" adds
# (dagster_graphql's create_and_launch_partition_backfill); Dagster exports no constructor for it.
from dagster._core.execution.backfill import PartitionBackfill

# The accelerated-clock simulation: open the same instance in worker processes (InstanceRef),
# give a queued run placeholder the id the worker's run takes (make_new_run_id), and list a
# schedule's fire times the way the daemon computes them (cron_string_iterator; the gap-fill
# sensor also finds its daily round's latest fire time with it, so the round follows a cron
# exactly as a schedule would).
from dagster._core.instance.ref import InstanceRef

# The run tags of a single-run backfill over a partition range (what the UI's "Launch backfill"
# sets); a run requested with them materializes the whole range in one run. BACKFILL_ID_TAG: the
# tag the daemon puts on every run of a backfill, which the CLI names so users can find them.
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    BACKFILL_ID_TAG,
)

# make_new_backfill_id: the id format the UI's backfills get (make_new_run_id: see the simulation above).
from dagster._core.utils import make_new_backfill_id, make_new_run_id
from dagster._core.workspace.load_target import ModuleTarget

# The error record of a failed step or run, as found in its events (type hints only).
from dagster._utils.error import SerializableErrorInfo
from dagster._utils.schedules import cron_string_iterator

# The simulation's daemon side, one iteration at a time: a workspace on a gRPC code server as the
# daemon opens it (create_test_daemon_workspace_context, ModuleTarget), the backfill daemon's and the
# run queue daemon's iterations (execute_backfill_iteration, QueuedRunCoordinatorDaemon). Resolved
# on first use (PEP 562): importing them pulls in the daemon and Dagster's test utilities, a third
# of a second that every run and step process would pay when it loads the code location.
_LAZY = {
    "create_test_daemon_workspace_context": "dagster._core.test_utils",
    "execute_backfill_iteration": "dagster._daemon.backfill",
    "QueuedRunCoordinatorDaemon": "dagster._daemon.run_coordinator.queued_run_coordinator_daemon",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


# The daemon's own decisions, for the tests that prove the lanes and run monitoring (Dagster has
# no public entry point that runs one daemon iteration). Imported when called, so loading the code
# location never pulls the daemon in.


def registered_job_origin(location_name: str, job_name: str) -> Any:
    """The origin a run of `job_name` carries when the webserver or the daemon creates it in the
    code location `location_name` (the run queue refuses a queued run without one)."""
    from dagster._core.remote_origin import (
        RegisteredCodeLocationOrigin,
        RemoteJobOrigin,
        RemoteRepositoryOrigin,
    )

    repository = RemoteRepositoryOrigin(RegisteredCodeLocationOrigin(location_name), "__repository__")
    return RemoteJobOrigin(repository_origin=repository, job_name=job_name)


def runs_the_queue_would_launch(instance: DagsterInstance) -> list[DagsterRun]:
    """The queued runs one iteration of the daemon's run queue would launch now, in its order: the
    `QueuedRunCoordinatorDaemon`'s own priority sort, tag limits, `max_concurrent_runs` and pool
    checks, without launching anything (launching is the run launcher's part, not the decision)."""
    from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import QueuedRunCoordinatorDaemon

    with QueuedRunCoordinatorDaemon(interval_seconds=1) as daemon:
        return list(daemon._get_runs_to_dequeue(  # noqa: SLF001 - the decision without the launch
            instance, instance.get_concurrency_config(), fixed_iteration_time=None))


class _MonitoringContext:
    """What one run-monitoring iteration reads of the daemon's workspace context: the instance. The
    workspace itself is only needed to resume a run (`max_resume_run_attempts` > 0; ours are 0)."""

    def __init__(self, instance: DagsterInstance) -> None:
        self.instance = instance

    def create_request_context(self) -> None:
        return None


@contextmanager
def _clock_at(timestamp: float | None) -> Iterator[None]:
    if timestamp is None:
        yield
        return
    from dagster._core.test_utils import freeze_time

    with freeze_time(timestamp):
        yield


def monitor_runs_once(instance: DagsterInstance, at: float | None = None) -> None:
    """One iteration of the daemon's `MonitoringDaemon`: run monitoring (start timeouts, worker
    health where the launcher can check it, `dagster/max_runtime`), then the freeing of pool slots
    held by runs that ended `free_slots_after_run_end_seconds` ago, with Dagster's clock at unix
    time `at` (now if None), so a test need not wait for a timeout to pass."""
    from dagster._daemon.monitoring.concurrency import execute_concurrency_slots_iteration
    from dagster._daemon.monitoring.run_monitoring import execute_run_monitoring_iteration

    logger = logging.getLogger("massive_pipeline.run_monitoring")
    context = _MonitoringContext(instance)
    with _clock_at(at):
        for iteration in (execute_run_monitoring_iteration, execute_concurrency_slots_iteration):
            for error in iteration(context, logger):  # type: ignore[arg-type]
                if error is not None:
                    raise RuntimeError(error.to_string())


__all__ = [
    "ASSET_PARTITION_RANGE_END_TAG",
    "ASSET_PARTITION_RANGE_START_TAG",
    "BACKFILL_ID_TAG",
    "AssetCheckEvaluationTargetMaterializationData",
    "InstanceRef",
    "JobSubsetSelector",
    "ModuleTarget",
    "PartitionBackfill",
    "PartitionRangeSelector",
    "PartitionsByAssetSelector",
    "PartitionsSelector",
    "QueuedRunCoordinatorDaemon",
    "SerializableErrorInfo",
    "UnresolvedAssetJobDefinition",
    "create_test_daemon_workspace_context",
    "cron_string_iterator",
    "execute_backfill_iteration",
    "make_new_backfill_id",
    "make_new_run_id",
    "monitor_runs_once",
    "registered_job_origin",
    "runs_the_queue_would_launch",
]
