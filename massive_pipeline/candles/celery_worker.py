"""The Celery app the candle workers run: `celery -A massive_pipeline.candles.celery_worker worker`.

dagster-celery's own worker target (`dagster_celery.app`) takes its broker from a YAML file that
`dagster-celery worker start` turns into a generated module; this app takes it from the same
`MASSIVE_CELERY_BROKER` / `MASSIVE_CELERY_BACKEND` the code location's executor reads
(`celery_executor.py`), so a worker and the runs it serves cannot be pointed at different brokers
by two files drifting apart. The queue, the priorities and the one task (`execute_plan`: run one
step of a run) are dagster-celery's. Start the worker with `celery worker` directly (not through
`dagster-celery worker start`, which keeps the worker as a child of its own process): a stop signal
then reaches the process that holds the broker connection.

The worker imports the code location (`massive_pipeline.definitions`) when it starts, before it
forks its pool: each pool process then starts its first step with the code already loaded (not
seconds of imports inside the step), and a code location that cannot load stops the worker at
start instead of failing every step it takes.
"""

from __future__ import annotations

from dagster_celery.executor import CeleryExecutor
from dagster_celery.make_app import make_app
from dagster_celery.tasks import create_task

from massive_pipeline.candles.celery_executor import backend_url, broker_url

CODE_LOCATION_MODULE = "massive_pipeline.definitions"

app = make_app(
    CeleryExecutor.for_cli(broker=broker_url(), backend=backend_url(), include=[CODE_LOCATION_MODULE]).app_args()
)
execute_plan = create_task(app)
