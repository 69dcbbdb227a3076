"""Argument helpers shared by the command groups: one way to parse a day, a range, a list.

A bad argument raises `UsageError`, which `main` prints as one line with exit code 2.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
from collections.abc import Sequence

import pandas as pd

from massive_pipeline.core.timeframes import Timeframe, UnknownTimeframeError, parse_timeframes


class UsageError(Exception):
    """A bad argument: reported on one line, exit code 2."""


def require_dagster_home(command: str) -> None:
    """Stop a command that reads or records runs in the Dagster instance when `DAGSTER_HOME` is unset.

    Dagster's own answer is a traceback ending in shell advice for three platforms; one line
    naming the variable says the same. No default is taken: a bootstrap planned against an empty
    stand-in instance would plan again everything the real one records as stored.
    """
    if not os.environ.get("DAGSTER_HOME"):
        raise UsageError(
            f"DAGSTER_HOME is not set: {command} reads what is stored from the Dagster instance there "
            "and records its runs in it; export DAGSTER_HOME=<the directory `dagster dev` and the daemon use>"
        )


def require_api_key() -> None:
    """Stop a command that would call the API before it creates any run, when the key is unset.

    Without it the first run fails deep in Dagster's config resolution with a 40-line traceback;
    one line naming the variable (exit 2, like a missing argument) says what to do.
    """
    from massive_pipeline.resources.api_key import missing_api_key, missing_api_key_message

    variable = missing_api_key()
    if variable is not None:
        raise UsageError(missing_api_key_message(variable))


def date_arg(text: str) -> dt.date:
    """An argparse type: a UTC day as YYYY-MM-DD."""
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def check_range(start: dt.date, end: dt.date) -> None:
    if end < start:
        raise UsageError(f"--end {end} is before --start {start}")


def timeframes_arg(text: str | None) -> list[Timeframe]:
    """Comma-separated timeframes; none given: all eight."""
    if not text:
        return list(Timeframe)
    try:
        return parse_timeframes(text)
    except UnknownTimeframeError as exc:
        raise UsageError(str(exc)) from None


def specs_arg(catalog, text: str | None):
    """Comma-separated catalog symbols; none given: the whole catalog."""
    from massive_pipeline.core.catalog import UnknownSymbolError

    try:
        return catalog.select([s for s in text.split(",") if s.strip()] if text else None)
    except UnknownSymbolError as exc:
        raise UsageError(str(exc)) from None


def print_frame(frame: pd.DataFrame) -> None:
    print(frame.to_string(index=False))


def rows_table(store, symbols: Sequence[str], timeframes: Sequence[Timeframe]) -> pd.DataFrame:
    """Stored rows per symbol (rows) and timeframe (columns)."""
    counts = store.row_counts()
    table = pd.DataFrame(index=list(symbols), columns=[tf.value for tf in timeframes], data=0)
    for row in counts.itertuples(index=False):
        if row.symbol in table.index and row.timeframe in table.columns:
            table.loc[row.symbol, row.timeframe] = int(row.rows)
    table.index.name = "symbol"
    return table.reset_index()
