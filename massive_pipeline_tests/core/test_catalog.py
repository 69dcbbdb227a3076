"""The symbol catalog: the packaged file, the loader's strict validation, and lookups."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest
import yaml

from massive_pipeline.core.calendars import CALENDAR_NAMES
from massive_pipeline.core.catalog import (
    AssetClass,
    Catalog,
    CatalogError,
    Priority,
    SymbolSpec,
    UnknownSymbolError,
    default_catalog,
    load_catalog,
    parse_catalog,
)
from massive_pipeline.core.timeframes import Convention, Timeframe


def entry(symbol: str = "EURUSD", **overrides: object) -> dict[str, object]:
    base: dict[str, object] = {
        "symbol": symbol,
        "ticker": f"C:{symbol}",
        "asset_class": "forex",
        "priority": "medium",
        "calendar": "forex",
        "start": "2024-01-01",
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not _DROP}


_DROP = object()


def write(tmp_path: Path, entries: list[object], name: str = "catalog.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump({"symbols": entries}, sort_keys=False))
    return path


# --- the packaged catalog -------------------------------------------------------------------


@pytest.fixture(scope="module")
def packaged() -> Catalog:
    return load_catalog(Path(__file__).resolve().parents[2] / "massive_pipeline" / "core" / "catalog.yaml")


def test_packaged_catalog_loads_by_default(monkeypatch):
    monkeypatch.delenv("MASSIVE_CATALOG", raising=False)
    catalog = load_catalog()
    assert catalog.source.endswith("catalog.yaml")
    assert 40 <= len(catalog) <= 50


def test_packaged_priorities(packaged):
    assert {s.symbol for s in packaged.critical()} == {"XAUUSD", "EURUSD", "BTCUSD"}
    high = {s.symbol for s in packaged if s.priority is Priority.HIGH}
    assert high == {"GBPUSD", "USDJPY", "XAGUSD", "AUDUSD", "USDCAD", "ETHUSD"}


def test_packaged_instruments(packaged):
    assert {"SPX500", "NAS100", "DJI30", "DAX40"} <= {s.symbol for s in packaged}
    assert packaged.get("SPX500").ticker == "I:SPX"
    assert packaged.get("NAS100").ticker == "I:NDX"
    assert packaged.get("DAX40").calendar == "xetra"
    assert packaged.get("DJI30").calendar == "us_equity"
    for metal in ("XAUUSD", "XAGUSD"):
        spec = packaged.get(metal)
        assert (spec.ticker, spec.asset_class, spec.calendar) == (f"C:{metal}", AssetClass.METAL, "metals")
    assert packaged.get("BTCUSD").ticker == "X:BTCUSD"
    assert any(Timeframe.D1 in s.fetch for s in packaged), "the direct-fetch feature is exercised"
    assert {s.asset_class for s in packaged} == set(AssetClass)
    assert len({s.key_prefix for s in packaged}) == len(packaged)


def test_packaged_forex_and_metals_fetch_only_their_minutes(packaged):
    """A fetched D1 would cost a second request at every refresh of the pair; their day history
    comes from a one-time bootstrap fill instead, and W1 is resampled from the stored D1."""
    pairs = [s for s in packaged if s.asset_class in (AssetClass.FOREX, AssetClass.METAL)]
    assert len(pairs) == 32
    assert all(s.fetch == () and s.provider_days_are_store_days for s in pairs)
    assert all(s.derived_from(Timeframe.D1) is Timeframe.M1 and s.derived_from(Timeframe.W1) is Timeframe.D1
               for s in pairs)


# --- where the catalog comes from -----------------------------------------------------------


def test_env_override(tmp_path, monkeypatch):
    path = write(tmp_path, [entry("EURUSD"), entry("GBPUSD")])
    monkeypatch.setenv("MASSIVE_CATALOG", str(path))
    catalog = load_catalog()
    assert [s.symbol for s in catalog] == ["EURUSD", "GBPUSD"]
    assert catalog.source == str(path)


def test_explicit_path_beats_env(tmp_path, monkeypatch):
    monkeypatch.setenv("MASSIVE_CATALOG", str(write(tmp_path, [entry("EURUSD")], "env.yaml")))
    explicit = write(tmp_path, [entry("USDJPY")], "explicit.yaml")
    assert [s.symbol for s in load_catalog(explicit)] == ["USDJPY"]


def test_default_catalog_follows_env_and_file_changes(tmp_path, monkeypatch):
    path = write(tmp_path, [entry("EURUSD")])
    monkeypatch.setenv("MASSIVE_CATALOG", str(path))
    first = default_catalog()
    assert default_catalog() is first
    write(tmp_path, [entry("EURUSD"), entry("GBPUSD")])
    assert [s.symbol for s in default_catalog()] == ["EURUSD", "GBPUSD"]
    monkeypatch.delenv("MASSIVE_CATALOG")
    assert len(default_catalog()) > 40


def test_bare_list_is_accepted(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text(yaml.safe_dump([entry("EURUSD")]))
    assert load_catalog(path).get("eurusd").ticker == "C:EURUSD"


# --- bad files ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("symbols: [unclosed", "not valid YAML"),
        ("symbols: 5", "must be a list"),
        ("symbols: []", "empty"),
        ("", "empty"),
        ("entries: []", "unknown top-level key 'entries'"),
        ("just text", "must be a list"),
        ("symbols:\n  - symbol: EURUSD\n    symbol: GBPUSD\n", "duplicate key 'symbol'"),
    ],
)
def test_bad_file_names_the_path(tmp_path, text, fragment):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(CatalogError) as err:
        load_catalog(path)
    assert str(path) in str(err.value)
    assert fragment in str(err.value)


def test_missing_file_names_the_path(tmp_path, monkeypatch):
    missing = tmp_path / "nope.yaml"
    monkeypatch.setenv("MASSIVE_CATALOG", str(missing))
    with pytest.raises(CatalogError, match="not found") as err:
        load_catalog()
    assert str(missing) in str(err.value)


# --- bad entries ----------------------------------------------------------------------------

# In the future on any day the suite runs. "Tomorrow" computed at collection would be today once the
# suite crosses midnight before this test runs.
FUTURE_DAY = "2100-01-01"

BAD_ENTRIES = [
    # (id, entry, field, fragment of the reason)
    ("lower-case symbol", entry("eurusd", ticker="C:EURUSD"), "symbol", "upper-case"),
    ("long symbol", entry("ABCDEFGHIJKLM"), "symbol", "2 to 12"),
    ("symbol not text", entry(123456), "symbol", "must be text"),
    ("missing ticker", entry(ticker=_DROP), "ticker", "missing"),
    ("ticker form", entry(ticker="EURUSD"), "ticker", "must look like"),
    ("ticker prefix", entry(ticker="X:EURUSD"), "ticker", "expected prefix C:"),
    ("asset class", entry(asset_class="fx"), "asset_class", "is not one of forex, metal, crypto, index"),
    ("priority", entry(priority="urgent"), "priority", "'urgent' is not one of critical, high, medium, low"),
    ("calendar", entry(calendar="nyse"), "calendar", "unknown calendar 'nyse'"),
    ("negative start", entry(start="-2024-01-01"), "start", "YYYY-MM-DD"),
    ("impossible start", entry(start="2024-13-01"), "start", "not a valid date"),
    ("ancient start", entry(start="1989-12-31"), "start", "before 1990-01-01"),
    ("future start", entry(start=FUTURE_DAY), "start", "in the future"),
    ("start as number", entry(start=20240101), "start", "must be text"),
    ("start with slashes", entry(start="2024/01/01"), "start", "YYYY-MM-DD"),
    ("base timeframe", entry(base_timeframe="H3"), "base_timeframe", "'H3'"),
    ("fetch not a list", entry(fetch="D1"), "fetch", "must be a list"),
    ("fetch repeated", entry(fetch=["D1", "1d"]), "fetch", "listed twice"),
    ("fetch the base", entry(fetch=["M1"]), "fetch", "is the base timeframe"),
    ("fetch below base", entry(base_timeframe="H1", fetch=["M15"]), "fetch", "below the base timeframe H1"),
    ("fetch unknown", entry(fetch=["D2"]), "fetch", "'D2'"),
    ("negative precision", entry(precision=-1), "precision", "0 to 10"),
    ("precision as text", entry(precision="5"), "precision", "0 to 10"),
    ("precision as bool", entry(precision=True), "precision", "0 to 10"),
    ("description", entry(description=5), "description", "must be text"),
    ("misspelt field", entry(priorty="high"), "priorty", "did you mean 'priority'"),
    ("conventions not a list", entry(conventions="utc"), "conventions", "non-empty list of utc, new_york_close"),
    ("conventions empty", entry(conventions=[]), "conventions", "non-empty list"),
    ("convention unknown", entry(conventions=["utc", "london"]), "conventions", "'london' is not one of"),
    ("convention repeated", entry(conventions=["utc", "UTC"]), "conventions", "listed twice"),
    ("conventions without utc", entry(conventions=["new_york_close"]), "conventions", "must include utc"),
    ("new_york_close for crypto", entry("BTCUSD", ticker="X:BTCUSD", asset_class="crypto", calendar="crypto",
                                        conventions=["utc", "new_york_close"]), "conventions", "not asset_class crypto"),
    ("new_york_close on an H4 base", entry(base_timeframe="H4", conventions=["utc", "new_york_close"]),
     "conventions", "base timeframe of at most H1 (its days start at 21:00 or 22:00 UTC), not H4"),
    ("fetch a New York timeframe", entry(fetch=["D1_NY"]), "fetch", "never fetched"),
    ("New York base", entry(base_timeframe="W1_NY"), "base_timeframe", "list new_york_close under 'conventions'"),
]


@pytest.mark.parametrize(("bad", "field", "reason"), [b[1:] for b in BAD_ENTRIES], ids=[b[0] for b in BAD_ENTRIES])
def test_bad_entry_names_file_entry_and_field(tmp_path, bad, field, reason):
    path = write(tmp_path, [entry("GBPUSD"), bad])
    with pytest.raises(CatalogError) as err:
        load_catalog(path)
    message = str(err.value)
    assert message.startswith(f"catalog {path} entry #2")
    assert f"field {field!r}: " in message
    assert reason in message
    assert (err.value.entry, err.value.field) == (2, field)


def test_message_format_matches_the_contract(tmp_path):
    entries = [entry("GBPUSD"), entry("USDJPY"), entry("EURUSD", priority="urgent")]
    path = write(tmp_path, entries)
    with pytest.raises(CatalogError) as err:
        load_catalog(path)
    assert str(err.value).startswith(
        f"catalog {path} entry #3 (EURUSD): field 'priority': 'urgent' is not one of critical, high, medium, low"
    )
    # safe_dump writes six lines per entry after `symbols:`; entry #3 starts on line 14.
    assert err.value.line == 14


def test_sql_injection_symbol_is_refused(tmp_path):
    evil = "EURUSD'; DROP TABLE candles;--"
    with pytest.raises(CatalogError) as err:
        load_catalog(write(tmp_path, [entry(evil, ticker="C:EURUSD")]))
    assert err.value.field == "symbol"
    assert err.value.symbol == evil


def test_entry_that_is_not_a_mapping(tmp_path):
    with pytest.raises(CatalogError, match=r"entry #2: must be a mapping"):
        load_catalog(write(tmp_path, [entry("GBPUSD"), "EURUSD"]))


@pytest.mark.parametrize(
    ("second", "field", "reason"),
    [
        (entry("EURUSD", ticker="C:EURUSD2"), "symbol", "duplicate of entry #1"),
        (entry("EURUSD2", ticker="C:EURUSD"), "ticker", "duplicates entry #1"),
    ],
)
def test_duplicates_are_refused(tmp_path, second, field, reason):
    path = write(tmp_path, [entry("EURUSD"), second])
    with pytest.raises(CatalogError) as err:
        load_catalog(path)
    assert (err.value.entry, err.value.field) == (2, field)
    assert reason in str(err.value)


def test_every_calendar_name_is_accepted(tmp_path):
    entries = [entry(f"SYM{i}", calendar=name) for i, name in enumerate(CALENDAR_NAMES)]
    catalog = load_catalog(write(tmp_path, entries))
    assert [s.market_calendar.name for s in catalog] == list(CALENDAR_NAMES)


# --- the parsed values ----------------------------------------------------------------------


def test_fields_are_typed_and_defaulted(tmp_path):
    spx500 = entry(
        "SPX500",
        ticker="I:SPX",
        asset_class="index",
        calendar="us_equity",
        fetch=["W1", "1d"],
        precision=2,
        description="S&P 500",
    )
    catalog = load_catalog(write(tmp_path, [entry("EURUSD"), spx500]))
    eurusd, spx = catalog.get("EURUSD"), catalog.get("SPX500")
    assert eurusd.start == dt.date(2024, 1, 1)
    assert eurusd.base_timeframe is Timeframe.M1
    assert eurusd.fetch == ()
    assert eurusd.precision == 5  # the forex default
    assert eurusd.priority is Priority.MEDIUM
    assert spx.fetch == (Timeframe.D1, Timeframe.W1)
    assert (spx.precision, spx.description, spx.asset_class) == (2, "S&P 500", AssetClass.INDEX)


def spec(**overrides: object) -> SymbolSpec:
    fields: dict[str, object] = {
        "symbol": "SPX500",
        "ticker": "I:SPX",
        "asset_class": AssetClass.INDEX,
        "priority": Priority.MEDIUM,
        "calendar": "us_equity",
        "start": dt.date(2024, 1, 1),
        "base_timeframe": Timeframe.H1,
        "fetch": (Timeframe.D1,),
    }
    fields.update(overrides)
    return SymbolSpec(**fields)  # type: ignore[arg-type]


def test_forex_and_metals_have_the_new_york_close_unless_they_opt_out(tmp_path):
    ny = (Timeframe.D1_NY, Timeframe.W1_NY)
    catalog = load_catalog(write(tmp_path, [
        entry("EURUSD"),
        entry("XAUUSD", asset_class="metal", calendar="metals"),
        entry("GBPUSD", conventions=["utc"]),
        entry("BTCUSD", ticker="X:BTCUSD", asset_class="crypto", calendar="crypto"),
        entry("USDJPY", base_timeframe="H4"),  # its base cannot build a 21:00 UTC day: UTC only
        entry("AUDUSD", conventions=["new_york_close", "utc"]),
    ]))
    has_ny = {s.symbol: all(tf in s.timeframes for tf in ny) for s in catalog}
    assert has_ny == {"EURUSD": True, "XAUUSD": True, "GBPUSD": False, "BTCUSD": False, "USDJPY": False,
                      "AUDUSD": True}
    eurusd = catalog.get("EURUSD")
    assert eurusd.conventions == (Convention.UTC, Convention.NEW_YORK_CLOSE)
    assert eurusd.timeframes[-2:] == ny and eurusd.derived_from(Timeframe.D1_NY) is Timeframe.M1
    # a fetched D1 is a UTC day: the New York week still comes from the base, W1 from the day bars
    fetching = dataclasses.replace(eurusd, fetch=(Timeframe.D1,))
    assert fetching.derived_from(Timeframe.W1_NY) is Timeframe.M1 and fetching.derived_from(Timeframe.W1) is Timeframe.D1
    assert not any(tf.is_new_york for tf in catalog.get("GBPUSD").timeframes)


def test_timeframe_sources():
    s = spec()
    assert s.timeframe_source(Timeframe.H1) == "base"
    assert s.timeframe_source("D1") == "fetch"
    assert s.timeframe_source(Timeframe.H4) == "derived"
    assert s.timeframe_source(Timeframe.W1) == "derived"
    assert s.derived_from(Timeframe.H4) is Timeframe.H1
    assert s.derived_from(Timeframe.W1) is Timeframe.D1  # the week of the fetched UTC days
    # an index's provider days are its D1 (a bootstrap fills old days from them): W1 from D1;
    # crypto's provider days are US/Eastern: its W1 still comes from the base
    assert spec(fetch=()).provider_days_are_store_days and spec(fetch=()).derived_from(Timeframe.W1) is Timeframe.D1
    crypto = dataclasses.replace(spec(fetch=()), asset_class=AssetClass.CRYPTO, ticker="X:BTCUSD")
    assert not crypto.provider_days_are_store_days and crypto.derived_from(Timeframe.W1) is Timeframe.H1
    assert spec(fetch=(Timeframe.W1,)).derived_from(Timeframe.W1) is None
    assert s.derived_from(Timeframe.D1) is None
    assert s.derived_from(Timeframe.H1) is None
    assert s.timeframes == (Timeframe.H1, Timeframe.H4, Timeframe.D1, Timeframe.W1)
    with pytest.raises(ValueError, match="SPX500.*M15.*below the base"):
        s.timeframe_source(Timeframe.M15)


def test_spec_properties():
    s = spec(priority=Priority.CRITICAL)
    assert s.key_prefix == "spx500"
    assert s.is_critical
    assert not spec().is_critical
    assert s.market_calendar.name == "us_equity"


def test_priority_rank_orders_the_queue():
    assert sorted(Priority, key=lambda p: p.rank) == [Priority.CRITICAL, Priority.HIGH, Priority.MEDIUM, Priority.LOW]
    assert [p.rank for p in (Priority.CRITICAL, Priority.LOW)] == [0, 3]


# --- lookups --------------------------------------------------------------------------------


def test_get_is_case_insensitive(packaged):
    assert packaged.get("eurusd") is packaged.get(" EURUSD ")
    assert "xauusd" in packaged


def test_unknown_symbol_suggests_close_matches(packaged):
    with pytest.raises(UnknownSymbolError) as err:
        packaged.get("EURUDS")
    assert isinstance(err.value, KeyError)
    text = str(err.value)
    assert text.startswith("unknown symbol 'EURUDS'")
    assert "did you mean" in text and "EURUSD" in text
    assert "EURUSD" in err.value.suggestions


def test_unknown_symbol_without_close_match(packaged):
    with pytest.raises(UnknownSymbolError) as err:
        packaged.get("QQQQQQ")
    assert err.value.suggestions == []
    assert "did you mean" not in str(err.value)


def test_by_ticker(packaged):
    assert packaged.by_ticker("C:XAUUSD").symbol == "XAUUSD"
    assert packaged.by_ticker("i:spx").symbol == "SPX500"
    assert packaged.by_ticker("C:NOPE") is None


def test_select(packaged):
    assert packaged.select(None) == list(packaged)
    assert [s.symbol for s in packaged.select(["btcusd", "EURUSD", "BTCUSD"])] == ["BTCUSD", "EURUSD"]
    assert [s.symbol for s in packaged.select("XAUUSD, eurusd,")] == ["XAUUSD", "EURUSD"]
    with pytest.raises(UnknownSymbolError, match="NOPE"):
        packaged.select(["EURUSD", "NOPE"])


def test_by_priority_puts_critical_first(packaged):
    ordered = packaged.by_priority()
    assert {s.symbol for s in ordered[:3]} == {"XAUUSD", "EURUSD", "BTCUSD"}
    ranks = [s.priority.rank for s in ordered]
    assert ranks == sorted(ranks)


# -- pip size (broker comparisons) ---------------------------------------------------------------


def test_pip_size_defaults_by_asset_class_and_precision_and_can_be_set():
    packaged = load_catalog()
    assert {s: packaged.get(s).pip for s in ("EURUSD", "USDJPY", "XAUUSD", "XAGUSD", "BTCUSD", "SPX500")} == {
        "EURUSD": 0.0001, "USDJPY": 0.01, "XAUUSD": 0.01, "XAGUSD": 0.001, "BTCUSD": 0.01, "SPX500": 1.0,
    }
    entry = '{symbol: XAUUSD, ticker: "C:XAUUSD", asset_class: metal, priority: high, calendar: metals, start: 2025-01-01'
    assert parse_catalog(f"symbols:\n  - {entry}, pip_size: 0.1}}\n").get("XAUUSD").pip == 0.1
    with pytest.raises(CatalogError, match=r"entry #1 \(XAUUSD\): field 'pip_size': must be a positive number"):
        parse_catalog(f"symbols:\n  - {entry}, pip_size: -1}}\n")
