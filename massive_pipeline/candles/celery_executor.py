"""Which executor the code location's runs use, and dagster-celery's, configured from the environment.

`MASSIVE_EXECUTOR` picks it: `multiprocess` (the default, `jobs.multiprocess_lane_executor`: every
step a subprocess of the run's process) or `celery` (dagster-celery: every step a Celery task that a
worker process, on this host or another, takes from the broker). The celery executor reads
`MASSIVE_CELERY_BROKER` (default the local RabbitMQ, `amqp://guest:guest@127.0.0.1:5672//`) and
`MASSIVE_CELERY_BACKEND` (default `rpc://`: results travel back over the broker; with a Redis broker
give the Redis URL here too). The executor names the variables, not their values, so a broker
password never lands in a run's config; the workers (`celery_worker.py`) read the same variables.

A worker executes a step as the run's process would: it opens the run's instance from the instance
reference the task carries (the `DAGSTER_HOME` of the run; on several hosts that means PostgreSQL
run and event storage) and loads the code location, whose resources read `MASSIVE_DATABASE_URL`,
`MASSIVE_RATE_LIMIT_URL`, `MASSIVE_API_KEY` and `MASSIVE_BASE_URL` from the worker's own
environment. So every worker gets the same values as the code server: one store and one API budget.

The lanes under celery: dagster-celery's executor takes no per-run `tag_concurrency_limits`, so the
multiprocess executor's "one critical-lane step in flight per run" is not enforced there. What
carries the lanes instead: the pools, which the run's orchestrator still claims step by step before
it hands a step to the broker (so `massive_api_critical` and `massive_api` bound the API-calling
steps of all runs together, whichever worker executes them), with the critical pool sized for bulk
runs that hold one slot per critical symbol (docs/scaling.md gives the number); and the workers'
concurrency, which bounds the steps executing at once across all runs. Dagster's Kubernetes step
executor (`k8s_job_executor`) does take `tag_concurrency_limits`, so there the lane limit is kept as is.
"""

from __future__ import annotations

import os
from enum import StrEnum

from dagster import ExecutorDefinition

EXECUTOR_ENV = "MASSIVE_EXECUTOR"
BROKER_ENV = "MASSIVE_CELERY_BROKER"
BACKEND_ENV = "MASSIVE_CELERY_BACKEND"
DEFAULT_BROKER = "amqp://guest:guest@127.0.0.1:5672//"
DEFAULT_BACKEND = "rpc://"
# dagster-celery's own queue: its executor routes every step there unless the step's op tag
# `dagster-celery/queue` names another, and its app declares it with priorities.
CELERY_QUEUE = "dagster"


class ExecutorKind(StrEnum):
    MULTIPROCESS = "multiprocess"
    CELERY = "celery"


class ExecutorChoiceError(ValueError):
    """MASSIVE_EXECUTOR names no executor the code location has."""


def executor_kind() -> ExecutorKind:
    """The executor `MASSIVE_EXECUTOR` asks for; unset or empty: multiprocess."""
    raw = os.environ.get(EXECUTOR_ENV, "").strip().lower()
    if not raw:
        return ExecutorKind.MULTIPROCESS
    try:
        return ExecutorKind(raw)
    except ValueError:
        choices = ", ".join(k.value for k in ExecutorKind)
        raise ExecutorChoiceError(f"{EXECUTOR_ENV}={raw!r} is not an executor; use one of: {choices}") from None


def broker_url() -> str:
    """The broker the executor and the workers use (may hold a password: never log it)."""
    return os.environ.get(BROKER_ENV) or DEFAULT_BROKER


def backend_url() -> str:
    return os.environ.get(BACKEND_ENV) or DEFAULT_BACKEND


def _from_env(variable: str, default: str) -> object:
    """Config that reads `variable` when the run starts (StringSource), or the literal default when
    it is unset, so an unset variable is not a config error."""
    return {"env": variable} if os.environ.get(variable) else default


def celery_lanes_executor() -> ExecutorDefinition:
    """dagster-celery's executor on the broker and backend of the environment (see the module doc
    for what replaces the per-run lane limit)."""
    from dagster_celery import celery_executor

    return celery_executor.configured(
        {"broker": _from_env(BROKER_ENV, DEFAULT_BROKER), "backend": _from_env(BACKEND_ENV, DEFAULT_BACKEND)},
        name="celery_lanes",
    )
