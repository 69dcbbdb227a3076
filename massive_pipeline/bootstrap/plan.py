"""The bootstrap plan: per symbol, which runs give every series its required history, at what cost.

The code location decides where each series' bars come from (the catalog: the base and every
timeframe under `fetch` are fetched, the others resampled from a stored series, `derivation_source`:
W1 from D1 where D1 is the provider's day, everything else from the base), so the plan that runs
is the catalog's: a derived series needs its source over its own required days, and each fetched
series is fetched once over the longest of its own days and those of what derives from it. Where
the provider's days are the store's D1 the base only needs the intraday timeframes' history (H4's
180 days): D1 is derived from it over those days, and its older days (its own and W1's) are one
day-aggregate fill (a "days" series, run with `provider_days_before`; `candles/write_report.
DerivedDayConfig`), so the catalog keeps fetching only the base at every refresh. Next to it the
planner prices the alternatives, with nothing stored, under the API's accounting (`accounting.py`):

- everything derived from the base, W1 included and no fill (the cost the issue compares with);
- each series fetched over its own required days (the naive reference);
- the cheapest `fetch:` setting that stays correct (`cuts.py`: only timeframes whose provider
  bars are the store's bars), searched over every subset of the asked timeframes.

What is stored (`coverage.py`) is left out of the runs, so the same plan is the resume plan.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd

from massive_pipeline.bootstrap.accounting import Accounting
from massive_pipeline.bootstrap.coverage import StoredCoverage
from massive_pipeline.bootstrap.cuts import fetch_mismatch
from massive_pipeline.bootstrap.keys import key_window, keys_between
from massive_pipeline.bootstrap.requirements import Requirement, requirements
from massive_pipeline.candles.jobs import job_name_for
from massive_pipeline.candles.partitions import PlannedRange
from massive_pipeline.core.catalog import SymbolSpec, derivation_source
from massive_pipeline.core.timeframes import Timeframe


@dataclass(frozen=True)
class Rate:
    """The request budget a bootstrap spends: `limit` per `window_seconds`, `reserve` of them kept
    for the priority refresh (a bootstrap's runs are bulk work and never take the reserve)."""

    limit: int
    window_seconds: float = 60.0
    reserve: int = 0

    @property
    def bulk(self) -> int:
        return max(1, self.limit - self.reserve)

    def eta(self, requests: int) -> dt.timedelta:
        """Least time the API budget needs for `requests`: a window's worth at once, then one
        window per `bulk` requests (the runs' own CPU time comes on top)."""
        windows = max(0, math.ceil(requests / self.bulk) - 1)
        return dt.timedelta(seconds=windows * self.window_seconds)


@dataclass(frozen=True)
class SeriesPlan:
    """One series: what it must hold, where its bars come from, what is left to run."""

    requirement: Requirement
    source: str  # "base" | "fetch" | "derived" | "days" (D1 filled from the provider's day aggregates)
    first_key: str
    last_key: str
    partitions: int
    stored: int
    pending: tuple[tuple[str, str], ...]
    requests: int
    span_days: int  # UTC days of bars the series holds when done (the base: the longest need)
    fill_before: str = ""  # "days": the `provider_days_before` date of its runs (the base's first day)

    @property
    def spec(self) -> SymbolSpec:
        return self.requirement.spec

    @property
    def timeframe(self) -> Timeframe:
        return self.requirement.timeframe

    def ranges(self) -> list[PlannedRange]:
        return [PlannedRange(self.spec, self.timeframe, a, b) for a, b in self.pending]


@dataclass(frozen=True)
class PlannedRun:
    """One ranged run: one symbol, one job, one partition range, the series it materializes."""

    job_name: str
    ranges: tuple[PlannedRange, ...]
    requests: int
    provider_days_before: str = ""  # a D1 day fill's run config (`DerivedDayConfig`), else ""

    @property
    def spec(self) -> SymbolSpec:
        return self.ranges[0].spec

    @property
    def first(self) -> str:
        return self.ranges[0].first

    @property
    def last(self) -> str:
        return self.ranges[0].last

    @property
    def timeframes(self) -> list[Timeframe]:
        return [r.timeframe for r in self.ranges]


@dataclass(frozen=True)
class FetchOption:
    """A `fetch:` setting for one entry and what a bootstrap costs with it, nothing stored."""

    fetch: tuple[Timeframe, ...]
    requests: int


@dataclass(frozen=True)
class SymbolPlan:
    spec: SymbolSpec
    series: tuple[SeriesPlan, ...]
    catalog_requests: int  # this catalog's bootstrap with nothing stored
    all_from_base: int
    best: FetchOption
    own_days: int  # every series fetched over its own required days (the naive reference)
    notes: tuple[str, ...] = ()
    runs: tuple[PlannedRun, ...] = field(default=())

    @property
    def requests(self) -> int:
        return sum(s.requests for s in self.series)


@dataclass(frozen=True)
class Plan:
    symbols: tuple[SymbolPlan, ...]
    now: pd.Timestamp
    rate: Rate

    @property
    def today(self) -> dt.date:
        return self.now.date()

    @property
    def requests(self) -> int:
        return sum(s.requests for s in self.symbols)

    @property
    def catalog_requests(self) -> int:
        return sum(s.catalog_requests for s in self.symbols)

    @property
    def all_from_base(self) -> int:
        return sum(s.all_from_base for s in self.symbols)

    @property
    def best_requests(self) -> int:
        return sum(s.best.requests for s in self.symbols)

    @property
    def own_days(self) -> int:
        return sum(s.own_days for s in self.symbols)

    @property
    def runs(self) -> list[PlannedRun]:
        return [run for s in self.symbols for run in s.runs]

    @property
    def series(self) -> list[SeriesPlan]:
        return [s for sp in self.symbols for s in sp.series]


# --- the days a series needs --------------------------------------------------------------


def _source_days(req: Requirement) -> tuple[dt.date, dt.date]:
    """The UTC days of source bars a derived series needs: its own days, and for a New York series
    the evening before (its first session opens at 17:00 the day before)."""
    first = req.first_day - dt.timedelta(days=1) if req.timeframe.is_new_york else req.first_day
    return max(first, req.spec.start), req.last_day


Span = tuple[dt.date, dt.date]


def _union(days: Sequence[Span]) -> Span:
    return min(a for a, _ in days), max(b for _, b in days)


def day_fill_possible(spec: SymbolSpec, fetched: frozenset[Timeframe]) -> bool:
    """Whether the bootstrap may fill D1's older days from the provider's day aggregates
    (`candles/write_report.DerivedDayConfig`): D1 derived, and the provider's days the store's."""
    return (spec.provider_days_are_store_days and Timeframe.D1 not in fetched
            and Timeframe.D1 is not spec.base_timeframe)


def _fetch_spans(spec: SymbolSpec, reqs: Sequence[Requirement], fetched: frozenset[Timeframe],
                 day_fill: bool = True) -> tuple[dict[Timeframe, Span], Span | None]:
    """The UTC days each fetched series must cover when `fetched` are fetched besides the base,
    and the D1 days filled from the provider's day aggregates (None: none).

    A fetched series covers its own required days (when asked) and those of every asked series
    resampled from it. With `day_fill` (where `day_fill_possible`), W1 is resampled from D1 and
    D1 is derived from the base only over the days the base holds for the intraday series; D1's
    older days (its own and W1's) are one day-aggregate fill. Without it, W1 and D1 derive from
    the base, which then covers them all: "everything derived from the base".
    """
    base = spec.base_timeframe
    fill = day_fill and day_fill_possible(spec, fetched)
    needs: dict[Timeframe, list[Span]] = {}
    for r in reqs:
        if r.timeframe is base or r.timeframe in fetched:
            needs.setdefault(r.timeframe, []).append((max(r.first_day, spec.start), r.last_day))
            continue
        if r.timeframe is Timeframe.D1 and fill:
            needs.setdefault(Timeframe.D1, []).append((max(r.first_day, spec.start), r.last_day))
            continue
        needs.setdefault(derivation_source(base, fetched, r.timeframe, fill), []).append(_source_days(r))
    day_need = needs.pop(Timeframe.D1, None) if fill else None
    spans = {tf: _union(days) for tf, days in needs.items()}
    if day_need is None:
        return spans, None
    first, last = _union(day_need)
    if base not in spans:  # nothing else needs the base: D1 derives from it over all its days
        spans[base] = (first, last)
        return spans, None
    base_first = spans[base][0]
    if first >= base_first:
        return spans, None
    if fetch_mismatch(spec, Timeframe.D1, first, base_first - dt.timedelta(days=1)) is not None:
        spans[base] = (first, spans[base][1])  # not the store's days after all: derive them
        return spans, None
    return spans, (first, base_first - dt.timedelta(days=1))


def day_need_first(spec: SymbolSpec, reqs: Sequence[Requirement]) -> dt.date | None:
    """The first UTC day D1 must hold where W1 is resampled from it (W1's weeks too), else None."""
    by_tf = {r.timeframe: r for r in reqs}
    if Timeframe.W1 not in by_tf or spec.derived_from(Timeframe.W1) is not Timeframe.D1:
        return None
    firsts = [_source_days(by_tf[Timeframe.W1])[0]]
    if Timeframe.D1 in by_tf:
        firsts.append(max(by_tf[Timeframe.D1].first_day, spec.start))
    return min(firsts)


def _key_days(spec: SymbolSpec, tf: Timeframe, first: str, last: str, today: dt.date) -> tuple[dt.date, dt.date]:
    """The UTC days a partition range covers, clipped to the history's start and to today."""
    start, _ = key_window(spec, tf, first)
    _, end = key_window(spec, tf, last)
    return max(start.date(), spec.start), min((end - pd.Timedelta(1, "ns")).date(), today)


def _fresh_cost(spec: SymbolSpec, reqs: Sequence[Requirement], fetched: frozenset[Timeframe],
                accounting: Accounting, day_fill: bool = True) -> int:
    """Requests of a bootstrap with nothing stored when `fetched` are fetched, the rest derived
    (with `day_fill`, D1's older days filled from the provider's day aggregates where possible)."""
    spans, fill = _fetch_spans(spec, reqs, fetched, day_fill)
    return (sum(accounting.cost(spec.calendar, tf, first, last).requests for tf, (first, last) in spans.items())
            + (accounting.cost(spec.calendar, Timeframe.D1, *fill).requests if fill else 0))


def _pending(keys: list[str], stored: set[str]) -> tuple[tuple[str, str], ...]:
    """Runs of consecutive keys not stored, as (first, last)."""
    out: list[tuple[str, str]] = []
    run: list[str] = []
    for key in keys:
        if key in stored:
            if run:
                out.append((run[0], run[-1]))
                run = []
        else:
            run.append(key)
    if run:
        out.append((run[0], run[-1]))
    return tuple(out)


# --- one symbol -----------------------------------------------------------------------------


def plan_symbol(
    spec: SymbolSpec, timeframes: Sequence[Timeframe], now: pd.Timestamp, *,
    coverage: StoredCoverage | None = None, accounting: Accounting | None = None,
) -> SymbolPlan:
    """The runs that give `spec`'s asked series their required history on `now`'s UTC day."""
    accounting = accounting or Accounting()
    today = now.date()
    base = spec.base_timeframe
    reqs = requirements(spec, timeframes, today)
    by_tf = {r.timeframe: r for r in reqs}
    catalog_fetch = frozenset(spec.fetch)
    derived = [r for r in reqs if spec.timeframe_source(r.timeframe) == "derived"]
    notes: list[str] = []
    day_first = day_need_first(spec, reqs)
    if day_first is not None and spec.timeframe_source(Timeframe.D1) == "derived":
        # D1 holds W1's weeks too; it is materialized (not asked) when only W1 is asked
        if Timeframe.D1 not in by_tf:
            notes.append("D1 is materialized (not asked) because W1 is resampled from it")
        derived = [r for r in derived if r.timeframe is not Timeframe.D1]
        derived.append(Requirement(spec, Timeframe.D1, day_first, today))
        derived.sort(key=lambda r: r.timeframe.minutes)
    spans, fill = _fetch_spans(spec, reqs, catalog_fetch)
    fetched_reqs = [Requirement(spec, tf, first, today) for tf, (first, _) in spans.items()]
    for r in fetched_reqs:
        if r.timeframe not in by_tf:
            users = ", ".join(d.timeframe.value for d in derived if spec.derived_from(d.timeframe) is r.timeframe)
            notes.append(f"{r.timeframe.value} is fetched (not asked) because {users} derive from it")
        if r.timeframe is not base:
            why = fetch_mismatch(spec, r.timeframe, r.first_day, r.last_day)
            if why:
                notes.append(f"the catalog fetches {r.timeframe.value}, but {why} (remove it from `fetch:`)")

    stored_of = (lambda tf, keys: coverage.stored(spec, tf, keys, now)) if coverage else (lambda tf, keys: set())
    series: list[SeriesPlan] = []
    # the windows each series materializes again: what is resampled from them is derived again
    refetched: dict[Timeframe, list[tuple[pd.Timestamp, pd.Timestamp]]] = {}
    for r in fetched_reqs:
        first_day = max(r.first_day, spec.start)
        keys = keys_between(spec, r.timeframe, first_day, today)
        stored = stored_of(r.timeframe, keys)
        pending = _pending(keys, stored)
        cost = sum(accounting.cost(spec.calendar, r.timeframe, *_key_days(spec, r.timeframe, a, b, today)).requests
                   for a, b in pending)
        refetched[r.timeframe] = [(key_window(spec, r.timeframe, a)[0], key_window(spec, r.timeframe, b)[1])
                                  for a, b in pending]
        series.append(SeriesPlan(by_tf.get(r.timeframe, r), "base" if r.timeframe is base else "fetch",
                                 keys[0], keys[-1], len(keys), len(stored), pending, cost,
                                 (today - first_day).days + 1))
    for r in derived:
        first_day = max(r.first_day, spec.start)
        keys = keys_between(spec, r.timeframe, first_day, today)
        stored = stored_of(r.timeframe, keys)
        source_pending = refetched.get(spec.derived_from(r.timeframe) or base, [])
        cutoff = (fill[1] + dt.timedelta(days=1)).isoformat() if fill and r.timeframe is Timeframe.D1 else ""
        for key in keys:
            start, end = key_window(spec, r.timeframe, key)
            if (not cutoff or key >= cutoff) and any(start < b_end and end > b_start for b_start, b_end in source_pending):
                stored.discard(key)
        span_days = (today - first_day).days + 1
        parts = [("days", [k for k in keys if k < cutoff]), ("derived", [k for k in keys if k >= cutoff])] \
            if cutoff else [("derived", keys)]
        windows: list[tuple[pd.Timestamp, pd.Timestamp]] = []
        for source, part in parts:
            if not part:
                continue
            pending = _pending(part, stored)
            cost = sum(accounting.cost(spec.calendar, r.timeframe, *_key_days(spec, r.timeframe, a, b, today)).requests
                       for a, b in pending) if source == "days" else 0
            windows += [(key_window(spec, r.timeframe, a)[0], key_window(spec, r.timeframe, b)[1]) for a, b in pending]
            series.append(SeriesPlan(r, source, part[0], part[-1], len(part), len(stored & set(part)), pending,
                                     cost, span_days, cutoff if source == "days" else ""))
        refetched[r.timeframe] = windows
    order = {tf: i for i, tf in enumerate(Timeframe)}
    series.sort(key=lambda s: order[s.timeframe])

    asked = [r for r in reqs if r.timeframe is not base]
    catalog_cost = _fresh_cost(spec, reqs, catalog_fetch, accounting)
    all_from_base = _fresh_cost(spec, reqs, frozenset(), accounting, day_fill=False)
    # a candidate is judged over the widest days it could be fetched for (D1: W1's too)
    widest, _ = _fetch_spans(spec, reqs, frozenset(r.timeframe for r in asked if not r.timeframe.is_new_york))
    candidates = [r.timeframe for r in asked if not r.timeframe.is_new_york
                  and fetch_mismatch(spec, r.timeframe, *widest[r.timeframe]) is None]
    best = FetchOption((), _fresh_cost(spec, reqs, frozenset(), accounting))
    for size in range(1, len(candidates) + 1):
        for combo in itertools.combinations(candidates, size):
            cost = _fresh_cost(spec, reqs, frozenset(combo), accounting)
            if cost < best.requests:  # strictly: a fetched timeframe costs a request every refresh
                best = FetchOption(tuple(combo), cost)
    own_days = sum(accounting.cost(spec.calendar, r.timeframe, max(r.first_day, spec.start), r.last_day).requests
                   for r in reqs if not r.timeframe.is_new_york)
    return SymbolPlan(spec, tuple(series), catalog_cost, all_from_base, best, own_days, tuple(notes),
                      tuple(_runs(spec, series, accounting, today)))


def _runs(spec: SymbolSpec, series: Sequence[SeriesPlan], accounting: Accounting, today: dt.date) -> list[PlannedRun]:
    """The pending ranges grouped into runs (one job, one range each), fetching runs first, so
    every derived run finds its base bars stored; the weekly and New York jobs after the daily."""
    groups: dict[tuple[str, str, str, str], list[SeriesPlan]] = {}
    for s in series:  # a day fill is a run of its own: its run config is the fill's
        for a, b in s.pending:
            groups.setdefault((job_name_for(spec, s.timeframe), a, b, s.fill_before), []).append(s)
    runs: list[PlannedRun] = []
    for (job, a, b, fill_before), members in groups.items():
        requests = sum(accounting.cost(spec.calendar, m.timeframe, *_key_days(spec, m.timeframe, a, b, today)).requests
                       for m in members if m.source != "derived")
        runs.append(PlannedRun(job, tuple(PlannedRange(spec, m.timeframe, a, b) for m in members), requests,
                               fill_before))

    def rank(run: PlannedRun) -> tuple[int, int, str]:
        weekly_or_ny = "weekly" in run.job_name or "_ny_" in run.job_name
        return (int(weekly_or_ny), 0 if run.requests else 1, run.first)

    return sorted(runs, key=rank)


def plan_bootstrap(
    specs: Sequence[SymbolSpec], timeframes: Sequence[Timeframe], now: pd.Timestamp, rate: Rate, *,
    coverage: StoredCoverage | None = None, accounting: Accounting | None = None,
) -> Plan:
    """The plan for every symbol; `coverage` None plans as if nothing were stored."""
    now = pd.Timestamp(now)
    now = now.tz_localize("UTC") if now.tzinfo is None else now.tz_convert("UTC")
    return Plan(tuple(plan_symbol(s, timeframes, now, coverage=coverage, accounting=accounting) for s in specs),
                now, rate)
