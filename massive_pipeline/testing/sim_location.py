"""The code location the simulation's gRPC code server loads, and so every run process of it.

Runs go through the real run queue and launcher, so they execute in processes that load a code
location by module name, not the objects the simulation built. For those processes to see the same
accelerated world (the bundled server's URL, the limiter's window of `60 / speedup` real seconds,
the shared limiter file and candle store), the simulation writes its parameters to a file and names
it in `MASSIVE_SIMULATION_PARAMS` before it starts the code server, which passes its environment on
to each run process. `defs` is built from that file, so nothing here is a second copy of the
composition: it is `build_definitions` with the simulation's resources.

Steps run in the run's own process (`in_process_executor`): a spawned process per step would cost
a 2-core machine several CPU seconds per step and put every run minutes behind the accelerated
clock. Pools still apply: the in-process executor claims an op's pool slot from the instance before
the step runs, exactly as the multiprocess executor does.
"""

from __future__ import annotations

import os
import pickle
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from dagster import Definitions, ExecutorDefinition, in_process_executor

from massive_pipeline.core.catalog import Catalog
from massive_pipeline.massive.ratelimit import SharedRateLimiter, reserve_for
from massive_pipeline.operations.publisher import RedisPublisherResource
from massive_pipeline.operations.settings import OperationsSettings
from massive_pipeline.resources.candle_store import CandleStoreResource
from massive_pipeline.resources.massive import MassiveResource

PARAMS_ENV = "MASSIVE_SIMULATION_PARAMS"
SIM_API_KEY = "simulation-key"


def code_location(catalog: Catalog, settings: OperationsSettings, resources: Mapping[str, object],
                  executor: ExecutorDefinition | None = None) -> Definitions:
    """The code location itself (`build_definitions`), with the simulation's settings and resources."""
    from massive_pipeline.location import build_definitions  # the root imports this package

    return build_definitions(catalog, resources=resources, settings=settings, executor=executor)


class SimulatedMassiveResource(MassiveResource):
    """`MassiveResource` whose limiter keeps the safety margin a real 60-second window has.

    The margin absorbs the delay between taking a token and the request reaching the server. That
    delay is real time and does not shrink with the simulated window, so the margin must not
    either: 1 % of a 60 s window is 600 ms; 1 % of a 12 s simulated one would be 120 ms.
    """

    limiter_margin_ms: int = 600

    def build_limiter(self) -> SharedRateLimiter:
        return SharedRateLimiter(
            self.rate_limit_per_minute, self.rate_window_seconds,
            reserve=reserve_for(self.rate_limit_per_minute, self.critical_reserve),
            backend_url=self.limiter_url, margin_ms=self.limiter_margin_ms,
        )


def sim_resources(server_url: str, rate_limit: int, window_seconds: float, critical_reserve: float,
                  root: Path) -> dict[str, object]:
    """The resources of every process of the simulation: the bundled server, the limiter file shared
    by all of them with the accelerated window, the candle store file, no Redis."""
    return {
        "massive": SimulatedMassiveResource(
            api_key=SIM_API_KEY, base_url=server_url, rate_limit_per_minute=rate_limit,
            rate_window_seconds=window_seconds, critical_reserve=critical_reserve,
            limiter_url=f"sqlite:///{root / 'limiter.sqlite'}",
        ),
        "candle_store": CandleStoreResource(database_url=f"sqlite:///{root / 'candles.sqlite'}"),
        "redis_publisher": RedisPublisherResource(url=None),
    }


@dataclass(frozen=True)
class SimulationParams:
    """What a run process needs to join the simulation (written by the simulation, read here)."""

    catalog: Catalog
    server_url: str
    root: str  # the simulation's work directory: limiter and candle store files
    rate_limit: int
    window_seconds: float
    critical_reserve: float

    def write(self, path: Path) -> Path:
        path.write_bytes(pickle.dumps(self))
        return path

    @staticmethod
    def read(path: str | os.PathLike[str]) -> SimulationParams:
        return pickle.loads(Path(path).read_bytes())  # noqa: S301 - written by this simulation's own process


def simulation_definitions(params: SimulationParams) -> Definitions:
    """`build_definitions` with the simulation's resources; schedules and sensors stopped, since the
    simulation evaluates them itself on its accelerated clock."""
    resources = sim_resources(params.server_url, params.rate_limit, params.window_seconds, params.critical_reserve,
                              Path(params.root))
    return code_location(params.catalog, OperationsSettings(running_by_default=False), resources,
                         executor=in_process_executor)


def _defs_from_env() -> Definitions:
    path = os.environ.get(PARAMS_ENV)
    if not path:
        raise RuntimeError(f"{PARAMS_ENV} is not set: this code location exists only inside a simulation "
                           "(massive_pipeline.testing.simulation.run_simulation)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return simulation_definitions(SimulationParams.read(path))


defs = _defs_from_env() if os.environ.get(PARAMS_ENV) else Definitions()
