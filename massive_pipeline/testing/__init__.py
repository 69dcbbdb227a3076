"""Tools for tests, the demo and benchmarks: not used by the deployed code location.

`devserver/` is the bundled Massive-compatible HTTP server, `simulation.py` the accelerated-clock
operations simulation, `limiter_load.py` the multi-process rate-limiter load generator,
`query_log.py` the driver-edge spy that counts the queries a candle read sends.
"""
