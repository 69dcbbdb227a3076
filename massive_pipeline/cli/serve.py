"""`massive-pipeline serve`: the data service (FastAPI under uvicorn) over this environment's store.

It reads what the code location reads (`MASSIVE_DATABASE_URL`, `MASSIVE_CATALOG`, `DAGSTER_HOME`,
`MASSIVE_RATE_LIMIT_URL`) and `MASSIVE_SERVICE_TOKEN` for bearer-token auth. The socket is bound
before the URL is printed, so the printed port is the real one (`--port 0` picks a free one) and
a client that reads the line can connect as soon as the server accepts.
"""

from __future__ import annotations

import argparse
import socket

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000


def port_arg(text: str) -> int:
    """An argparse type: a TCP port, 0 to 65535 (0: the system picks a free one)."""
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"not a port (0..65535): {text!r}")
    return port


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (IPv6 when the host is an IPv6 address)."""
    from massive_pipeline.cli.args import UsageError

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise UsageError(f"--host/--port: cannot listen on {host}:{port} ({exc.strerror or exc})") from None
    sock.listen(2048)
    return sock


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from massive_pipeline.location import build_definitions
    from massive_pipeline.service import ServiceConfig, create_app

    config = ServiceConfig.from_env(lambda catalog: build_definitions(catalog))
    sock = bind(args.host, args.port)
    app = create_app(config)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}"
    print(f"serving the data service on {url} (OpenAPI {url}/openapi.json, docs {url}/docs)", flush=True)
    print(
        f"candle store {app.state.context.store_display()}; Dagster instance {config.dagster_home}; "
        f"bearer token {'required' if config.token else 'not required (MASSIVE_SERVICE_TOKEN unset)'}",
        flush=True,
    )
    server = uvicorn.Server(uvicorn.Config(app, log_level=args.log_level, access_log=args.access_log))
    server.run(sockets=[sock])
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    serve = subparsers.add_parser(
        "serve",
        help="the data service: HTTP API over the candle store (candles, symbols, status, gaps, sync)",
    )
    serve.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help=f"address to listen on (default {DEFAULT_HOST}; 0.0.0.0 for every interface)",
    )
    serve.add_argument(
        "--port", type=port_arg, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0: a free one)"
    )
    serve.add_argument(
        "--log-level",
        default="warning",
        choices=("critical", "error", "warning", "info", "debug"),
        help="uvicorn's log level (default warning)",
    )
    serve.add_argument("--access-log", action="store_true", help="log every request")
    serve.set_defaults(func=cmd_serve)
