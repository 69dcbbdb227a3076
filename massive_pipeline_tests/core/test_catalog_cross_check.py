"""The catalog's `cross_check` field: it must name another entry the two can be compared with, and a
bad value fails at load time in one line naming the entry and the field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from massive_pipeline.core.catalog import CatalogError, comparison_timeframe, load_catalog
from massive_pipeline.core.timeframes import Timeframe


def _crypto(symbol: str, **overrides: object) -> dict[str, object]:
    entry: dict[str, object] = {
        "symbol": symbol, "ticker": f"X:{symbol}", "asset_class": "crypto", "priority": "high",
        "calendar": "crypto", "start": "2025-01-01",
    }
    entry.update(overrides)
    return entry


def _write(tmp_path: Path, entries: list[dict[str, object]]) -> Path:
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump({"symbols": entries}, sort_keys=False))
    return path


def test_cross_check_names_another_entry_and_is_upper_cased(tmp_path):
    catalog = load_catalog(_write(tmp_path, [_crypto("BTCUSD", cross_check="btcusdt"), _crypto("BTCUSDT")]))
    assert catalog.get("BTCUSD").cross_check == "BTCUSDT"
    assert catalog.get("BTCUSDT").cross_check is None
    assert comparison_timeframe(catalog.get("BTCUSD"), catalog.get("BTCUSDT")) is Timeframe.M1


def test_entries_with_different_bases_compare_on_the_coarser_one(tmp_path):
    catalog = load_catalog(_write(tmp_path, [
        _crypto("BTCUSD", cross_check="BTCUSDT"), _crypto("BTCUSDT", base_timeframe="M5", cross_check="BTCUSD"),
    ]))
    btcusd, btcusdt = catalog.get("BTCUSD"), catalog.get("BTCUSDT")
    assert comparison_timeframe(btcusd, btcusdt) is comparison_timeframe(btcusdt, btcusd) is Timeframe.M5


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("ETHUSD", "'ETHUSD' is not an entry of this catalog"),
        ("BTCUSDTT", "'BTCUSDTT' is not an entry of this catalog; did you mean 'BTCUSDT'?"),
        ("BTCUSD", "names the entry itself; name another entry to compare with"),
        ("BTC/USD", "'BTC/USD' is not a symbol (2 to 12 upper-case letters or digits)"),
        (5, "must be text, got int 5"),
    ],
)
def test_a_bad_cross_check_names_the_entry_and_field_in_one_line(tmp_path, value, reason):
    path = _write(tmp_path, [_crypto("BTCUSDT"), _crypto("BTCUSD", cross_check=value)])
    with pytest.raises(CatalogError) as err:
        load_catalog(path)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"catalog {path} entry #2 (BTCUSD): field 'cross_check': {reason}")
    assert (err.value.entry, err.value.field, err.value.line) == (2, "cross_check", 8)


def test_the_packaged_catalog_cross_checks_only_entries_it_holds():
    catalog = load_catalog(Path(__file__).resolve().parents[2] / "massive_pipeline" / "core" / "catalog.yaml")
    for spec in catalog:
        if spec.cross_check is not None:
            assert spec.cross_check in catalog and spec.cross_check != spec.symbol
