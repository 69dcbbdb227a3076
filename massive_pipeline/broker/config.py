"""The brokers the code location compares: a small YAML file at `MASSIVE_BROKERS`.

```yaml
brokers:
  - name: icmarkets              # lower-case letters, digits, _ (asset keys brokers/<name>/<symbol>)
    folder: /data/exports/icm    # where the terminal's exports are dropped
    symbols: [XAUUSD, EURUSD]    # catalog symbols compared for this broker
    timeframes: [M15, H1]        # optional (default M15, H1): the candle assets the comparison reads
    offset: auto                 # optional: auto (default), new_york_close or a fixed +03:00
    threshold_pips: 0.5          # optional: recommend a price offset above this many pips
```

Validated when loaded, like the catalog: a typo fails at start-up naming the file, the broker and
the field, not later as a sensor error.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from massive_pipeline.broker.compare import DEFAULT_THRESHOLD_PIPS
from massive_pipeline.broker.offset import OffsetRule, parse_offset
from massive_pipeline.core.catalog import Catalog, UnknownSymbolError
from massive_pipeline.core.timeframes import Timeframe, UnknownTimeframeError, parse_timeframe
from massive_pipeline.store.broker_tables import check_broker

BROKERS_ENV = "MASSIVE_BROKERS"
DEFAULT_TIMEFRAMES: tuple[Timeframe, ...] = (Timeframe.M15, Timeframe.H1)
_FIELDS = ("name", "folder", "symbols", "timeframes", "offset", "threshold_pips")


class BrokerConfigError(ValueError):
    """A brokers file that cannot be used; the message names the file, the entry and the field."""


@dataclass(frozen=True)
class BrokerSpec:
    name: str
    folder: Path
    symbols: tuple[str, ...]
    timeframes: tuple[Timeframe, ...] = DEFAULT_TIMEFRAMES
    offset: OffsetRule | None = None  # None: detect
    threshold_pips: float = DEFAULT_THRESHOLD_PIPS

    @property
    def offset_label(self) -> str:
        return "auto" if self.offset is None else self.offset.label


def _entry(raw: Any, catalog: Catalog) -> BrokerSpec:
    if not isinstance(raw, Mapping):
        raise ValueError(f"must be a mapping of field: value, got {raw!r}")
    unknown = [k for k in raw if k not in _FIELDS]
    if unknown:
        raise ValueError(f"field {unknown[0]!r} is unknown; known fields: {', '.join(_FIELDS)}")
    for required in ("name", "folder", "symbols"):
        if raw.get(required) in (None, "", []):
            raise ValueError(f"field {required!r} is missing (required)")
    name = check_broker(raw["name"])
    symbols = raw["symbols"]
    if not isinstance(symbols, list):
        raise ValueError(f"field 'symbols' must be a list such as [XAUUSD], got {symbols!r}")
    try:
        specs = tuple(dict.fromkeys(catalog.get(str(s)).symbol for s in symbols))
    except UnknownSymbolError as exc:
        raise ValueError(f"field 'symbols': {exc}") from None
    timeframes = DEFAULT_TIMEFRAMES
    if "timeframes" in raw:
        try:
            timeframes = tuple(dict.fromkeys(parse_timeframe(str(t)) for t in raw["timeframes"]))
        except (UnknownTimeframeError, TypeError) as exc:
            raise ValueError(f"field 'timeframes': {exc}") from None
    try:
        offset = parse_offset(str(raw.get("offset", "auto")))
    except ValueError as exc:
        raise ValueError(f"field 'offset': {exc}") from None
    threshold = raw.get("threshold_pips", DEFAULT_THRESHOLD_PIPS)
    if isinstance(threshold, bool) or not isinstance(threshold, int | float) or threshold < 0:
        raise ValueError(f"field 'threshold_pips' must be a number >= 0, got {threshold!r}")
    return BrokerSpec(
        name, Path(str(raw["folder"])).expanduser(), specs, timeframes, offset, float(threshold)
    )


def parse_brokers(text: str, catalog: Catalog, source: str = "<string>") -> tuple[BrokerSpec, ...]:
    """Validate brokers YAML (`brokers: [...]`); an empty list is allowed (no broker assets)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise BrokerConfigError(f"brokers file {source}: not valid YAML: {exc}") from None
    if (
        not isinstance(data, Mapping)
        or set(data) != {"brokers"}
        or not isinstance(data["brokers"], list | None)
    ):
        raise BrokerConfigError(f"brokers file {source}: expected one top-level key 'brokers:' with a list")
    out: list[BrokerSpec] = []
    for number, raw in enumerate(data["brokers"] or [], start=1):
        label = raw.get("name") if isinstance(raw, Mapping) else None
        try:
            spec = _entry(raw, catalog)
        except ValueError as exc:
            raise BrokerConfigError(f"brokers file {source} entry #{number} ({label!r}): {exc}") from None
        if any(b.name == spec.name for b in out):
            raise BrokerConfigError(
                f"brokers file {source} entry #{number}: broker {spec.name!r} is declared twice"
            )
        out.append(spec)
    return tuple(out)


def load_brokers(catalog: Catalog, path: str | os.PathLike[str] | None = None) -> tuple[BrokerSpec, ...]:
    """The brokers at `path`, else at $MASSIVE_BROKERS; none when neither is set."""
    if path is None:
        path = os.environ.get(BROKERS_ENV, "").strip() or None
    if path is None:
        return ()
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise BrokerConfigError(
            f"brokers file {file} ({BROKERS_ENV}): cannot be read ({exc.strerror or exc})"
        ) from None
    return parse_brokers(text, catalog, str(file))
