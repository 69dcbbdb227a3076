"""The symbol catalog: which instruments the pipeline keeps, and how each one is fetched.

The catalog is configuration that users edit by hand and that ends up in asset keys and SQL, so it
is validated strictly when loaded: a typo fails at start-up with the file, the entry and the field
named, instead of surfacing later as a failed run or a silently missing asset. Dates are parsed by
this module rather than by YAML so that an impossible date is reported against its entry.
"""

from __future__ import annotations

import datetime as dt
import difflib
import functools
import io
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from enum import Enum, StrEnum
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml

from massive_pipeline.core.calendars import CALENDAR_NAMES, MarketCalendar, UnknownCalendarError, get_calendar
from massive_pipeline.core.timeframes import Convention, Timeframe, UnknownTimeframeError, parse_timeframe

CATALOG_ENV = "MASSIVE_CATALOG"
PACKAGED_CATALOG = "catalog.yaml"

SYMBOL_RE = re.compile(r"^[A-Z0-9]{2,12}$")
TICKER_RE = re.compile(r"^[CXI]:[A-Z0-9]{2,20}$")
BINANCE_SYMBOL_RE = re.compile(r"^[A-Z0-9]{2,20}$")
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
EARLIEST_START = dt.date(1990, 1, 1)
MAX_PRECISION = 10


class CatalogError(ValueError):
    """A catalog that cannot be used; the message says where (file, entry, field) and why."""

    def __init__(
        self,
        source: str,
        message: str,
        *,
        entry: int | None = None,
        symbol: object = None,
        field: str | None = None,
        line: int | None = None,
    ) -> None:
        self.source = source
        self.entry = entry
        self.symbol = symbol
        self.field = field
        self.line = line
        where = f"catalog {source}"
        if entry is not None:
            where += f" entry #{entry}"
            if isinstance(symbol, str) and SYMBOL_RE.match(symbol):
                where += f" ({symbol})"
            elif symbol is not None:
                where += f" ({symbol!r})"
        if field is not None:
            where += f": field {field!r}"
        text = f"{where}: {message}"
        if line is not None:
            text += f" (line {line})"
        super().__init__(text)


class UnknownSymbolError(KeyError):
    """A symbol that is not in the catalog; suggests close matches."""

    def __init__(self, symbol: str, known: Iterable[str] = (), source: str | None = None) -> None:
        self.symbol = symbol
        self.suggestions = difflib.get_close_matches(str(symbol).upper(), list(known), n=3, cutoff=0.6)
        super().__init__(symbol)
        self._text = f"unknown symbol {symbol!r}"
        if source:
            self._text += f" (not in catalog {source})"
        if self.suggestions:
            self._text += f"; did you mean {', '.join(self.suggestions)}?"

    def __str__(self) -> str:
        return self._text


class Priority(StrEnum):
    """Refresh priority; `rank` orders the queue (critical first)."""

    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"

    @property
    def rank(self) -> int:
        return _PRIORITY_RANK[self]


_PRIORITY_RANK = {Priority.CRITICAL: 0, Priority.HIGH: 1, Priority.MEDIUM: 2, Priority.LOW: 3}


class Provider(StrEnum):
    """Where an entry's bars come from: the Massive REST API (default) or Binance klines."""

    MASSIVE = "massive"
    BINANCE = "binance"


class AssetClass(StrEnum):
    FOREX = "forex"
    METAL = "metal"
    CRYPTO = "crypto"
    INDEX = "index"

    @property
    def ticker_prefix(self) -> str:
        """Massive ticker prefix; metals are quoted as currency pairs (`C:XAUUSD`)."""
        return _TICKER_PREFIX[self]


_TICKER_PREFIX = {AssetClass.FOREX: "C", AssetClass.METAL: "C", AssetClass.CRYPTO: "X", AssetClass.INDEX: "I"}
# Used only when an entry leaves `precision` out: typical quote decimals of the class.
_DEFAULT_PRECISION = {AssetClass.FOREX: 5, AssetClass.METAL: 2, AssetClass.CRYPTO: 2, AssetClass.INDEX: 2}



def default_pip_size(asset_class: AssetClass, precision: int) -> float:
    """The pip a trader of the class means, from the quote's decimals, when an entry sets no `pip_size`.

    Forex: the decimal before the last of a fractional-pip quote, 0.0001 for a 5-decimal pair
    and 0.01 for a 3-decimal JPY pair (a pip is ten points). Metals and crypto: one unit of the
    last quoted decimal (XAUUSD 0.01, XAGUSD 0.001, BTCUSD 0.01), as MT4/MT5 brokers count their
    points. Indices: one index point (1.0), whatever the decimals. Broker comparisons report
    differences in these pips (README "Comparing a broker's prices").
    """
    if asset_class is AssetClass.FOREX:
        return 10.0 ** -max(precision - 1, 0)
    if asset_class is AssetClass.INDEX:
        return 1.0
    return 10.0**-precision


TimeframeSource = Literal["base", "fetch", "derived"]

# Asset classes that trade the forex day (Sunday 17:00 to Friday 17:00 New York), the only ones
# whose bars mean something in the New York close convention; they get it unless the entry says not.
NEW_YORK_CLOSE_CLASSES = frozenset({AssetClass.FOREX, AssetClass.METAL})
# A New York day starts at 21:00 or 22:00 UTC, so the base bars must end on whole UTC hours.
_NEW_YORK_BASES = (Timeframe.M1, Timeframe.M5, Timeframe.M15, Timeframe.M30, Timeframe.H1)


# Asset classes whose provider day bars are the store's D1 (massive-api.md, "Bar stamps";
# `bootstrap/cuts.py` checks it on the calendars): forex and metals are cut at 00:00 UTC, index
# sessions lie inside every day cut. Crypto's days are cut at midnight US/Eastern, not UTC.
PROVIDER_UTC_DAY_CLASSES = frozenset({AssetClass.FOREX, AssetClass.METAL, AssetClass.INDEX})


def derivation_source(base: Timeframe, fetched: frozenset[Timeframe], tf: Timeframe,
                      provider_days_are_store_days: bool = False) -> Timeframe:
    """The stored series a derived `tf` is resampled from, when `fetched` are fetched besides `base`.

    W1 is the week of UTC days (Monday 00:00 UTC), so it is exactly the weekly resample of the
    store's D1, derived or fetched. It is resampled from D1 where D1 is fetched, or where the
    provider's day bars are the store's: there the bootstrap fills the D1 days older than the base
    keeps from the provider's day aggregates (one request for two years), and W1 follows from them,
    while every refresh still derives D1 from the base (no extra request). Every other derived
    timeframe (the New York close ones included, whose days are not UTC days) comes from the base.
    A pure function of the setting, so the bootstrap planner can price a `fetch:` setting the
    catalog does not have.
    """
    if tf is Timeframe.W1 and Timeframe.D1 is not base and (Timeframe.D1 in fetched or provider_days_are_store_days):
        return Timeframe.D1
    return base


@dataclass(frozen=True)
class SymbolSpec:
    symbol: str
    ticker: str
    asset_class: AssetClass
    priority: Priority
    calendar: str
    start: dt.date
    base_timeframe: Timeframe = Timeframe.M1
    fetch: tuple[Timeframe, ...] = ()
    precision: int = 5
    description: str = ""
    pip_size: float | None = None
    conventions: tuple[Convention, ...] = (Convention.UTC,)
    provider: Provider = Provider.MASSIVE
    cross_check: str | None = None  # another entry's symbol whose bars this one's are compared with

    @property
    def pip(self) -> float:
        """Price of one pip: the entry's `pip_size`, else the default of its class (`default_pip_size`)."""
        return self.pip_size if self.pip_size is not None else default_pip_size(self.asset_class, self.precision)

    @property
    def key_prefix(self) -> str:
        """Symbol part of asset keys and partition names (`candles/<key_prefix>/h1`)."""
        return self.symbol.lower()

    @property
    def is_critical(self) -> bool:
        return self.priority is Priority.CRITICAL

    @property
    def market_calendar(self) -> MarketCalendar:
        return get_calendar(self.calendar)

    @property
    def timeframes(self) -> tuple[Timeframe, ...]:
        """Timeframes this symbol has: the base and everything above it (nothing can go below),
        the day and week bars in each of the symbol's conventions."""
        return tuple(
            tf for tf in Timeframe
            if tf.minutes >= self.base_timeframe.minutes and (tf.convention is None or tf.convention in self.conventions)
        )

    def timeframe_source(self, tf: Timeframe | str) -> TimeframeSource:
        """Where bars of `tf` come from: the base fetch, a direct fetch, or resampling the base."""
        tf = parse_timeframe(tf)
        if tf == self.base_timeframe:
            return "base"
        if tf in self.fetch:
            return "fetch"
        if tf.minutes < self.base_timeframe.minutes:
            raise ValueError(
                f"{self.symbol}: timeframe {tf} is below the base timeframe {self.base_timeframe} "
                "and cannot be derived from it"
            )
        return "derived"

    @property
    def provider_days_are_store_days(self) -> bool:
        """Whether the provider's day aggregates are this symbol's D1 bars (same UTC days), so the
        D1 days older than the base's history can be filled from them (`candles/assets.py`)."""
        return (self.provider is Provider.MASSIVE and self.asset_class in PROVIDER_UTC_DAY_CLASSES
                and Timeframe.D1 in self.timeframes)

    def derived_from(self, tf: Timeframe | str) -> Timeframe | None:
        """The timeframe `tf` is resampled from, or None when it is fetched from the API
        (`derivation_source`: W1 from the stored D1 where that is the provider's day, everything
        else from the base)."""
        tf = parse_timeframe(tf)
        if self.timeframe_source(tf) != "derived":
            return None
        return derivation_source(self.base_timeframe, frozenset(self.fetch), tf, self.provider_days_are_store_days)


@dataclass(frozen=True)
class Catalog:
    symbols: tuple[SymbolSpec, ...]
    source: str

    @functools.cached_property
    def _by_symbol(self) -> dict[str, SymbolSpec]:
        return {s.symbol: s for s in self.symbols}

    @functools.cached_property
    def _by_ticker(self) -> dict[str, SymbolSpec]:
        return {s.ticker: s for s in self.symbols}

    def get(self, symbol: str) -> SymbolSpec:
        """Case-insensitive lookup; raises UnknownSymbolError with suggestions."""
        spec = self._by_symbol.get(str(symbol).strip().upper())
        if spec is None:
            raise UnknownSymbolError(symbol, self._by_symbol, self.source)
        return spec

    def by_ticker(self, ticker: str) -> SymbolSpec | None:
        return self._by_ticker.get(str(ticker).strip().upper())

    def select(self, symbols: Iterable[str] | str | None) -> list[SymbolSpec]:
        """The named symbols in the order given (repeats dropped), or the whole catalog for None.

        A plain string is read as a comma-separated list, as the CLI passes it.
        """
        if symbols is None:
            return list(self.symbols)
        names = symbols.split(",") if isinstance(symbols, str) else symbols
        out: list[SymbolSpec] = []
        for name in names:
            if isinstance(name, str) and not name.strip():
                continue
            spec = self.get(name)
            if spec not in out:
                out.append(spec)
        return out

    def critical(self) -> list[SymbolSpec]:
        return [s for s in self.symbols if s.is_critical]

    def by_priority(self) -> list[SymbolSpec]:
        """All symbols, critical first; catalog order within a priority."""
        return sorted(self.symbols, key=lambda s: s.priority.rank)

    def __iter__(self) -> Iterator[SymbolSpec]:
        return iter(self.symbols)

    def __len__(self) -> int:
        return len(self.symbols)

    def __contains__(self, symbol: object) -> bool:
        return isinstance(symbol, str) and symbol.strip().upper() in self._by_symbol


# --- loading ----------------------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """Safe loader that keeps dates as text and refuses repeated keys (PyYAML keeps the last)."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _construct_mapping(loader: _Loader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)

_REQUIRED = ("symbol", "ticker", "asset_class", "priority", "calendar", "start")
_OPTIONAL = ("base_timeframe", "fetch", "precision", "description", "pip_size", "conventions", "provider",
             "cross_check")
_FIELDS = _REQUIRED + _OPTIONAL


class _EntryError(Exception):
    """Raised inside an entry's validation; turned into a CatalogError with the entry's location."""

    def __init__(self, field: str | None, message: str) -> None:
        self.field = field
        self.message = message


def _enum(field: str, value: Any, enum: type[Enum]) -> Any:
    allowed = ", ".join(str(m.value) for m in enum)
    if not isinstance(value, str):
        raise _EntryError(field, f"{value!r} is not one of {allowed}")
    try:
        return enum(value.strip().lower())
    except ValueError:
        raise _EntryError(field, f"{value!r} is not one of {allowed}") from None


def _text(field: str, value: Any) -> str:
    if not isinstance(value, str):
        raise _EntryError(field, f"must be text, got {type(value).__name__} {value!r}")
    return value.strip()


def _start(value: Any) -> dt.date:
    text = _text("start", value) if not isinstance(value, dt.date) else value.isoformat()
    if not _DATE_RE.match(text):
        raise _EntryError("start", f"{text!r} is not a date in the form YYYY-MM-DD")
    try:
        day = dt.date.fromisoformat(text)
    except ValueError as exc:
        raise _EntryError("start", f"{text!r} is not a valid date ({exc})") from None
    today = dt.datetime.now(dt.UTC).date()
    if day < EARLIEST_START:
        raise _EntryError("start", f"{day} is before {EARLIEST_START}, earlier than any data the API has")
    if day > today:
        raise _EntryError("start", f"{day} is in the future (today is {today} UTC)")
    return day


def _timeframe(field: str, value: Any) -> Timeframe:
    if not isinstance(value, str):
        raise _EntryError(field, f"{value!r} is not a timeframe name such as M1, H1 or D1")
    try:
        tf = parse_timeframe(value)
    except UnknownTimeframeError as exc:
        raise _EntryError(field, str(exc)) from None
    if tf.is_new_york:
        raise _EntryError(
            field, f"{tf} is derived from the base timeframe in the new_york_close convention, never fetched; "
            "list new_york_close under 'conventions' instead"
        )
    return tf


def _conventions(value: Any, asset_class: AssetClass, base: Timeframe) -> tuple[Convention, ...]:
    """The entry's day conventions, checked; `utc` always, as the base and the fetched day bars are UTC."""
    allowed = ", ".join(c.value for c in Convention)
    if not isinstance(value, list) or not value:
        raise _EntryError("conventions", f"must be a non-empty list of {allowed}, got {value!r}")
    out: list[Convention] = []
    for item in value:
        convention = _enum("conventions", item, Convention)
        if convention in out:
            raise _EntryError("conventions", f"{convention} is listed twice")
        out.append(convention)
    if Convention.UTC not in out:
        raise _EntryError("conventions", "must include utc (the base and every intraday timeframe are UTC bars)")
    if Convention.NEW_YORK_CLOSE in out:
        if asset_class not in NEW_YORK_CLOSE_CLASSES:
            raise _EntryError(
                "conventions", f"new_york_close is for the forex trading day (asset_class forex or metal), "
                f"not asset_class {asset_class}"
            )
        if base not in _NEW_YORK_BASES:
            raise _EntryError(
                "conventions", f"new_york_close needs a base timeframe of at most H1 (its days start at "
                f"21:00 or 22:00 UTC), not {base}"
            )
    return tuple(c for c in Convention if c in out)


def _default_conventions(asset_class: AssetClass, base: Timeframe) -> tuple[Convention, ...]:
    """Forex and metals get the broker's day too, when their base can build it; others UTC only."""
    if asset_class in NEW_YORK_CLOSE_CLASSES and base in _NEW_YORK_BASES:
        return (Convention.UTC, Convention.NEW_YORK_CLOSE)
    return (Convention.UTC,)


def _fetch(value: Any, base: Timeframe) -> tuple[Timeframe, ...]:
    if not isinstance(value, list):
        raise _EntryError("fetch", f"must be a list of timeframes such as [D1], got {value!r}")
    out: list[Timeframe] = []
    for item in value:
        tf = _timeframe("fetch", item)
        if tf in out:
            raise _EntryError("fetch", f"{tf} is listed twice")
        if tf == base:
            raise _EntryError("fetch", f"{tf} is the base timeframe, which is always fetched")
        if tf.minutes < base.minutes:
            raise _EntryError("fetch", f"{tf} is below the base timeframe {base}; fetched timeframes must be higher")
        out.append(tf)
    return tuple(sorted(out, key=lambda t: t.minutes))


def _precision(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_PRECISION:
        raise _EntryError("precision", f"must be a whole number of decimals from 0 to {MAX_PRECISION}, got {value!r}")
    return value


def _pip_size(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < float("inf"):
        raise _EntryError("pip_size", f"must be a positive number such as 0.0001, got {value!r}")
    return float(value)


def _ticker(ticker: str, asset_class: AssetClass, provider: Provider) -> str:
    """The provider's name of the instrument: a prefixed Massive ticker, or a Binance symbol (BTCUSDT)."""
    if provider is Provider.BINANCE:
        if not BINANCE_SYMBOL_RE.match(ticker):
            raise _EntryError("ticker", f"{ticker!r} must be a Binance symbol such as BTCUSDT (2 to 20 upper-case "
                              "letters or digits, no prefix)")
        if asset_class is not AssetClass.CRYPTO:
            raise _EntryError("asset_class", f"{asset_class} does not fit provider binance: use asset_class crypto")
        return ticker
    if not TICKER_RE.match(ticker):
        raise _EntryError("ticker", f"{ticker!r} must look like C:EURUSD, X:BTCUSD or I:SPX")
    if ticker[0] != asset_class.ticker_prefix:
        raise _EntryError(
            "ticker", f"{ticker!r} does not fit asset_class {asset_class}: expected prefix {asset_class.ticker_prefix}:"
        )
    return ticker


def _parse_entry(raw: Any) -> SymbolSpec:
    if not isinstance(raw, Mapping):
        raise _EntryError(None, f"must be a mapping of field: value, got {type(raw).__name__} {raw!r}")
    unknown = [k for k in raw if k not in _FIELDS]
    if unknown:
        key = unknown[0]
        hint = difflib.get_close_matches(str(key), _FIELDS, n=1)
        suffix = f"; did you mean {hint[0]!r}?" if hint else f"; known fields: {', '.join(_FIELDS)}"
        raise _EntryError(str(key), f"unknown field{suffix}")
    if raw.get("symbol") is None:
        raise _EntryError("symbol", "missing (required)")
    symbol = _text("symbol", raw["symbol"])
    if not SYMBOL_RE.match(symbol):
        raise _EntryError("symbol", f"{symbol!r} must be 2 to 12 upper-case letters or digits")
    for name in _REQUIRED:
        if raw.get(name) is None:
            raise _EntryError(name, "missing (required)")
    asset_class = _enum("asset_class", raw["asset_class"], AssetClass)
    provider = _enum("provider", raw["provider"], Provider) if "provider" in raw else Provider.MASSIVE
    ticker = _ticker(_text("ticker", raw["ticker"]), asset_class, provider)
    priority = _enum("priority", raw["priority"], Priority)
    calendar = _text("calendar", raw["calendar"])
    try:
        get_calendar(calendar)
    except UnknownCalendarError as exc:
        raise _EntryError("calendar", str(exc)) from None
    if provider is Provider.BINANCE and calendar.lower() != "crypto":
        raise _EntryError("calendar", f"{calendar!r} does not fit provider binance: Binance trades around the "
                          "clock, use calendar crypto")
    start = _start(raw["start"])
    base = _timeframe("base_timeframe", raw["base_timeframe"]) if "base_timeframe" in raw else Timeframe.M1
    fetch = _fetch(raw["fetch"], base) if "fetch" in raw else ()
    precision = _precision(raw["precision"]) if "precision" in raw else _DEFAULT_PRECISION[asset_class]
    description = _text("description", raw["description"]) if "description" in raw else ""
    pip_size = _pip_size(raw["pip_size"]) if "pip_size" in raw else None
    conventions = (
        _conventions(raw["conventions"], asset_class, base) if "conventions" in raw
        else _default_conventions(asset_class, base)
    )
    cross_check = _cross_check_name(raw["cross_check"]) if "cross_check" in raw else None
    return SymbolSpec(
        symbol=symbol,
        ticker=ticker,
        asset_class=asset_class,
        priority=priority,
        calendar=calendar.lower(),
        start=start,
        base_timeframe=base,
        fetch=fetch,
        precision=precision,
        description=description,
        pip_size=pip_size,
        conventions=conventions,
        provider=provider,
        cross_check=cross_check,
    )


def _cross_check_name(value: Any) -> str:
    name = _text("cross_check", value).upper()
    if not SYMBOL_RE.match(name):
        raise _EntryError("cross_check", f"{value!r} is not a symbol (2 to 12 upper-case letters or digits)")
    return name


def comparison_timeframe(spec: SymbolSpec, other: SymbolSpec) -> Timeframe | None:
    """The timeframe two entries' bars are compared on: the coarser of their base timeframes, which
    both have (fetched or derived from a finer base) when it is a whole multiple of the finer one;
    None when they have no such timeframe in common."""
    finer, coarser = sorted((spec.base_timeframe, other.base_timeframe), key=lambda tf: tf.minutes)
    if coarser.minutes % finer.minutes or coarser not in spec.timeframes or coarser not in other.timeframes:
        return None
    return coarser


def _check_cross_checks(specs: list[SymbolSpec], lines: list[int | None], source: str) -> None:
    """`cross_check` must name another entry of this catalog with a timeframe the two can be compared on."""
    by_symbol = {s.symbol: s for s in specs}
    for number, (spec, line) in enumerate(zip(specs, lines, strict=True), start=1):
        if spec.cross_check is None:
            continue
        other = by_symbol.get(spec.cross_check)
        if other is None:
            hint = difflib.get_close_matches(spec.cross_check, list(by_symbol), n=1)
            message = f"{spec.cross_check!r} is not an entry of this catalog" + (
                f"; did you mean {hint[0]!r}?" if hint else "")
        elif other is spec:
            message = "names the entry itself; name another entry to compare with"
        elif comparison_timeframe(spec, other) is None:
            message = (f"{other.symbol}'s base timeframe {other.base_timeframe} and this entry's "
                       f"{spec.base_timeframe} have no timeframe in common to compare on")
        else:
            continue
        raise CatalogError(source, message, entry=number, symbol=spec.symbol, field="cross_check", line=line)


def _named_stream(text: str, source: str) -> io.StringIO:
    """A stream PyYAML names by `source` in its error marks instead of "<unicode string>"."""
    stream = io.StringIO(text)
    stream.name = source  # type: ignore[attr-defined]
    return stream


def _entries(text: str, source: str) -> tuple[list[Any], list[int | None]]:
    """The raw entries and their line numbers; accepts `symbols: [...]` or a bare list."""
    try:
        data = yaml.load(_named_stream(text, source), Loader=_Loader)
        root = yaml.compose(_named_stream(text, source), Loader=_Loader)
    except yaml.YAMLError as exc:
        raise CatalogError(source, f"not valid YAML: {exc}") from None
    if data is None:
        raise CatalogError(source, "the file is empty; expected a 'symbols:' list")
    seq_node = root
    if isinstance(data, Mapping):
        extra = [k for k in data if k != "symbols"]
        if extra:
            raise CatalogError(source, f"unknown top-level key {extra[0]!r}; the file holds only 'symbols:'")
        if "symbols" not in data:
            raise CatalogError(source, "no 'symbols:' list")
        data = data["symbols"]
        seq_node = next(v for k, v in root.value if k.value == "symbols")
    if not isinstance(data, list):
        raise CatalogError(source, f"'symbols' must be a list of entries, got {type(data).__name__}")
    if not data:
        raise CatalogError(source, "the symbol list is empty")
    lines = [item.start_mark.line + 1 for item in seq_node.value]
    return data, lines


def parse_catalog(text: str, source: str = "<string>") -> Catalog:
    """Validate catalog YAML text; entries are numbered from 1 in error messages."""
    data, lines = _entries(text, source)
    specs: list[SymbolSpec] = []
    symbol_at: dict[str, int] = {}
    ticker_at: dict[str, int] = {}
    for number, (raw, line) in enumerate(zip(data, lines, strict=True), start=1):
        label = raw.get("symbol") if isinstance(raw, Mapping) else None
        try:
            spec = _parse_entry(raw)
            if spec.symbol in symbol_at:
                raise _EntryError("symbol", f"duplicate of entry #{symbol_at[spec.symbol]}")
            if spec.ticker in ticker_at:
                raise _EntryError("ticker", f"{spec.ticker!r} duplicates entry #{ticker_at[spec.ticker]}")
        except _EntryError as exc:
            raise CatalogError(source, exc.message, entry=number, symbol=label, field=exc.field, line=line) from None
        symbol_at[spec.symbol] = number
        ticker_at[spec.ticker] = number
        specs.append(spec)
    _check_cross_checks(specs, lines, source)
    return Catalog(symbols=tuple(specs), source=source)


def _default_path() -> Path | None:
    env = os.environ.get(CATALOG_ENV, "").strip()
    return Path(env) if env else None


def load_catalog(path: str | os.PathLike[str] | None = None) -> Catalog:
    """Load `path`, else $MASSIVE_CATALOG, else the catalog shipped with the package."""
    if path is None:
        path = _default_path()
    if path is None:
        packaged = resources.files("massive_pipeline.core").joinpath(PACKAGED_CATALOG)
        return parse_catalog(packaged.read_text(encoding="utf-8"), str(packaged))
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CatalogError(str(file), f"file not found (set {CATALOG_ENV} or pass an existing path)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CatalogError(str(file), f"cannot be read: {exc}") from None
    return parse_catalog(text, str(file))


@functools.lru_cache(maxsize=8)
def _load_cached(path: str | None, stamp: tuple[int, int] | None) -> Catalog:
    return load_catalog(path)


def default_catalog() -> Catalog:
    """The catalog at the default location, cached until $MASSIVE_CATALOG or the file changes."""
    path = _default_path()
    if path is None:
        return _load_cached(None, None)
    try:
        st = path.stat()
        stamp: tuple[int, int] | None = (st.st_mtime_ns, st.st_size)
    except OSError:
        stamp = None  # load_catalog reports the problem with the path in the message
    return _load_cached(str(path), stamp)


__all__ = [
    "CALENDAR_NAMES",
    "CATALOG_ENV",
    "AssetClass",
    "Catalog",
    "CatalogError",
    "Convention",
    "Priority",
    "Provider",
    "SymbolSpec",
    "UnknownSymbolError",
    "comparison_timeframe",
    "default_catalog",
    "default_pip_size",
    "load_catalog",
    "parse_catalog",
]
