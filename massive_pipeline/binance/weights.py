"""What one klines request costs against Binance's per-minute request-weight limit.

Binance limits an IP by *weight* per minute, not by request count, and a klines request's weight
grows with `limit`. The table is the limit-tiered one Binance documents for klines (1-100: 1,
101-500: 2, 501-1000: 5; the tiering its USD-M futures klines still use), not the flat 2 the spot
documentation lists today, because it is the safer plan for the default budget: a full
1000-kline page, what a backfill sends, is charged 5 rather than 2, so the limiter never lets a
backfill outrun the server's count; the small refresh requests charged 1 instead of 2 are a few a
minute, and the default budget (1200) is a fifth of spot's published 6000. The client reads the
server's own count (`X-MBX-USED-WEIGHT-1M`) and reports it beside the charged weight, so a drift
between the two shows up in the logs and the fetch metadata.
"""

from __future__ import annotations

MAX_KLINES = 1000
# (highest limit of the tier, weight), ascending
KLINES_WEIGHT_TIERS: tuple[tuple[int, int], ...] = ((100, 1), (500, 2), (MAX_KLINES, 5))
DEFAULT_WEIGHT_LIMIT_PER_MINUTE = 1200
USED_WEIGHT_HEADER = "X-MBX-USED-WEIGHT-1M"


def klines_weight(limit: int) -> int:
    """The weight of one `GET /api/v3/klines` asking for `limit` klines (1..1000)."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_KLINES:
        raise ValueError(f"klines limit must be an integer in 1..{MAX_KLINES}, got {limit!r}")
    return next(weight for top, weight in KLINES_WEIGHT_TIERS if limit <= top)
