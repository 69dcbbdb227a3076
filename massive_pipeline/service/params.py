"""Parsing the service's parameters: symbols, timeframes, instants, days and paging cursors.

Each parser takes the parameter's name, so a bad value is refused with a message that starts with
it (`BadParameter`), and an unknown symbol with a 404 that names it. Instants are UTC: a day
(`2026-10-01`, its midnight) or an ISO 8601 timestamp (`2026-10-01T12:30:00Z`, an offset, or a
naive time read as UTC). The cursor is opaque to clients but is only the last bar's start and the
series it belongs to, so the next page is a keyset query (`ts > after`), never an offset.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from massive_pipeline.core.catalog import Catalog, SymbolSpec, UnknownSymbolError
from massive_pipeline.core.timeframes import Timeframe, UnknownTimeframeError, parse_timeframe
from massive_pipeline.service.errors import BadCursor, BadParameter, unknown_symbol

_DAY_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# pandas timestamps span 1677..2262; the service keeps to a range no candle lies outside of
EARLIEST = pd.Timestamp("1970-01-01", tz="UTC")
LATEST = pd.Timestamp("2200-01-01", tz="UTC")
CURSOR_VERSION = 1


def symbol_spec(catalog: Catalog, text: str, parameter: str = "symbol") -> SymbolSpec:
    """The catalog entry `text` names (case-insensitive); 404 naming it otherwise."""
    try:
        return catalog.get(text)
    except UnknownSymbolError as exc:
        raise unknown_symbol(exc, parameter) from None


def symbol_specs(
    catalog: Catalog, texts: Sequence[str] | None, parameter: str = "symbol"
) -> list[SymbolSpec]:
    """Several symbols (repeated parameters or comma-separated), none: an empty list."""
    names = [n for text in texts or () for n in text.split(",") if n.strip()]
    return [symbol_spec(catalog, n, parameter) for n in names]


def timeframe(text: str, parameter: str = "timeframe") -> Timeframe:
    try:
        return parse_timeframe(text)
    except UnknownTimeframeError as exc:
        raise BadParameter(parameter, str(exc)) from None


def timeframes(texts: Sequence[str] | None, parameter: str = "timeframe") -> list[Timeframe]:
    names = [n for text in texts or () for n in text.split(",") if n.strip()]
    out: list[Timeframe] = []
    for name in names:
        tf = timeframe(name, parameter)
        if tf not in out:
            out.append(tf)
    return out


def instant(text: str, parameter: str) -> pd.Timestamp:
    """A UTC day (its 00:00) or an ISO 8601 timestamp, as a UTC `pd.Timestamp`."""
    value = text.strip()
    try:
        if _DAY_RE.match(value):
            ts = pd.Timestamp(dt.date.fromisoformat(value)).tz_localize("UTC")
        else:
            parsed = dt.datetime.fromisoformat(value)
            ts = pd.Timestamp(parsed)
            ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    except (ValueError, OverflowError):
        raise BadParameter(
            parameter,
            f"{text!r} is not a UTC day (YYYY-MM-DD) or an ISO 8601 timestamp (2026-10-01T12:00:00Z)",
        ) from None
    if not EARLIEST <= ts < LATEST:
        raise BadParameter(parameter, f"{text!r} is outside {EARLIEST:%Y-%m-%d}..{LATEST:%Y-%m-%d}")
    return ts


def optional_instant(text: str | None, parameter: str) -> pd.Timestamp | None:
    return None if text is None or not text.strip() else instant(text, parameter)


def time_range(start: str | None, end: str | None) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    """[start, end) with end after start when both are given."""
    lo, hi = optional_instant(start, "start"), optional_instant(end, "end")
    if lo is not None and hi is not None and hi <= lo:
        raise BadParameter("end", f"{hi.isoformat()} is not after start {lo.isoformat()} (end is exclusive)")
    return lo, hi


def day(text: str, parameter: str) -> dt.date:
    """A UTC day, YYYY-MM-DD."""
    try:
        if not _DAY_RE.match(text.strip()):
            raise ValueError(text)
        value = dt.date.fromisoformat(text.strip())
    except ValueError:
        raise BadParameter(parameter, f"{text!r} is not a UTC day (YYYY-MM-DD)") from None
    if not EARLIEST.date() <= value < LATEST.date():
        raise BadParameter(parameter, f"{text!r} is outside {EARLIEST:%Y-%m-%d}..{LATEST:%Y-%m-%d}")
    return value


@dataclass(frozen=True)
class Cursor:
    """Where the next page of one series starts: after the bar that began at `after`."""

    symbol: str
    timeframe: Timeframe
    after: pd.Timestamp

    def encode(self) -> str:
        payload = {
            "v": CURSOR_VERSION,
            "s": self.symbol,
            "t": self.timeframe.value,
            "a": self.after.value // 1000,
        }
        raw = json.dumps(payload, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str, spec: SymbolSpec, tf: Timeframe, parameter: str = "cursor") -> Cursor:
        """The cursor of a `next` link for this series; 400 for anything else."""
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            payload = json.loads(raw)
            if not isinstance(payload, dict) or payload.get("v") != CURSOR_VERSION:
                raise ValueError("version")
            after_us = payload["a"]
            if isinstance(after_us, bool) or not isinstance(after_us, int):
                raise ValueError("after")
            cursor = cls(
                str(payload["s"]),
                parse_timeframe(str(payload["t"])),
                pd.Timestamp(after_us, unit="us", tz="UTC"),
            )
        except (ValueError, KeyError, TypeError, OverflowError, binascii.Error, UnknownTimeframeError):
            raise BadCursor(
                parameter, "not a cursor this service issued (take it from a `next` link)"
            ) from None
        if (cursor.symbol, cursor.timeframe) != (spec.symbol, tf):
            raise BadCursor(
                parameter,
                f"was issued for {cursor.symbol} {cursor.timeframe.value}, not {spec.symbol} {tf.value}",
            )
        return cursor
