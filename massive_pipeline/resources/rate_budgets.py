"""Each provider's share of the shared rate limiter, configured from the environment.

Contract: every provider the pipeline talks to has one named budget in the one limiter backend
(`MASSIVE_RATE_LIMIT_URL`, whichever provider): `SharedRateLimiter(limit, 60, budget=<provider>,
reserve=..., backend_url=...)`. Budgets never count each other's requests, so a Binance backfill
cannot spend Massive's 5 requests a minute and a Massive backfill cannot spend Binance's weight.
What a unit is belongs to the provider: Massive counts requests (every request weighs 1), Binance
counts request weight (a request's `weight` depends on its `limit`). The provider's client asks
`take(critical, weight)` before every HTTP attempt, retries included, with the weight the
provider will charge, and settles the ticket when the attempt ends; `critical` follows from why the run was launched, as for Massive
(`uses_critical_reserve`).

| provider | limit (per minute) | critical reserve (share) | unit |
|---|---|---|---|
| `massive` | `MASSIVE_RATE_LIMIT_PER_MINUTE` (5) | `MASSIVE_CRITICAL_RESERVE` (0.2) | requests |
| `binance` | `BINANCE_WEIGHT_LIMIT_PER_MINUTE` (1200) | `BINANCE_CRITICAL_RESERVE` (0.2) | weight units |

Binance publishes 6000 weight a minute per IP; 1200 by default leaves room for anything else on
the same address and for the weight the server counts that the limiter cannot see (a reconnect's
own requests). `status` and the secondary queue's summary show every configured budget: Massive's
always, another provider's once its catalog entries or its variables exist.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from massive_pipeline.massive.ratelimit import (
    DEFAULT_BUDGET,
    LimiterStats,
    RateLimiterConfigError,
    SharedRateLimiter,
    reserve_for,
)

LIMITER_URL_VARIABLE = "MASSIVE_RATE_LIMIT_URL"
WINDOW_SECONDS = 60.0


@dataclass(frozen=True)
class ProviderBudget:
    """Where a provider's budget is configured and what it counts."""

    provider: str
    limit_variable: str
    default_limit: int
    reserve_variable: str
    default_reserve_share: float
    unit: str  # as status prints it: "requests", "weight units"


PROVIDER_BUDGETS: dict[str, ProviderBudget] = {
    "massive": ProviderBudget("massive", "MASSIVE_RATE_LIMIT_PER_MINUTE", 5, "MASSIVE_CRITICAL_RESERVE", 0.2,
                              "requests"),
    "binance": ProviderBudget("binance", "BINANCE_WEIGHT_LIMIT_PER_MINUTE", 1200, "BINANCE_CRITICAL_RESERVE", 0.2,
                              "weight units"),
}


@dataclass(frozen=True)
class BudgetConfig:
    """One provider's budget as the environment configures it."""

    provider: str
    limit: int
    reserve_share: float
    backend_url: str | None
    unit: str
    window_seconds: float = WINDOW_SECONDS

    @property
    def reserve(self) -> int:
        return reserve_for(self.limit, self.reserve_share)

    def build_limiter(self) -> SharedRateLimiter:
        """This budget's limiter; the caller closes it."""
        return SharedRateLimiter(self.limit, self.window_seconds, budget=self.provider, reserve=self.reserve,
                                 backend_url=self.backend_url)


def _spec(provider: str) -> ProviderBudget:
    try:
        return PROVIDER_BUDGETS[provider]
    except KeyError:
        raise RateLimiterConfigError(
            f"no rate budget is configured for provider {provider!r}; known: {', '.join(PROVIDER_BUDGETS)}"
        ) from None


def _read(env: Mapping[str, str], variable: str, default: float, parse: Callable[[str], float],
          valid: Callable[[float], bool], expected: str) -> float:
    """The variable's value, its default when unset, or one line naming it and what it expects."""
    raw = env.get(variable, "").strip()
    if not raw:
        return default
    try:
        value = parse(raw)
    except ValueError:
        value = None
    if value is None or not valid(value):
        raise RateLimiterConfigError(f"{variable} must be {expected}, got {raw!r}")
    return value


def _limit(env: Mapping[str, str], spec: ProviderBudget) -> int:
    return int(_read(env, spec.limit_variable, spec.default_limit, int, lambda v: v >= 1,
                     f"a whole number of {spec.unit} per minute of at least 1"))


def _reserve_share(env: Mapping[str, str], spec: ProviderBudget) -> float:
    return _read(env, spec.reserve_variable, spec.default_reserve_share, float, lambda v: 0.0 <= v < 1.0,
                 "a share of the budget from 0 to below 1")


def budget_from_env(provider: str, environ: Mapping[str, str] | None = None) -> BudgetConfig:
    """`provider`'s budget from its variables, on the limiter backend every provider shares."""
    env = os.environ if environ is None else environ
    spec = _spec(provider)
    return BudgetConfig(provider=spec.provider, limit=_limit(env, spec), reserve_share=_reserve_share(env, spec),
                        backend_url=env.get(LIMITER_URL_VARIABLE) or None, unit=spec.unit)


def configured_budgets(providers: Iterable[str] = (), environ: Mapping[str, str] | None = None
                       ) -> list[BudgetConfig]:
    """The budgets to show: Massive's first, then each known provider that `providers` names (the
    catalog's) or whose variables are set. A provider with no budget of its own is an error."""
    env = os.environ if environ is None else environ
    wanted = {DEFAULT_BUDGET, *providers}
    for spec in PROVIDER_BUDGETS.values():
        if env.get(spec.limit_variable) or env.get(spec.reserve_variable):
            wanted.add(spec.provider)
    order = [DEFAULT_BUDGET] + sorted(wanted - {DEFAULT_BUDGET})
    return [budget_from_env(p, env) for p in order]


@dataclass(frozen=True)
class BudgetReading:
    """One budget's statistics as every process sees them, or why they could not be read."""

    provider: str
    unit: str
    stats: LimiterStats | None
    error: str | None = None

    def line(self) -> str:
        """One line for `status` and the queue's summary; Massive's reads as it always has."""
        label = "limiter" if self.provider == DEFAULT_BUDGET else f"limiter {self.provider}"
        if self.stats is None:
            return f"{label}: unavailable ({self.error})"
        st = self.stats
        if self.provider == DEFAULT_BUDGET:
            return (f"{label}: {st.used} of {st.limit} requests used in the last {st.window_seconds:g} s, "
                    f"{st.remaining} remaining ({st.reserve} reserved for the priority refresh); {st.waiting} waiting; "
                    f"{st.acquired} acquired since reset ({st.acquired_critical} critical); backend {st.backend}")
        return (f"{label}: {st.used} of {st.limit} {self.unit} used in the last {st.window_seconds:g} s, "
                f"{st.remaining} remaining ({st.reserve} reserved for critical work); {st.waiting} waiting; "
                f"{st.acquired} acquired in {st.requests} requests since reset ({st.acquired_critical} critical); "
                f"backend {st.backend}")

    def brief(self) -> str:
        """A few words for the queue's tick summary."""
        if self.stats is None:
            return f"{self.provider} unavailable"
        st = self.stats
        return (f"{self.provider} {st.used}/{st.limit} {self.unit} used, {st.remaining} remaining, "
                f"{st.waiting} waiting")

    def as_json(self) -> dict[str, object]:
        return {"provider": self.provider, "unit": self.unit, "error": self.error,
                "stats": None if self.stats is None else self.stats.as_dict()}


def providers_of(specs: Iterable[object]) -> set[str]:
    """The providers catalog entries name (`massive` for an entry that names none)."""
    out: set[str] = set()
    for spec in specs:
        provider = getattr(spec, "provider", DEFAULT_BUDGET)
        out.add(str(getattr(provider, "value", provider)))
    return out


def read_other_budgets(providers: Iterable[str] = (), environ: Mapping[str, str] | None = None
                       ) -> list[BudgetReading]:
    """Every configured budget but Massive's (which `MassiveResource` configures), read now."""
    return [read_budget(config) for config in configured_budgets(providers, environ)
            if config.provider != DEFAULT_BUDGET]


def _unreadable(provider: str, unit: str, exc: Exception) -> BudgetReading:
    return BudgetReading(provider, unit, None, f"{type(exc).__name__}: {exc}")


def read_limiter(limiter: SharedRateLimiter) -> BudgetReading:
    """The statistics of an open limiter's budget. An unreachable backend is an answer, not an
    error: the rest of a report stays useful."""
    spec = PROVIDER_BUDGETS.get(limiter.budget)
    unit = spec.unit if spec is not None else "units"
    try:
        return BudgetReading(limiter.budget, unit, limiter.stats())
    except Exception as exc:  # noqa: BLE001 - any backend failure is reported in the line
        return _unreadable(limiter.budget, unit, exc)


def read_budget(config: BudgetConfig) -> BudgetReading:
    """The budget's statistics through a limiter opened for the reading."""
    try:
        with config.build_limiter() as shared:
            return read_limiter(shared)
    except Exception as exc:  # noqa: BLE001 - an unreachable backend fails the build already
        return _unreadable(config.provider, config.unit, exc)
