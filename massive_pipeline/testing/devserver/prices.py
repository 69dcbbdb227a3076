"""Deterministic, realistic minute bars for any ticker, independent of the range asked for.

Every number is a pure function of (ticker, seed, revision, minute): counter-based hashing
(splitmix64) stands in for a random generator, so that no state accumulates and the bar of a
given minute is the same whether one day or one year is requested, in one page or in many.

- Daily level: log-price value noise over the day index (octaves of 1, 7, 45 and 300 days), so
  prices wander like a market but stay near the instrument's typical level forever.
- Intraday: per UTC day, a Brownian bridge from that day's level to the next day's, with minute
  volatility following a session profile (London/New York for forex and metals).
- Bars: open = previous minute's close (the path at the minute's start), close = the path at its
  end, wicks beyond both, volume with the session profile, vw between low and high.
- Presence: only minutes the market calendar says trade, minus a seeded ~3% of forex/metal
  minutes after 21:00 UTC and ~1% of crypto minutes before 06:00 UTC (thin hours really miss
  bars). `revision` changes prices (a provider correction) but not which minutes exist.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np
import pandas as pd

from massive_pipeline.core.calendars import get_calendar
from massive_pipeline.testing.devserver.bars import DAY_MS, MINUTE_MS, Bars
from massive_pipeline.testing.devserver.instruments import Instrument, stable_hash

MINUTES_PER_DAY = 1440
# (spacing in days, amplitude in units of daily volatility x sqrt(spacing))
_OCTAVES = ((1, 0.5), (7, 0.6), (45, 0.6), (300, 0.6))
_WICK = 0.6  # wick size in units of the minute's volatility
_DROP_RULES = {  # asset class -> (first minute of day, end minute of day, fraction dropped)
    "forex": (21 * 60, 24 * 60, 0.03),
    "metal": (21 * 60, 24 * 60, 0.03),
    "crypto": (0, 6 * 60, 0.01),
}
_BATCH_DAYS = 64  # days generated per vectorized pass (bounds the temporary arrays)
_CACHE_DAYS = 512

_U64 = np.uint64
_GOLDEN = _U64(0x9E3779B97F4A7C15)
_MUL1 = _U64(0xBF58476D1CE4E5B9)
_MUL2 = _U64(0x94D049BB133111EB)
_STREAM = _U64(0xD1B54A32D192ED03)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finalizer over a uint64 array (wrapping arithmetic is the point)."""
    z = x + _GOLDEN
    z = (z ^ (z >> _U64(30))) * _MUL1
    z = (z ^ (z >> _U64(27))) * _MUL2
    return z ^ (z >> _U64(31))


class HashStreams:
    """Independent uniform/normal streams indexed by integers, one set per (ticker, seed, revision)."""

    def __init__(self, *key: object) -> None:
        self._key = key

    def uniform(self, name: str, index: np.ndarray) -> np.ndarray:
        base = _U64(stable_hash(*self._key, name))
        with np.errstate(over="ignore"):
            bits = _mix(np.asarray(index, dtype=np.int64).astype(_U64) * _STREAM + base)
        return (bits >> _U64(11)).astype(np.float64) * (1.0 / 2**53)

    def normal(self, name: str, index: np.ndarray) -> np.ndarray:
        u1 = 1.0 - self.uniform(name + ".1", index)  # (0, 1]: log is finite
        u2 = self.uniform(name + ".2", index)
        return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)


def _bump(minute: np.ndarray, start: float, end: float) -> np.ndarray:
    """A smooth hump over [start, end) minutes of the day, zero outside."""
    x = (minute - start) / (end - start)
    return np.where((x >= 0) & (x < 1), np.sin(np.pi * np.clip(x, 0, 1)) ** 2, 0.0)


def activity_profile(asset_class: str) -> np.ndarray:
    """Relative activity per UTC minute of the day (mean 1): scales both volatility and volume."""
    m = np.arange(MINUTES_PER_DAY, dtype=np.float64)
    if asset_class in ("forex", "metal"):
        prof = 0.25 + 0.9 * _bump(m, 6 * 60, 16 * 60) + 0.7 * _bump(m, 12 * 60, 21 * 60)
        prof[21 * 60 :] = np.minimum(prof[21 * 60 :], 0.2)
    elif asset_class == "crypto":
        prof = 0.6 + 0.4 * _bump(m, 13 * 60, 22 * 60)
    else:
        prof = 1.0 + 0.3 * _bump(m, 0, MINUTES_PER_DAY)
    return prof / prof.mean()


_PROFILES = {cls: activity_profile(cls) for cls in ("forex", "metal", "crypto", "index")}


def _daily_log_level(streams: HashStreams, days: np.ndarray, daily_vol: float) -> np.ndarray:
    out = np.zeros(len(days), dtype=np.float64)
    for spacing, amp in _OCTAVES:
        knot = days // spacing
        frac = (days % spacing) / spacing
        smooth = frac * frac * (3.0 - 2.0 * frac)
        a = streams.normal(f"level{spacing}", knot)
        b = streams.normal(f"level{spacing}", knot + 1)
        out += amp * daily_vol * np.sqrt(spacing) * (a + (b - a) * smooth)
    return out


def generate_days(inst: Instrument, days: np.ndarray, seed: int, revision: int) -> list[Bars]:
    """Minute bars of whole UTC days (day index since the epoch), one Bars per day."""
    days = np.asarray(days, dtype=np.int64)
    if len(days) == 0:
        return []
    prices = HashStreams(inst.ticker, seed, revision)
    presence = HashStreams(inst.ticker, seed, "presence")
    daily_vol = inst.annual_vol / np.sqrt(365.0)
    profile = _PROFILES[inst.asset_class]
    minute_vol = daily_vol / np.sqrt(MINUTES_PER_DAY) * np.sqrt(profile)  # (1440,)

    level_from = _daily_log_level(prices, days, daily_vol)
    level_to = _daily_log_level(prices, days + 1, daily_vol)

    minute_index = days[:, None] * MINUTES_PER_DAY + np.arange(MINUTES_PER_DAY)[None, :]  # (D, 1440)
    steps = prices.normal("step", minute_index) * minute_vol[None, :]
    walk = np.concatenate([np.zeros((len(days), 1)), np.cumsum(steps, axis=1)], axis=1)  # (D, 1441)
    frac = np.arange(MINUTES_PER_DAY + 1) / MINUTES_PER_DAY
    bridge = walk - frac[None, :] * walk[:, -1:]
    path = inst.level * np.exp(level_from[:, None] + (level_to - level_from)[:, None] * frac[None, :] + bridge)

    dec = inst.decimals
    o = np.round(path[:, :-1], dec)
    c = np.round(path[:, 1:], dec)
    wick = _WICK * minute_vol[None, :]
    h = np.round(np.maximum(o, c) * np.exp(np.abs(prices.normal("high", minute_index)) * wick), dec)
    low = np.round(np.minimum(o, c) * np.exp(-np.abs(prices.normal("low", minute_index)) * wick), dec)
    vw = low + (h - low) * (0.3 + 0.4 * prices.uniform("vw", minute_index))
    vw = np.clip(np.round(vw, dec + 1), low, h)
    v, n = _volume(inst, prices, minute_index, profile)

    t = minute_index * MINUTE_MS
    keep = get_calendar(inst.calendar).is_open(pd.to_datetime(t.ravel(), unit="ms", utc=True))
    keep = keep.reshape(t.shape) & ~_dropped(inst, presence, minute_index)
    out = []
    for i in range(len(days)):
        k = keep[i]
        out.append(Bars(t[i][k], o[i][k], h[i][k], low[i][k], c[i][k], v[i][k], vw[i][k], n[i][k]).frozen())
    return out


def _volume(
    inst: Instrument, streams: HashStreams, minute_index: np.ndarray, profile: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    noise = np.exp(0.35 * streams.normal("volume", minute_index)) * profile[None, :]
    if inst.asset_class == "crypto":
        # About $400k traded a minute, in coins; trades scale with it.
        v = np.maximum(np.round(400_000.0 / inst.level * noise, 6), 10.0**-6)
        n = np.maximum(np.round(60.0 * noise * np.exp(0.2 * streams.normal("trades", minute_index))), 1)
        return v, n.astype(np.int64)
    scale = 20_000.0 if inst.asset_class == "index" else 120.0
    v = np.maximum(np.round(scale * noise), 1.0)
    # Forex volume is a tick count, which is also the number of "trades" the API reports.
    n = v if inst.asset_class != "index" else np.maximum(np.round(v / 50.0), 1.0)
    return v, n.astype(np.int64)


def _dropped(inst: Instrument, streams: HashStreams, minute_index: np.ndarray) -> np.ndarray:
    rule = _DROP_RULES.get(inst.asset_class)
    if rule is None:
        return np.zeros(minute_index.shape, dtype=bool)
    first, end, fraction = rule
    minute_of_day = minute_index % MINUTES_PER_DAY
    thin = (minute_of_day >= first) & (minute_of_day < end)
    return thin & (streams.uniform("drop", minute_index) < fraction)


class _DayCache:
    """LRU of generated days shared by every server in the process (the bars are pure functions)."""

    def __init__(self, maxsize: int) -> None:
        self._maxsize = maxsize
        self._data: OrderedDict[tuple, Bars] = OrderedDict()
        self._lock = threading.Lock()

    def get_many(self, keys: list[tuple]) -> dict[tuple, Bars]:
        with self._lock:
            found = {}
            for key in keys:
                bars = self._data.get(key)
                if bars is not None:
                    self._data.move_to_end(key)
                    found[key] = bars
            return found

    def put(self, key: tuple, bars: Bars) -> None:
        with self._lock:
            self._data[key] = bars
            self._data.move_to_end(key)
            while len(self._data) > self._maxsize:
                self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


_CACHE = _DayCache(_CACHE_DAYS)


def minute_bars(inst: Instrument, start_ms: int, end_ms: int, seed: int = 0, revision: int = 0) -> Bars:
    """All generated minute bars with start_ms <= t < end_ms (nothing before the epoch)."""
    start_ms = max(int(start_ms), 0)
    end_ms = int(end_ms)
    if end_ms <= start_ms:
        return Bars.empty()
    days = list(range(start_ms // DAY_MS, (end_ms - 1) // DAY_MS + 1))
    keys = [(inst, d, seed, revision) for d in days]
    found = _CACHE.get_many(keys)
    missing = [d for d, key in zip(days, keys, strict=True) if key not in found]
    for i in range(0, len(missing), _BATCH_DAYS):
        batch = missing[i : i + _BATCH_DAYS]
        for d, bars in zip(batch, generate_days(inst, np.array(batch), seed, revision), strict=True):
            key = (inst, d, seed, revision)
            found[key] = bars
            _CACHE.put(key, bars)
    merged = Bars.concat([found[key] for key in keys])
    if start_ms % DAY_MS == 0 and end_ms % DAY_MS == 0:
        return merged
    return merged.between(start_ms, end_ms)
