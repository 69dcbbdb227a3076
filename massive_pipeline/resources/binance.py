"""The door to Binance's klines: the `binance` resource, with its own budget in the shared limiter.

Binance limits request *weight* per minute, Massive requests per minute; the two must never spend
each other's budget. So this resource builds the shared limiter (same backend as Massive's, every
process of the deployment sees it) on budget `binance`, limited to `BINANCE_WEIGHT_LIMIT_PER_MINUTE`
weight, and charges each HTTP attempt the weight of its `limit` (`binance/weights.py`). Public
market data needs no key, so nothing here can be missing: the schedules that skip Massive work
without `MASSIVE_API_KEY` need no such check for Binance.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from dagster import ConfigurableResource, InitResourceContext
from pydantic import Field, PrivateAttr

from massive_pipeline.binance import (
    DEFAULT_BASE_URL,
    DEFAULT_WEIGHT_LIMIT_PER_MINUTE,
    BinanceClient,
    BinanceProvider,
)
from massive_pipeline.massive.ratelimit import LimiterStats, SharedRateLimiter, reserve_for
from massive_pipeline.resources.rate_budgets import budget_from_env

BUDGET = "binance"
BASE_URL_ENV = "BINANCE_BASE_URL"


class BinanceResource(ConfigurableResource):
    """Rate-limited access to Binance's public klines (no key)."""

    base_url: str = Field(default=DEFAULT_BASE_URL, description="API root, e.g. the bundled Binance server's URL.")
    weight_limit_per_minute: int = Field(
        default=DEFAULT_WEIGHT_LIMIT_PER_MINUTE, description="Request weight allowed per window (budget `binance`)."
    )
    rate_window_seconds: float = Field(default=60.0, description="Length of the weight window in seconds.")
    critical_reserve: float = Field(
        default=0.2, description="Share of the weight only the priority refresh may use."
    )
    limiter_url: str | None = Field(
        default=None, description="Shared limiter backend (the same as Massive's; the budgets are apart)."
    )
    timeout_seconds: float = Field(default=30.0, description="Read timeout of one HTTP request.")
    max_retries: int = Field(default=5, description="Retries of a 429/418, 5xx or timeout before giving up.")

    _limiter: SharedRateLimiter | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: InitResourceContext) -> None:
        self._limiter = self.build_limiter()

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        if self._limiter is not None:
            self._limiter.close()
            self._limiter = None

    def build_limiter(self) -> SharedRateLimiter:
        return SharedRateLimiter(
            self.weight_limit_per_minute,
            self.rate_window_seconds,
            reserve=reserve_for(self.weight_limit_per_minute, self.critical_reserve),
            backend_url=self.limiter_url,
            budget=BUDGET,
        )

    @property
    def limiter(self) -> SharedRateLimiter:
        if self._limiter is None:
            self._limiter = self.build_limiter()
        return self._limiter

    @contextmanager
    def provider(self, *, critical: bool = False) -> Iterator[BinanceProvider]:
        """A provider whose every HTTP attempt first takes its weight from budget `binance`."""
        limiter = self.limiter
        client = BinanceClient(
            self.base_url,
            acquire=lambda weight: limiter.take(critical=critical, weight=weight),
            timeout=self.timeout_seconds,
            max_retries=self.max_retries,
        )
        try:
            yield BinanceProvider(client)
        finally:
            client.close()

    def limiter_stats(self) -> LimiterStats:
        return self.limiter.stats()


def binance_resource_from_env() -> BinanceResource:
    """The resource as the code location configures it: `BINANCE_BASE_URL`, and the `binance` budget of
    `rate_budgets` (`BINANCE_WEIGHT_LIMIT_PER_MINUTE`, `BINANCE_CRITICAL_RESERVE`, Massive's limiter backend)."""
    budget = budget_from_env(BUDGET)
    return BinanceResource(
        base_url=os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL,
        weight_limit_per_minute=budget.limit,
        critical_reserve=budget.reserve_share,
        limiter_url=budget.backend_url,
    )
