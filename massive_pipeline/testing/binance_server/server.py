"""`BinanceServer`: the bundled Binance-compatible server's state and lifecycle.

The routes (`app.py`) are a Starlette app served by uvicorn from a background thread on a socket
bound before `start()` returns, so a client can connect at once (the kernel queues it until the
accept loop runs) and nothing waits on a polling loop. `stop()` then `start()` serves again on the
same port, as a restarted exchange would.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Callable, Iterable
from typing import Any

import pandas as pd
import uvicorn
from starlette.applications import Starlette

from massive_pipeline.testing.binance_server.accounting import KlineRequest, RequestLog, WeightMeter
from massive_pipeline.testing.binance_server.app import KLINES, build_app
from massive_pipeline.testing.binance_server.clock import ServerClock
from massive_pipeline.testing.binance_server.switches import BinanceSwitches

Extension = Callable[["BinanceServer"], Any]


class BinanceServer:
    """The server and its knobs; `with BinanceServer() as srv:` starts and stops it.

    `now`/`speed` set the clock (`speed=0` freezes it at `now`); `weight_limit` makes the server
    refuse, with 429 and `Retry-After`, requests that would pass that weight in a minute (None:
    count, never refuse); `extensions` are called with the server once, before it first serves
    (the kline stream mounts itself this way, see the package docstring).
    """

    def __init__(self, port: int = 0, host: str = "127.0.0.1", *, now: pd.Timestamp | str | None = None,
                 speed: float = 1.0, weight_limit: int | None = None, seed: int = 0,
                 extensions: Iterable[Extension] = ()) -> None:
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError(f"seed must be an integer, got {seed!r}")
        self.host, self.port, self.seed = host, port, seed
        self.clock = ServerClock(now, speed)
        self.weights = WeightMeter(weight_limit)
        self._switches = BinanceSwitches()
        self._switches_lock = threading.Lock()
        self._log = RequestLog()
        self.app: Starlette = build_app(self)
        self._extensions = list(extensions)
        self._extended = False
        self._uvicorn: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._stoppers: list[Callable[[], None]] = []

    # lifecycle -------------------------------------------------------------------------------
    def start(self) -> BinanceServer:
        if self._thread is not None:
            raise RuntimeError("the Binance server is already running")
        if not self._extended:
            self._extended = True
            for extension in self._extensions:
                extension(self)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        sock.listen(128)
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self.app, log_level="warning", lifespan="off", access_log=False,
                                timeout_graceful_shutdown=1)
        server = uvicorn.Server(config)
        self._uvicorn = server
        self._thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])),
                                        name=f"binance-server:{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._uvicorn, self._thread
        self._uvicorn = self._thread = None
        if server is None or thread is None:
            return
        for stopper in list(self._stoppers):
            with contextlib.suppress(Exception):
                stopper()
        server.should_exit = True
        thread.join(timeout=10)

    def on_stop(self, stopper: Callable[[], None]) -> None:
        """Run `stopper` at every `stop()`, before the HTTP server shuts down (e.g. close streams)."""
        self._stoppers.append(stopper)

    def __enter__(self) -> BinanceServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._thread is not None

    # switches --------------------------------------------------------------------------------
    def set_switches(self, **changes: Any) -> BinanceSwitches:
        with self._switches_lock:
            self._switches.update(**changes)
            return self._switches.copy()

    def switches_now(self) -> BinanceSwitches:
        with self._switches_lock:
            return self._switches.copy()

    @property
    def switches(self) -> BinanceSwitches:
        return self.switches_now()

    def take_switches(self, name: str) -> BinanceSwitches | None:
        """Consume one unit of counter `name` if set; the switches of that moment, else None."""
        with self._switches_lock:
            if getattr(self._switches, name) <= 0:
                return None
            setattr(self._switches, name, getattr(self._switches, name) - 1)
            return self._switches.copy()

    def take(self, name: str) -> bool:
        return self.take_switches(name) is not None

    def reset(self) -> None:
        """Switches off, request log and weight counts cleared (the clock is left as it is)."""
        with self._switches_lock:
            self._switches = BinanceSwitches()
        self._log.clear()
        self.weights.reset()

    # accounting ------------------------------------------------------------------------------
    def log(self, record: KlineRequest) -> None:
        self._log.append(record)

    def requests(self, path: str | None = None) -> list[KlineRequest]:
        return self._log.snapshot(path)

    def kline_requests(self) -> list[KlineRequest]:
        return self._log.snapshot(KLINES)

    def clear_requests(self) -> None:
        self._log.clear()


def serve_forever_cli(host: str = "127.0.0.1", port: int = 8766, **kwargs: Any) -> None:
    """Run the server in the foreground until Ctrl-C (`python -m massive_pipeline.testing.binance_server`)."""
    server = BinanceServer(port=port, host=host, **kwargs).start()
    print(f"Binance-compatible server listening on {server.url}", flush=True)
    print(f"  export BINANCE_BASE_URL={server.url}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        print("Binance-compatible server stopped.", flush=True)
    finally:
        server.stop()
