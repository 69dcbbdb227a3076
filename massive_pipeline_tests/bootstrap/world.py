"""A three-symbol world for bootstrap runs: one forex, one crypto, one index pair with a fetched
D1, three days of history before a fixed Wednesday noon, the bundled server's clock at that instant."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd

AT = pd.Timestamp("2026-10-07 12:00", tz="UTC")
START = AT.date() - dt.timedelta(days=2)  # Monday 2026-10-05

THREE_SYMBOLS = f"""\
symbols:
  - {{symbol: EURUSD, ticker: "C:EURUSD", asset_class: forex, priority: critical, calendar: forex, start: {START}}}
  - {{symbol: BTCUSD, ticker: "X:BTCUSD", asset_class: crypto, priority: high, calendar: crypto, start: {START}}}
  - {{symbol: SPX500, ticker: "I:SPX", asset_class: index, priority: medium, calendar: us_equity, start: {START},
     fetch: [D1]}}
"""


def write_three_symbols(directory: Path) -> Path:
    """The three-symbol catalog as a file in `directory`."""
    path = directory / "bootstrap-catalog.yaml"
    path.write_text(THREE_SYMBOLS)
    return path


def aggs_requests(records) -> list:
    """The aggregates requests the server admitted (pages included), in arrival order."""
    return [r for r in records if r.kind == "aggs" and r.status == 200]
