"""Each provider's rate budget from the environment, on the one limiter backend they share."""

from __future__ import annotations

import pytest

from massive_pipeline.massive.ratelimit import RateLimiterConfigError
from massive_pipeline.resources.massive import massive_resource_from_env
from massive_pipeline.resources.rate_budgets import (
    budget_from_env,
    configured_budgets,
    providers_of,
    read_budget,
)


def test_defaults_massive_in_requests_binance_in_weight_well_under_its_published_6000():
    massive, binance = budget_from_env("massive", {}), budget_from_env("binance", {})
    assert (massive.provider, massive.limit, massive.reserve, massive.unit, massive.window_seconds) == (
        "massive", 5, 1, "requests", 60.0)
    assert (binance.provider, binance.limit, binance.reserve, binance.unit, binance.window_seconds) == (
        "binance", 1200, 240, "weight units", 60.0)
    assert massive.backend_url is None and binance.backend_url is None  # both: the SQLite file under DAGSTER_HOME


def test_the_variables_set_each_budget_and_the_backend_is_shared():
    env = {"MASSIVE_RATE_LIMIT_PER_MINUTE": "100", "MASSIVE_CRITICAL_RESERVE": "0.1",
           "BINANCE_WEIGHT_LIMIT_PER_MINUTE": "3000", "BINANCE_CRITICAL_RESERVE": "0",
           "MASSIVE_RATE_LIMIT_URL": "redis://127.0.0.1:6379/0"}
    massive, binance = budget_from_env("massive", env), budget_from_env("binance", env)
    assert (massive.limit, massive.reserve, binance.limit, binance.reserve) == (100, 10, 3000, 0)
    assert massive.backend_url == binance.backend_url == "redis://127.0.0.1:6379/0"


def test_the_massive_resource_takes_its_budget_from_the_same_variables(monkeypatch, tmp_path):
    monkeypatch.setenv("MASSIVE_RATE_LIMIT_PER_MINUTE", "7")
    monkeypatch.setenv("MASSIVE_CRITICAL_RESERVE", "0.3")
    monkeypatch.setenv("MASSIVE_RATE_LIMIT_URL", f"sqlite:///{tmp_path}/limiter.sqlite")
    with massive_resource_from_env().build_limiter() as limiter:
        assert (limiter.budget, limiter.limit, limiter.reserve) == ("massive", 7, 2)
        assert limiter.backend == f"sqlite:{tmp_path}/limiter.sqlite"


@pytest.mark.parametrize(("env", "message"), [
    ({"BINANCE_WEIGHT_LIMIT_PER_MINUTE": "lots"},
     "BINANCE_WEIGHT_LIMIT_PER_MINUTE must be a whole number of weight units per minute of at least 1, got 'lots'"),
    ({"BINANCE_WEIGHT_LIMIT_PER_MINUTE": "0"}, "got '0'"),
    ({"BINANCE_CRITICAL_RESERVE": "1.5"}, "BINANCE_CRITICAL_RESERVE must be a share of the budget from 0 to below 1"),
    ({"MASSIVE_RATE_LIMIT_PER_MINUTE": "5.5"}, "MASSIVE_RATE_LIMIT_PER_MINUTE must be a whole number of requests"),
])
def test_bad_values_are_one_line_naming_the_variable(env, message):
    provider = "massive" if any(k.startswith("MASSIVE") for k in env) else "binance"
    with pytest.raises(RateLimiterConfigError) as err:
        budget_from_env(provider, env)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_an_unknown_provider_names_the_known_ones():
    with pytest.raises(RateLimiterConfigError, match="no rate budget is configured for provider 'kraken'; "
                                                     "known: massive, binance"):
        budget_from_env("kraken", {})


def test_configured_budgets_are_massives_and_those_the_catalog_or_the_environment_name():
    assert [b.provider for b in configured_budgets((), {})] == ["massive"]
    assert [b.provider for b in configured_budgets(("binance", "massive"), {})] == ["massive", "binance"]
    assert [b.provider for b in configured_budgets((), {"BINANCE_CRITICAL_RESERVE": "0.1"})] == ["massive", "binance"]


def test_providers_of_entries_default_to_massive():
    class Entry:
        def __init__(self, provider: str | None) -> None:
            if provider is not None:
                self.provider = provider

    assert providers_of([Entry(None), Entry("binance")]) == {"massive", "binance"}


def test_an_unreachable_backend_is_a_reading_not_an_error():
    config = budget_from_env("binance", {"MASSIVE_RATE_LIMIT_URL": "redis://:hunter2@127.0.0.1:1/0"})
    reading = read_budget(config)
    assert reading.stats is None and "not reachable" in (reading.error or "")
    assert reading.line().startswith("limiter binance: unavailable (RateLimiterConfigError: ")
    assert "hunter2" not in reading.line()
