"""What `massive-pipeline backfill --submit` prints about the backfill it handed to the daemon.

Building and adding the backfill is library code shared with the data service
(`candles/backfill_submission.py`); this module only words the result for a terminal.
"""

from __future__ import annotations

from massive_pipeline.candles.backfill_submission import DAEMON_HEARTBEAT_FRESH_SECONDS, SubmittedBackfill
from massive_pipeline.dagster_compat import BACKFILL_ID_TAG


def submission_report(submitted: SubmittedBackfill, heartbeat_age: float | None) -> list[str]:
    """The lines the CLI prints: what was submitted, where to watch it, and whether anyone will run it."""
    bid = submitted.backfill_id
    lines = [f"submitted backfill {bid}: {submitted.title}"]
    for r in submitted.ranges:
        lines.append(f"  {r.key.to_user_string():<24} {r.first}..{r.last}")
    lines.append(
        f"the Dagster daemon will launch {submitted.expected_runs} run(s), one per partitions definition and range"
        + ("; run config accept_removals: true for every asset" if submitted.accept_removals else "")
    )
    symbols = sorted({r.spec.symbol for r in submitted.ranges})
    lines += [
        "watch it:",
        f"  UI:   /runs/b/{bid}   (e.g. http://127.0.0.1:3000/runs/b/{bid} under `dagster dev`)",
        f"  runs: UI Runs filtered by tag {BACKFILL_ID_TAG}={bid} (the `dagster` CLI has no backfill status command)",
        f"  data: massive-pipeline status --symbols {','.join(symbols)}",
    ]
    lines.append(daemon_line(heartbeat_age))
    return lines


def daemon_line(heartbeat_age: float | None) -> str:
    """Whether a daemon will run what was submitted (the backfill daemon's last heartbeat)."""
    if heartbeat_age is not None and heartbeat_age <= DAEMON_HEARTBEAT_FRESH_SECONDS:
        return f"the backfill daemon is running (last heartbeat {heartbeat_age:.0f} s ago)"
    seen = "never" if heartbeat_age is None else f"{heartbeat_age:.0f} s ago"
    return (
        f"no Dagster daemon is running on this instance (last backfill heartbeat: {seen}); the backfill waits "
        "until one runs: start `dagster-daemon run` or `dagster dev` with the same DAGSTER_HOME"
    )
