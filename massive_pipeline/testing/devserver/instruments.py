"""What the development server knows about a ticker: asset class, calendar, price level, volatility.

The symbol catalog ($MASSIVE_CATALOG, then the packaged one) decides the asset class and the
calendar where it lists the ticker; anything else is inferred from the prefix (`C:XAU…`/`C:XAG…` metals, other `C:` forex, `X:` crypto, `I:`
indices), so that a test can ask for any well-formed ticker and get plausible bars.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import math
import os
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

log = logging.getLogger(__name__)

TICKER_RE = re.compile(r"^[CXI]:[A-Z0-9]+$")

# Typical price levels, so that generated bars look like the market they name.
_LEVELS: dict[str, float] = {
    # forex
    "C:EURUSD": 1.08, "C:GBPUSD": 1.27, "C:USDJPY": 150.0, "C:USDCHF": 0.89, "C:AUDUSD": 0.66,
    "C:USDCAD": 1.36, "C:NZDUSD": 0.61, "C:EURGBP": 0.85, "C:EURJPY": 162.0, "C:GBPJPY": 190.0,
    "C:EURCHF": 0.96, "C:EURAUD": 1.64, "C:EURCAD": 1.47, "C:EURNZD": 1.78, "C:GBPCHF": 1.13,
    "C:GBPAUD": 1.92, "C:GBPCAD": 1.73, "C:GBPNZD": 2.08, "C:AUDJPY": 99.0, "C:AUDNZD": 1.09,
    "C:AUDCAD": 0.90, "C:AUDCHF": 0.59, "C:CADJPY": 110.0, "C:CHFJPY": 168.0, "C:NZDJPY": 91.0,
    "C:CADCHF": 0.65, "C:NZDCAD": 0.83, "C:NZDCHF": 0.54, "C:USDSEK": 10.5, "C:USDNOK": 10.7,
    "C:USDDKK": 6.9, "C:USDMXN": 17.5, "C:USDZAR": 18.5, "C:USDTRY": 32.0, "C:USDSGD": 1.35,
    "C:USDHKD": 7.8, "C:USDCNH": 7.25, "C:USDPLN": 4.0,
    # metals
    "C:XAUUSD": 2400.0, "C:XAGUSD": 30.0, "C:XPTUSD": 950.0, "C:XPDUSD": 1000.0,
    # crypto
    "X:BTCUSD": 60000.0, "X:ETHUSD": 3000.0, "X:SOLUSD": 150.0, "X:XRPUSD": 0.55, "X:ADAUSD": 0.45,
    "X:DOGEUSD": 0.15, "X:LTCUSD": 80.0, "X:BNBUSD": 550.0, "X:DOTUSD": 7.0, "X:AVAXUSD": 35.0,
    "X:LINKUSD": 15.0, "X:BCHUSD": 400.0, "X:MATICUSD": 0.7,
    # indices
    "I:SPX": 5500.0, "I:NDX": 19000.0, "I:DJI": 40000.0, "I:DAX": 18000.0, "I:GDAXI": 18000.0,
    "I:RUT": 2100.0, "I:COMP": 17500.0, "I:VIX": 15.0,
}

# Annualised volatility by ticker, then by asset class.
_VOLS: dict[str, float] = {
    "C:USDJPY": 0.10, "C:EURJPY": 0.10, "C:GBPJPY": 0.11, "C:USDMXN": 0.14, "C:USDZAR": 0.16,
    "C:USDTRY": 0.18, "C:XAUUSD": 0.15, "C:XAGUSD": 0.28, "C:XPTUSD": 0.25, "C:XPDUSD": 0.35,
    "X:BTCUSD": 0.55, "X:ETHUSD": 0.70, "I:VIX": 0.9,
}
_CLASS_VOLS = {"forex": 0.08, "metal": 0.2, "crypto": 0.8, "index": 0.18}
# log10 range of the level of a ticker nobody listed.
_CLASS_LOG_LEVELS = {"forex": (-0.3, 2.2), "metal": (1.0, 3.5), "crypto": (-1.0, 4.0), "index": (3.0, 4.5)}
_CLASS_CALENDARS = {"forex": "forex", "metal": "metals", "crypto": "crypto", "index": "us_equity"}


@dataclass(frozen=True)
class Instrument:
    ticker: str
    asset_class: str
    calendar: str
    level: float
    annual_vol: float

    @property
    def decimals(self) -> int:
        """Price precision: five significant digits before the decimals run out (EURUSD 5, USDJPY 3)."""
        return max(2, 5 - math.floor(math.log10(self.level)))

    @property
    def integer_volume(self) -> bool:
        """Forex and index volumes are tick/contract counts; crypto volumes are coin amounts."""
        return self.asset_class != "crypto"


def stable_hash(*parts: object) -> int:
    """A 64-bit hash that, unlike `hash()`, is the same in every process and on every run."""
    digest = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def infer_asset_class(ticker: str) -> str:
    if ticker.startswith(("C:XAU", "C:XAG", "C:XPT", "C:XPD")):
        return "metal"
    return {"C": "forex", "X": "crypto", "I": "index"}[ticker[0]]


def resolve_instrument(ticker: str) -> Instrument | None:
    """The instrument for a well-formed ticker, or None when the ticker cannot exist."""
    if not TICKER_RE.match(ticker):
        return None
    spec = _catalog_spec(ticker)
    if spec is not None:
        return _instrument(ticker, str(spec.asset_class), str(spec.calendar))
    asset_class = infer_asset_class(ticker)
    return _instrument(ticker, asset_class, _CLASS_CALENDARS[asset_class])


@functools.lru_cache(maxsize=4096)
def _instrument(ticker: str, asset_class: str, calendar: str) -> Instrument:
    level = _LEVELS.get(ticker)
    if level is None:
        lo, hi = _CLASS_LOG_LEVELS.get(asset_class, _CLASS_LOG_LEVELS["forex"])
        frac = stable_hash("level", ticker) / 2**64
        level = float(f"{10 ** (lo + (hi - lo) * frac):.4g}")
    vol = _VOLS.get(ticker, _CLASS_VOLS.get(asset_class, _CLASS_VOLS["forex"]))
    return Instrument(ticker, asset_class, calendar, level, vol)


def _catalog_spec(ticker: str) -> Any:
    """The catalog entry of `ticker`: the $MASSIVE_CATALOG one first, then the packaged one."""
    for catalog in (_env_catalog(), _packaged_catalog()):
        spec = None if catalog is None else catalog.by_ticker(ticker)
        if spec is not None:
            return spec
    return None


def _env_catalog() -> Any:
    # A catalog the user points at may list tickers (and calendars) the packaged one does not.
    # It is re-read when it changes; one that cannot be read is ignored here (the pipeline
    # itself reports it), because the server must keep answering.
    if not os.environ.get("MASSIVE_CATALOG"):
        return None
    try:
        from massive_pipeline.core.catalog import default_catalog

        return default_catalog()
    except Exception as exc:  # noqa: BLE001
        log.debug("dev server: $MASSIVE_CATALOG unusable (%s); using the packaged catalog", exc)
        return None


@functools.cache
def _packaged_catalog() -> Any:
    try:
        from massive_pipeline.core.catalog import PACKAGED_CATALOG, load_catalog

        return load_catalog(str(resources.files("massive_pipeline.core") / PACKAGED_CATALOG))
    except Exception as exc:  # noqa: BLE001
        log.warning("dev server: packaged catalog unavailable (%s); inferring asset classes from tickers", exc)
        return None


def catalog_tickers() -> list[str]:
    """Tickers of the catalog in use (the universe of an unfiltered universal snapshot)."""
    catalog = _env_catalog() or _packaged_catalog()
    if catalog is None:
        return sorted(_LEVELS)
    return sorted({spec.ticker for spec in catalog.symbols})
