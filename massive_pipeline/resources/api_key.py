"""Whether the Massive API key the code location is configured with is there, and what to say if not.

`MassiveResource.api_key` is `EnvVar("MASSIVE_API_KEY")`: Dagster resolves it only when a run (or a
sensor that uses the resource) starts, so a code location loads without the key and every API run
it asks for then fails with a 40-line `DagsterInvalidConfigError`. The schedules, sensors and CLI
commands that would start such runs ask here first, and skip (or stop) with one line naming the
variable instead. The key's value is never read beyond "set or not", and never shown.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from dagster import EnvVar

API_KEY_ENV = "MASSIVE_API_KEY"
_BUNDLED = "make demo / make ui against the bundled server"


def api_key_variable(resource: object) -> str | None:
    """The environment variable `resource.api_key` is read from, or None when it holds a value.

    The simulation and some tests configure a literal key; only an `EnvVar` can be missing.
    """
    key = getattr(resource, "api_key", None)
    return key.env_var_name if isinstance(key, EnvVar) else None


def missing_api_key(variable: str | None = API_KEY_ENV, environ: Mapping[str, str] | None = None) -> str | None:
    """`variable` when the key is to come from it and it is unset or blank; otherwise None."""
    if variable is None:
        return None
    env = os.environ if environ is None else environ
    return variable if not (env.get(variable) or "").strip() else None


def missing_api_key_message(variable: str = API_KEY_ENV) -> str:
    """The command line's one line (after `massive-pipeline: error: `)."""
    return f"{variable} is not set; export your Massive API key (or run {_BUNDLED})"


def missing_api_key_skip_reason(variable: str = API_KEY_ENV) -> str:
    """A tick's skip reason: why no API run is requested, and how to get one."""
    return (f"{variable} is not set in the code location's environment, so no API run is requested; "
            f"export your Massive API key and restart Dagster (or run {_BUNDLED})")
