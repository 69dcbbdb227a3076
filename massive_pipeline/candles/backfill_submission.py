"""Handing a candle backfill to the Dagster daemon: `massive-pipeline backfill --submit` and the
data service's `POST /sync`.

The in-process CLI backfill runs and waits in the user's terminal, outside the run queue and pool
limits that protect the API budget. Submitting instead adds the record the UI's *Launch backfill*
adds (dagster_graphql's `create_and_launch_partition_backfill` → `PartitionBackfill` →
`instance.add_backfill`): one **asset backfill** over the selected candle assets, each with its
own partition range (daily keys for M1…D1, Monday week keys for W1), and returns. The daemon then
plans it as it plans a UI backfill: the candle assets' single-run backfill policy gives one run per
partitions definition and range (a W1 run after the daily run that writes its base bars), queued
and pooled like every other run. One backfill may span several partitions definitions (symbols
whose history starts on different days, daily and weekly): the backfill's target is a subset per
asset, so Dagster accepts that in one record.

`--accept-removals` travels as the backfill's run config, which Dagster applies to every run the
backfill launches: the same `ops: {<asset op>: {config: {accept_removals: true}}}` the Launchpad
takes (`CandleWriteConfig`), so the assets read it exactly as they do for any other run.

The code location's `Definitions` come from the caller (the CLI and the service build them with
`build_definitions()`), so this module never imports the composition root that imports it. It
lives with the candle assets, not in `cli/`, because both the command line and the data service
submit backfills; what each prints or answers about the submission stays with them.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from dagster import AssetKey, DagsterInstance, Definitions

from massive_pipeline.candles.partitions import PlannedRange, partitions_for, planned_ranges
from massive_pipeline.core.catalog import SymbolSpec
from massive_pipeline.core.timeframes import Timeframe
from massive_pipeline.dagster_compat import (
    PartitionBackfill,
    PartitionRangeSelector,
    PartitionsByAssetSelector,
    PartitionsSelector,
    make_new_backfill_id,
)

# The daemon writes a heartbeat every 30 s; one older than this means no daemon is running now.
DAEMON_HEARTBEAT_FRESH_SECONDS = 120.0
# Dagster refuses longer backfill titles.
MAX_TITLE_LENGTH = 100


@dataclass(frozen=True)
class SubmittedBackfill:
    """What was handed to the daemon: the backfill's id and what it targets."""

    backfill_id: str
    title: str
    ranges: tuple[PlannedRange, ...]
    tags: Mapping[str, str]
    accept_removals: bool

    @property
    def asset_keys(self) -> list[AssetKey]:
        return [r.key for r in self.ranges]

    @property
    def expected_runs(self) -> int:
        """Runs the daemon will launch: Dagster groups a single-run backfill's assets by partitions
        definition and partition range, one run per group."""
        return len({(partitions_for(r.spec.start, r.timeframe), r.first, r.last) for r in self.ranges})


def backfill_title(
    specs: Sequence[SymbolSpec], timeframes: Sequence[Timeframe], start: dt.date, end: dt.date,
    prefix: str = "CLI backfill",
) -> str:
    """A title the backfills page can show in one line (Dagster caps titles at 100 characters);
    `prefix` says who asked for it, so the UI's backfill list tells the CLI's from the service's."""
    symbols = ",".join(s.symbol for s in specs[:3]) + (f",+{len(specs) - 3}" if len(specs) > 3 else "")
    tfs = ",".join(tf.value for tf in timeframes)
    return f"{prefix} {symbols} {tfs} {start}..{end}"[:MAX_TITLE_LENGTH]


def accept_removals_run_config(keys: Sequence[AssetKey]) -> dict[str, object]:
    """The candle assets' run config asking for removals, as the Launchpad would hold it.

    Dagster applies a backfill's run config to each of its runs; a run that covers only some of the
    assets (the W1 run, say) ignores the entries of the others, as any asset subset does.
    """
    return {"ops": {key.to_python_identifier(): {"config": {"accept_removals": True}} for key in keys}}


def submit_candle_backfill(
    defs: Definitions,
    instance: DagsterInstance,
    specs: Sequence[SymbolSpec],
    timeframes: Sequence[Timeframe],
    start: dt.date,
    end: dt.date,
    *,
    tags: Mapping[str, str] | None = None,
    accept_removals: bool = False,
    origin: str = "`massive-pipeline backfill --submit`",
    title_prefix: str = "CLI backfill",
) -> SubmittedBackfill:
    """Add one asset backfill for `timeframes` of `specs` over start..end and return without waiting.

    `defs` must be the code location the daemon loads (same catalog): the backfill names its asset
    keys and partitions, and the daemon resolves them against its own copy of the asset graph.
    `origin` goes into the backfill's description and `title_prefix` into its title.
    """
    ranges = planned_ranges(specs, timeframes, start, end)
    title = backfill_title(specs, sorted({r.timeframe for r in ranges}, key=lambda t: t.minutes), start, end,
                           title_prefix)
    return submit_ranges(defs, instance, ranges, title=title, tags=tags, accept_removals=accept_removals,
                         origin=origin)


def submit_ranges(
    defs: Definitions,
    instance: DagsterInstance,
    ranges: Sequence[PlannedRange],
    *,
    title: str,
    tags: Mapping[str, str] | None = None,
    accept_removals: bool = False,
    origin: str = "`massive-pipeline backfill --submit`",
) -> SubmittedBackfill:
    """Add one asset backfill of `ranges` (each series its own partition range) and return.

    What `submit_candle_backfill` submits once it has planned its ranges; the bootstrap, whose
    series need different ranges (M1's week, W1's two years), submits its plan through it too.
    """
    run_tags = dict(tags or {})
    symbols = {r.spec.symbol for r in ranges}
    if len(symbols) == 1:
        # one symbol: every run of the backfill is that symbol's, as the queue sensor counts runs
        run_tags.setdefault("massive/symbol", next(iter(symbols)))
    by_key: dict[AssetKey, list[PlannedRange]] = {}
    for r in ranges:  # a series may have several ranges (the holes a bootstrap fills)
        by_key.setdefault(r.key, []).append(r)
    backfill = PartitionBackfill.from_partitions_by_assets(
        backfill_id=make_new_backfill_id(),
        asset_graph=defs.resolve_asset_graph(),
        backfill_timestamp=time.time(),
        tags=run_tags,
        dynamic_partitions_store=instance,
        partitions_by_assets=[
            PartitionsByAssetSelector(
                asset_key=key,
                partitions=PartitionsSelector(ranges=[PartitionRangeSelector(start=r.first, end=r.last) for r in rs]),
            )
            for key, rs in by_key.items()
        ],
        title=title[:MAX_TITLE_LENGTH],
        description=(
            f"Submitted by {origin}"
            + (" with --accept-removals" if accept_removals else "")
            + "; runs one run per partitions definition and range (single-run backfill policy)."
        ),
        run_config=accept_removals_run_config(list(by_key)) if accept_removals else None,
    )
    instance.add_backfill(backfill)
    return SubmittedBackfill(backfill.backfill_id, title[:MAX_TITLE_LENGTH], tuple(ranges), run_tags,
                             accept_removals)


def backfill_daemon_heartbeat_age(instance: DagsterInstance, now: float | None = None) -> float | None:
    """Seconds since the backfill daemon's last heartbeat in this instance, None if it never beat."""
    beat = instance.get_daemon_heartbeats().get("BACKFILL")
    if beat is None:
        return None
    return max(0.0, (time.time() if now is None else now) - beat.timestamp)
