"""Which symbol and timeframe an export file holds, from its name as the terminals write it.

MT4's History Center names an export `<SYMBOL><period minutes>.csv`: `XAUUSD15.csv`,
`EURUSD60.csv`, `EURUSD1440.csv`. MT5's "Export bars" names it `<SYMBOL>_<TF>_<from>_<to>.csv`:
`XAUUSD_M15_202501020000_202512311745.csv` (or `.tsv`, `.txt`). The symbol must be the catalog's
(a broker suffix such as `XAUUSD.a` or `XAUUSDm` must be renamed away); anything else in the
folder is ignored by the sensor, which says so in its tick log.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from massive_pipeline.core.timeframes import Timeframe, UnknownTimeframeError, parse_timeframe

EXPORT_SUFFIXES = (".csv", ".tsv", ".txt")
# a period in minutes names a UTC timeframe (D1_NY and W1_NY share D1 and W1's nominal minutes)
_MT4_PERIODS = {tf.minutes: tf for tf in Timeframe if not tf.is_new_york}
_MT4_RE = re.compile(r"^([A-Z0-9]{2,12}?)(1|5|15|30|60|240|1440|10080)$")
_MT5_RE = re.compile(r"^([A-Z0-9]{2,12})_([A-Z]{1,2}\d{1,2})(?:_.*)?$")


@dataclass(frozen=True)
class ExportName:
    symbol: str
    timeframe: Timeframe


def parse_export_name(path: str | Path, symbols: Collection[str] = ()) -> ExportName | None:
    """The symbol and timeframe the file name announces, or None when it follows neither convention.

    An MT4 name of a symbol ending in digits is ambiguous (`DAX4015`: DAX40 M15 or DAX401 M5); a
    split whose symbol is in `symbols` (the broker's) wins, else the shortest symbol.
    """
    file = Path(path)
    if file.suffix.lower() not in EXPORT_SUFFIXES:
        return None
    stem = file.stem.upper()
    mt5 = _MT5_RE.match(stem)
    if mt5:
        try:
            return ExportName(mt5[1], parse_timeframe(mt5[2]))
        except UnknownTimeframeError:
            return None
    for symbol in symbols:
        period = stem[len(symbol) :]
        if stem.startswith(symbol.upper()) and period.isdigit() and int(period) in _MT4_PERIODS:
            return ExportName(symbol.upper(), _MT4_PERIODS[int(period)])
    mt4 = _MT4_RE.match(stem)
    if mt4:
        return ExportName(mt4[1], _MT4_PERIODS[int(mt4[2])])
    return None
