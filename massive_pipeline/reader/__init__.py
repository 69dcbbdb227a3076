"""The Python reader of the candle store: `read_candles` (one frame) and `iter_candles` (bounded chunks).

A room of its own over `store/`: it reads whatever store `MASSIVE_DATABASE_URL` names through
the store's bulk read, the one `CandleStore.read` uses too (ADBC into Arrow on PostgreSQL, a
numpy record array on SQLite), and adds what a user of many symbols and long ranges needs:
argument checking, multi-symbol and chunked reads by keyset pages inside one snapshot, and
pandas, Arrow or polars frames.
"""

from massive_pipeline.reader.errors import MissingExtraError, NoSuchSeriesError
from massive_pipeline.reader.read import DEFAULT_CHUNK_ROWS, iter_candles, read_candles

__all__ = ["DEFAULT_CHUNK_ROWS", "MissingExtraError", "NoSuchSeriesError", "iter_candles", "read_candles"]
