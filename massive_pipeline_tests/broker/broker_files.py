"""Test helpers: the bundled server's bars in the store, and broker exports made from them.

Bars are fetched from the bundled Massive-compatible server over HTTP with the pipeline's own
client (the only mock is the server at the network edge) and written to the store; a broker file
is the same bars shifted onto a known server-time rule with a known price offset added, written
as the MT4 or MT5 terminal writes it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from massive_pipeline.broker.offset import OffsetRule
from massive_pipeline.core.timeframes import Timeframe
from massive_pipeline.massive.client import MassiveClient
from massive_pipeline.store import CandleStore
from massive_pipeline.testing.devserver import DevServer

TEST_KEY = "test-key-123"
_TIMESPAN = {Timeframe.M15: (15, "minute"), Timeframe.H1: (1, "hour")}
MT5_HEADER = "<DATE>\t<TIME>\t<OPEN>\t<HIGH>\t<LOW>\t<CLOSE>\t<TICKVOL>\t<VOL>\t<SPREAD>\n"


def store_server_bars(
    server: DevServer, store: CandleStore, ticker: str, symbol: str, tf: Timeframe, start: str, end: str
) -> pd.DataFrame:
    """Fetch `ticker`'s `tf` bars in [start, end) from the bundled server, store them, return them."""
    lo, hi = pd.Timestamp(start, tz="UTC"), pd.Timestamp(end, tz="UTC")
    multiplier, timespan = _TIMESPAN[tf]
    with MassiveClient(server.url, TEST_KEY, sleep=lambda _s: None) as client:
        bars = client.get_aggregates(ticker, multiplier, timespan, lo, hi).bars
    store.create_schema()
    store.write_window(symbol, tf, lo, hi, bars)
    return store.read(symbol, tf, lo, hi)


def broker_bars(bars: pd.DataFrame, rule: OffsetRule, price_offset: float) -> pd.DataFrame:
    """The store's bars as a broker on `rule` shows them: server-time stamps, prices + `price_offset`."""
    utc = pd.DatetimeIndex(bars["ts"])
    if rule.kind == "fixed":
        server = utc.tz_localize(None) + pd.Timedelta(minutes=rule.minutes)
    else:  # New York wall time + 7 h, computed independently of the code under test
        server = utc.tz_convert("America/New_York").tz_localize(None) + pd.Timedelta(hours=7)
    out = pd.DataFrame({"server_time": server})
    for col in ("open", "high", "low", "close"):
        out[col] = bars[col].to_numpy() + price_offset
    out["volume"] = np.maximum(bars["volume"].to_numpy(), 1).round().astype(np.int64)
    return out


def _cols(bars: pd.DataFrame, decimals: int, time_format: str) -> list[list[str]]:
    times = pd.DatetimeIndex(bars["server_time"])
    cols = [list(times.strftime("%Y.%m.%d")), list(times.strftime(time_format))]
    cols += [[f"{v:.{decimals}f}" for v in bars[c]] for c in ("open", "high", "low", "close")]
    cols.append([str(v) for v in bars["volume"]])
    return cols


def mt4_text(bars: pd.DataFrame, decimals: int) -> str:
    """An MT4 History Center CSV: no header, `2025.08.01,00:00,o,h,l,c,volume`."""
    return "".join(",".join(row) + "\n" for row in zip(*_cols(bars, decimals, "%H:%M"), strict=True))


def mt5_text(bars: pd.DataFrame, decimals: int, spread: int = 12) -> str:
    """An MT5 bars export: tab-separated under the header, times `HH:MM:SS`, real volume 0."""
    cols = _cols(bars, decimals, "%H:%M:%S") + [["0"] * len(bars), [str(spread)] * len(bars)]
    return MT5_HEADER + "".join("\t".join(row) + "\n" for row in zip(*cols, strict=True))


def write_export(folder: Path, name: str, text: str, *, utf16: bool = False) -> Path:
    path = folder / name
    path.write_bytes(text.encode("utf-16") if utf16 else text.encode("utf-8"))
    return path
