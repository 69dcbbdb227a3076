"""Shifts the wall clock of every Python process of a test run by one offset (scripts/test-at-clock.sh).

Python imports `sitecustomize` at start-up from the path, so every process the suite starts (the CLI,
Dagster's daemon, webserver and code servers, the bundled server) gets it through PYTHONPATH. With
MASSIVE_TEST_CLOCK_OFFSET set, time-machine moves `time.time`, `datetime.now`, `date.today` and
pandas' `Timestamp.now` to *start + offset* and lets them tick, so processes started later agree with
the first. The monotonic clock, sleeps and lock waits stay real: libfaketime, which shifts them too,
made Python's lock waits hang and its sleeps fail with EINVAL (libfaketime 0.9.10, glibc 2.36).

gRPC is the one exception: its Python layer turns timeouts into deadlines with `time.time()` and hands
them to its C core, which compares them with the real clock, so a shifted `time.time()` there makes a
0.2 s connectivity poll wait for days (Dagster's code servers never answer). Its modules get a `time`
whose `time()` is the real clock, as they are imported (an import hook, so a process that never uses
gRPC does not pay for importing it).

What stays on the real clock: PostgreSQL, Redis and SQLite's `CURRENT_TIMESTAMP` (C code). Dagster
stamps an inserted run with the database's clock and a run event with Python's, so a test that
inserts runs in a finished state must finish them through their events instead.
"""

import os

_offset = os.environ.get("MASSIVE_TEST_CLOCK_OFFSET")
if _offset:
    import importlib.abc
    import sys
    import time
    import types

    import time_machine

    _SHIFT = float(_offset)
    _GRPC_MODULES = frozenset(
        {"grpc._cython.cygrpc", "grpc._channel", "grpc._server", "grpc._common", "grpc._utilities", "grpc.aio._utils"}
    )
    _real_time = types.SimpleNamespace(**{n: getattr(time, n) for n in dir(time) if not n.startswith("__")})
    _real_time.time = lambda: time.time() - _SHIFT

    class _RealClockForGrpc(importlib.abc.MetaPathFinder):
        """Finds gRPC's clock-reading modules with the other finders and mends each once loaded."""

        def find_spec(self, name, path, target=None):
            if name not in _GRPC_MODULES:
                return None
            for finder in sys.meta_path:
                if finder is self:
                    continue
                spec = finder.find_spec(name, path, target) if hasattr(finder, "find_spec") else None
                if spec is not None and spec.loader is not None:
                    loader = spec.loader
                    original = loader.exec_module

                    def exec_module(module, _original=original):
                        _original(module)
                        module.time = _real_time

                    loader.exec_module = exec_module
                    return spec
            return None

    sys.meta_path.insert(0, _RealClockForGrpc())
    time_machine.travel(time.time() + _SHIFT, tick=True).start()
    time.time()  # time-machine starts ticking at the first read, not at start(): read now, so every process agrees
