"""Reading MetaTrader bar exports: MT4 History Center CSV and MT5 "Export bars" files.

MT4 (History Center → Export) writes comma-separated lines without a header,
`2025.08.01,00:00,3345.12,3346.00,3344.50,3345.80,123` (date, time, OHLC, tick volume). MT5
(View → Symbols → Bars → Export) writes a tab-separated file whose first line is the header
`<DATE> <TIME> <OPEN> <HIGH> <LOW> <CLOSE> <TICKVOL> <VOL> <SPREAD>`, dates `2025.08.01` and
times `00:00:00` (or `00:00`); MT5 files may be UTF-16 (the terminal's default) or UTF-8.

The format is detected from the first line. Both carry the broker's *server time* without a
zone. A bad line is never skipped: every one is collected and the file is refused with a message
naming the first few by line number, because a silently dropped bar would bias the comparison.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pandas as pd

ExportFormat = Literal["mt4", "mt5"]
MT5_COLUMNS: tuple[str, ...] = ("DATE", "TIME", "OPEN", "HIGH", "LOW", "CLOSE", "TICKVOL", "VOL", "SPREAD")
BAR_COLUMNS: tuple[str, ...] = (
    "server_time",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "real_volume",
    "spread",
)
SHOWN_BAD_LINES = 5

_DATE_RE = re.compile(r"^(\d{4})[.\-/](\d{2})[.\-/](\d{2})$")
_TIME_RE = re.compile(r"^(\d{2}):(\d{2})(?::(\d{2}))?$")
_MT4_RE = re.compile(r"^\d{4}[.\-/]\d{2}[.\-/]\d{2},")


class BrokerExportError(ValueError):
    """An export that cannot be used; the message names the file and, for bad lines, their numbers."""


@dataclass(frozen=True)
class BrokerExport:
    """The bars of one export file, in server time, with the file's identity."""

    format: ExportFormat
    bars: pd.DataFrame  # BAR_COLUMNS; server_time naive (the broker's clock), sorted
    file_name: str
    sha256: str

    @property
    def first_server_time(self) -> pd.Timestamp:
        return pd.Timestamp(self.bars["server_time"].iloc[0])

    @property
    def last_server_time(self) -> pd.Timestamp:
        return pd.Timestamp(self.bars["server_time"].iloc[-1])


def _decode(data: bytes, source: str) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BrokerExportError(f"{source}: not a text file (neither UTF-8 nor UTF-16)") from None


def _stamp(date: str, time: str | None) -> pd.Timestamp:
    """The bar's server time; raises ValueError saying which part is wrong."""
    dm = _DATE_RE.match(date)
    if not dm:
        raise ValueError(f"date {date!r} is not YYYY.MM.DD")
    hour = minute = second = 0
    if time is not None:
        tm = _TIME_RE.match(time)
        if not tm:
            raise ValueError(f"time {time!r} is not HH:MM or HH:MM:SS")
        hour, minute, second = int(tm[1]), int(tm[2]), int(tm[3] or 0)
    try:
        return pd.Timestamp(int(dm[1]), int(dm[2]), int(dm[3]), hour, minute, second)
    except ValueError as exc:
        raise ValueError(
            f"{date} {time or ''} is not a valid date and time ({exc})".replace("  ", " ")
        ) from None


def _number(text: str, name: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{name} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"{name} {text!r} is not finite")
    return value


def _bar(
    date: str,
    time: str | None,
    o: str,
    h: str,
    low: str,
    c: str,
    vol: str,
    real: str | None,
    spread: str | None,
) -> tuple[object, ...]:
    ts = _stamp(date, time)
    op, hi, lo, cl = (_number(v, n) for v, n in ((o, "open"), (h, "high"), (low, "low"), (c, "close")))
    if min(op, hi, lo, cl) <= 0:
        raise ValueError("prices must be positive")
    if hi < max(op, cl, lo) or lo > min(op, cl):
        raise ValueError(f"high {h} / low {low} do not contain open {o} and close {c}")
    volume = _number(vol, "tick volume")
    real_volume = None if real is None or real == "" else _number(real, "volume")
    spread_value = None if spread is None or spread == "" else _number(spread, "spread")
    if volume < 0 or (real_volume is not None and real_volume < 0):
        raise ValueError("volume must not be negative")
    return ts, op, hi, lo, cl, volume, real_volume, spread_value


def _mt5_header(line: str, source: str) -> dict[str, int]:
    names = [n.strip().strip("<>").upper() for n in line.split("\t")]
    required = {"DATE", "OPEN", "HIGH", "LOW", "CLOSE", "TICKVOL"}
    if not required <= set(names):
        missing = ", ".join(f"<{n}>" for n in sorted(required - set(names)))
        raise BrokerExportError(f"{source}: line 1: MT5 header lacks {missing}")
    return {n: i for i, n in enumerate(names)}


def parse_export(data: bytes, source: str = "<export>") -> BrokerExport:
    """Parse an export's bytes; `source` names the file in messages."""
    text = _decode(data, source)
    lines = text.splitlines()
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is None:
        raise BrokerExportError(f"{source}: the file is empty")
    head = lines[first].strip()
    if head.upper().startswith("<DATE>"):
        fmt: ExportFormat = "mt5"
        columns = _mt5_header(head, source)
        body_start = first + 1
    elif _MT4_RE.match(head):
        fmt, columns, body_start = "mt4", {}, first
    else:
        raise BrokerExportError(
            f"{source}: line {first + 1}: neither an MT4 History Center CSV "
            f"(2025.08.01,00:00,open,high,low,close,volume) nor an MT5 bars export (header <DATE> <TIME> ...): "
            f"{head[:60]!r}"
        )
    bars: list[tuple[object, ...]] = []
    bad: list[str] = []
    seen: dict[pd.Timestamp, int] = {}
    for index in range(body_start, len(lines)):
        line = lines[index].strip()
        number = index + 1
        if not line:
            continue
        try:
            bar = _mt5_line(line, columns) if fmt == "mt5" else _mt4_line(line)
        except ValueError as exc:
            bad.append(f"line {number}: {exc}: {line[:60]!r}")
            continue
        ts = bar[0]
        if ts in seen:
            bad.append(f"line {number}: {ts:%Y.%m.%d %H:%M} repeats line {seen[ts]}")
            continue
        seen[ts] = number
        bars.append(bar)
    if bad:
        shown = "; ".join(bad[:SHOWN_BAD_LINES])
        more = f" (and {len(bad) - SHOWN_BAD_LINES} more)" if len(bad) > SHOWN_BAD_LINES else ""
        raise BrokerExportError(
            f"{source}: {len(bad)} bad line(s) in the {fmt.upper()} export: {shown}{more}"
        )
    if not bars:
        raise BrokerExportError(f"{source}: the {fmt.upper()} export has no bars")
    frame = pd.DataFrame(bars, columns=list(BAR_COLUMNS))
    frame["server_time"] = pd.to_datetime(frame["server_time"]).dt.as_unit("ns")
    for col in ("real_volume", "spread"):
        frame[col] = frame[col].astype("float64")
    frame = frame.sort_values("server_time", kind="stable").reset_index(drop=True)
    return BrokerExport(fmt, frame, Path(source).name, hashlib.sha256(data).hexdigest())


def _mt4_line(line: str) -> tuple[object, ...]:
    parts = [p.strip() for p in line.split(",")]
    if len(parts) != 7:
        raise ValueError(
            f"expected 7 comma-separated fields (date,time,open,high,low,close,volume), got {len(parts)}"
        )
    return _bar(*parts, real=None, spread=None)


def _mt5_line(line: str, columns: dict[str, int]) -> tuple[object, ...]:
    parts = [p.strip() for p in line.split("\t")]
    if len(parts) != len(columns):
        raise ValueError(f"expected {len(columns)} tab-separated fields as in the header, got {len(parts)}")

    def field(name: str) -> str | None:
        return parts[columns[name]] if name in columns else None

    return _bar(
        parts[columns["DATE"]],
        field("TIME"),
        parts[columns["OPEN"]],
        parts[columns["HIGH"]],
        parts[columns["LOW"]],
        parts[columns["CLOSE"]],
        parts[columns["TICKVOL"]],
        real=field("VOL"),
        spread=field("SPREAD"),
    )


def read_export(path: str | Path) -> BrokerExport:
    """Read and parse an export file; a missing or unreadable file is a `BrokerExportError`."""
    file = Path(path)
    try:
        data = file.read_bytes()
    except FileNotFoundError:
        raise BrokerExportError(f"{file}: no such file") from None
    except OSError as exc:
        raise BrokerExportError(f"{file}: cannot be read ({exc.strerror or exc})") from None
    return parse_export(data, str(file))
