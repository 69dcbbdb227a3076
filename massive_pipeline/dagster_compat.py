"""The only door to Dagster's private API: each name here has no public equivalent in Dagster 1.13.

Keeping them in one module means a Dagster upgrade that moves one of them breaks one import with
an obvious fix, not a dozen scattered ones. Everything else in the package uses public names.
"""

from __future__ import annotations

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

# The simulation's daemon side, one iteration at a time: a workspace on a gRPC code server as the
# daemon opens it (create_test_daemon_workspace_context, ModuleTarget), the backfill daemon's and the
# run queue daemon's iterations (execute_backfill_iteration, QueuedRunCoordinatorDaemon).
from dagster._core.test_utils import create_test_daemon_workspace_context

# make_new_backfill_id: the id format the UI's backfills get (make_new_run_id: see the simulation above).
from dagster._core.utils import make_new_backfill_id, make_new_run_id
from dagster._core.workspace.load_target import ModuleTarget
from dagster._daemon.backfill import execute_backfill_iteration
from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import QueuedRunCoordinatorDaemon

# The error record of a failed step or run, as found in its events (type hints only).
from dagster._utils.error import SerializableErrorInfo
from dagster._utils.schedules import cron_string_iterator

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
]
