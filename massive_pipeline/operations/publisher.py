"""Publishing update events on Redis for real-time consumers (`asset:update:{symbol}`).

Optional by design: without `MASSIVE_REDIS_URL` the pipeline stores snapshots and publishes
nothing. The URL is read from the environment at run time rather than kept in the resource's
config, so a password in it never appears in the UI's resource configuration.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from dagster import ConfigurableResource, InitResourceContext
from pydantic import Field, PrivateAttr

from massive_pipeline.store.engine import mask_url

REDIS_URL_ENV = "MASSIVE_REDIS_URL"
CHANNEL_PREFIX = "asset:update:"


class RedisPublishError(RuntimeError):
    """Redis did not take an event; the message names the server (password masked), not the payload."""


class RedisPublisherResource(ConfigurableResource):
    """Publishes JSON events on `asset:update:{symbol}` when a Redis URL is configured."""

    url: str | None = Field(
        default=None,
        description=f"redis://host:port/db; unset: ${REDIS_URL_ENV}; neither: publishing is off.",
    )
    channel_prefix: str = Field(default=CHANNEL_PREFIX, description="Channel name before the symbol.")

    _client: Any = PrivateAttr(default=None)

    def resolved_url(self) -> str | None:
        return self.url or os.environ.get(REDIS_URL_ENV) or None

    @property
    def enabled(self) -> bool:
        return self.resolved_url() is not None

    def channel(self, symbol: str) -> str:
        return f"{self.channel_prefix}{symbol}"

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _redis(self) -> Any:
        if self._client is None:
            import redis

            url = self.resolved_url()
            if url is None:
                raise RedisPublishError(f"no Redis URL configured (set {REDIS_URL_ENV})")
            try:
                self._client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
            except ValueError as exc:
                raise RedisPublishError(f"{REDIS_URL_ENV} {mask_url(url)!r} is not a Redis URL: {exc}") from None
        return self._client

    def publish(self, symbol: str, message: Mapping[str, Any]) -> int | None:
        """Publish one event; the number of subscribers that got it, or None when publishing is off."""
        if not self.enabled:
            return None
        import redis

        payload = json.dumps(dict(message), separators=(",", ":"), default=str)
        try:
            return int(self._redis().publish(self.channel(symbol), payload))
        except redis.RedisError as exc:
            url = mask_url(self.resolved_url() or "")
            raise RedisPublishError(f"publishing {self.channel(symbol)} to Redis at {url} failed: "
                                    f"{type(exc).__name__}: {exc}") from None
