"""A Massive-compatible HTTP server for the demo and the tests, with switchable faults.

Standard library only (`ThreadingHTTPServer`), so it starts in milliseconds in a thread on port 0
and needs no network. Every API request goes through, in order: authentication (401), a
`throttle_429_next` storm, the sliding-window rate limit (429), `delay_seconds`, `not_entitled`
(403), 5xx / HTML 504 faults, the endpoint itself, then the body faults (truncated JSON,
unexpected shape). Admin endpoints under `/_dev/` skip all of that and are not logged:

- `GET /_dev/health`, `GET /_dev/requests[?kind=aggs]`, `GET /_dev/faults`,
  `GET /_dev/stats[?window=60]` (request count, 429 count, most admitted requests in a window),
- `POST /_dev/faults` (JSON object of FaultConfig fields), `POST /_dev/reset` (faults off, log
  and rate window cleared), `POST /_dev/now` (`{"now": "2024-05-01T12:00:00Z"}` or null).
"""

from __future__ import annotations

import contextlib
import json
import logging
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import pandas as pd

from massive_pipeline.core.timeutil import to_utc
from massive_pipeline.testing.devserver import api
from massive_pipeline.testing.devserver.accounting import (
    RequestLog,
    RequestRecord,
    SlidingWindowLimiter,
    retry_after_header,
)
from massive_pipeline.testing.devserver.aggs import MAX_LIMIT
from massive_pipeline.testing.devserver.faults import FaultConfig, FaultConfigError

log = logging.getLogger(__name__)

_RATE_LIMIT_MESSAGE = (
    "You've exceeded the maximum requests per minute, please wait or upgrade your subscription to continue."
)
_NOT_ENTITLED_MESSAGE = (
    "You are not entitled to this data. Please upgrade your plan at https://massive.com/pricing"
)
_SERVER_ERRORS = ((500, "Internal Server Error"), (502, "Bad Gateway"), (503, "Service Unavailable"))
_HTML_504 = (
    b"<html>\r\n<head><title>504 Gateway Time-out</title></head>\r\n<body>\r\n"
    b"<center><h1>504 Gateway Time-out</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)


class DevServer:
    """The server and its knobs; `with DevServer() as srv:` starts it and stops it."""

    def __init__(
        self,
        port: int = 0,
        host: str = "127.0.0.1",
        api_keys: Iterable[str] | None = None,
        page_size: int = MAX_LIMIT,
        rate_limit: int | None = None,
        rate_window_seconds: float = 60.0,
        seed: int = 0,
        now: pd.Timestamp | str | None = None,
    ) -> None:
        if isinstance(api_keys, str | bytes):
            raise TypeError("api_keys must be a collection of keys, not a single string")
        keys = None if api_keys is None else frozenset(api_keys)
        if keys is not None and not all(isinstance(k, str) and k for k in keys):
            raise ValueError("api_keys must hold non-empty strings")
        if isinstance(page_size, bool) or not isinstance(page_size, int) or not 1 <= page_size <= MAX_LIMIT:
            raise ValueError(f"page_size must be an integer from 1 to {MAX_LIMIT}, got {page_size!r}")
        if rate_limit is not None and (isinstance(rate_limit, bool) or not isinstance(rate_limit, int)
                                       or rate_limit < 1):
            raise ValueError(f"rate_limit must be a positive integer or None, got {rate_limit!r}")
        if not rate_window_seconds > 0:
            raise ValueError(f"rate_window_seconds must be positive, got {rate_window_seconds!r}")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError(f"seed must be an integer, got {seed!r}")
        self.host = host
        self.port = port
        self.api_keys = keys
        self.page_size = page_size
        self.seed = seed
        self.rate_limit = rate_limit
        self.rate_window_seconds = float(rate_window_seconds)
        self._now = None if now is None else to_utc(now, "now")
        self._faults = FaultConfig()
        self._faults_lock = threading.Lock()
        self._error_rotation = 0
        self._log = RequestLog()
        self._limiter = None if rate_limit is None else SlidingWindowLimiter(rate_limit, self.rate_window_seconds)
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    # lifecycle -------------------------------------------------------------------------------
    def _bind(self) -> _HTTPServer:
        if self._httpd is not None:
            raise RuntimeError("the dev server is already running")
        self._stopping.clear()
        httpd = _HTTPServer((self.host, self.port), _Handler, self)
        self.port = httpd.server_address[1]
        self._httpd = httpd
        return httpd

    def start(self) -> DevServer:
        """Serve from a background thread; returns as soon as the port is bound."""
        httpd = self._bind()
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, name=f"devserver:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._stopping.set()
        httpd.shutdown()
        httpd.close_connections()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def serve_forever(self, ready: Callable[[str], None] | None = None) -> None:
        """Serve in the calling thread until interrupted; `ready(url)` is called once bound."""
        httpd = self._bind()
        try:
            if ready is not None:
                ready(self.url)
            httpd.serve_forever(poll_interval=0.2)
        finally:
            self._httpd = None
            self._stopping.set()
            httpd.close_connections()
            httpd.server_close()

    def __enter__(self) -> DevServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    # clock -----------------------------------------------------------------------------------
    @property
    def now(self) -> pd.Timestamp | None:
        return self._now

    @now.setter
    def now(self, value: pd.Timestamp | str | None) -> None:
        self._now = None if value is None else to_utc(value, "now")

    def now_ms(self) -> int:
        """The server clock in Unix ms: the override, or the wall clock."""
        now = self._now
        return int(time.time() * 1000) if now is None else now.value // 1_000_000

    # faults ----------------------------------------------------------------------------------
    @property
    def faults(self) -> FaultConfig:
        return self._faults

    def set_faults(self, **changes: Any) -> FaultConfig:
        """Change some faults (others keep their value); an unknown field or bad value changes nothing."""
        with self._faults_lock:
            self._faults.update(**changes)
            return self._faults.copy()

    def reset(self) -> None:
        """All faults off, request log and rate-limit window cleared."""
        with self._faults_lock:
            self._faults = FaultConfig()
            self._error_rotation = 0
        self._log.clear()
        if self._limiter is not None:
            self._limiter.reset()

    # accounting ------------------------------------------------------------------------------
    @property
    def requests(self) -> list[RequestRecord]:
        return self._log.snapshot()

    def request_count(self, kind: str | None = "aggs") -> int:
        """Logged API requests of `kind` (every status); None counts all kinds."""
        return self._log.count(kind)

    def clear_requests(self) -> None:
        self._log.clear()

    def max_requests_in_window(self, window_seconds: float | None = None) -> int:
        """Most admitted (neither 401 nor 429) API requests in any window; default the rate window."""
        return self._log.max_in_window(self.rate_window_seconds if window_seconds is None else window_seconds)

    def rejected_429_count(self) -> int:
        return self._log.rejected_429()

    # request handling (called from handler threads) --------------------------------------------
    def _take_fault(self, name: str) -> FaultConfig | None:
        """Consume one unit of counter `name` if it is set; the fault settings of that moment."""
        with self._faults_lock:
            remaining = getattr(self._faults, name)
            if remaining <= 0:
                return None
            setattr(self._faults, name, remaining - 1)
            return self._faults.copy()

    def _next_server_error(self) -> tuple[int, str]:
        with self._faults_lock:
            code = _SERVER_ERRORS[self._error_rotation % len(_SERVER_ERRORS)]
            self._error_rotation += 1
            return code

    def _faults_now(self) -> FaultConfig:
        with self._faults_lock:
            return self._faults.copy()

    def handle_api(self, method: str, path: str, params: dict[str, str], headers: Any, host: str | None
                   ) -> tuple[api.Response, float]:
        """The response to one API request and the time to log it with."""
        arrived = time.time()
        key = _api_key(headers, params)
        if not key:
            return api.error(401, "API Key was not provided"), arrived
        if self.api_keys is not None and key not in self.api_keys:
            return api.error(401, "Unknown API Key"), arrived
        storm = self._take_fault("throttle_429_next")
        if storm is not None:
            response = api.error(429, _RATE_LIMIT_MESSAGE)
            if storm.send_retry_after:
                response.headers["Retry-After"] = storm.retry_after_header()
            return response, arrived
        admitted = arrived
        if self._limiter is not None:
            admitted_at, wait = self._limiter.try_admit()
            if admitted_at is None:
                response = api.error(429, _RATE_LIMIT_MESSAGE)
                if self._faults.send_retry_after:
                    response.headers["Retry-After"] = retry_after_header(wait)
                return response, arrived
            admitted = admitted_at
        return self._admitted_response(method, path, params, host), admitted

    def _admitted_response(self, method: str, path: str, params: dict[str, str], host: str | None) -> api.Response:
        delay = self._faults.delay_seconds
        if delay > 0:
            self._stopping.wait(delay)
        if self._faults.not_entitled:
            return api.Response.json(403, {"status": "NOT_AUTHORIZED", "request_id": api.new_request_id(),
                                           "message": _NOT_ENTITLED_MESSAGE})
        if self._take_fault("server_errors_next") is not None:
            status, text = self._next_server_error()
            return api.error(status, text)
        if self._take_fault("html_504_next") is not None:
            return api.Response(504, _HTML_504, content_type="text/html")
        if method != "GET":
            return api.Response.json(405, {"status": "ERROR", "request_id": api.new_request_id(),
                                           "error": f"method {method} not allowed"})
        ctx = api.Context(
            now_ms=self.now_ms(), seed=self.seed, page_size=self.page_size, faults=self._faults_now(),
            base_url=f"http://{host}" if host else self.url,
            take=lambda name: self._take_fault(name) is not None,
        )
        response = api.route(path, params, ctx)
        if self._take_fault("malformed_json_next") is not None:
            return api.Response(200, response.body[: max(1, len(response.body) // 2)])
        if self._take_fault("unexpected_shape_next") is not None:
            return api.Response.json(200, {"foo": 1})
        return response

    def handle_admin(self, method: str, path: str, params: dict[str, str], body: bytes) -> api.Response:
        try:
            return self._admin(method, path, params, body)
        except (FaultConfigError, ValueError, TypeError) as exc:
            return api.error(400, str(exc))

    def _admin(self, method: str, path: str, params: dict[str, str], body: bytes) -> api.Response:
        route = (method, path.rstrip("/"))
        if route == ("GET", "/_dev/health"):
            now = self._now
            return api.Response.json(200, {"status": "OK", "url": self.url, "seed": self.seed,
                                           "now": None if now is None else now.isoformat()})
        if route == ("GET", "/_dev/requests"):
            kind = params.get("kind")
            return api.Response.json(200, [r.to_dict() for r in self.requests if kind is None or r.kind == kind])
        if route == ("GET", "/_dev/faults"):
            return api.Response.json(200, self._faults_now().to_dict())
        if route == ("GET", "/_dev/stats"):
            window = float(params.get("window", self.rate_window_seconds))
            return api.Response.json(200, {
                "requests": self.request_count(None), "rejected_429": self.rejected_429_count(),
                "window_seconds": window, "max_in_window": self.max_requests_in_window(window),
            })
        if route == ("POST", "/_dev/faults"):
            changes = _json_object(body)
            return api.Response.json(200, self.set_faults(**changes).to_dict())
        if route == ("POST", "/_dev/reset"):
            self.reset()
            return api.Response.json(200, {"status": "OK"})
        if route == ("POST", "/_dev/now"):
            payload = _json_object(body)
            if set(payload) != {"now"}:
                raise ValueError('POST /_dev/now takes {"now": <ISO timestamp or null>}')
            self.now = payload["now"]
            now = self._now
            return api.Response.json(200, {"now": None if now is None else now.isoformat()})
        return api.Response.json(404, {"status": "NOT_FOUND", "request_id": api.new_request_id(),
                                       "message": f"No admin route {method} {path}"})


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body or b"{}")
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"request body is not JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise ValueError("request body must be a JSON object")
    return payload


def _api_key(headers: Any, params: dict[str, str]) -> str | None:
    auth = headers.get("Authorization") or ""
    scheme, _, token = auth.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return params.get("apiKey") or None


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # socketserver's default backlog of 5 makes bursts of new connections wait for SYN retries.
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], handler: type, dev: DevServer) -> None:
        self.dev = dev
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Drop kept-alive connections, so that clients see a stopped server as stopped."""
        with self._connections_lock:
            connections, self._connections = list(self._connections), set()
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "MassiveDevServer/1.0"
    timeout = 30  # idle keep-alive connections are closed after this
    server: _HTTPServer

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._dispatch("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._dispatch("PUT")

    def do_DELETE(self) -> None:  # noqa: N802
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        dev = self.server.dev
        split = urlsplit(self.path)
        path = unquote(split.path)
        params = dict(parse_qsl(split.query, keep_blank_values=True))
        body = self._read_body()
        if path.startswith("/_dev/"):
            self._send(dev.handle_admin(method, path, params, body))
            return
        try:
            response, logged_at = dev.handle_api(method, path, params, self.headers, self.headers.get("Host"))
        except Exception:
            log.exception("dev server: request %s %s failed", method, path)
            response, logged_at = api.error(500, "Internal Server Error"), time.time()
        page = api.page_of(params)
        dev._log.append(RequestRecord(logged_at, method, path, api.classify(path), response.status, page))
        self._send(response)

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send(self, response: api.Response) -> None:
        try:
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(response.body)))
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(response.body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
        # Request lines may carry `apiKey=`; only the path is ever logged.
        log.debug("dev server: %s %s", self.command, urlsplit(self.path).path)


def serve_forever_cli(host: str = "127.0.0.1", port: int = 8765, **kwargs: Any) -> None:
    """Run a dev server in the foreground (`massive-pipeline devserver`) until Ctrl-C."""
    server = DevServer(port=port, host=host, **kwargs)

    def announce(url: str) -> None:
        print(f"Massive dev server listening on {url}", flush=True)
        print(f"  export MASSIVE_BASE_URL={url}   (any non-empty MASSIVE_API_KEY is accepted"
              f"{'' if server.api_keys is None else ' if configured'})", flush=True)
        print("  Ctrl-C stops it.", flush=True)

    # Ctrl-C must stop it even when started by a process that ignores SIGINT: an ignored signal stays
    # ignored across exec, and Python then installs no KeyboardInterrupt handler of its own.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        server.serve_forever(ready=announce)
    except KeyboardInterrupt:
        print("Massive dev server stopped.", flush=True)
    finally:
        signal.signal(signal.SIGINT, previous)
