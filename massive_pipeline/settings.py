"""Environment settings shared by every part of the pipeline.

One place reads the environment so that the CLI, the Dagster code location and the tests agree on
where `$DAGSTER_HOME` is and how a URL is shown without its password.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

DEFAULT_BASE_URL = "https://api.massive.com"
_PASSWORD_IN_URL = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:/@]*):(?P<pw>[^@/]*)@")
_SECRET_QUERY = re.compile(r"(?i)(apikey|api_key|password|token)=([^&\s]+)")


def dagster_home() -> Path:
    """`$DAGSTER_HOME`, or `./.dagster_home` when unset (the README's commands set it)."""
    home = Path(os.environ.get("DAGSTER_HOME") or ".dagster_home").expanduser().absolute()
    home.mkdir(parents=True, exist_ok=True)
    return home


def mask_url(url: str) -> str:
    """The URL with any password and secret query values replaced by `***`."""
    masked = _PASSWORD_IN_URL.sub(lambda m: f"{m['scheme']}{m['user']}:***@", url)
    return _SECRET_QUERY.sub(lambda m: f"{m.group(1)}=***", masked)
