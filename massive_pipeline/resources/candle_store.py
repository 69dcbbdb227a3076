"""The candle store as a Dagster resource."""

from __future__ import annotations

from dagster import ConfigurableResource, InitResourceContext
from pydantic import Field, PrivateAttr

from massive_pipeline.store import CandleStore


class CandleStoreResource(ConfigurableResource):
    """Opens the candle store once per run process and makes sure its tables exist."""

    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the candle store; unset: MASSIVE_DATABASE_URL, else a SQLite file "
        "under $DAGSTER_HOME.",
    )

    _store: CandleStore | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: InitResourceContext) -> None:
        self._store = self.open()

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        if self._store is not None:
            self._store.dispose()
            self._store = None

    def open(self) -> CandleStore:
        # None lets the store read MASSIVE_DATABASE_URL itself, so its errors name that variable
        store = CandleStore(self.database_url or None)
        store.create_schema()
        return store

    @property
    def store(self) -> CandleStore:
        if self._store is None:
            self._store = self.open()
        return self._store
