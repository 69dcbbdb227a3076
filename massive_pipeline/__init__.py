"""massive_pipeline: a Dagster pipeline keeping a store of OHLCV candles from the Massive REST API.

`massive_pipeline.read_candles` / `iter_candles` (the Python reader, `massive_pipeline.reader`)
are loaded on first use: importing the package stays free of pandas, SQLAlchemy and the
database drivers, so `import massive_pipeline.core...` costs nothing extra and touches nothing.
"""

from __future__ import annotations

from typing import Any

_LAZY = {"read_candles", "iter_candles"}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from massive_pipeline import reader

        return getattr(reader, name)
    raise AttributeError(f"module 'massive_pipeline' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | _LAZY)
