"""Settings of unattended operation, read once from the environment.

Schedules and sensors are built when the code location loads, so their timing and defaults are
plain values here rather than run config; the clock is injectable so that a simulation can drive
the same schedules and sensors on an accelerated clock against the bundled server.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import pandas as pd
from dagster import DefaultScheduleStatus, DefaultSensorStatus

from massive_pipeline.core.timeframes import Timeframe, UnknownTimeframeError, parse_timeframe
from massive_pipeline.resources.api_key import API_KEY_ENV, missing_api_key, missing_api_key_skip_reason

AUTOMATION_ENV = "MASSIVE_AUTOMATION"
RESYNC_DAYS_ENV = "MASSIVE_RESYNC_DAYS"
RETENTION_ENV = "MASSIVE_RETENTION_DAYS"
MAX_RUNTIME_ENV = "MASSIVE_MAX_RUNTIME"

PURPOSE_TAG = "massive/purpose"
SYMBOL_TAG = "massive/symbol"
REQUESTED_AT_TAG = "massive/requested_at"
QUEUE_POSITION_TAG = "massive/queue_position"
# Dagster's QueuedRunCoordinator dequeues runs with a higher `dagster/priority` first.
DAGSTER_PRIORITY_TAG = "dagster/priority"
# Run monitoring fails a run still in progress this many seconds after it started (the daemon's
# only way to end a run whose worker died under the default run launcher, which has no health check).
DAGSTER_MAX_RUNTIME_TAG = "dagster/max_runtime"
# Run retries re-launch a crashed run at most this many times (the instance's `run_retries.max_retries`
# otherwise).
DAGSTER_MAX_RETRIES_TAG = "dagster/max_retries"

# The key of `OperationsSettings.max_runtime` for the command line's backfills (they have no purpose tag).
BACKFILL_RUNTIME_KEY = "backfill"

# M1 is kept two years by default (the free plan's own history depth); every other timeframe forever.
DEFAULT_RETENTION_DAYS: Mapping[Timeframe, int] = {Timeframe.M1: 730}


class Purpose(StrEnum):
    """Why a run was launched; the value of the `massive/purpose` tag."""

    PRIORITY_REFRESH = "priority_refresh"
    SECONDARY_REFRESH = "secondary_refresh"
    WEEKLY_REFRESH = "weekly_refresh"
    SNAPSHOTS = "snapshots"
    RESYNC = "resync"
    RETENTION = "retention"
    GAP_DETECTION = "gap_detection"
    GAP_FILL = "gap_fill"
    BROKER_COMPARISON = "broker_comparison"


# The runs whose steps go in the run's own process when the executor takes it (candles/jobs.py):
# a day or a few of one symbol, latency-bound, each step shorter than a step subprocess's start.
IN_RUN_PROCESS_PURPOSES: frozenset[Purpose] = frozenset(
    {Purpose.PRIORITY_REFRESH, Purpose.SECONDARY_REFRESH, Purpose.WEEKLY_REFRESH, Purpose.SNAPSHOTS})


# How long a run of each purpose may stay in progress before run monitoring fails it, in seconds.
# Sized to the work, so that a run whose process died is ended soon enough for the next request
# to take its place: a refresh costs a request or two and finishes in about a minute, so four
# minutes end a dead one before the 5-minute tick after the next; a re-sync or a gap fill waits its
# turn on the shared limiter; a backfill of years of M1 bars on the free plan takes hours.
DEFAULT_MAX_RUNTIME: Mapping[str, int] = {
    Purpose.PRIORITY_REFRESH.value: 4 * 60,
    Purpose.SNAPSHOTS.value: 4 * 60,
    Purpose.SECONDARY_REFRESH.value: 15 * 60,
    Purpose.WEEKLY_REFRESH.value: 15 * 60,
    Purpose.RESYNC.value: 30 * 60,
    Purpose.GAP_DETECTION.value: 30 * 60,
    Purpose.GAP_FILL.value: 60 * 60,
    Purpose.BROKER_COMPARISON.value: 15 * 60,
    Purpose.RETENTION.value: 2 * 60 * 60,
    BACKFILL_RUNTIME_KEY: 12 * 60 * 60,
}


class OperationsConfigError(ValueError):
    """An operations environment variable with a value that cannot be used."""


def utc_now() -> pd.Timestamp:
    return pd.Timestamp.now(tz="UTC")


@dataclass(frozen=True)
class OperationsSettings:
    """Timing and limits of the schedules and sensors (all crons in UTC)."""

    running_by_default: bool = True
    priority_cron: str = "*/5 * * * *"
    # Just after midnight the previous day's last bars may still arrive: refresh both days.
    midnight_grace: dt.timedelta = dt.timedelta(minutes=15)
    # How far back a refresh reaches when the last stored bar is older than the current day.
    catch_up_days: int = 7
    secondary_interval_seconds: int = 30
    max_failures: int = 3
    secondary_weekly_cron: str = "7 * * * *"
    resync_days: int = 3
    resync_cron: str = "0 4 * * *"
    weekly_resync_cron: str = "30 4 * * *"
    gap_detection_cron: str = "0 5 * * *"
    # The gap_fill_sensor requests the day's fills at its first tick at or after this cron's time
    # (once the day's detection has finished) and judges ended fill runs at every tick.
    gap_fill_cron: str = "0 6 * * *"
    gap_fill_interval_seconds: int = 60
    # A `filling` gap without any run this long (its request was never submitted, or the run was
    # deleted) is judged by the bars instead of waiting for ever.
    gap_fill_orphan_after: dt.timedelta = dt.timedelta(minutes=10)
    retention_cron: str = "0 3 * * 0"
    retention_days: Mapping[Timeframe, int] = field(default_factory=lambda: dict(DEFAULT_RETENTION_DAYS))
    # seconds per purpose value (and BACKFILL_RUNTIME_KEY); every key of DEFAULT_MAX_RUNTIME is present
    max_runtime: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_MAX_RUNTIME))
    clock: Callable[[], pd.Timestamp] = utc_now
    # The variable the `massive` resource reads its key from (None: the key is a configured value).
    # The composition root sets it from the bound resource; the schedules and sensors that would
    # request API runs skip while it is unset, instead of erroring at every tick.
    api_key_env: str | None = API_KEY_ENV
    # The run config that keeps a run's steps in its process (IN_RUN_PROCESS_PURPOSES); the
    # composition root sets it when the code location's executor takes it, else runs get none.
    in_run_process_config: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        for name in ("catch_up_days", "secondary_interval_seconds", "max_failures", "resync_days",
                     "gap_fill_interval_seconds"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise OperationsConfigError(f"operations setting {name} must be a positive integer, got {value!r}")
        unknown = set(self.max_runtime) - set(DEFAULT_MAX_RUNTIME)
        if unknown:
            raise OperationsConfigError(f"max_runtime: unknown purpose(s) {sorted(unknown)}; "
                                        f"known: {', '.join(DEFAULT_MAX_RUNTIME)}")
        for key, seconds in self.max_runtime.items():
            if isinstance(seconds, bool) or not isinstance(seconds, int) or seconds < 1:
                raise OperationsConfigError(f"max_runtime of {key} must be a positive number of seconds, got {seconds!r}")
        # a partial mapping (tests, overrides) keeps the defaults of the purposes it does not name
        object.__setattr__(self, "max_runtime", {**DEFAULT_MAX_RUNTIME, **self.max_runtime})

    @property
    def schedule_status(self) -> DefaultScheduleStatus:
        return DefaultScheduleStatus.RUNNING if self.running_by_default else DefaultScheduleStatus.STOPPED

    @property
    def sensor_status(self) -> DefaultSensorStatus:
        return DefaultSensorStatus.RUNNING if self.running_by_default else DefaultSensorStatus.STOPPED

    def runtime_tags(self, purpose: Purpose | str) -> dict[str, str]:
        """The `dagster/max_runtime` tag of a run of `purpose`: run monitoring fails the run once it
        has been in progress that long, so a run whose process died stops blocking its symbol."""
        key = purpose.value if isinstance(purpose, Purpose) else purpose
        return {DAGSTER_MAX_RUNTIME_TAG: str(self.max_runtime[key])}

    def run_config(self, purpose: Purpose) -> Mapping[str, Any]:
        """The run config of a run of `purpose` the schedules and sensors request: its steps in
        the run's process for the small latency-bound purposes, the executor's default otherwise."""
        if purpose in IN_RUN_PROCESS_PURPOSES and self.in_run_process_config is not None:
            return self.in_run_process_config
        return {}

    def api_key_skip_reason(self) -> str | None:
        """Why no API run can be requested now (the key's variable is unset), or None."""
        variable = missing_api_key(self.api_key_env)
        return None if variable is None else missing_api_key_skip_reason(variable)

    def now(self) -> pd.Timestamp:
        ts = pd.Timestamp(self.clock())
        return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> OperationsSettings:
        env = os.environ if environ is None else environ
        values: dict[str, object] = {
            "running_by_default": _automation(env.get(AUTOMATION_ENV)),
            "resync_days": _positive_int(RESYNC_DAYS_ENV, env.get(RESYNC_DAYS_ENV), 3),
            "retention_days": parse_retention(env.get(RETENTION_ENV)),
            "max_runtime": parse_max_runtime(env.get(MAX_RUNTIME_ENV)),
        }
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]


def _automation(text: str | None) -> bool:
    value = (text or "running").strip().lower()
    if value not in ("running", "stopped"):
        raise OperationsConfigError(f"{AUTOMATION_ENV} must be 'running' or 'stopped', got {text!r}")
    return value == "running"


def _positive_int(name: str, text: str | None, default: int) -> int:
    if text is None or not text.strip():
        return default
    try:
        value = int(text)
    except ValueError:
        raise OperationsConfigError(f"{name} must be a whole number of days, got {text!r}") from None
    if value < 1:
        raise OperationsConfigError(f"{name} must be at least 1, got {value}")
    return value


def parse_retention(text: str | None) -> dict[Timeframe, int]:
    """`M1=730,M5=1825` → {M1: 730, M5: 1825}; unset gives the defaults, `none` keeps everything."""
    if text is None or not text.strip():
        return dict(DEFAULT_RETENTION_DAYS)
    if text.strip().lower() == "none":
        return {}
    out: dict[Timeframe, int] = {}
    for item in text.split(","):
        if not item.strip():
            continue
        name, sep, days = item.partition("=")
        if not sep:
            raise OperationsConfigError(f"{RETENTION_ENV}: {item.strip()!r} is not TIMEFRAME=DAYS (e.g. M1=730)")
        try:
            tf = parse_timeframe(name.strip())
        except UnknownTimeframeError as exc:
            raise OperationsConfigError(f"{RETENTION_ENV}: {exc}") from None
        if days.strip().lower() == "none":
            continue
        out[tf] = _positive_int(f"{RETENTION_ENV} {tf.value}", days, 0)
    return out


_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600}


def parse_max_runtime(text: str | None) -> dict[str, int]:
    """`priority_refresh=5m,backfill=24h` → those purposes' seconds over the defaults (`s`, `m`, `h`;
    a bare number is seconds); unset gives the defaults."""
    out = dict(DEFAULT_MAX_RUNTIME)
    if text is None or not text.strip():
        return out
    for item in text.split(","):
        if not item.strip():
            continue
        name, sep, value = (part.strip() for part in item.partition("="))
        if not sep:
            raise OperationsConfigError(f"{MAX_RUNTIME_ENV}: {item.strip()!r} is not PURPOSE=DURATION (e.g. resync=30m)")
        if name not in DEFAULT_MAX_RUNTIME:
            raise OperationsConfigError(f"{MAX_RUNTIME_ENV}: unknown purpose {name!r}; known: "
                                        f"{', '.join(DEFAULT_MAX_RUNTIME)}")
        unit = value[-1:].lower() if value[-1:].isalpha() else "s"
        number = value[:-1] if value[-1:].isalpha() else value
        if unit not in _DURATION_UNITS or not number.strip().isdigit() or int(number) < 1:
            raise OperationsConfigError(f"{MAX_RUNTIME_ENV}: {name}={value!r} is not a positive duration "
                                        "(e.g. 90s, 5m, 2h)")
        out[name] = int(number) * _DURATION_UNITS[unit]
    return out
