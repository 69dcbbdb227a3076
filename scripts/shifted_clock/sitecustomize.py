"""Shifts the wall clock of every Python process of a test run by one offset (scripts/test-at-clock.sh).

Python imports `sitecustomize` at start-up from the path, so every process the suite starts (the CLI,
Dagster's daemon, webserver and code servers, the bundled server) gets it through PYTHONPATH. With
MASSIVE_TEST_CLOCK_OFFSET set, time-machine moves `time.time`, `datetime.now`, `date.today` and
pandas' `Timestamp.now` to *start + offset* and lets them tick, so processes started later agree with
the first. The monotonic clock, sleeps and lock waits stay real: libfaketime, which shifts them too,
made Python's lock waits hang and its sleeps fail with EINVAL (libfaketime 0.9.10, glibc 2.36).

gRPC is the one exception: its Python layer turns timeouts into deadlines with `time.time()` and hands
them to its C core, which compares them with the real clock, so a shifted `time.time()` there makes a
0.2 s connectivity poll wait for days (Dagster's code servers never answer). Its modules are given a
`time` whose `time()` is the real clock; nothing else is touched.
"""

import os

_offset = os.environ.get("MASSIVE_TEST_CLOCK_OFFSET")
if _offset:
    import importlib
    import time
    import types

    import time_machine

    _shift = float(_offset)
    _real_time = types.SimpleNamespace(**{name: getattr(time, name) for name in dir(time) if not name.startswith("__")})
    _real_time.time = lambda: time.time() - _shift

    time_machine.travel(time.time() + _shift, tick=True).start()

    try:
        for _name in ("grpc._cython.cygrpc", "grpc._channel", "grpc._server", "grpc._common", "grpc._utilities", "grpc.aio._utils"):
            importlib.import_module(_name).time = _real_time
    except ImportError:  # a process without gRPC installed has nothing to mend
        pass
