"""When each market trades, minute by minute, so that a closed market is never mistaken for a gap.

Pure functions over UTC minute starts, vectorized with numpy/pandas (ten years of minutes is a
few million timestamps; a Python loop over them would be far too slow for gap detection).

Calendars:

- ``forex``: spot FX trades continuously from Sunday 17:00 to Friday 17:00 America/New_York,
  i.e. 21:00 or 22:00 UTC depending on US daylight saving. Only this weekly rule is applied:
  Christmas and New Year are thin but quotes (and bars) still arrive, so treating them as closed
  would hide real gaps. The local time is derived with ``tz_convert`` so DST follows the tz
  database rather than a hand-written offset table.
- ``metals``: the forex week, but opening Sunday 18:00 New York and pausing daily 17:00-18:00
  New York Monday to Thursday (the spot gold/silver maintenance break).
- ``crypto``: every minute of every day.
- ``us_equity``: NYSE regular session 09:30-16:00 New York with NYSE holidays and early closes,
  taken from pandas_market_calendars' ``NYSE`` schedule.
- ``xetra``: 09:00-17:30 Europe/Berlin on Xetra trading days, from pandas_market_calendars'
  ``XETR`` schedule (checked for 2024-2025: closed New Year, Good Friday, Easter Monday, 1 May,
  24-26 and 31 December; 30 December closes at 14:00).

pandas_market_calendars' ``FX`` calendar is deliberately not used (version 5.5.0 carries a bogus
Saturday session), nor the CME Globex calendars (exchange holidays and a Sunday 18:00 open that
spot forex does not follow).

Naive timestamps are read as UTC, because every timestamp in the pipeline is UTC.
"""

from __future__ import annotations

import abc
import functools
from collections.abc import Callable

import numpy as np
import pandas as pd

from massive_pipeline.timeframes import Timeframe, parse_timeframe
from massive_pipeline.timeutil import to_utc

CALENDAR_NAMES: tuple[str, ...] = ("forex", "metals", "crypto", "us_equity", "xetra")

_NS_PER_MINUTE = 60_000_000_000
_MINUTES_PER_DAY = 1440
_ONE_MINUTE = pd.Timedelta(minutes=1)
# How far back `last_open_minute` looks; longer than any weekend plus holiday run we model.
_LOOKBACK = pd.Timedelta(days=10)
# 1970-01-01 was a Thursday; with Monday = 0 that is weekday 3.
_EPOCH_WEEKDAY = 3
_MON, _THU, _FRI, _SAT, _SUN = 0, 3, 4, 5, 6


class UnknownCalendarError(ValueError):
    """A calendar name the pipeline does not know."""

    def __init__(self, name: object) -> None:
        self.name = name
        super().__init__(f"unknown calendar {name!r}; known calendars: {', '.join(CALENDAR_NAMES)}")


def _as_utc_index(index: pd.DatetimeIndex | pd.Series | list) -> pd.DatetimeIndex:
    if not isinstance(index, pd.DatetimeIndex):
        try:
            index = pd.DatetimeIndex(index)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"calendar index must be datetimes, got {type(index).__name__}: {exc}") from exc
    if index.hasnans:
        raise ValueError("calendar index contains NaT; every timestamp must be a real instant")
    if index.tz is None:
        return index.tz_localize("UTC")
    return index.tz_convert("UTC")


def _minute_grid(start: pd.Timestamp, end: pd.Timestamp) -> pd.DatetimeIndex:
    """UTC minute starts in [start, end); an unaligned start rounds up to the next minute."""
    first = start.ceil("min")
    if first >= end:
        return pd.DatetimeIndex([], tz="UTC")
    return pd.date_range(first, end, freq="min", inclusive="left")


class MarketCalendar(abc.ABC):
    """Trading minutes of one market; subclasses only say which minutes trade."""

    name: str

    @abc.abstractmethod
    def _is_open_utc(self, index: pd.DatetimeIndex) -> np.ndarray:
        """Bool per timestamp of a UTC index."""

    def is_open(self, index: pd.DatetimeIndex) -> np.ndarray:
        """Whether the minute starting at each timestamp trades."""
        utc = _as_utc_index(index)
        if len(utc) == 0:
            return np.zeros(0, dtype=bool)
        return self._is_open_utc(utc)

    def is_open_at(self, ts: pd.Timestamp) -> bool:
        utc = to_utc(ts, "ts")
        return bool(self._is_open_utc(pd.DatetimeIndex([utc]))[0])

    def open_minutes(self, start: pd.Timestamp, end: pd.Timestamp) -> pd.DatetimeIndex:
        """UTC minute starts in [start, end) that trade."""
        grid = _minute_grid(to_utc(start, "start"), to_utc(end, "end"))
        if len(grid) == 0:
            return grid
        return grid[self._is_open_utc(grid)]

    def expected_bars(
        self, start: pd.Timestamp, end: pd.Timestamp, timeframe: Timeframe | str
    ) -> pd.DatetimeIndex:
        """Starts of the bars of `timeframe` beginning in [start, end) that contain a trading minute.

        A bar is judged over its whole span, even the part after `end`, so that the answer for a
        window is the union of the answers for its pieces. Callers that must not expect a bar
        still in progress should pass the current bar's start as `end`.
        """
        start_utc = to_utc(start, "start")
        end_utc = to_utc(end, "end")
        timeframe = parse_timeframe(timeframe)
        empty = pd.DatetimeIndex([], tz="UTC")
        if end_utc <= start_utc:
            return empty
        first_bar = timeframe.floor(start_utc)
        if first_bar < start_utc:
            first_bar += timeframe.delta
        last_bar = timeframe.floor(end_utc - pd.Timedelta(1, "ns"))
        if last_bar < first_bar:
            return empty
        minutes = self.open_minutes(first_bar, last_bar + timeframe.delta)
        if len(minutes) == 0:
            return empty
        return timeframe.floor(minutes).unique()

    def last_open_minute(self, at: pd.Timestamp) -> pd.Timestamp | None:
        """Start of the latest trading minute whose bar is complete at `at` (looks back 10 days).

        Freshness uses this instead of the wall clock: a forex series last updated on Friday
        is not stale on Saturday.
        """
        at_utc = to_utc(at, "at")
        upper = (at_utc - _ONE_MINUTE).floor("min") + _ONE_MINUTE
        minutes = self.open_minutes(upper - _LOOKBACK, upper)
        return minutes[-1] if len(minutes) else None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


def _local_wall_minutes(index: pd.DatetimeIndex, tz: str) -> tuple[np.ndarray, np.ndarray]:
    """(weekday Monday=0, minute of day) of each instant on the wall clock of `tz`."""
    wall = index.tz_convert(tz).tz_localize(None).as_unit("ns").asi8 // _NS_PER_MINUTE
    days = wall // _MINUTES_PER_DAY
    return (days + _EPOCH_WEEKDAY) % 7, wall % _MINUTES_PER_DAY


class WeeklyCalendar(MarketCalendar):
    """A market open around the clock within a New York week, with an optional daily break."""

    _TZ = "America/New_York"

    def __init__(
        self,
        name: str,
        *,
        sunday_open: int,
        friday_close: int,
        daily_break: tuple[int, int] | None = None,
    ) -> None:
        """Times are minutes after New York midnight; the break applies Monday to Thursday."""
        self.name = name
        self._sunday_open = sunday_open
        self._friday_close = friday_close
        self._break = daily_break

    def _is_open_utc(self, index: pd.DatetimeIndex) -> np.ndarray:
        weekday, minute = _local_wall_minutes(index, self._TZ)
        open_ = (
            ((weekday >= _MON) & (weekday <= _THU))
            | ((weekday == _FRI) & (minute < self._friday_close))
            | ((weekday == _SUN) & (minute >= self._sunday_open))
        )
        if self._break is not None:
            b0, b1 = self._break
            in_break = (weekday >= _MON) & (weekday <= _THU) & (minute >= b0) & (minute < b1)
            open_ &= ~in_break
        return np.asarray(open_, dtype=bool)


class AlwaysOpenCalendar(MarketCalendar):
    def __init__(self, name: str) -> None:
        self.name = name

    def _is_open_utc(self, index: pd.DatetimeIndex) -> np.ndarray:
        return np.ones(len(index), dtype=bool)


class ExchangeSessionCalendar(MarketCalendar):
    """An exchange's daily sessions (holidays and early closes) from pandas_market_calendars."""

    # pandas_market_calendars pays ~0.2 s per schedule call whatever its length, so sessions
    # are fetched a decade at a time and kept.
    _CHUNK_YEARS = 10

    def __init__(self, name: str, exchange: str) -> None:
        self.name = name
        self._exchange = exchange
        self._chunk: Callable[[int], tuple[np.ndarray, np.ndarray]] = functools.lru_cache(maxsize=None)(
            self._load_chunk
        )

    def _load_chunk(self, chunk: int) -> tuple[np.ndarray, np.ndarray]:
        import pandas_market_calendars as mcal

        first_year = chunk * self._CHUNK_YEARS
        schedule = mcal.get_calendar(self._exchange).schedule(
            f"{first_year}-01-01", f"{first_year + self._CHUNK_YEARS - 1}-12-31"
        )
        opens = pd.DatetimeIndex(schedule["market_open"]).tz_convert("UTC").as_unit("ns").asi8
        closes = pd.DatetimeIndex(schedule["market_close"]).tz_convert("UTC").as_unit("ns").asi8
        return opens, closes

    def sessions(self, first: pd.Timestamp, last: pd.Timestamp) -> tuple[np.ndarray, np.ndarray]:
        """Sorted (open, close) UTC nanoseconds of every session on the UTC dates first..last."""
        chunks = range(first.year // self._CHUNK_YEARS, last.year // self._CHUNK_YEARS + 1)
        parts = [self._chunk(c) for c in chunks]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    def _is_open_utc(self, index: pd.DatetimeIndex) -> np.ndarray:
        # A day's margin on each side: a session's UTC date can differ from its local date.
        opens, closes = self.sessions(index.min() - pd.Timedelta(days=1), index.max() + pd.Timedelta(days=1))
        ns = index.as_unit("ns").asi8
        session = np.searchsorted(opens, ns, side="right") - 1
        started = session >= 0
        return started & (ns < closes[np.where(started, session, 0)])


_FACTORIES: dict[str, Callable[[], MarketCalendar]] = {
    "forex": lambda: WeeklyCalendar("forex", sunday_open=17 * 60, friday_close=17 * 60),
    "metals": lambda: WeeklyCalendar(
        "metals", sunday_open=18 * 60, friday_close=17 * 60, daily_break=(17 * 60, 18 * 60)
    ),
    "crypto": lambda: AlwaysOpenCalendar("crypto"),
    "us_equity": lambda: ExchangeSessionCalendar("us_equity", "NYSE"),
    "xetra": lambda: ExchangeSessionCalendar("xetra", "XETR"),
}


@functools.cache
def _build(name: str) -> MarketCalendar:
    return _FACTORIES[name]()


def get_calendar(name: str) -> MarketCalendar:
    """The calendar called `name` (one of CALENDAR_NAMES); one shared instance per name."""
    key = name.strip().lower() if isinstance(name, str) else name
    if key not in _FACTORIES:
        raise UnknownCalendarError(name)
    return _build(key)
