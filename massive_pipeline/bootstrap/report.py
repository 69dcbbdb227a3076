"""The plan as text: per symbol and timeframe what is held, from where, what is left and its cost;
then the totals, the ETA and the alternatives priced with nothing stored."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from massive_pipeline.bootstrap.plan import Plan, SymbolPlan

_SOURCE = {"base": "fetched (base)", "fetch": "fetched", "derived": "derived", "days": "fetched (days)"}


def duration(delta: dt.timedelta) -> str:
    seconds = int(delta.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {seconds:02d} s" if minutes else f"{seconds} s"


def symbol_lines(sp: SymbolPlan) -> Iterator[str]:
    spec = sp.spec
    yield f"{spec.symbol} ({spec.asset_class}, {spec.ticker}, history from {spec.start}, base {spec.base_timeframe})"
    rows = [("series", "source", "partitions", "days held", "required", "to run", "requests")]
    for s in sp.series:
        to_run = s.partitions - s.stored
        rows.append((s.timeframe.value, _SOURCE[s.source], f"{s.first_key}..{s.last_key}", str(s.span_days),
                     f"{s.requirement.required_days} d", "stored" if not to_run else f"{to_run} of {s.partitions}",
                     str(s.requests)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        yield "  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
    fetch = ", ".join(t.value for t in sp.best.fetch)
    yield (f"  = {sp.requests} request(s) now; with nothing stored: this catalog {sp.catalog_requests}, "
           f"all derived from {spec.base_timeframe} {sp.all_from_base}, cheapest correct `fetch: [{fetch}]` "
           f"{sp.best.requests}")
    for note in sp.notes:
        yield f"  note: {note}"


def plan_lines(plan: Plan) -> Iterator[str]:
    """The whole plan; `totals_lines` ends it."""
    for sp in plan.symbols:
        yield from symbol_lines(sp)
        yield ""
    yield from totals_lines(plan)


def totals_lines(plan: Plan) -> Iterator[str]:
    rate = plan.rate
    runs = plan.runs
    pending = sum(s.partitions - s.stored for s in plan.series)
    series = len({(s.spec.symbol, s.timeframe) for s in plan.series})  # a filled D1 has two rows
    yield (f"plan for {plan.today} ({len(plan.symbols)} symbol(s), {series} series): {plan.requests} API "
           f"request(s) in {len(runs)} run(s), {pending} partition(s) to materialize")
    yield (f"ETA: at least {duration(rate.eta(plan.requests))} of API budget at {rate.limit} request(s) per "
           f"{rate.window_seconds:g} s ({rate.bulk} for bulk work, {rate.reserve} kept for the priority refresh), "
           "plus the runs' own time")
    yield "for comparison, with nothing stored (the API's accounting: `limit` counts minutes, or days for D1/W1):"
    yield f"  this catalog                                     {plan.catalog_requests:>6}"
    yield f"  everything derived from the base (M1)            {plan.all_from_base:>6}"
    yield f"  each series fetched over its own required days   {plan.own_days:>6}"
    yield f"  cheapest correct `fetch:` settings               {plan.best_requests:>6}"
    changes = [sp for sp in plan.symbols if set(sp.best.fetch) != set(sp.spec.fetch) and sp.best.requests < sp.catalog_requests]
    if changes:
        yield ("catalog `fetch:` changes that would lower this bootstrap (each fetched timeframe costs a request at "
               "every refresh of the symbol from then on: weigh that against the one-time saving):")
        for sp in changes:
            fetch = ", ".join(t.value for t in sp.best.fetch)
            yield (f"  {sp.spec.symbol}: fetch: [{fetch}]  saves {sp.catalog_requests - sp.best.requests} "
                   f"of {sp.catalog_requests}")
