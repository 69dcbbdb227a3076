"""The broker's server-time offset: stated by the user, or found from the bars themselves.

MT4/MT5 brokers stamp bars in their *server time*. Most use the New-York-close rule: UTC+2
while New York is on standard time and UTC+3 while it is on daylight saving time, so that
server midnight is 17:00 in New York all year (server time = New York wall time + 7 h); some use
another fixed offset. `OffsetRule` is one of those; `detect_offset` tries every fixed offset
from −12:00 to +14:00 in 15-minute steps and the New-York-close rule on the data.

**The score** of a candidate is the Pearson correlation of log returns: the broker's bars are put
on UTC by the candidate, matched to the store's bars by exact bar start, and the close-to-close
returns between consecutive matched bars are correlated with the store's over the same pairs.
Returns, unlike prices, do not depend on a broker's constant price offset, and prices a few
bars apart are almost uncorrelated, so a wrong offset scores near 0 and the right one near 1.
A fixed +3 h against a New-York-close broker is right in summer only and scores in between.
Candidates matching fewer than `MIN_MATCHED` bars are not scored.

**The confidence** is the margin of the best candidate over the next one, the best-scoring
candidate that puts the bars differently, measured on the bars the two place differently: the
best's return correlation there minus the runner-up's (a runner-up matching fewer than
`MIN_MATCHED` of them counts 0). So it is a correlation difference, 0 to 2: about 1 means the
runner-up shows no correlation where the two disagree; below 0.2 the detection should not be
trusted and the offset be stated. Measured on the whole file instead, the margin of the
New-York-close rule over fixed +03:00 would only say how much of the file lies in US winter.
Candidates that place every bar of the file at the same UTC instant cannot be told apart by any
method: for a file entirely within US summer time, fixed +03:00 and New-York-close coincide.
Those are listed in `ambiguous_with`; the New-York-close rule, the usual broker convention, is
preferred among them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

NEW_YORK = ZoneInfo("America/New_York")
STEP_MINUTES = 15
MIN_OFFSET_MINUTES = -12 * 60
MAX_OFFSET_MINUTES = 14 * 60
MIN_MATCHED = 30
NEW_YORK_CLOSE = "new_york_close"
# server time = New York wall time + 7 h: UTC+3 in US summer, UTC+2 in US winter
_NY_SUMMER_MINUTES, _NY_WINTER_MINUTES = 180, 120
_MINUTE_NS = 60 * 10**9
_TIE = 1e-9
_OFFSET_RE = re.compile(r"^(?:UTC)?([+-])(\d{1,2})(?::?(\d{2}))?$", re.IGNORECASE)

RuleKind = Literal["fixed", "new_york_close"]


class OffsetNotFoundError(ValueError):
    """No candidate offset lines the broker's bars up with the store's."""


@dataclass(frozen=True)
class OffsetRule:
    """How the broker's server time relates to UTC; `minutes` is broker − UTC (the summer value
    for the New-York-close rule, 180)."""

    kind: RuleKind
    minutes: int

    @classmethod
    def fixed(cls, minutes: int) -> OffsetRule:
        return cls("fixed", int(minutes))

    @classmethod
    def new_york_close(cls) -> OffsetRule:
        return cls("new_york_close", _NY_SUMMER_MINUTES)

    @property
    def label(self) -> str:
        """`+03:00`, `-05:30` or `new_york_close`, as `--offset` accepts it back."""
        if self.kind == "new_york_close":
            return NEW_YORK_CLOSE
        sign = "-" if self.minutes < 0 else "+"
        hours, minutes = divmod(abs(self.minutes), 60)
        return f"{sign}{hours:02d}:{minutes:02d}"

    @property
    def description(self) -> str:
        if self.kind == "new_york_close":
            return "new_york_close (UTC+2 outside US daylight saving time, UTC+3 within)"
        return f"fixed UTC{self.label}"

    def server_to_utc(
        self, server_times: pd.Series | pd.DatetimeIndex | Sequence[pd.Timestamp]
    ) -> pd.DatetimeIndex:
        """The UTC instants of naive server-time stamps.

        For the New-York-close rule a stamp s is s − 3 h when New York is on daylight saving time
        at s − 3 h, else s − 2 h. Only the hour after each US change is in doubt (Sunday 09:00
        server time, when forex and metals do not trade): the repeated hour in November is read
        as summer time, the skipped one in March as winter time.
        """
        naive = pd.DatetimeIndex(server_times).as_unit("ns")
        if naive.tz is not None:
            raise ValueError("server times must be naive (the broker's clock, without a zone)")
        if self.kind == "fixed":
            return (naive - pd.Timedelta(minutes=self.minutes)).tz_localize("UTC")
        summer = (naive - pd.Timedelta(minutes=_NY_SUMMER_MINUTES)).tz_localize("UTC")
        winter = (naive - pd.Timedelta(minutes=_NY_WINTER_MINUTES)).tz_localize("UTC")
        in_summer = new_york_offset_minutes(summer) == -240
        return pd.DatetimeIndex(np.where(in_summer, summer.asi8, winter.asi8)).tz_localize("UTC")


def new_york_offset_minutes(utc: pd.DatetimeIndex) -> np.ndarray:
    """New York's UTC offset in minutes (−300 or −240) at each UTC instant."""
    local = utc.tz_convert(NEW_YORK).tz_localize(None)
    return ((local.asi8 - utc.tz_localize(None).asi8) // _MINUTE_NS).astype(np.int64)


def parse_offset(text: str) -> OffsetRule | None:
    """`auto` → None (detect); `new_york_close`; a fixed offset `+03:00`, `-0530`, `+3`, `UTC+2`, `0`."""
    value = str(text).strip()
    if value.lower() == "auto":
        return None
    if value.lower().replace("-", "_") in (NEW_YORK_CLOSE, "ny_close", "nyclose"):
        return OffsetRule.new_york_close()
    if value in ("0", "00:00", "+00:00", "-00:00", "UTC", "utc"):
        return OffsetRule.fixed(0)
    match = _OFFSET_RE.match(value)
    if not match or int(match[3] or 0) >= 60:
        raise ValueError(f"offset {text!r} is not auto, new_york_close or a UTC offset such as +03:00")
    minutes = (int(match[2]) * 60 + int(match[3] or 0)) * (-1 if match[1] == "-" else 1)
    if not MIN_OFFSET_MINUTES <= minutes <= MAX_OFFSET_MINUTES:
        raise ValueError(f"offset {text!r} is outside -12:00 .. +14:00")
    return OffsetRule.fixed(minutes)


def candidate_rules() -> list[OffsetRule]:
    """Every fixed offset from −12:00 to +14:00 in 15-minute steps, then the New-York-close rule."""
    fixed = [OffsetRule.fixed(m) for m in range(MIN_OFFSET_MINUTES, MAX_OFFSET_MINUTES + 1, STEP_MINUTES)]
    return [*fixed, OffsetRule.new_york_close()]


@dataclass(frozen=True)
class CandidateScore:
    rule: OffsetRule
    matched: int
    score: float  # NaN: fewer than MIN_MATCHED bars matched


@dataclass(frozen=True)
class OffsetFinding:
    """The offset used for a comparison: stated, or detected with its evidence."""

    rule: OffsetRule
    source: Literal["stated", "detected"]
    score: float | None = None
    confidence: float | None = None
    runner_up: CandidateScore | None = None
    ambiguous_with: tuple[str, ...] = ()
    candidates: tuple[CandidateScore, ...] = ()

    def summary(self) -> str:
        if self.source == "stated":
            return f"{self.rule.description}, stated"
        text = f"{self.rule.description}, detected: return correlation {self.score:.3f}, confidence {self.confidence:.3f}"
        if self.runner_up is not None:
            text += f" (next: {self.runner_up.rule.label} at {self.runner_up.score:.3f})"
        if self.ambiguous_with:
            text += f"; indistinguishable on these bars from {', '.join(self.ambiguous_with)}"
        return text


def stated(rule: OffsetRule) -> OffsetFinding:
    return OffsetFinding(rule=rule, source="stated")


def _score(
    utc_ns: np.ndarray,
    broker_close: np.ndarray,
    store_ns: np.ndarray,
    store_close: np.ndarray,
    min_matched: int,
) -> tuple[int, float]:
    """(matched bars, return correlation) of one placement of the broker's bars."""
    order = np.argsort(utc_ns, kind="stable")
    placed, close = utc_ns[order], broker_close[order]
    pos = np.searchsorted(store_ns, placed)
    pos_clipped = np.minimum(pos, len(store_ns) - 1)
    hit = (pos < len(store_ns)) & (store_ns[pos_clipped] == placed)
    matched = int(hit.sum())
    if matched < min_matched:
        return matched, math.nan
    rb = np.diff(np.log(close[hit]))
    rs = np.diff(np.log(store_close[pos_clipped[hit]]))
    if rb.std() == 0 or rs.std() == 0:
        return matched, math.nan
    return matched, float(np.corrcoef(rb, rs)[0, 1])


def _margin(
    best_ns: np.ndarray,
    other_ns: np.ndarray,
    close: np.ndarray,
    store_ns: np.ndarray,
    store_close: np.ndarray,
    min_matched: int,
    fallback: float,
) -> float:
    """Best minus runner-up on the bars they place differently (module docstring)."""
    _, best = _score(best_ns, close, store_ns, store_close, min_matched)
    if math.isnan(best):
        return fallback  # too few such bars to judge them apart: the whole file's margin
    _, other = _score(other_ns, close, store_ns, store_close, min_matched)
    return best - (0.0 if math.isnan(other) else other)


def detect_offset(
    server_times: pd.Series,
    broker_close: pd.Series,
    store_ts: pd.Series,
    store_close: pd.Series,
    *,
    min_matched: int = MIN_MATCHED,
    what: str = "the store's bars",
) -> OffsetFinding:
    """Score every candidate rule (module docstring) and return the best with its confidence."""
    store_order = np.argsort(pd.DatetimeIndex(store_ts).asi8, kind="stable")
    store_ns = pd.DatetimeIndex(store_ts).asi8[store_order]
    s_close = np.asarray(store_close, dtype="float64")[store_order]
    b_close = np.asarray(broker_close, dtype="float64")
    placements: dict[OffsetRule, np.ndarray] = {}
    scores: list[CandidateScore] = []
    for rule in candidate_rules():
        utc_ns = rule.server_to_utc(server_times).asi8
        matched, score = (
            _score(utc_ns, b_close, store_ns, s_close, min_matched) if len(store_ns) else (0, math.nan)
        )
        placements[rule] = utc_ns
        scores.append(CandidateScore(rule, matched, score))
    eligible = [c for c in scores if not math.isnan(c.score)]
    if not eligible:
        most = max(scores, key=lambda c: c.matched)
        raise OffsetNotFoundError(
            f"no offset from -12:00 to +14:00 (nor new_york_close) puts {min_matched} of the broker's "
            f"{len(b_close)} bars on {what} ({len(store_ns)} bars; at most {most.matched} matched, "
            f"with {most.rule.label}): store the period first, or state the offset with --offset"
        )
    best_score = max(c.score for c in eligible)
    # equal within rounding: day bars matched exactly on part of the file (fixed +02:00 on a
    # New-York-close broker's winter days, whose summer days land on no store bar) score 1 like the
    # rule matching all of them; the candidate placing more bars on the store is the better evidence
    tied = [c for c in eligible if c.score >= best_score - _TIE]
    best = max(tied, key=lambda c: (c.matched, c.rule.kind == "new_york_close"))
    same = {c.rule for c in eligible if np.array_equal(placements[c.rule], placements[best.rule])}
    others = [c for c in eligible if c.rule not in same]
    runner_up = max(others, key=lambda c: c.score) if others else None
    confidence = best.score
    if runner_up is not None:
        differ = placements[best.rule] != placements[runner_up.rule]
        confidence = _margin(
            placements[best.rule][differ],
            placements[runner_up.rule][differ],
            b_close[differ],
            store_ns,
            s_close,
            min_matched,
            fallback=best.score - runner_up.score,
        )
    return OffsetFinding(
        rule=best.rule,
        source="detected",
        score=best.score,
        confidence=confidence,
        runner_up=runner_up,
        ambiguous_with=tuple(r.label for r in sorted(same - {best.rule}, key=lambda r: (r.kind, r.minutes))),
        candidates=tuple(scores),
    )
