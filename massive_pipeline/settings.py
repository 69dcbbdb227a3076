"""Environment settings shared by every part of the pipeline.

One place reads the environment so that the CLI, the Dagster code location and the tests agree on
where `$DAGSTER_HOME` is and how a URL is shown without its password.
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_BASE_URL = "https://api.massive.com"


def dagster_home() -> Path:
    """`$DAGSTER_HOME`, or `./.dagster_home` when unset (the README's commands set it)."""
    home = Path(os.environ.get("DAGSTER_HOME") or ".dagster_home").expanduser().absolute()
    home.mkdir(parents=True, exist_ok=True)
    return home
