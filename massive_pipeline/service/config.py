"""What the data service is pointed at: a candle store, a catalog, a Dagster instance, a token.

Everything is injected, so a test (or a second deployment) can serve another store or instance
from the same process; `from_env` reads the variables the rest of the pipeline reads, so the
service sees what the code location sees. The code location's `Definitions` come in as a factory
because only `POST /sync` needs them and building them costs a second or two: the command line
passes the composition root, which this room may not import.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from dagster import Definitions

from massive_pipeline.core.catalog import Catalog, load_catalog
from massive_pipeline.core.paths import dagster_home
from massive_pipeline.resources.massive import MassiveResource, massive_resource_from_env
from massive_pipeline.store.engine import resolve_database_url

TOKEN_ENV = "MASSIVE_SERVICE_TOKEN"


@dataclass(frozen=True)
class ServiceConfig:
    """The service's collaborators.

    `store_url` None means `MASSIVE_DATABASE_URL` (else the SQLite default), as for the store itself;
    `token` None or empty leaves the API open; `massive` only builds the shared limiter (`/health`,
    `/status`), never a client: the service sends no request to the Massive API.
    """

    catalog: Catalog
    dagster_home: Path
    definitions: Callable[[], Definitions]
    store_url: str | None = None
    token: str | None = None
    massive: MassiveResource = field(default_factory=massive_resource_from_env)

    @classmethod
    def from_env(
        cls, definitions: Callable[[Catalog], Definitions], environ: Mapping[str, str] | None = None
    ) -> ServiceConfig:
        """The configuration the environment describes; a malformed store URL is refused here, at
        start-up, with the message naming the variable (`StoreConfigError`)."""
        env = os.environ if environ is None else environ
        catalog = load_catalog()
        resolve_database_url(environ=env)
        return cls(
            catalog=catalog,
            dagster_home=dagster_home(),
            definitions=lambda: definitions(catalog),
            token=(env.get(TOKEN_ENV) or "").strip() or None,
        )
