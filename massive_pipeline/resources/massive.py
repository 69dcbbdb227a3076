"""Dagster resources: the one door to the Massive API, and the candle store.

Every asset, check, sensor and schedule reaches the API through `MassiveResource`, which builds
the HTTP client with the shared rate limiter's `take` as its per-request hook: pages and retries
take tokens exactly like first requests, in every process, and each attempt's ticket is settled
when it ends (the request counts from its answer, `massive/ratelimit.py`). Whether a run's requests may use the
limiter's critical reserve follows from why the run was launched (`uses_critical_reserve`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from dagster import ConfigurableResource, EnvVar, InitResourceContext
from pydantic import Field, PrivateAttr

from massive_pipeline.massive import DEFAULT_BASE_URL, MassiveClient, MassiveProvider
from massive_pipeline.massive.ratelimit import LimiterStats, SharedRateLimiter, reserve_for
from massive_pipeline.resources.rate_budgets import budget_from_env

# The run tag and the two `Purpose` values (operations/settings.py) whose runs use the reserve.
# Spelled out here because the operations package imports this module; a test keeps them equal.
PURPOSE_TAG = "massive/purpose"
RESERVE_PURPOSES = frozenset({"priority_refresh", "snapshots"})


def uses_critical_reserve(run_tags: Mapping[str, str]) -> bool:
    """Whether a run's requests may take the limiter's critical reserve: only the 5-minute priority
    refresh and the snapshots may, the work that must never wait behind other work.

    Decided by the run's `massive/purpose` tag, not by the symbol: a backfill, re-sync, gap fill or
    queue run of a critical symbol is ordinary work. If it used the reserve, a year's backfill of
    XAUUSD would spend the very tokens XAUUSD's own refresh is waiting for.
    """
    return run_tags.get(PURPOSE_TAG) in RESERVE_PURPOSES


class MassiveResource(ConfigurableResource):
    """Rate-limited access to the Massive REST API.

    The key is configured as `EnvVar("MASSIVE_API_KEY")`: Dagster stores and shows the variable's
    name, never its value, and the client sends it only in the `Authorization` header.
    """

    api_key: str = Field(description="Massive API key; configure as EnvVar('MASSIVE_API_KEY').")
    base_url: str = Field(default=DEFAULT_BASE_URL, description="API root, e.g. the bundled dev server's URL.")
    rate_limit_per_minute: int = Field(default=5, description="Requests allowed per window (free plan: 5).")
    rate_window_seconds: float = Field(default=60.0, description="Length of the rate window in seconds.")
    critical_reserve: float = Field(
        default=0.2, description="Share of the budget only the priority refresh and the snapshots may use "
        "(at least one request)."
    )
    limiter_url: str | None = Field(
        default=None,
        description="Shared limiter backend: sqlite:///path, postgresql://… or redis://… (default: a SQLite "
        "file under $DAGSTER_HOME).",
    )
    timeout_seconds: float = Field(default=30.0, description="Read timeout of one HTTP request.")
    max_retries: int = Field(default=5, description="Retries of a 429, 5xx or timeout before giving up.")

    _limiter: SharedRateLimiter | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: InitResourceContext) -> None:
        self._limiter = self.build_limiter()

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        if self._limiter is not None:
            self._limiter.close()
            self._limiter = None

    def build_limiter(self) -> SharedRateLimiter:
        return SharedRateLimiter(
            self.rate_limit_per_minute,
            self.rate_window_seconds,
            budget="massive",
            reserve=reserve_for(self.rate_limit_per_minute, self.critical_reserve),
            backend_url=self.limiter_url,
        )

    @property
    def limiter(self) -> SharedRateLimiter:
        if self._limiter is None:
            self._limiter = self.build_limiter()
        return self._limiter

    @contextmanager
    def provider(self, *, critical: bool = False) -> Iterator[MassiveProvider]:
        """A provider whose every HTTP attempt first takes a token (the reserve too if `critical`:
        pass `uses_critical_reserve(context.run.tags)`)."""
        limiter = self.limiter
        client = MassiveClient(
            self.base_url,
            self.api_key,
            acquire=lambda: limiter.take(critical=critical),
            timeout=self.timeout_seconds,
            max_retries=self.max_retries,
        )
        try:
            yield MassiveProvider(client)
        finally:
            client.close()

    def limiter_stats(self) -> LimiterStats:
        return self.limiter.stats()


def massive_resource_from_env() -> MassiveResource:
    """The resource as the code location configures it, from the environment (DESIGN §4); its
    budget is the `massive` one of `rate_budgets`."""
    budget = budget_from_env("massive")
    return MassiveResource(
        api_key=EnvVar("MASSIVE_API_KEY"),
        base_url=os.environ.get("MASSIVE_BASE_URL", DEFAULT_BASE_URL),
        rate_limit_per_minute=budget.limit,
        critical_reserve=budget.reserve_share,
        limiter_url=budget.backend_url,
    )
