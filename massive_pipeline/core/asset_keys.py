"""The asset-key paths of the candle series, in one place and without Dagster.

`candles/<symbol lower>/<timeframe lower>` is a contract (DESIGN.md): the candle assets are built
with it and the candle IO manager reads it back to know which series an input names. Both sides
use these two functions, so the format cannot drift between writer and reader. Dagster's
`AssetKey` wraps the path in `candles/assets.py`; this module stays Dagster-free like the rest of
`core/`.
"""

from __future__ import annotations

from collections.abc import Sequence

from massive_pipeline.core.timeframes import Timeframe, UnknownTimeframeError, parse_timeframe

CANDLE_KEY_PREFIX = "candles"


class NotACandleKeyError(ValueError):
    """An asset key that does not name a candle series; the message quotes the key."""


def candle_key_path(symbol: str, timeframe: Timeframe) -> list[str]:
    """`["candles", "eurusd", "h1"]` for EURUSD H1."""
    return [CANDLE_KEY_PREFIX, symbol.lower(), timeframe.key]


def series_of_candle_key(path: Sequence[str]) -> tuple[str, Timeframe]:
    """The (symbol, timeframe) a candle asset key path names.

    Catalog symbols are upper case (`[A-Z0-9]{2,12}`), so the key's lower-case symbol maps back
    to exactly one stored series.
    """
    shown = "/".join(path)
    if len(path) != 3 or path[0] != CANDLE_KEY_PREFIX or not path[1]:
        raise NotACandleKeyError(
            f"asset key {shown!r} is not a candle series (expected {CANDLE_KEY_PREFIX}/<symbol>/<timeframe>)"
        )
    try:
        timeframe = parse_timeframe(path[2])
    except UnknownTimeframeError as exc:
        raise NotACandleKeyError(f"asset key {shown!r} is not a candle series: {exc}") from None
    return path[1].upper(), timeframe
