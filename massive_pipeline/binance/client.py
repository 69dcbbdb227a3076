"""HTTP client for Binance's public klines endpoint (`GET /api/v3/klines`).

It mirrors the Massive client's contract, so the assets treat both alike:
- every HTTP attempt (first request, later pages, retries) first calls `acquire(weight)`, the shared
  limiter with Binance's own budget, charged the request's weight (`weights.py`), so Binance work
  never spends Massive's requests and a backfill never outruns Binance's per-minute weight;
- the same typed errors (`massive_pipeline.massive.errors`), each message naming the request and
  the symbol: 429 and 418 wait `Retry-After` and retry (a 418 is an IP ban, which Binance hands
  out to clients that ignored a 429, so its wait is honoured however long, up to
  `max_retry_after`, beyond which the client stops at once instead of sleeping for hours);
  5xx, timeouts and broken connections retry with exponential backoff and jitter; a body that is
  not JSON is retried `malformed_retries` times; JSON of the wrong shape fails at once;
- every emitted text goes through a `Redactor` (public market data needs no key, but an echoed
  URL or proxy page must not carry one into a log);
- `X-MBX-USED-WEIGHT-1M`, the server's own count of the IP's weight this minute, is read from
  every answer and reported in the fetch result and the log line of the fetch.

Pagination packs a range into the fewest requests the 1,000-kline limit allows: each request asks
for `min(1000, klines left in the range)` from the cursor, and the next starts one interval after
the last kline returned; a page shorter than asked ends the range (the server had no more). A
30-day M1 range is ⌈43200 / 1000⌉ = 44 requests; a 5-minute refresh is one request of weight 1.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Generator
from dataclasses import asdict, dataclass, field
from typing import Any, cast

import httpx
import pandas as pd

from massive_pipeline.binance.intervals import interval_ms
from massive_pipeline.binance.klines import KlinePage, KlineShapeError, parse_klines
from massive_pipeline.binance.weights import MAX_KLINES, USED_WEIGHT_HEADER, klines_weight
from massive_pipeline.core.catalog import BINANCE_SYMBOL_RE
from massive_pipeline.core.timeutil import to_utc
from massive_pipeline.massive.client import _explicit_timeout, _snippet, retry_after_seconds
from massive_pipeline.massive.errors import (
    MassiveConnectionError,
    MassiveError,
    MassiveNotFoundError,
    MassivePaginationError,
    MassiveRateLimitError,
    MassiveResponseError,
    MassiveServerError,
    MassiveTimeoutError,
)
from massive_pipeline.massive.models import BarStream, FetchResult, empty_bars
from massive_pipeline.massive.ratelimit import settle_ticket
from massive_pipeline.massive.redact import Redactor

DEFAULT_BASE_URL = "https://data-api.binance.vision"
"""Binance's public market-data host (klines without a key); `BINANCE_BASE_URL` overrides it."""
KLINES_PATH = "/api/v3/klines"
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
_INVALID_SYMBOL = -1121


@dataclass
class BinanceStats:
    """Counters since the client was created; `weight` is what the client charged the limiter."""

    requests: int = 0
    pages: int = 0
    retries: int = 0
    throttled_429: int = 0
    banned_418: int = 0
    server_errors: int = 0
    timeouts: int = 0
    connection_errors: int = 0
    malformed: int = 0
    weight: int = 0
    used_weight_1m: int | None = None

    def copy(self) -> BinanceStats:
        return BinanceStats(**asdict(self))


@dataclass
class KlineFetch(FetchResult):
    """A `FetchResult` plus Binance's own facts: the weight charged, the server's used weight, and
    `forming`, how many klines were still open (close time not yet passed) when fetched. Forming
    klines are kept, as the Massive path keeps today's bar: the store marks them not `complete`
    and the next refresh replaces them."""

    weight: int = 0
    used_weight_1m: int | None = None
    forming: int = 0
    forming_ts: list[str] = field(default_factory=list)


@dataclass
class _Answer:
    body: Any
    used_weight: int | None


class BinanceClient:
    """Synchronous, thread-safe client of the klines endpoint; one per process or per run."""

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        *,
        acquire: Callable[[int], object] | None = None,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        max_retries: int = 5,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        max_retry_after: float = 300.0,
        throttle_wait: float = 60.0,
        malformed_retries: int = 2,
        jitter: float = 0.25,
        max_requests: int = 100_000,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], pd.Timestamp] | None = None,
        logger: logging.Logger | None = None,
        transport: httpx.BaseTransport | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise ValueError(f"BinanceClient base_url must start with http:// or https://, got {base_url!r}")
        for name, value in (("max_retries", max_retries), ("malformed_retries", malformed_retries),
                            ("max_requests", max_requests)):
            if isinstance(value, bool) or not isinstance(value, int) or value < (1 if name == "max_requests" else 0):
                raise ValueError(f"BinanceClient {name} must be a non-negative integer, got {value!r}")
        for name, number in (("backoff_base", backoff_base), ("backoff_max", backoff_max),
                             ("max_retry_after", max_retry_after), ("throttle_wait", throttle_wait),
                             ("jitter", jitter)):
            if isinstance(number, bool) or not isinstance(number, (int, float)) or number < 0:
                raise ValueError(f"BinanceClient {name} must be a number >= 0, got {number!r}")
        self.base_url = base_url.rstrip("/")
        self._acquire = acquire
        self._timeout = _explicit_timeout(timeout)
        self.max_retries = max_retries
        self.backoff_base = float(backoff_base)
        self.backoff_max = float(backoff_max)
        self.max_retry_after = float(max_retry_after)
        self.throttle_wait = float(throttle_wait)
        self.malformed_retries = malformed_retries
        self.jitter = float(jitter)
        self.max_requests = max_requests
        self._sleep = sleep
        self._clock = clock or (lambda: pd.Timestamp.now(tz="UTC"))
        self._log = logger or logging.getLogger(__name__)
        self._rng = rng or random.Random()
        self._redact = Redactor()
        self._stats = BinanceStats()
        self._lock = threading.Lock()
        self._http = httpx.Client(
            base_url=self.base_url, headers={"Accept": "application/json", "User-Agent": "massive-pipeline"},
            timeout=self._timeout, transport=transport, follow_redirects=False,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> BinanceClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"BinanceClient(base_url={self.base_url!r})"

    @property
    def stats(self) -> BinanceStats:
        with self._lock:
            return self._stats.copy()

    # ------------------------------------------------------------------ klines
    def get_klines(self, symbol: str, interval: str, start: pd.Timestamp, end: pd.Timestamp) -> KlineFetch:
        """Klines opening in the half-open UTC window [start, end), every page followed.

        Returned whole or not at all, sorted and unique on `ts`; `forming` counts the klines whose
        close time had not passed by the client's clock when the answer came.
        """
        return cast(KlineFetch, BarStream(self.stream_klines(symbol, interval, start, end)).whole())

    def stream_klines(self, symbol: str, interval: str, start: pd.Timestamp, end: pd.Timestamp
                      ) -> Generator[pd.DataFrame, None, KlineFetch]:
        """The klines of `get_klines` one page at a time (each page's in [start, end), sorted and
        unique on `ts`), with the same requests; returns the totals (`BarStream.result`), no bars."""
        if not isinstance(symbol, str) or not BINANCE_SYMBOL_RE.match(symbol):
            raise ValueError(f"symbol must be a Binance symbol such as BTCUSDT, got {symbol!r}")
        step = interval_ms(interval)
        start_ts, end_ts = to_utc(start, "start"), to_utc(end, "end")
        if start_ts >= end_ts:
            raise ValueError(f"empty window: start {start_ts} is not before end {end_ts}")
        start_ms = -(-start_ts.value // 1_000_000)
        end_ms = -(-end_ts.value // 1_000_000)  # exclusive
        what = f"GET {KLINES_PATH} {symbol} {interval}"
        pages = requests = weight = received = duplicates = kept = 0
        forming: list[str] = []
        used: int | None = None
        cursor = start_ms
        while cursor < end_ms:
            limit = min(MAX_KLINES, -(-(end_ms - cursor) // step))
            params = {"symbol": symbol, "interval": interval, "startTime": str(cursor),
                      "endTime": str(end_ms - 1), "limit": str(limit)}
            label = what if not pages else f"{what} (page {pages + 1})"
            answer, spent, charged = self._request(params, klines_weight(limit), label=label, symbol=symbol)
            requests += spent
            weight += charged
            used = answer.used_weight if answer.used_weight is not None else used
            try:
                page = parse_klines(answer.body)
            except KlineShapeError as exc:
                raise self._shape_error(label, symbol, str(exc)) from None
            pages += 1
            received += len(page)
            frame, page_forming, dropped = self._page_frame(page, start_ts, end_ts)
            duplicates += dropped
            kept += len(frame)
            forming.extend(page_forming)
            yield frame
            if len(page) == 0 or len(page) < limit:
                break
            last = int(page.open_ms.max())
            if last < cursor:
                raise MassivePaginationError(
                    self._redact(f"Binance API pagination of {what} does not advance: page {pages} ends at "
                                 f"openTime {last}, before its startTime {cursor}"), method="GET", path=KLINES_PATH)
            cursor = last + step
            if pages >= self.max_requests:
                raise MassivePaginationError(
                    self._redact(f"Binance API pagination of {what} exceeded {self.max_requests} pages"),
                    method="GET", path=KLINES_PATH)
        line = (f"{what}: {kept} klines in {requests} request(s), weight {weight}, server used weight "
                f"{'unknown' if used is None else used} this minute")
        if forming:
            line += f", {len(forming)} still forming (kept, stored as not complete)"
        self._emit(logging.INFO, line)
        return KlineFetch(
            bars=empty_bars(), requests=requests, pages=pages, duplicates=duplicates, bars_received=received,
            statuses=("OK",) if pages else (), weight=weight, used_weight_1m=used, forming=len(forming),
            forming_ts=forming,
        )

    def _page_frame(self, page: KlinePage, start: pd.Timestamp, end: pd.Timestamp) -> tuple[pd.DataFrame, list[str], int]:
        """One page's klines in [start, end), sorted and unique on ts; the forming ones' starts; the
        duplicates dropped."""
        if not len(page):
            return empty_bars(), [], 0
        frame = page.bars
        inside = ((frame["ts"] >= start) & (frame["ts"] < end)).to_numpy()
        now_ms = to_utc(self._clock(), "clock").value // 1_000_000
        open_now = page.close_ms >= now_ms
        frame = frame[inside].assign(_forming=open_now[inside]).sort_values("ts", kind="stable")
        before = len(frame)
        frame = frame.drop_duplicates("ts", keep="last").reset_index(drop=True)
        forming = [ts.isoformat() for ts in frame.loc[frame["_forming"], "ts"]]
        return frame.drop(columns="_forming"), forming, before - len(frame)

    # ------------------------------------------------------------------ one request, with retries
    def _send(self, params: dict[str, str], ticket: object) -> httpx.Response:
        """One HTTP attempt; the limiter's ticket is settled as soon as it ends, answered or not, so
        the request's weight counts from a moment it had certainly reached the server by."""
        try:
            return self._http.get(KLINES_PATH, params=params)
        finally:
            settle_ticket(ticket)

    def _request(self, params: dict[str, str], weight: int, *, label: str, symbol: str) -> tuple[_Answer, int, int]:
        """GET the klines until a 2xx JSON answer or the retries of its failure kind run out.

        Returns the answer, the attempts it took and the weight they were charged.
        """
        throttled = failures = malformed = attempts = 0
        while True:
            attempts += 1
            ticket = self._acquire(weight) if self._acquire is not None else None
            self._count(requests=1, weight=weight)
            try:
                response = self._send(params, ticket)
            except httpx.TimeoutException as exc:
                self._count(timeouts=1)
                failures += 1
                if failures > self.max_retries:
                    raise MassiveTimeoutError(self._redact(
                        f"Binance API did not answer {label} within the timeout ({self._timeout.read:g}s read); "
                        f"{attempts} attempts"), method="GET", path=KLINES_PATH) from exc
                self._backoff(label, attempts, failures, type(exc).__name__)
                continue
            except httpx.TransportError as exc:
                self._count(connection_errors=1)
                failures += 1
                if failures > self.max_retries:
                    raise MassiveConnectionError(self._redact(
                        f"Binance API unreachable for {label} at {self.base_url}: {type(exc).__name__}: {exc} "
                        f"({attempts} attempts)"), method="GET", path=KLINES_PATH) from exc
                self._backoff(label, attempts, failures, type(exc).__name__)
                continue
            used = _used_weight(response)
            if used is not None:
                with self._lock:
                    self._stats.used_weight_1m = used
            status = response.status_code
            if 200 <= status < 300:
                try:
                    body = response.json()
                except (ValueError, httpx.DecodingError):
                    self._count(malformed=1)
                    malformed += 1
                    if malformed > self.malformed_retries:
                        raise MassiveResponseError(self._redact(
                            f"Binance API answered {label} with a body that is not JSON "
                            f"({len(response.content)} bytes, starts {_snippet(response.text, 60)!r}); "
                            f"{attempts} attempts"), method="GET", path=KLINES_PATH, status=status) from None
                    self._backoff(label, attempts, malformed, "body is not JSON")
                    continue
                self._count(pages=1)
                return _Answer(body, used), attempts, attempts * weight
            message, code = self._api_message(response)
            if status in (429, 418):
                throttled += 1
                self._count(**({"throttled_429": 1} if status == 429 else {"banned_418": 1}))
                wait = self._retry_after(response)
                kind = "throttled" if status == 429 else "banned this IP"
                if throttled > self.max_retries or wait > self.max_retry_after:
                    why = (f"after {throttled} throttled attempts" if throttled > self.max_retries
                           else f"asking to wait {wait:.0f}s, more than the {self.max_retry_after:.0f}s allowed")
                    raise MassiveRateLimitError(self._redact(
                        f"Binance API {kind} on {label}: {status} {message} {why}; lower "
                        "BINANCE_WEIGHT_LIMIT_PER_MINUTE"), method="GET", path=KLINES_PATH, status=status,
                        api_message=message)
                self._retry(label, attempts, wait, f"{status} {message}")
                continue
            if status >= 500 or status == 408:
                self._count(server_errors=1)
                failures += 1
                if failures > self.max_retries:
                    raise MassiveServerError(self._redact(
                        f"Binance API failed {label}: {status} {message} ({attempts} attempts)"),
                        method="GET", path=KLINES_PATH, status=status, api_message=message)
                self._backoff(label, attempts, failures, f"{status} {message}")
                continue
            if status == 404 or code == _INVALID_SYMBOL:
                raise MassiveNotFoundError(self._redact(
                    f"Binance API does not know symbol {symbol} ({label}): {status} {message}"),
                    method="GET", path=KLINES_PATH, status=status, api_message=message)
            raise MassiveError(self._redact(f"Binance API rejected {label}: {status} {message}"),
                               method="GET", path=KLINES_PATH, status=status, api_message=message)

    # ------------------------------------------------------------------ helpers
    def _backoff(self, label: str, attempt: int, n: int, reason: str) -> None:
        delay = self.backoff_base * (2 ** (n - 1)) * (1.0 + self.jitter * self._rng.random())
        self._retry(label, attempt, min(self.backoff_max, delay), reason)

    def _retry(self, label: str, attempt: int, wait: float, reason: str) -> None:
        self._count(retries=1)
        self._emit(logging.WARNING, f"{label} attempt {attempt} failed ({reason}); retrying in {wait:.2f}s")
        self._sleep(wait)

    def _retry_after(self, response: httpx.Response) -> float:
        """`Retry-After` in seconds, uncapped (a long ban must be seen as long); else `throttle_wait`."""
        seconds = retry_after_seconds(response)
        return self.throttle_wait if seconds is None else seconds

    def _api_message(self, response: httpx.Response) -> tuple[str, int | None]:
        """Binance's `{"code": -1121, "msg": "Invalid symbol."}`, or the reason phrase and a snippet."""
        try:
            body = response.json()
        except (ValueError, httpx.DecodingError):
            body = None
        if isinstance(body, dict) and isinstance(body.get("msg"), str):
            code = body.get("code")
            return self._redact(_snippet(body["msg"], 300)), code if isinstance(code, int) else None
        reason = response.reason_phrase or "error"
        text = _snippet(response.text, 120)
        return self._redact(f"{reason} ({text})" if text else reason), None

    def _shape_error(self, label: str, symbol: str, detail: str) -> MassiveResponseError:
        self._count(malformed=1)
        return MassiveResponseError(
            self._redact(f"Binance API answered {label} for {symbol} with an unexpected shape: {detail}"),
            method="GET", path=KLINES_PATH)

    def _count(self, **deltas: int) -> None:
        with self._lock:
            for name, delta in deltas.items():
                setattr(self._stats, name, getattr(self._stats, name) + delta)

    def _emit(self, level: int, message: str) -> None:
        if self._log.isEnabledFor(level):
            self._log.log(level, "%s", self._redact(message))


def _used_weight(response: httpx.Response) -> int | None:
    raw = response.headers.get(USED_WEIGHT_HEADER)
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None
