"""The Python reader of the candle store: `read_candles` (one frame) and `iter_candles` (bounded chunks).

A room of its own over `store/`: it reads whatever store `MASSIVE_DATABASE_URL` names through
each backend's fastest sound bulk path (binary COPY decoded with numpy on PostgreSQL, a
streaming numpy conversion on SQLite) and hands back pandas, Arrow or polars frames.
"""

from massive_pipeline.reader.errors import MissingExtraError, NoSuchSeriesError
from massive_pipeline.reader.read import DEFAULT_CHUNK_ROWS, iter_candles, read_candles

__all__ = ["DEFAULT_CHUNK_ROWS", "MissingExtraError", "NoSuchSeriesError", "iter_candles", "read_candles"]
