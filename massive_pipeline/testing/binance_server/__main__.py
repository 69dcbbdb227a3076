"""`python -m massive_pipeline.testing.binance_server [--port 8766] [--speed 1]`: serve until Ctrl-C."""

from __future__ import annotations

import argparse

from massive_pipeline.testing.binance_server.server import serve_forever_cli


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m massive_pipeline.testing.binance_server",
                                     description="Binance-compatible klines server for trying the Binance provider.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--speed", type=float, default=1.0, help="clock speed (60: a minute a second)")
    parser.add_argument("--weight-limit", type=int, default=None, help="refuse weight beyond this per minute (429)")
    args = parser.parse_args()
    serve_forever_cli(args.host, args.port, speed=args.speed, weight_limit=args.weight_limit)


if __name__ == "__main__":
    main()
