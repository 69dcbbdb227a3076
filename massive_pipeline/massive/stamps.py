"""Moving the provider's day and week bar stamps onto the pipeline's grid.

Massive stamps a bar with the start of its window, but which midnight starts a day depends on the
asset class: the OpenAPI examples show forex day bars at 00:00 UTC, crypto and stock day bars at
00:00 US/Eastern (04:00 or 05:00 UTC, by daylight saving), and the knowledge base says weekly bars
start on Sunday 00:00 Eastern. The pipeline keys D1 on the UTC day's 00:00 and W1 on Monday 00:00
UTC (`timeframes.py`), so a stamp is moved to the grid bar of the UTC date it falls on (a US/Eastern
midnight is always early on that same UTC date), and a week stamp to the Monday of the week that
holds the day after it (a Sunday stamp belongs to the trading week that follows it).

Only the key moves; the values stay the provider's, so a crypto D1 fetched directly covers the
US/Eastern day (derive D1 from M1, the catalog default, when UTC-day values matter).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

_DAY = pd.Timedelta(days=1)


def normalize_stamps(bars: pd.DataFrame, multiplier: int, timespan: str) -> tuple[pd.DataFrame, np.ndarray]:
    """`bars` with 1-day and 1-week stamps on the UTC grid, and which rows' stamps moved.

    Other bar sizes are returned as they came: minute and hour windows are UTC-aligned already.
    """
    if multiplier != 1 or timespan not in ("day", "week") or bars.empty:
        return bars, np.zeros(len(bars), dtype=bool)
    ts = bars["ts"]
    if timespan == "day":
        grid = ts.dt.floor("D")
    else:
        shifted = (ts + _DAY).dt.floor("D")
        grid = shifted - pd.to_timedelta(shifted.dt.weekday, unit="D")
    moved = (grid != ts).to_numpy()
    if not moved.any():
        return bars, moved
    out = bars.copy()
    out["ts"] = grid
    return out, moved
