"""The service's open handles: the candle store, the Dagster instance, the code location's graph.

Each is opened on first use, not at start-up, so the service starts (and `/health` can say what is
wrong) while the database is still coming up; a store whose schema could not be ensured is tried
again on the next request. One `ServiceContext` lives as long as the application.
"""

from __future__ import annotations

import threading

from dagster import DagsterInstance, Definitions

from massive_pipeline.core.catalog import Catalog
from massive_pipeline.service.config import ServiceConfig
from massive_pipeline.service.errors import Unavailable
from massive_pipeline.store import CandleStore


class ServiceContext:
    """Lazily opened, thread-safe handles; the routes run in FastAPI's thread pool."""

    def __init__(self, config: ServiceConfig) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._store: CandleStore | None = None
        self._store_ready = False
        self._instance: DagsterInstance | None = None
        self._definitions: Definitions | None = None
        # one backfill submission at a time: SQLite run storage serializes its writers anyway
        self.submit_lock = threading.Lock()

    @property
    def catalog(self) -> Catalog:
        return self.config.catalog

    def store(self) -> CandleStore:
        """The candle store with its schema ensured (a `StoreError` names it when that fails)."""
        with self._lock:
            if self._store is None:
                self._store = CandleStore(self.config.store_url)
            if not self._store_ready:
                self._store.create_schema()
                self._store_ready = True
            return self._store

    def store_display(self) -> str:
        """The store's masked URL, without connecting."""
        with self._lock:
            if self._store is None:
                self._store = CandleStore(self.config.store_url)
            return self._store.url_display

    def instance(self) -> DagsterInstance:
        """The Dagster instance of `DAGSTER_HOME`; `Unavailable` (503) naming it when it cannot be opened."""
        with self._lock:
            if self._instance is None:
                try:
                    self._instance = DagsterInstance.from_config(str(self.config.dagster_home))
                except Exception as exc:  # noqa: BLE001 - any failure to open it is the same answer
                    reason = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
                    raise Unavailable(
                        f"Dagster instance {self.config.dagster_home} is unavailable: {reason}"
                    ) from exc
            return self._instance

    def definitions(self) -> Definitions:
        with self._lock:
            if self._definitions is None:
                self._definitions = self.config.definitions()
            return self._definitions

    def close(self) -> None:
        with self._lock:
            if self._store is not None:
                self._store.dispose()
            if self._instance is not None:
                self._instance.dispose()
            self._store, self._instance, self._store_ready = None, None, False
