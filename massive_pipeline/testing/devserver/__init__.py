"""A Massive-compatible HTTP server with deterministic prices and switchable faults.

The demo, the client tests and the reliability suite run against it instead of the real API:
it needs no key, no network and no subscription, and it misbehaves exactly when told to.
"""

from massive_pipeline.testing.devserver.accounting import RequestRecord
from massive_pipeline.testing.devserver.faults import FaultConfig, FaultConfigError
from massive_pipeline.testing.devserver.server import DevServer, serve_forever_cli

__all__ = ["DevServer", "FaultConfig", "FaultConfigError", "RequestRecord", "serve_forever_cli"]
