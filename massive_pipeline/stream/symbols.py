"""Which catalog entry a Binance symbol streams into: the one whose provider is binance and
whose ticker is that symbol (`{symbol: BTCUSDT, ticker: BTCUSDT, provider: binance, …}`).

The stream writes under the catalog's symbol, so the assets, gap detection, verify and status
that know the entry see the streamed bars as theirs. A symbol without such an entry is refused
before anything connects, with one line naming it and the entries that could be streamed.
"""

from __future__ import annotations

from collections.abc import Iterable

from massive_pipeline.core.catalog import Catalog, SymbolSpec

BINANCE = "binance"


class UnknownStreamSymbolError(ValueError):
    """A Binance symbol no catalog entry streams; the message is one line."""


def binance_entries(catalog: Catalog) -> dict[str, SymbolSpec]:
    """{Binance symbol: catalog entry} for every entry whose provider is binance."""
    return {spec.ticker: spec for spec in catalog if str(spec.provider) == BINANCE}


def resolve_symbols(catalog: Catalog, symbols: Iterable[str]) -> dict[str, str]:
    """{Binance symbol: catalog symbol} for `symbols` (case-insensitive, as Binance's own)."""
    entries = binance_entries(catalog)
    wanted = list(dict.fromkeys(s.strip().upper() for s in symbols if s.strip()))
    if not wanted:
        raise UnknownStreamSymbolError("--symbols names no symbol to stream")
    unknown = [s for s in wanted if s not in entries]
    if unknown:
        known = ", ".join(sorted(entries)) or "none"
        raise UnknownStreamSymbolError(
            f"no catalog entry with provider binance and ticker {', '.join(unknown)} "
            f"(entries that can stream: {known})"
        )
    return {s: entries[s].symbol for s in wanted}
