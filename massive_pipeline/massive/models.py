"""What the client hands back, and the pure conversions from the API's JSON into it.

No HTTP here: these functions take decoded JSON and either return typed values or raise
`ResponseShapeError` with a detail; the client adds which request it was.
Bars are converted column-wise (one DataFrame for a whole page), because a page holds up to
50,000 rows and per-row Python objects would dominate a backfill's run time.
"""

from __future__ import annotations

import math
from collections.abc import Generator, Iterator
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

import numpy as np
import pandas as pd
from pandas.api.types import is_bool_dtype, is_numeric_dtype

BAR_COLUMNS: tuple[str, ...] = ("ts", "open", "high", "low", "close", "volume", "vwap", "trades")
# A text on rows whose OHLCV the provider sent null, missing or non-numeric (None on good rows); the
# validation rejects such rows with this text as the reason, so they land in `rejected_candles`.
PROBLEM_COLUMN = "provider_problem"
FETCHED_COLUMNS: tuple[str, ...] = (*BAR_COLUMNS, PROBLEM_COLUMN)
_VALUE_ROW_KEYS: dict[str, str] = {"o": "open", "h": "high", "l": "low", "c": "close", "v": "volume"}
UNPLACEABLE_SAMPLE = 5


class ResponseShapeError(ValueError):
    """JSON that decoded fine but does not have the shape the API documents."""


@dataclass
class ClientStats:
    """Counters since the client was created; `requests` counts every HTTP attempt."""

    requests: int = 0
    pages: int = 0
    retries: int = 0
    throttled_429: int = 0
    server_errors: int = 0
    timeouts: int = 0
    connection_errors: int = 0
    malformed: int = 0

    def copy(self) -> ClientStats:
        return ClientStats(**asdict(self))

    def __sub__(self, other: ClientStats) -> ClientStats:
        """Counters spent between two readings (`after - before`), e.g. for one asset run."""
        return ClientStats(**{f.name: getattr(self, f.name) - getattr(other, f.name) for f in fields(self)})


@dataclass
class FetchResult:
    """Bars of one ranged fetch plus what it cost and what the answer looked like.

    The real API answers with empty or short pages, `DELAYED` statuses, rows with null fields and
    pages that announce more without bringing any; none of that fails a fetch, so the caller needs
    the facts to report them (asset metadata) instead of trusting the frame as the whole truth:
    - `bars_received`: rows the answer held (before the window filter and de-duplication);
      `empty` is True when the answer held none at all,
    - `statuses`: every distinct `status` the pages carried, in order (e.g. `("OK", "DELAYED")`),
    - `problem_rows`: rows kept with NaN fields and a `provider_problem` text,
    - `unplaceable`/`unplaceable_sample`: rows without a usable `t`, which cannot be placed,
    - `restamped`: day/week bars whose provider stamp was moved onto the pipeline's grid,
    - `stopped_early`: why pagination stopped before the API said it was done (None: it did not),
    - `warnings`: one line per such event, ready for a log or metadata.
    """

    bars: pd.DataFrame
    requests: int
    pages: int
    duplicates: int
    bars_received: int = 0
    statuses: tuple[str, ...] = ()
    empty_pages: int = 0
    problem_rows: int = 0
    unplaceable: int = 0
    unplaceable_sample: list[str] = field(default_factory=list)
    restamped: int = 0
    stopped_early: str | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        """The provider sent no bar at all for the range (which may still hold data: say so, delete nothing)."""
        return self.bars_received == 0

    @property
    def provider_status(self) -> str:
        """The statuses as one text for metadata: `OK`, `DELAYED`, or `OK,DELAYED` when pages differed."""
        return ",".join(self.statuses) if self.statuses else "none"

    def __repr__(self) -> str:
        return (
            f"FetchResult(bars={len(self.bars)} rows, requests={self.requests}, pages={self.pages}, "
            f"duplicates={self.duplicates}, received={self.bars_received}, status={self.provider_status}, "
            f"problem_rows={self.problem_rows}, unplaceable={self.unplaceable}, stopped_early={self.stopped_early!r})"
        )


class BarStream:
    """The pages of one ranged fetch as they arrive (`for bars in stream`), then its totals.

    Wraps a generator that yields each page's bars and returns the fetch's `FetchResult` (with
    no bars); `result` holds that once the pages are consumed, so a caller can write each page
    and still report what the whole answer looked like.
    """

    def __init__(self, pages: Generator[pd.DataFrame, None, FetchResult]) -> None:
        self._pages = pages
        self._result: FetchResult | None = None

    def __iter__(self) -> Iterator[pd.DataFrame]:
        self._result = yield from self._pages

    def whole(self) -> FetchResult:
        """Every page, as one answer: sorted, a ts that two pages hold kept once (the later copy)."""
        pages = list(self)
        frame = pd.concat(pages, ignore_index=True) if pages else empty_bars()
        frame = frame.sort_values("ts", kind="stable")
        before = len(frame)
        frame = frame.drop_duplicates("ts", keep="last").reset_index(drop=True)
        return replace(self.result, bars=frame, duplicates=self.result.duplicates + before - len(frame))

    @property
    def result(self) -> FetchResult:
        if self._result is None:
            raise RuntimeError("the fetch's totals are known once every page has been consumed")
        return self._result


@dataclass(frozen=True)
class Snapshot:
    """Latest quote/trade and the day's bar of one ticker; `None` where the API gave no value."""

    ticker: str
    bid: float | None
    ask: float | None
    spread: float | None
    last: float | None
    day_open: float | None
    day_high: float | None
    day_low: float | None
    day_close: float | None
    day_volume: float | None
    timestamp: pd.Timestamp
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (timestamp as ISO 8601), for the snapshots table and Redis events."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "raw"}
        out["timestamp"] = self.timestamp.isoformat()
        return out


def empty_bars() -> pd.DataFrame:
    """A zero-row frame with the bar columns and dtypes, so empty answers need no special case."""
    return pd.DataFrame(
        {
            "ts": pd.Series([], dtype="datetime64[ns, UTC]"),
            **{c: pd.Series([], dtype="float64") for c in ("open", "high", "low", "close", "volume", "vwap")},
            "trades": pd.Series([], dtype="Int64"),
            PROBLEM_COLUMN: pd.Series([], dtype=object),
        }
    )


@dataclass
class ParsedPage:
    """One page's rows as bar columns, and the rows that could not be placed (no usable `t`)."""

    bars: pd.DataFrame
    unplaceable: list[str]

    @property
    def problem_rows(self) -> int:
        return int(self.bars[PROBLEM_COLUMN].notna().sum())


def _describe(row: dict[str, Any], key: str) -> str | None:
    """Why `row[key]` is not a usable number, or None when it is."""
    if key not in row:
        return f"{key} missing"
    value = row[key]
    if value is None:
        return f"{key} is null"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"{key} is {value!r:.30} (not a number)"
    if not math.isfinite(value):
        return f"{key} is {value!r} (not finite)"
    return None


def _suspects(raw: pd.DataFrame, key: str) -> np.ndarray:
    """Indices of rows whose `key` may be unusable; a cheap vectorized superset of the bad ones."""
    if key not in raw.columns:
        return np.arange(len(raw))
    col = raw[key]
    if is_numeric_dtype(col) and not is_bool_dtype(col):
        return np.flatnonzero(~np.isfinite(col.to_numpy(dtype="float64")))
    numbers = col.map(lambda x: isinstance(x, (int, float)) and not isinstance(x, bool))
    values = pd.to_numeric(col.where(numbers), errors="coerce").to_numpy(dtype="float64")
    return np.flatnonzero(~np.isfinite(values))


def bars_from_results(results: list[Any]) -> ParsedPage:
    """Convert one page's `results` into bar columns (unsorted, possibly with duplicate ts).

    A row with a null, missing or non-numeric OHLCV field is kept with NaN there and a short
    `provider_problem` text (`o is null`, `h is 'abc' (not a number)`, `c missing`), so one bad row
    never costs the fetch and the validation can quarantine it with that reason. A row without a
    usable `t` cannot be placed in time: it is left out and described in `unplaceable`. Only the
    suspect rows are inspected one by one; a clean page stays fully vectorized.
    """
    if not results:
        return ParsedPage(empty_bars(), [])
    not_obj = [i for i, r in enumerate(results) if not isinstance(r, dict)]
    if not_obj:
        i = not_obj[0]
        raise ResponseShapeError(f"results[{i}] is {type(results[i]).__name__}, not an object")
    raw = pd.DataFrame.from_records(results)
    problems: dict[int, list[str]] = {}
    for key in _VALUE_ROW_KEYS:
        for i in _suspects(raw, key):
            text = _describe(results[int(i)], key)
            if text is not None:
                problems.setdefault(int(i), []).append(text)
    unplaceable: list[str] = []
    bad_t = {int(i): _describe(results[int(i)], "t") for i in _suspects(raw, "t")}
    bad_t = {i: text for i, text in bad_t.items() if text is not None}
    for i, text in bad_t.items():
        unplaceable.append(f"results[{i}]: {text}")
    out = pd.DataFrame({
        name: pd.to_numeric(raw[key], errors="coerce") if key in raw.columns else np.nan
        for key, name in _VALUE_ROW_KEYS.items()
    }, index=raw.index).astype("float64")
    for name in _VALUE_ROW_KEYS.values():  # "abc", True, inf: NaN, never a value from a coercion
        out.loc[~np.isfinite(out[name].to_numpy()), name] = np.nan
    if problems:
        for i, texts in problems.items():
            for text in texts:
                out.iat[i, out.columns.get_loc(_VALUE_ROW_KEYS[text.split(" ", 1)[0]])] = np.nan
    t = pd.to_numeric(raw["t"], errors="coerce") if "t" in raw.columns else pd.Series(np.nan, index=raw.index)
    keep = np.ones(len(raw), dtype=bool)
    keep[list(bad_t)] = False
    out["ts"] = pd.to_datetime(
        t.where(keep, 0).astype("float64").round().astype("int64"), unit="ms", utc=True
    ).astype("datetime64[ns, UTC]")
    out["vwap"] = (
        pd.to_numeric(raw["vw"], errors="coerce").astype("float64") if "vw" in raw.columns else np.nan
    )
    if "n" in raw.columns:
        out["trades"] = pd.to_numeric(raw["n"], errors="coerce").round().astype("Int64")
    else:
        out["trades"] = pd.Series(pd.NA, index=out.index, dtype="Int64")
    problem = pd.Series(None, index=out.index, dtype=object)
    for i, texts in problems.items():
        problem.iat[i] = "; ".join(texts)
    out[PROBLEM_COLUMN] = problem
    out = out[list(FETCHED_COLUMNS)]
    if not keep.all():
        out = out[keep].reset_index(drop=True)
    return ParsedPage(out, unplaceable)


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    f = float(value)
    return f if math.isfinite(f) else None


def _epoch(value: Any) -> pd.Timestamp | None:
    """The API mixes s, ms and ns epochs across endpoints; the magnitude tells which."""
    v = _num(value)
    if v is None or v <= 0:
        return None
    exact = value if isinstance(value, int) else round(v)  # ints stay exact: ns epochs exceed float precision
    unit = "ns" if v >= 1e17 else "us" if v >= 1e14 else "ms" if v >= 1e11 else "s"
    return pd.Timestamp(exact, unit=unit, tz="UTC")


def _latest(*values: Any) -> pd.Timestamp | None:
    stamps = [ts for ts in (_epoch(v) for v in values) if ts is not None]
    return max(stamps) if stamps else None


def _obj(d: Any, key: str) -> dict[str, Any]:
    value = d.get(key) if isinstance(d, dict) else None
    return value if isinstance(value, dict) else {}


def _first(*values: float | None) -> float | None:
    return next((v for v in values if v is not None), None)


def _build(ticker: str, bid: float | None, ask: float | None, last: float | None, day: dict[str, Any],
           keys: tuple[str, str, str, str, str], ts: pd.Timestamp | None, raw: dict[str, Any]) -> Snapshot:
    if ts is None:
        raise ResponseShapeError(f"snapshot of {ticker} carries no timestamp")
    # Rounded so float noise (8.000000000008e-05) does not reach the snapshots table.
    spread = round(ask - bid, 10) if bid is not None and ask is not None else None
    mid = (ask + bid) / 2 if bid is not None and ask is not None else None
    o, h, lo, c, v = (_num(day.get(k)) for k in keys)
    return Snapshot(ticker=ticker, bid=bid, ask=ask, spread=spread, last=_first(last, mid, c),
                    day_open=o, day_high=h, day_low=lo, day_close=c, day_volume=v, timestamp=ts, raw=raw)


def snapshot_from_v2(body: Any) -> Snapshot:
    """Parse `/v2/snapshot/locale/global/markets/{forex,crypto}/tickers/{ticker}`.

    `last` is the last trade (crypto), else the quote mid-price (forex has no trades), else the
    latest minute close, else the day close.
    """
    item = _obj(body, "ticker")
    ticker = item.get("ticker")
    if not isinstance(ticker, str) or not ticker:
        raise ResponseShapeError("snapshot has no 'ticker' object with a 'ticker' name")
    quote, trade, minute = _obj(item, "lastQuote"), _obj(item, "lastTrade"), _obj(item, "min")
    bid, ask = _num(quote.get("b")), _num(quote.get("a"))
    last = _first(_num(trade.get("p")), None if bid is None or ask is None else (bid + ask) / 2, _num(minute.get("c")))
    ts = _latest(quote.get("t"), trade.get("t"), item.get("updated"))
    return _build(ticker, bid, ask, last, _obj(item, "day"), ("o", "h", "l", "c", "v"), ts, item)


def snapshot_from_universal(item: dict[str, Any]) -> Snapshot:
    """Parse one `results` item of `/v3/snapshot` (an item with `error` is handled by the caller).

    `last` is the last trade, else the index value, else the quote midpoint, else the session price.
    """
    ticker = item.get("ticker")
    if not isinstance(ticker, str) or not ticker:
        raise ResponseShapeError("universal snapshot item has no 'ticker'")
    quote, trade = _obj(item, "last_quote"), _obj(item, "last_trade")
    session, minute = _obj(item, "session"), _obj(item, "last_minute")
    bid, ask = _num(quote.get("bid")), _num(quote.get("ask"))
    last = _first(_num(trade.get("price")), _num(item.get("value")), _num(quote.get("midpoint")),
                  None if bid is None or ask is None else (bid + ask) / 2, _num(session.get("price")),
                  _num(minute.get("close")))
    ts = _latest(quote.get("last_updated"), trade.get("last_updated"), minute.get("last_updated"),
                 minute.get("timestamp"), session.get("last_updated"), item.get("last_updated"))
    return _build(ticker, bid, ask, last, session, ("open", "high", "low", "close", "volume"), ts, item)
