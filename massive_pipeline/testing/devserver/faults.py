"""Switchable misbehaviour of the development server.

The reliability of the client, the rate limiter and the assets is only proven against the failures
the real API shows (5xx storms, HTML proxy pages, 429s with and without `Retry-After`, truncated
bodies, corrupt rows, holes the provider cannot fill, a `next_url` that never advances). Each of
them is a field here so that a test can turn exactly one on, by Python or over HTTP
(`POST /_dev/faults` with a JSON object of these fields).

"next N" counters count down on API requests (not on admin requests) and each request consumes at
most one of them, in this order: `throttle_429_next`, `server_errors_next`, `html_504_next`,
`malformed_json_next`, `unexpected_shape_next`. Two more count aggregates requests only:
`empty_pages_next` (that many answers are a page without results that still carries a `next_url`)
and `revise_skip_fetches` (that many *fetches*, i.e. first pages, are served before `revised_bars`
take effect; the later pages of a fetch follow its first page).

The real API's own behaviours (not faults of a broken server, but what the bundled server does
not do by default because it follows the pipeline's conventions):
- `empty_answer`: `"missing"`, `"null"` or `"list"` answers every aggregates request with
  `status: OK`, `resultsCount: 0` and `results` absent, `null` or `[]`, whatever data the range has;
- `short_answer_fraction`: each aggregates page keeps only the first fraction of its bars (0.5: the
  first half) and announces no further page;
- `delayed_status`: aggregates and snapshot answers carry `status: "DELAYED"`;
- `revised_bars`: served bars starting at these Unix ms come with changed OHLCV (prices x 1.001,
  volume + 1), as after a provider recalculation;
- `problem_fields`: `[t_ms, field, kind]` triples; the served row starting at t_ms gets `field`
  (`t`, `o`, `h`, `l`, `c`, `v`) as `null`, as the text `"abc"` (`"text"`) or left out (`"missing"`);
- `snapshots_not_entitled`: every snapshot endpoint answers 403 `NOT_AUTHORIZED` (the free
  currencies plan), aggregates stay served;
- `bar_stamps`: `"massive"` (default) cuts and stamps day and week bars as the real API does -
  forex and metals on UTC days, crypto and indices on US/Eastern days, weeks from Sunday - while
  `"utc"` uses the pipeline's grid (UTC days, weeks from Monday 00:00 UTC).
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass, field
from typing import Any

_COUNTERS = (
    "server_errors_next",
    "html_504_next",
    "throttle_429_next",
    "malformed_json_next",
    "unexpected_shape_next",
    "empty_pages_next",
    "revise_skip_fetches",
)
EMPTY_ANSWERS = ("", "missing", "null", "list")
BAR_STAMPS = ("massive", "utc")
PROBLEM_KINDS = ("null", "text", "missing")
PROBLEM_FIELDS = ("t", "o", "h", "l", "c", "v")


class FaultConfigError(ValueError):
    """A fault field that does not exist or a value it cannot take."""


@dataclass
class FaultConfig:
    """All faults off by default.

    `retry_after_seconds` is the delay announced during a `throttle_429_next` storm. HTTP's
    `Retry-After` carries whole seconds, so a fractional value is sent rounded up (0.2 -> "1",
    0 -> "0"); `None` sends "1". No header at all is sent when `send_retry_after` is False, which
    also applies to the 429s of the server's own rate limit.
    """

    server_errors_next: int = 0
    html_504_next: int = 0
    throttle_429_next: int = 0
    retry_after_seconds: float | None = None
    send_retry_after: bool = True
    malformed_json_next: int = 0
    unexpected_shape_next: int = 0
    bad_rows: list[int] = field(default_factory=list)
    bad_rows_fraction: float = 0.0
    spikes: list[int] = field(default_factory=list)
    holes: list[tuple[int, int]] = field(default_factory=list)
    stuck_next_url: bool = False
    delay_seconds: float = 0.0
    revision: int = 0
    not_entitled: bool = False
    empty_answer: str = ""
    short_answer_fraction: float = 0.0
    delayed_status: bool = False
    empty_pages_next: int = 0
    revised_bars: list[int] = field(default_factory=list)
    revise_skip_fetches: int = 0
    problem_fields: list[tuple[int, str, str]] = field(default_factory=list)
    snapshots_not_entitled: bool = False
    bar_stamps: str = "massive"

    def update(self, **changes: Any) -> None:
        """Validate every change first, then apply them all, so a bad field changes nothing."""
        clean = {name: _validate(name, value) for name, value in changes.items()}
        for name, value in clean.items():
            setattr(self, name, value)

    def copy(self) -> FaultConfig:
        return dataclasses.replace(
            self, bad_rows=list(self.bad_rows), spikes=list(self.spikes), holes=list(self.holes),
            revised_bars=list(self.revised_bars), problem_fields=list(self.problem_fields),
        )

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["holes"] = [list(h) for h in self.holes]
        out["problem_fields"] = [list(p) for p in self.problem_fields]
        return out

    def retry_after_header(self) -> str:
        if self.retry_after_seconds is None:
            return "1"
        return str(math.ceil(self.retry_after_seconds))


FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(FaultConfig))


def _validate(name: str, value: Any) -> Any:
    if name not in FIELD_NAMES:
        raise FaultConfigError(f"unknown fault {name!r}; known faults: {', '.join(FIELD_NAMES)}")
    if name in _COUNTERS or name == "revision":
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
            raise FaultConfigError(f"fault {name} must be a non-negative integer, got {value!r}")
        return int(value)
    if name in ("send_retry_after", "stuck_next_url", "not_entitled", "delayed_status", "snapshots_not_entitled"):
        if not isinstance(value, bool):
            raise FaultConfigError(f"fault {name} must be true or false, got {value!r}")
        return value
    if name == "retry_after_seconds":
        if value is None:
            return None
        return _non_negative_number(name, value)
    if name == "delay_seconds":
        return _non_negative_number(name, value)
    if name in ("empty_answer", "bar_stamps"):
        allowed = EMPTY_ANSWERS if name == "empty_answer" else BAR_STAMPS
        if value not in allowed:
            raise FaultConfigError(f"fault {name} must be one of {', '.join(map(repr, allowed))}, got {value!r}")
        return value
    if name == "problem_fields":
        return [_problem(item) for item in _sequence(name, value)]
    if name in ("bad_rows_fraction", "short_answer_fraction"):
        number = _non_negative_number(name, value)
        if number > 1:
            raise FaultConfigError(f"fault {name} must be between 0 and 1, got {value!r}")
        return number
    if name in ("bad_rows", "spikes", "revised_bars"):
        return [_ms(name, v) for v in _sequence(name, value)]
    # holes
    holes = []
    for item in _sequence(name, value):
        pair = _sequence(name, item)
        if len(pair) != 2:
            raise FaultConfigError(f"fault holes takes [start_ms, end_ms) pairs, got {item!r}")
        start, end = _ms(name, pair[0]), _ms(name, pair[1])
        if end <= start:
            raise FaultConfigError(f"fault holes: end must be after start, got {item!r}")
        holes.append((start, end))
    return holes


def _problem(item: Any) -> tuple[int, str, str]:
    triple = _sequence("problem_fields", item)
    if len(triple) != 3 or triple[1] not in PROBLEM_FIELDS or triple[2] not in PROBLEM_KINDS:
        raise FaultConfigError(
            f"fault problem_fields takes [t_ms, field, kind] with field one of {', '.join(PROBLEM_FIELDS)} "
            f"and kind one of {', '.join(PROBLEM_KINDS)}, got {item!r}")
    return _ms("problem_fields", triple[0]), triple[1], triple[2]


def _non_negative_number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value < 0:
        raise FaultConfigError(f"fault {name} must be a non-negative number, got {value!r}")
    return float(value)


def _sequence(name: str, value: Any) -> list[Any]:
    if isinstance(value, str | bytes) or not isinstance(value, list | tuple | set | frozenset):
        raise FaultConfigError(f"fault {name} must be a list, got {value!r}")
    return list(value)


def _ms(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise FaultConfigError(f"fault {name} takes Unix milliseconds as integers, got {value!r}")
    return int(value)
