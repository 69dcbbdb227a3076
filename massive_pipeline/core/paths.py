"""Where the pipeline keeps its files: `$DAGSTER_HOME`.

One place reads it so that the CLI, the Dagster code location, the rate limiter's default SQLite
file and the tests agree on the directory.
"""

from __future__ import annotations

import os
from pathlib import Path


def dagster_home() -> Path:
    """`$DAGSTER_HOME`, or `./.dagster_home` when unset (the README's commands set it)."""
    home = Path(os.environ.get("DAGSTER_HOME") or ".dagster_home").expanduser().absolute()
    home.mkdir(parents=True, exist_ok=True)
    return home
