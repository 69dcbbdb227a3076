"""The aggregates endpoint: parsing its parameters and cutting its answer into pages.

Range rule: a bar is served when its bucket starts in [floor(from), to], where floor() is the
bucket containing `from`; a served bucket is always whole (minus minutes not yet complete at the
server clock). `to` given as a date means the whole UTC day - or the whole US/Eastern day where the
day bars are cut in that zone (crypto and indices, see `Bucketing.stamping`), as `from` does then.

Paging rule, as the real API: `limit` caps the *base* aggregates scanned by one request, and a
page holds at most min(limit, page_size) of them. The provider stores minute and day aggregates
only: a minute-to-hour request counts the minutes it scans, a day or week request the days (so one
request covers decades of D1 or W1). Page boundaries fall on bucket boundaries so
that no aggregated bar is split between pages; a single bucket larger than the cap is served
whole on a page of its own. `next_url` repeats the path with `from` (ascending) or `to`
(descending) moved past the page and an opaque `cursor` that carries the other parameters, so
it can be fetched as-is; it never carries the API key.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import quote

import numpy as np
import pandas as pd

from massive_pipeline.testing.devserver.bars import DAY_MS, MINUTE_MS, Bars, Bucketing, group_starts

DEFAULT_LIMIT = 5000
MAX_LIMIT = 50000
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_MS_RE = re.compile(r"^-?\d{1,16}$")
_SCAN_DAYS = 60  # days scanned at a time while looking for the next bar after a page
_DAY_BASED = ("day", "week", "month", "quarter", "year")  # spans built from day aggregates

MinuteSource = Callable[[int, int], Bars]


class BadRequest(ValueError):
    """A parameter the API would refuse with HTTP 400."""


@dataclass(frozen=True)
class AggQuery:
    ticker: str
    multiplier: int
    timespan: str
    from_raw: str
    to_raw: str
    adjusted: bool = True
    sort: str = "asc"
    limit: int = DEFAULT_LIMIT
    page: int = 1
    revise: bool = True  # whether `revised_bars` apply to this fetch (decided on its first page)

    @property
    def bucketing(self) -> Bucketing:
        return Bucketing.of(self.multiplier, self.timespan)

    @property
    def from_ms(self) -> int:
        return _parse_bound(self.from_raw, "from", end_of_day=False)

    @property
    def to_ms(self) -> int:
        """Inclusive upper bound in ms."""
        return _parse_bound(self.to_raw, "to", end_of_day=True)

    def path(self) -> str:
        ticker = quote(self.ticker, safe=":")
        return f"/v2/aggs/ticker/{ticker}/range/{self.multiplier}/{self.timespan}/{self.from_raw}/{self.to_raw}"

    def cursor(self) -> str:
        return encode_state({"a": self.adjusted, "s": self.sort, "l": self.limit, "p": self.page, "r": self.revise})


def parse_query(segments: list[str], params: dict[str, str]) -> AggQuery:
    """From the path segments after `/v2/aggs/ticker/` and the query parameters."""
    if len(segments) != 6 or segments[1] != "range":
        raise BadRequest("expected /v2/aggs/ticker/{ticker}/range/{multiplier}/{timespan}/{from}/{to}")
    ticker, _, multiplier_raw, timespan, from_raw, to_raw = segments
    try:
        multiplier = int(multiplier_raw)
    except ValueError:
        raise BadRequest(f"multiplier must be a positive integer, got {multiplier_raw!r}") from None
    if multiplier < 1:
        raise BadRequest(f"multiplier must be a positive integer, got {multiplier_raw!r}")
    if timespan not in ("minute", "hour", "day", "week"):
        raise BadRequest(
            f"timespan {timespan!r} is not served by the development server; use minute, hour, day or week"
        )
    query = AggQuery(ticker, multiplier, timespan, from_raw, to_raw)
    query.from_ms  # noqa: B018 - validate now, so that a bad bound is a 400 before any work
    query.to_ms  # noqa: B018
    if "cursor" in params:
        return replace(query, **_decode_cursor(params["cursor"]))
    return replace(
        query,
        adjusted=_parse_bool(params.get("adjusted", "true"), "adjusted"),
        sort=_parse_sort(params.get("sort", "asc")),
        limit=_parse_limit(params.get("limit")),
    )


def _parse_bound(raw: str, name: str, *, end_of_day: bool) -> int:
    if _DATE_RE.match(raw):
        try:
            day = dt.date.fromisoformat(raw)
        except ValueError:
            raise BadRequest(f"{name} is not a valid date: {raw!r}") from None
        start = int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp() * 1000)
        return start + DAY_MS - 1 if end_of_day else start
    if _MS_RE.match(raw):
        return int(raw)
    raise BadRequest(f"{name} must be a date YYYY-MM-DD or Unix milliseconds, got {raw!r}")


def _parse_bool(raw: str, name: str) -> bool:
    if raw.lower() in ("true", "1"):
        return True
    if raw.lower() in ("false", "0"):
        return False
    raise BadRequest(f"{name} must be true or false, got {raw!r}")


def _parse_sort(raw: str) -> str:
    if raw not in ("asc", "desc"):
        raise BadRequest(f"sort must be asc or desc, got {raw!r}")
    return raw


def _parse_limit(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_LIMIT
    try:
        limit = int(raw)
    except ValueError:
        raise BadRequest(f"limit must be an integer, got {raw!r}") from None
    if limit < 1:
        raise BadRequest(f"limit must be at least 1, got {limit}")
    if limit > MAX_LIMIT:
        raise BadRequest(f"limit must be at most {MAX_LIMIT}, got {limit}")
    return limit


def encode_state(state: dict[str, Any]) -> str:
    """An opaque, URL-safe `cursor` value."""
    return base64.urlsafe_b64encode(json.dumps(state, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_state(raw: str) -> dict[str, Any]:
    try:
        state = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    except (binascii.Error, ValueError):
        raise BadRequest(f"cursor is not one this server issued: {raw!r}") from None
    if not isinstance(state, dict):
        raise BadRequest(f"cursor is not one this server issued: {raw!r}")
    return state


def _decode_cursor(raw: str) -> dict[str, Any]:
    state = decode_state(raw)
    try:
        out = {"adjusted": bool(state["a"]), "sort": _parse_sort(state["s"]), "limit": int(state["l"]),
               "page": int(state["p"]), "revise": bool(state.get("r", True))}
    except (ValueError, KeyError, TypeError):
        raise BadRequest(f"cursor is not one this server issued: {raw!r}") from None
    if not 1 <= out["limit"] <= MAX_LIMIT:
        raise BadRequest(f"cursor is not one this server issued: {raw!r}")
    return out


@dataclass(frozen=True)
class Page:
    minutes: Bars  # the base minute bars of the page, ascending
    next_query: AggQuery | None


def plan_page(query: AggQuery, source: MinuteSource, page_size: int, now_ms: int,
              bucketing: Bucketing | None = None) -> Page:
    """The minute bars of this request's page and the query of the next page, if any.

    `source(start, end)` returns the servable minute bars in [start, end). Only minutes complete at
    `now_ms` (t + 1 min <= now) are considered.
    """
    bucketing = bucketing or query.bucketing
    from_ms, to_ms = query.from_ms, query.to_ms
    if bucketing.tz is not None:  # a date names a day of the zone the day bars are cut in
        from_ms = _local_midnight(query.from_raw, bucketing.tz, 0) if _DATE_RE.match(query.from_raw) else from_ms
        to_ms = _local_midnight(query.to_raw, bucketing.tz, 1) - 1 if _DATE_RE.match(query.to_raw) else to_ms
    lo = bucketing.floor(from_ms)
    hi = min(bucketing.end_of(to_ms), now_ms - MINUTE_MS + 1)
    lo = max(lo, 0)
    cap = min(query.limit, page_size)
    if hi <= lo:
        return Page(Bars.empty(), None)
    unit = DAY_MS if query.timespan in _DAY_BASED else MINUTE_MS
    if query.sort == "asc":
        return _plan_ascending(query, source, bucketing, lo, hi, cap, unit)
    return _plan_descending(query, source, bucketing, lo, hi, cap, unit)


def _units(bars: Bars, unit: int) -> np.ndarray:
    """For each minute bar, how many base aggregates (minutes, or days) the page has scanned up to
    and including it: 1, 2, 3, … for minutes; the running count of distinct UTC days for days."""
    if unit == MINUTE_MS:
        return np.arange(1, len(bars) + 1)
    day = bars.t // unit
    return np.r_[True, day[1:] != day[:-1]].cumsum()


def base_aggregates(minutes: Bars, timespan: str) -> int:
    """What a page scanned, as the API counts it (`queryCount`): minutes, or days for day-based spans."""
    return _count(minutes, DAY_MS if timespan in _DAY_BASED else MINUTE_MS)


def _count(part: Bars, unit: int) -> int:
    """Base aggregates in a part read on day boundaries (no day is split between two parts)."""
    return len(part) if unit == MINUTE_MS else int(np.unique(part.t // unit).size)


def _local_midnight(raw: str, tz: str, days_after: int) -> int:
    day = dt.date.fromisoformat(raw) + dt.timedelta(days=days_after)
    return int(pd.Timestamp(day.isoformat()).tz_localize(tz).value // 1_000_000)


def _chunk_ms(cap: int, unit: int = MINUTE_MS) -> int:
    """Days read at a time: enough for `cap` base aggregates (minutes, or days) and two more days."""
    return ((cap // 1440 if unit == MINUTE_MS else cap) + 2) * DAY_MS


def _plan_ascending(query: AggQuery, source: MinuteSource, bk: Bucketing, lo: int, hi: int, cap: int,
                    unit: int = MINUTE_MS) -> Page:
    parts, count, cursor = [], 0, lo
    while cursor < hi and count <= cap:
        end = min(hi, (cursor // DAY_MS) * DAY_MS + _chunk_ms(cap, unit))
        part = source(cursor, end)
        parts.append(part)
        count += _count(part, unit)
        cursor = end
    if count > cap:  # complete the bucket of the last minute read, so buckets are judged whole
        last = Bars.concat(parts).t[-1]
        end = min(hi, bk.end_of(int(last)))
        if end > cursor:
            parts.append(source(cursor, end))
            cursor = end
    bars = Bars.concat(parts)
    if len(bars) == 0:
        return Page(bars, None)
    starts, first = group_starts(bars, bk)
    group_ends = np.r_[first[1:], len(bars)]
    k = max(int(np.searchsorted(_units(bars, unit)[group_ends - 1], cap, side="right")), 1)
    taken = int(group_ends[k - 1])
    page = bars.select(slice(0, taken))
    more_read = taken < len(bars)
    next_start = int(starts[taken]) if more_read else _first_bucket_after(source, bk, cursor, hi)
    if next_start is None:
        return Page(page, None)
    return Page(page, replace(query, from_raw=str(next_start), page=query.page + 1))


def _plan_descending(query: AggQuery, source: MinuteSource, bk: Bucketing, lo: int, hi: int, cap: int,
                     unit: int = MINUTE_MS) -> Page:
    parts, count, cursor = [], 0, hi
    while cursor > lo and count <= cap:
        start = max(lo, -(-cursor // DAY_MS) * DAY_MS - _chunk_ms(cap, unit))
        part = source(start, cursor)
        parts.append(part)
        count += _count(part, unit)
        cursor = start
    if count > cap:
        first_t = Bars.concat(parts[::-1]).t[0]
        start = max(lo, bk.floor(int(first_t)))
        if start < cursor:
            parts.append(source(start, cursor))
            cursor = start
    bars = Bars.concat(parts[::-1])
    if len(bars) == 0:
        return Page(bars, None)
    starts, first = group_starts(bars, bk)
    # Whole buckets from the end while the count stays within the cap (at least one bucket).
    units = _units(bars, unit)
    from_end = units[-1] - units[first] + 1  # base aggregates from each group's first bar to the end
    k = max(int(np.sum(from_end <= cap)), 1)
    cut = int(first[len(first) - k])
    page = bars.select(slice(cut, len(bars)))
    page_first_bucket = int(starts[cut])
    has_more = cut > 0 or _any_before(source, cursor, lo)
    if not has_more:
        return Page(page, None)
    return Page(page, replace(query, to_raw=str(page_first_bucket - 1), page=query.page + 1))


def _first_bucket_after(source: MinuteSource, bk: Bucketing, cursor: int, hi: int) -> int | None:
    while cursor < hi:
        end = min(hi, cursor + _SCAN_DAYS * DAY_MS)
        part = source(cursor, end)
        if len(part):
            return bk.floor(int(part.t[0]))
        cursor = end
    return None


def _any_before(source: MinuteSource, cursor: int, lo: int) -> bool:
    while cursor > lo:
        start = max(lo, cursor - _SCAN_DAYS * DAY_MS)
        if len(source(start, cursor)):
            return True
        cursor = start
    return False


def results_json(bars: Bars, *, integer_volume: bool, descending: bool) -> list[dict[str, Any]]:
    """The `results` array; volumes of tick-count markets are integers, as the API sends them."""
    if descending:
        bars = bars.select(slice(None, None, -1))
    v = bars.v.astype(np.int64).tolist() if integer_volume else bars.v.tolist()
    columns = zip(
        bars.t.tolist(), bars.o.tolist(), bars.h.tolist(), bars.l.tolist(), bars.c.tolist(), v,
        bars.vw.tolist(), bars.n.tolist(), strict=True,
    )
    return [{"t": t, "o": o, "h": h, "l": lo, "c": c, "v": vol, "vw": vw, "n": n}
            for t, o, h, lo, c, vol, vw, n in columns]
