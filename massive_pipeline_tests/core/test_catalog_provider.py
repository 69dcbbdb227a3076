"""The catalog's `provider` field: Massive by default, Binance symbols validated as such."""

from __future__ import annotations

from pathlib import Path

import pytest

from massive_pipeline.core.catalog import CatalogError, Provider, load_catalog
from massive_pipeline_tests.core.test_catalog import entry, write

BINANCE = {"ticker": "BTCUSDT", "provider": "binance", "asset_class": "crypto", "calendar": "crypto"}


def test_provider_defaults_to_massive_and_binance_entries_load(tmp_path: Path) -> None:
    catalog = load_catalog(write(tmp_path, [entry("EURUSD"), entry("BTCUSDT", **BINANCE)]))
    assert catalog.get("EURUSD").provider is Provider.MASSIVE
    spec = catalog.get("BTCUSDT")
    assert (spec.provider, spec.ticker, spec.calendar) == (Provider.BINANCE, "BTCUSDT", "crypto")
    assert catalog.by_ticker("BTCUSDT") is spec


@pytest.mark.parametrize("bad,field,reason", [
    ({"provider": "kraken"}, "provider", "'kraken' is not one of massive, binance"),
    ({"provider": 1}, "provider", "1 is not one of massive, binance"),
    ({"ticker": "X:BTCUSD"}, "ticker", "must be a Binance symbol such as BTCUSDT"),
    ({"asset_class": "forex"}, "asset_class", "use asset_class crypto"),
    ({"calendar": "forex"}, "calendar", "use calendar crypto"),
])
def test_bad_binance_entries_get_one_line_naming_the_field(tmp_path: Path, bad: dict, field: str, reason: str) -> None:
    path = write(tmp_path, [entry("EURUSD"), entry("BTCUSDT", **{**BINANCE, **bad})])
    with pytest.raises(CatalogError) as err:
        load_catalog(path)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"catalog {path} entry #2 (BTCUSDT): field {field!r}: ")
    assert reason in message


def test_a_massive_entry_still_needs_a_prefixed_ticker(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="must look like C:EURUSD"):
        load_catalog(write(tmp_path, [entry("BTCUSDT", ticker="BTCUSDT", asset_class="crypto", calendar="crypto")]))
