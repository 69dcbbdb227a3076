"""Thresholds of the quality checks, gap detection and the verify report, read from the environment.

They are tuning knobs, not secrets: one place reads them so that the asset checks, the gap jobs,
the CLI and the report agree, and a bad value fails with the variable named.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

import pandas as pd

from massive_pipeline.core.timeframes import Timeframe, UnknownTimeframeError, parse_timeframe

# DESIGN §1.4: how far behind the market a series may be, and how much history it must hold.
FRESHNESS_LIMITS: Mapping[Timeframe, pd.Timedelta] = {
    Timeframe.M1: pd.Timedelta(minutes=6),
    Timeframe.M5: pd.Timedelta(minutes=30),
    Timeframe.M15: pd.Timedelta(hours=1),
    Timeframe.M30: pd.Timedelta(hours=1),
    Timeframe.H1: pd.Timedelta(hours=2),
    Timeframe.H4: pd.Timedelta(hours=5),
    Timeframe.D1: pd.Timedelta(hours=25),
    Timeframe.W1: pd.Timedelta(days=7),
    Timeframe.D1_NY: pd.Timedelta(hours=25),
    Timeframe.W1_NY: pd.Timedelta(days=7),
}
REQUIRED_HISTORY_DAYS: Mapping[Timeframe, int] = {
    Timeframe.M1: 7,
    Timeframe.M5: 14,
    Timeframe.M15: 30,
    Timeframe.M30: 30,
    Timeframe.H1: 90,
    Timeframe.H4: 180,
    Timeframe.D1: 365,
    Timeframe.W1: 730,
    Timeframe.D1_NY: 365,
    Timeframe.W1_NY: 730,
}

ENV_GAP_MIN_BARS = "MASSIVE_GAP_MIN_BARS"
ENV_COMPLETE_MIN = "MASSIVE_QUALITY_COMPLETE_MIN"
ENV_SPIKE_K = "MASSIVE_QUALITY_SPIKE_K"
ENV_SPIKE_WINDOW = "MASSIVE_QUALITY_SPIKE_WINDOW"
ENV_STALE_BARS = "MASSIVE_QUALITY_STALE_BARS"

DEFAULT_GAP_MIN_BARS: Mapping[Timeframe, int] = {tf: (3 if tf is Timeframe.M1 else 1) for tf in Timeframe}


class QualitySettingsError(ValueError):
    """A quality setting with a value it cannot take; the message names the variable."""


@dataclass(frozen=True)
class QualitySettings:
    """`gap_min_bars`: shortest run of missing bars recorded as a gap, per timeframe.
    `complete_min`: share of expected bars below which the `complete` check warns.
    `spike_k`, `spike_window`: a bar is a spike when its log-return and the next one both lie
    beyond k robust standard deviations (1.4826 × rolling MAD over `spike_window` returns) in
    opposite directions. `stale_bars`: identical closes in a row that count as stale prices.
    """

    gap_min_bars: Mapping[Timeframe, int] = field(default_factory=lambda: dict(DEFAULT_GAP_MIN_BARS))
    complete_min: float = 0.95
    spike_k: float = 8.0
    spike_window: int = 61
    stale_bars: int = 15

    def min_gap_bars(self, timeframe: Timeframe) -> int:
        return int(self.gap_min_bars.get(timeframe, DEFAULT_GAP_MIN_BARS[timeframe]))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> QualitySettings:
        env = os.environ if environ is None else environ
        return cls(
            gap_min_bars=parse_gap_min_bars(env.get(ENV_GAP_MIN_BARS, "")),
            complete_min=_number(env, ENV_COMPLETE_MIN, 0.95, low=0.0, high=1.0),
            spike_k=_number(env, ENV_SPIKE_K, 8.0, low=1.0),
            spike_window=int(_number(env, ENV_SPIKE_WINDOW, 61, low=5, integer=True)),
            stale_bars=int(_number(env, ENV_STALE_BARS, 15, low=2, integer=True)),
        )


def parse_gap_min_bars(text: str) -> dict[Timeframe, int]:
    """`"5"` sets M1 (the timeframe gaps are usually found in); `"M1=5,H1=2"` sets each named one."""
    out = dict(DEFAULT_GAP_MIN_BARS)
    text = text.strip()
    if not text:
        return out
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        name, sep, value = part.partition("=")
        if not sep:
            name, value = "M1", name
        try:
            tf = parse_timeframe(name)
        except UnknownTimeframeError as exc:
            raise QualitySettingsError(f"{ENV_GAP_MIN_BARS}: {exc}") from None
        out[tf] = _positive_int(value, f"{ENV_GAP_MIN_BARS} ({tf.value})")
    return out


def _positive_int(value: str, what: str) -> int:
    try:
        number = int(value.strip())
    except ValueError:
        raise QualitySettingsError(f"{what} must be a positive integer, got {value!r}") from None
    if number < 1:
        raise QualitySettingsError(f"{what} must be a positive integer, got {value!r}")
    return number


def _number(
    env: Mapping[str, str], name: str, default: float, *, low: float, high: float | None = None, integer: bool = False
) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        kind = "an integer" if integer else "a number"
        raise QualitySettingsError(f"{name} must be {kind}, got {raw!r}") from None
    if value != value or value < low or (high is not None and value > high):
        bounds = f"between {low:g} and {high:g}" if high is not None else f"at least {low:g}"
        raise QualitySettingsError(f"{name} must be {bounds}, got {raw!r}")
    return value
