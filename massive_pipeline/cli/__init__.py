"""`massive-pipeline`: the command line over the same Dagster jobs the UI and schedules run.

One module per command group, each with `register(subparsers)`; every command calls one library
function and prints its result. Bad arguments get one line on stderr and exit code 2; a failed
run, or an error whose message names the thing at fault, one line and exit code 1.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from massive_pipeline.cli import (
    bootstrap,
    broker,
    candles,
    demo,
    operations,
    quality,
    serve,
    store,
    stream,
    ui,
)
from massive_pipeline.cli.args import UsageError

COMMAND_GROUPS = (demo, ui, candles, bootstrap, quality, operations, store, serve, broker, stream)

__all__ = ["UsageError", "build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="massive-pipeline", description=(__doc__ or "").split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for group in COMMAND_GROUPS:
        group.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UsageError as exc:
        print(f"massive-pipeline: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - one clear line instead of a traceback for known failures
        from massive_pipeline.cli.errors import is_user_facing

        if not is_user_facing(exc):
            raise
        print(f"massive-pipeline: error: {exc}", file=sys.stderr)
        return 1
