"""Every schedule of unattended operation, and the daily gap schedules that target the quality jobs.

| UTC | schedule | what |
|---|---|---|
| every 5 min | `priority_refresh_*` | critical symbols' current partitions and W1, one snapshot request |
| every 30 s | sensor `secondary_queue` | non-critical symbols, within the budget left over |
| hourly :07 | `weekly_refresh_*` | non-critical symbols' current W1 bar (no API requests) |
| 04:00 | `resync_daily_*` | the last N complete days of every symbol |
| 04:30 | `resync_weekly_*` | the W1 bars of those days |
| 05:00 | `gap_detection` | `gap_detection_job` (quality) |
| 06:00 | sensor `gap_fill_sensor` | candle runs filling the detected gaps (quality, `gap_fill_sensor.py`) |
| Sun 03:00 | `weekly_retention` | `retention_job` |

The gap detection job is defined by the quality part of the code location, which also carries its
schedule (built here, with the rest of the automation settings), so the schedule sits next to the
job it names. Gap filling has no schedule: a schedule launches one job, while fills are runs of the
candle jobs (one per range of days), so the quality part's `gap_fill_sensor` requests them at the
`gap_fill_cron` time.
"""

from dagster import RunRequest, ScheduleDefinition, ScheduleEvaluationContext, schedule

from massive_pipeline.operations.refresh import tick_time
from massive_pipeline.operations.runs import iso_minute
from massive_pipeline.operations.settings import PURPOSE_TAG, REQUESTED_AT_TAG, OperationsSettings, Purpose

GAP_DETECTION_JOB = "gap_detection_job"


def _daily_job_schedule(name: str, cron: str, job_name: str, purpose: Purpose, what: str,
                        settings: OperationsSettings) -> ScheduleDefinition:
    @schedule(
        name=name,
        cron_schedule=cron,
        job_name=job_name,
        execution_timezone="UTC",
        default_status=settings.schedule_status,
        tags={PURPOSE_TAG: purpose.value},
        description=what,
    )
    def _daily(context: ScheduleEvaluationContext) -> RunRequest:
        stamp = iso_minute(tick_time(context, settings))
        return RunRequest(run_key=f"{purpose.value}:{stamp}", tags={PURPOSE_TAG: purpose.value, REQUESTED_AT_TAG: stamp,
                                                                     **settings.runtime_tags(purpose)})

    return _daily


def gap_schedules(settings: OperationsSettings) -> list[ScheduleDefinition]:
    """The 05:00 detection; the 06:00 fills are requested by the quality part's `gap_fill_sensor`."""
    return [
        _daily_job_schedule("gap_detection", settings.gap_detection_cron, GAP_DETECTION_JOB, Purpose.GAP_DETECTION,
                            "05:00 UTC: find runs of missing bars inside trading sessions (after the 04:00 re-sync).",
                            settings),
    ]

