"""`GET /health`: can the service do its work? The store, the Dagster instance and the limiter.

Each check reports its own state (`ok` or `unavailable` with one line why), so an operator sees
which of the three is down; the answer is 200 only when all are ok, 503 otherwise. Each reason
names the backend by its masked URL or directory and never carries a password.
"""

from __future__ import annotations

from typing import Any

from massive_pipeline.candles.backfill_submission import backfill_daemon_heartbeat_age
from massive_pipeline.operations.status import limiter_reading
from massive_pipeline.service.context import ServiceContext

OK = "ok"
UNAVAILABLE = "unavailable"


def _line(exc: BaseException) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())[:500]


def store_check(context: ServiceContext) -> dict[str, Any]:
    """Reachable and at the schema this code reads (one version read once the schema is there)."""
    try:
        store = context.store()
        store.create_schema()
    except Exception as exc:  # noqa: BLE001 - every failure is a state of the check
        return {"state": UNAVAILABLE, "store": context.store_display(), "reason": _line(exc)}
    return {"state": OK, "store": store.url_display, "dialect": store.dialect}


def instance_check(context: ServiceContext) -> dict[str, Any]:
    """The run storage answers; the backfill daemon's heartbeat says whether submitted syncs will run."""
    home = str(context.config.dagster_home)
    try:
        instance = context.instance()
        instance.get_run_records(limit=1)
        age = backfill_daemon_heartbeat_age(instance)
    except Exception as exc:  # noqa: BLE001
        return {"state": UNAVAILABLE, "dagster_home": home, "reason": _line(exc)}
    return {"state": OK, "dagster_home": home, "backfill_daemon_heartbeat_age_seconds": age}


def limiter_check(context: ServiceContext) -> dict[str, Any]:
    stats, error = limiter_reading(context.config.massive)
    if stats is None:
        return {"state": UNAVAILABLE, "reason": error}
    return {
        "state": OK,
        "backend": stats.backend,
        "used": stats.used,
        "limit": stats.limit,
        "window_seconds": stats.window_seconds,
        "waiting": stats.waiting,
    }


def health(context: ServiceContext) -> tuple[bool, dict[str, Any]]:
    checks = {
        "store": store_check(context),
        "instance": instance_check(context),
        "limiter": limiter_check(context),
    }
    healthy = all(c["state"] == OK for c in checks.values())
    return healthy, {"status": "ok" if healthy else "unavailable", "checks": checks}
