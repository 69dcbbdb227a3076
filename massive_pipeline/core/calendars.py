"""When each market trades, minute by minute, so that a closed market is never mistaken for a gap.

Pure functions over UTC minute starts, vectorized with numpy/pandas (ten years of minutes is a
few million timestamps; a Python loop over them would be far too slow for gap detection).

Calendars:

- ``forex``: spot FX trades continuously from Sunday 17:00 to Friday 17:00 America/New_York,
  i.e. 21:00 or 22:00 UTC depending on US daylight saving, except on its holidays (below). The
  local time is derived with ``tz_convert`` so DST follows the tz database rather than a
  hand-written offset table.
- ``metals``: the forex week, but opening Sunday 18:00 New York and pausing daily 17:00-18:00
  New York Monday to Thursday (the spot gold/silver maintenance break), with its own holidays.
- ``crypto``: every minute of every day.
- ``us_equity``: NYSE regular session 09:30-16:00 New York with NYSE holidays and early closes,
  taken from pandas_market_calendars' ``NYSE`` schedule.
- ``xetra``: 09:00-17:30 Europe/Berlin on Xetra trading days, from pandas_market_calendars'
  ``XETR`` schedule (checked for 2024-2025: closed New Year, Good Friday, Easter Monday, 1 May,
  24-26 and 31 December; 30 December closes at 14:00).

Holidays of forex and metals. Both markets count their days the New York way: trading day D runs
from 17:00 New York on the day before D to 17:00 New York on D (the Sunday evening open starts
Monday's day; metals start theirs at 18:00 after the break). A holiday on D closes that whole
trading day, so for 25 December the market is closed from 24 December 17:00 New York to
25 December 17:00 New York, which is 24 Dec 22:00 UTC to 25 Dec 22:00 UTC (December is always
EST): the span in which real quotes are absent or too thin to make bars. Closed means closed for
every consumer alike: ``is_open`` is false, no bar starting there is expected (so a missing one is
no gap and the ``complete`` check does not count it), and freshness measures from the close before
(25 Dec at noon UTC with the last bar at 24 Dec 21:59 UTC is not stale). Bars that do arrive on
a holiday are stored and kept like any other; they are simply not required.

- ``forex`` holidays: 25 December and 1 January, the two days the interbank market shuts
  everywhere. Spot FX trades on Good Friday (thin) and follows no exchange's observance rule.
- ``metals`` holidays: the full closures of COMEX, taken from the holiday rules of
  pandas_market_calendars' ``CMEGlobex_Metals`` calendar (New Year's Day, Good Friday,
  Christmas), so a change of COMEX's rules arrives with that package; Good Friday is always in
  EDT, so it closes Thursday 21:00 UTC to the Sunday 22:00 UTC open.

A holiday is always the date itself: the CME's observance shifts (Christmas on a Saturday
observed on Friday 24th, on a Sunday observed on Monday 26th) are dropped, because spot quotes
keep arriving on those days and treating them as closed would hide real gaps. A holiday falling
on a Saturday or Sunday therefore changes nothing: those trading days do not exist, and the
Sunday 17:00 (metals 18:00) New York open still starts the next one. Early closes (24 and
31 December afternoons) are not modelled: their thin hours stay expected.

pandas_market_calendars' ``FX`` calendar is deliberately not used (version 5.5.0 carries a bogus
Saturday session), nor the sessions of the CME Globex calendars (exchange holidays and a Sunday
18:00 open that spot forex does not follow): only the metals calendar's holiday rules are taken.

Naive timestamps are read as UTC, because every timestamp in the pipeline is UTC.
"""

from __future__ import annotations

import abc
import functools
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
from pandas.tseries.holiday import Holiday

from massive_pipeline.core.timeframes import Timeframe, parse_timeframe
from massive_pipeline.core.timeutil import to_utc

CALENDAR_NAMES: tuple[str, ...] = ("forex", "metals", "crypto", "us_equity", "xetra")

_NS_PER_MINUTE = 60_000_000_000
_NS_PER_DAY = 86_400_000_000_000
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
            first_bar = timeframe.bar_end(first_bar)
        last_bar = timeframe.floor(end_utc - pd.Timedelta(1, "ns"))
        if last_bar < first_bar:
            return empty
        minutes = self.open_minutes(first_bar, timeframe.bar_end(last_bar))
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


def _local_wall_minutes(index: pd.DatetimeIndex, tz: str) -> np.ndarray:
    """Minutes since 1970-01-01 00:00 on the wall clock of `tz`, per instant."""
    return index.tz_convert(tz).tz_localize(None).as_unit("ns").asi8 // _NS_PER_MINUTE


class HolidayRules:
    """Dates a weekly market does not trade, from pandas holiday rules, as day numbers.

    Rules are evaluated a decade at a time and kept, as exchange sessions are, so that asking
    about ten years of minutes costs one array lookup per minute rather than a rule evaluation.
    """

    _CHUNK_YEARS = 10

    def __init__(self, name: str, rules: Callable[[], Sequence[Holiday]]) -> None:
        """`rules` is called once, on first use, so importing a calendar source stays lazy."""
        self.name = name
        self._rules_factory = rules
        self._chunk: Callable[[int], np.ndarray] = functools.lru_cache(maxsize=None)(self._load_chunk)

    @functools.cached_property
    def rules(self) -> tuple[Holiday, ...]:
        return tuple(self._rules_factory())

    def _load_chunk(self, chunk: int) -> np.ndarray:
        first_year = chunk * self._CHUNK_YEARS
        lo, hi = f"{first_year}-01-01", f"{first_year + self._CHUNK_YEARS - 1}-12-31"
        days = [rule.dates(lo, hi).values.astype("datetime64[D]").astype(np.int64) for rule in self.rules]
        return np.unique(np.concatenate(days)) if days else np.zeros(0, dtype=np.int64)

    def day_numbers(self, first_day: int, last_day: int) -> np.ndarray:
        """Sorted holiday dates as days since 1970-01-01, covering days first_day..last_day."""
        first_year = int(np.datetime64(first_day, "D").astype("datetime64[Y]").astype(np.int64)) + 1970
        last_year = int(np.datetime64(last_day, "D").astype("datetime64[Y]").astype(np.int64)) + 1970
        chunks = range(first_year // self._CHUNK_YEARS, last_year // self._CHUNK_YEARS + 1)
        return np.concatenate([self._chunk(c) for c in chunks])

    def dates(self, start: str | pd.Timestamp, end: str | pd.Timestamp) -> list[pd.Timestamp]:
        """Holiday dates (naive, midnight) from `start` to `end`, both inclusive."""
        lo, hi = pd.Timestamp(start).normalize(), pd.Timestamp(end).normalize()
        days = self.day_numbers(lo.value // _NS_PER_DAY, hi.value // _NS_PER_DAY)
        picked = days[(days >= lo.value // _NS_PER_DAY) & (days <= hi.value // _NS_PER_DAY)]
        return [pd.Timestamp(int(d) * _NS_PER_DAY) for d in picked]

    def __repr__(self) -> str:
        return f"<HolidayRules {self.name}>"


def _as_dated(rule: Holiday) -> Holiday:
    """The same holiday on its own date, without the exchange's observance shift or weekday filter.

    Spot quotes keep arriving on an observed day (Friday 24th, Monday 26th), so only the date
    itself may be treated as closed.
    """
    return Holiday(rule.name, year=rule.year, month=rule.month, day=rule.day, offset=rule.offset,
                   start_date=rule.start_date, end_date=rule.end_date)


def _forex_holiday_rules() -> list[Holiday]:
    """The two days interbank FX shuts everywhere; no exchange's list fits spot FX (the CME's
    currency calendar also closes Good Friday in some years, and shifts to observed days)."""
    return [Holiday("New Year's Day", month=1, day=1), Holiday("Christmas Day", month=12, day=25)]


def _comex_holiday_rules() -> list[Holiday]:
    """COMEX's full closures as pandas_market_calendars maintains them (not its sessions)."""
    import pandas_market_calendars as mcal

    return [_as_dated(rule) for rule in mcal.get_calendar("CMEGlobex_Metals").regular_holidays.rules]


class WeeklyCalendar(MarketCalendar):
    """A market open around the clock within a New York week, with an optional daily break and holidays."""

    _TZ = "America/New_York"

    def __init__(
        self,
        name: str,
        *,
        sunday_open: int,
        friday_close: int,
        daily_break: tuple[int, int] | None = None,
        holidays: HolidayRules | None = None,
    ) -> None:
        """Times are minutes after New York midnight; the break applies Monday to Thursday.

        A holiday closes its whole New York trading day, which ends at `friday_close` on the
        holiday and starts at the same time the day before (see the module docstring).
        """
        self.name = name
        self._sunday_open = sunday_open
        self._friday_close = friday_close
        self._break = daily_break
        self.holidays = holidays

    def _is_open_utc(self, index: pd.DatetimeIndex) -> np.ndarray:
        wall = _local_wall_minutes(index, self._TZ)
        weekday, minute = (wall // _MINUTES_PER_DAY + _EPOCH_WEEKDAY) % 7, wall % _MINUTES_PER_DAY
        open_ = (
            ((weekday >= _MON) & (weekday <= _THU))
            | ((weekday == _FRI) & (minute < self._friday_close))
            | ((weekday == _SUN) & (minute >= self._sunday_open))
        )
        if self._break is not None:
            b0, b1 = self._break
            in_break = (weekday >= _MON) & (weekday <= _THU) & (minute >= b0) & (minute < b1)
            open_ &= ~in_break
        if self.holidays is not None:
            open_ &= ~self._on_holiday(wall, self.holidays)
        return np.asarray(open_, dtype=bool)

    def _on_holiday(self, wall: np.ndarray, holidays: HolidayRules) -> np.ndarray:
        # The trading day rolls at the close: shift the wall clock so that the close is midnight.
        day = (wall + (_MINUTES_PER_DAY - self._friday_close)) // _MINUTES_PER_DAY
        first, last = int(day.min()), int(day.max())
        days = holidays.day_numbers(first, last)
        days = days[(days >= first) & (days <= last)]
        # One flag per day of the span, then a gather: cheaper than a search per minute.
        flags = np.zeros(last - first + 1, dtype=bool)
        flags[days - first] = True
        return flags[day - first]


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
    "forex": lambda: WeeklyCalendar(
        "forex", sunday_open=17 * 60, friday_close=17 * 60, holidays=HolidayRules("forex", _forex_holiday_rules)
    ),
    "metals": lambda: WeeklyCalendar(
        "metals", sunday_open=18 * 60, friday_close=17 * 60, daily_break=(17 * 60, 18 * 60),
        holidays=HolidayRules("metals (COMEX)", _comex_holiday_rules),
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
