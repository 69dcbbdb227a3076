"""Errors of the candle reader that the store's own errors do not cover.

A reader asked for a series the store does not hold must say so, naming the symbol and what the
store does hold, rather than hand back an empty frame that looks like a quiet week; an empty
frame means "stored, but no bars in this range". A missing optional package names the extra
that brings it.
"""

from __future__ import annotations

from collections.abc import Iterable

from massive_pipeline.core.catalog import UnknownSymbolError

POLARS_EXTRA = "massive_pipeline[polars]"


class NoSuchSeriesError(UnknownSymbolError):
    """A requested symbol has no bars at all at the requested timeframe in the store."""

    def __init__(self, symbol: str, timeframe: str, store: str, stored: Iterable[str]) -> None:
        stored = sorted(stored)
        super().__init__(symbol, stored)
        listed = ", ".join(stored[:20]) + (f" and {len(stored) - 20} more" if len(stored) > 20 else "")
        self._text = (
            f"unknown symbol {symbol!r}: candle store {store} holds no {timeframe} bars of it"
            + (f"; did you mean {', '.join(self.suggestions)}?" if self.suggestions else "")
            + (
                f" (stored {timeframe} symbols: {listed})"
                if stored
                else f" (it holds no {timeframe} bars at all)"
            )
        )


class MissingExtraError(ImportError):
    """An output format needs an optional package that is not installed."""

    def __init__(self, output: str, package: str, extra: str) -> None:
        super().__init__(f"output={output!r} needs the {package} package: pip install '{extra}'")
