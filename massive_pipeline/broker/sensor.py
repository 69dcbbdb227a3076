"""`broker_exports_sensor`: a new or changed export in a broker's folder → its comparison run.

Each tick lists the declared brokers' folders. A file is *seen* by its name's symbol and timeframe
(`filenames`), its size and modification time, and its content hash: the cursor (JSON, on the
sensor's page) keeps `{"<broker>/<file>": [mtime_ns, size, sha256]}`. A file new to the cursor, or
whose size or time changed and whose content changed too, gets a run of `brokers/<name>/<symbol>`
with the file in its config; a file touched but identical is only re-stamped. The run key holds
the content hash, so the same content is never compared twice for the same file name.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from dagster import (
    AssetSelection,
    DefaultSensorStatus,
    RunRequest,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    sensor,
)

from massive_pipeline.broker.assets import broker_key
from massive_pipeline.broker.config import BrokerSpec
from massive_pipeline.broker.filenames import parse_export_name
from massive_pipeline.operations.settings import PURPOSE_TAG, OperationsSettings, Purpose

BROKER_SENSOR = "broker_exports_sensor"


@dataclass(frozen=True)
class ExportFile:
    broker: BrokerSpec
    symbol: str
    path: Path

    @property
    def cursor_key(self) -> str:
        return f"{self.broker.name}/{self.path.name}"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def scan(brokers: tuple[BrokerSpec, ...], notes: list[str]) -> Iterator[ExportFile]:
    """The exports in the brokers' folders that name a declared symbol and timeframe."""
    for broker in brokers:
        if not broker.folder.is_dir():
            notes.append(f"broker {broker.name}: folder {broker.folder} does not exist")
            continue
        for path in sorted(p for p in broker.folder.iterdir() if p.is_file()):
            name = parse_export_name(path, broker.symbols)
            if name is None or name.symbol not in broker.symbols or name.timeframe not in broker.timeframes:
                notes.append(
                    f"broker {broker.name}: ignored {path.name} (not an export of "
                    f"{', '.join(broker.symbols)} in {', '.join(t.value for t in broker.timeframes)} by name)"
                )
                continue
            yield ExportFile(broker, name.symbol, path)


def evaluate(
    brokers: tuple[BrokerSpec, ...], cursor: str | None, settings: OperationsSettings | None = None,
) -> tuple[list[RunRequest], dict[str, list], list[str]]:
    """(run requests, new cursor state, notes) of one tick; pure apart from reading the folders.
    The runs carry their purpose's `dagster/max_runtime`, so a comparison that hangs is failed by
    run monitoring instead of holding a run slot for the instance's default 12 hours."""
    runtime = (settings or OperationsSettings()).runtime_tags(Purpose.BROKER_COMPARISON)
    seen: dict[str, list] = json.loads(cursor) if cursor else {}
    state: dict[str, list] = {}
    requests: list[RunRequest] = []
    notes: list[str] = []
    for export in scan(brokers, notes):
        stat = export.path.stat()
        before = seen.get(export.cursor_key)
        if before is not None and before[:2] == [stat.st_mtime_ns, stat.st_size]:
            state[export.cursor_key] = before
            continue
        sha = _sha256(export.path)
        state[export.cursor_key] = [stat.st_mtime_ns, stat.st_size, sha]
        if before is not None and before[2] == sha:
            notes.append(f"{export.cursor_key}: touched, content unchanged")
            continue
        key = broker_key(export.broker.name, export.symbol)
        requests.append(
            RunRequest(
                run_key=f"{export.cursor_key}:{sha[:16]}",
                asset_selection=[key],
                run_config={"ops": {key.to_python_identifier(): {"config": {"file": str(export.path)}}}},
                tags={
                    PURPOSE_TAG: Purpose.BROKER_COMPARISON.value,
                    "massive/broker": export.broker.name,
                    "massive/symbol": export.symbol,
                    **runtime,
                },
            )
        )
        notes.append(
            f"{export.cursor_key}: {'changed' if before else 'new'}, comparison of {key.to_user_string()} "
            "requested"
        )
    return requests, state, notes


def build_broker_sensor(
    brokers: tuple[BrokerSpec, ...], default_status: DefaultSensorStatus, settings: OperationsSettings | None = None,
) -> SensorDefinition:
    keys = [broker_key(b.name, s) for b in brokers for s in b.symbols]

    @sensor(
        name=BROKER_SENSOR,
        asset_selection=AssetSelection.assets(*keys),
        minimum_interval_seconds=60,
        default_status=default_status,
        description="Every minute: a new or changed MT4/MT5 export in a declared broker's folder (MASSIVE_BROKERS) "
        "requests the comparison of its brokers/<name>/<symbol> asset with the stored candles.",
    )
    def _broker_exports(context: SensorEvaluationContext) -> SensorResult:
        requests, state, notes = evaluate(brokers, context.cursor, settings)
        for note in notes:
            context.log.info(note)
        cursor = json.dumps(state, sort_keys=True)
        if requests:
            return SensorResult(run_requests=requests, cursor=cursor)
        return SensorResult(skip_reason="no new export\n" + "\n".join(notes[-20:]), cursor=cursor)

    return _broker_exports
