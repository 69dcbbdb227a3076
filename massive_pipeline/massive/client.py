"""HTTP client for the Massive REST API (formerly Polygon.io).

Why it looks the way it does:
- The key travels only in the `Authorization` header; every text the client emits (errors, logs,
  per-ticker error strings) also goes through a redactor bound to the key.
- Every HTTP attempt - first page, later pages and retries - first calls `acquire()`, the shared
  rate limiter, so pagination and retries can never push a worker past the plan's limit; what it
  returns (the limiter's ticket) is settled when the attempt ends, so the request counts from then.
- Failures are typed (see `errors.py`) and bounded: 401/403 stop at once; 429 waits `Retry-After`
  (or `throttle_wait`) and retries; 5xx, broken connections and timeouts retry with exponential
  backoff and jitter (they share one budget of `max_retries` per request; 429s have their own,
  because waiting out a rate window is not a failure); a body that is not JSON is retried
  `malformed_retries` times (a truncated body can be transient) while JSON of the wrong shape fails
  at once (the same request would get the same answer); a `next_url` that does not advance (a URL
  already fetched, or a page with no bar newer than the pages before it) fails instead of looping.
- A paginated answer is returned whole or not at all: pages are collected locally and the caller
  gets either every bar or an exception - with two bounded exceptions the real API forces: pages
  that keep announcing a `next_url` without bringing any result stop after `max_empty_pages` in a
  row (a warning, `FetchResult.stopped_early`), and no fetch follows more than `max_pages` pages.
  `stream_aggregates` makes the same requests but hands each page over as it arrives, for the
  ranged runs that write a page before fetching the next (constant memory over any range).
- The real API's oddities are reported, not raised: empty and short answers, `DELAYED` statuses,
  rows with null or non-numeric fields (kept, flagged in `provider_problem`), rows without a `t`
  (counted), day/week bars stamped at midnight US/Eastern (moved onto the UTC grid, `stamps.py`).
"""

from __future__ import annotations

import logging
import random
import re
import threading
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

import httpx
import pandas as pd

from massive_pipeline.core.timeutil import to_utc
from massive_pipeline.massive.errors import (
    MassiveAuthError,
    MassiveConnectionError,
    MassiveError,
    MassiveNotEntitledError,
    MassiveNotFoundError,
    MassivePaginationError,
    MassiveRateLimitError,
    MassiveResponseError,
    MassiveServerError,
    MassiveTimeoutError,
)
from massive_pipeline.massive.models import (
    PROBLEM_COLUMN,
    UNPLACEABLE_SAMPLE,
    BarStream,
    ClientStats,
    FetchResult,
    ResponseShapeError,
    Snapshot,
    bars_from_results,
    empty_bars,
    snapshot_from_universal,
    snapshot_from_v2,
)
from massive_pipeline.massive.ratelimit import settle_ticket
from massive_pipeline.massive.redact import Redactor
from massive_pipeline.massive.stamps import normalize_stamps

DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
MAX_LIMIT = 50_000
UNIVERSAL_BATCH = 250
OK_STATUSES = frozenset({"OK", "DELAYED"})
TIMESPANS = frozenset({"second", "minute", "hour", "day", "week", "month", "quarter", "year"})
_TICKER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9:._-]{0,63}$")
_SNAPSHOT_MARKETS = {"C:": "forex", "X:": "crypto"}
_KEY_PARAMS = frozenset({"apikey", "api_key", "api-key"})
_TITLE_RE = re.compile(r"<title>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_TAG_RE = re.compile(r"<[^>]+>")


DEFAULT_BASE_URL = "https://api.massive.com"
"""The API root of the real service (formerly api.polygon.io); `MASSIVE_BASE_URL` overrides it."""


@dataclass
class _Cost:
    """HTTP attempts and pages spent by one public call, reported in its result."""

    requests: int = 0
    pages: int = 0


class MassiveClient:
    """Synchronous, thread-safe client; one per process, shared by the assets of a run."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        acquire: Callable[[], object] | None = None,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        max_retries: int = 5,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        max_retry_after: float = 120.0,
        throttle_wait: float = 12.0,
        malformed_retries: int = 2,
        jitter: float = 0.25,
        max_pages: int = 1_000,
        max_empty_pages: int = 3,
        sleep: Callable[[float], None] = time.sleep,
        logger: logging.Logger | None = None,
        transport: httpx.BaseTransport | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if not isinstance(api_key, str) or not api_key.strip():
            raise ValueError("MassiveClient needs an API key: MASSIVE_API_KEY is empty or unset")
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise ValueError(f"MassiveClient base_url must start with http:// or https://, got {base_url!r}")
        for name, value in (("max_retries", max_retries), ("malformed_retries", malformed_retries),
                            ("max_pages", max_pages), ("max_empty_pages", max_empty_pages)):
            if isinstance(value, bool) or not isinstance(value, int) or value < (1 if name.startswith("max_") else 0):
                raise ValueError(f"MassiveClient {name} must be a non-negative integer, got {value!r}")
        for name, fvalue in (("backoff_base", backoff_base), ("backoff_max", backoff_max),
                             ("max_retry_after", max_retry_after), ("throttle_wait", throttle_wait),
                             ("jitter", jitter)):
            if not isinstance(fvalue, (int, float)) or fvalue < 0:
                raise ValueError(f"MassiveClient {name} must be a number >= 0, got {fvalue!r}")
        self._redact = Redactor(api_key.strip())
        self.base_url = base_url.rstrip("/")
        self._base = httpx.URL(self.base_url)
        self._acquire = acquire
        self._timeout = _explicit_timeout(timeout)
        self.max_retries = max_retries
        self.backoff_base = float(backoff_base)
        self.backoff_max = float(backoff_max)
        self.max_retry_after = float(max_retry_after)
        self.throttle_wait = float(throttle_wait)
        self.malformed_retries = malformed_retries
        self.jitter = float(jitter)
        self.max_pages = max_pages
        self.max_empty_pages = max_empty_pages
        self._sleep = sleep
        self._log = logger or logging.getLogger(__name__)
        self._rng = rng or random.Random()
        self._stats = ClientStats()
        self._lock = threading.Lock()
        self._http = httpx.Client(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {api_key.strip()}", "Accept": "application/json",
                     "User-Agent": "massive-pipeline"},
            timeout=self._timeout,
            transport=transport,
            follow_redirects=False,
        )

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> MassiveClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"MassiveClient(base_url={self.base_url!r}, api_key='***')"

    @property
    def stats(self) -> ClientStats:
        """A copy of the counters, so callers can diff two readings."""
        with self._lock:
            return self._stats.copy()

    # ------------------------------------------------------------------ endpoints
    def get_aggregates(self, ticker: str, multiplier: int, timespan: str, start: pd.Timestamp, end: pd.Timestamp,
                       *, limit: int = MAX_LIMIT, adjusted: bool = True) -> FetchResult:
        """Bars whose start lies in the half-open UTC window [start, end), every page followed.

        The API's range is inclusive, so `to` is sent as end - 1 ms. Bars come back sorted by ts;
        a ts seen twice (overlapping pages) is kept once (the later copy) and counted.
        """
        pages = self.stream_aggregates(ticker, multiplier, timespan, start, end, limit=limit, adjusted=adjusted)
        return BarStream(pages).whole()

    def stream_aggregates(
        self,
        ticker: str,
        multiplier: int,
        timespan: str,
        start: pd.Timestamp,
        end: pd.Timestamp,
        *,
        limit: int = MAX_LIMIT,
        adjusted: bool = True,
    ) -> Generator[pd.DataFrame, None, FetchResult]:
        """The bars of `get_aggregates`, one page at a time as the API sends them (each page's bars
        in [start, end), sorted and unique on ts), so a ranged run holds one page, not the range.

        The same requests as `get_aggregates`; the generator's return value (`BarStream.result`)
        is the fetch's totals with no bars. Pages may overlap: a consumer keeps the later copy.
        """
        _check_ticker(ticker)
        if isinstance(multiplier, bool) or not isinstance(multiplier, int) or multiplier < 1:
            raise ValueError(f"multiplier must be a positive integer, got {multiplier!r}")
        if timespan not in TIMESPANS:
            raise ValueError(f"timespan must be one of {', '.join(sorted(TIMESPANS))}; got {timespan!r}")
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
            raise ValueError(f"limit must be an integer in 1..{MAX_LIMIT}, got {limit!r}")
        start_ts, end_ts = to_utc(start, "start"), to_utc(end, "end")
        if start_ts >= end_ts:
            raise ValueError(f"empty window: start {start_ts} is not before end {end_ts}")
        from_ms = start_ts.value // 1_000_000
        to_ms = -(-end_ts.value // 1_000_000) - 1
        path = f"/v2/aggs/ticker/{quote(ticker, safe=':')}/range/{multiplier}/{timespan}/{from_ms}/{to_ms}"
        params = {"adjusted": "true" if adjusted else "false", "sort": "asc", "limit": str(limit)}

        cost = _Cost()
        newest: pd.Timestamp | None = None
        statuses: dict[str, None] = {}
        unplaceable: list[str] = []
        warnings: list[str] = []
        problem_texts: list[str] = []
        received = empty_pages = empty_run = restamped = duplicates = problems = 0
        stopped: str | None = None
        for page, label, body in self._paginate(path, params, cost):
            self._check_status(body, label)
            statuses[str(body.get("status"))] = None
            results = body.get("results")
            if results is not None and not isinstance(results, list):
                raise self._shape_error(label, f"'results' is {type(results).__name__}, not a list")
            try:
                parsed = bars_from_results(results or [])
            except ResponseShapeError as exc:
                raise self._shape_error(label, str(exc)) from None
            bars = parsed.bars
            received += len(bars) + len(parsed.unplaceable)
            unplaceable.extend(f"page {page} {text}" for text in parsed.unplaceable)
            if len(bars):
                empty_run = 0
                page_newest = bars["ts"].max()
                if newest is not None and page_newest <= newest and body.get("next_url"):
                    raise MassivePaginationError(
                        self._redact(f"Massive API pagination of GET {_path_of(label)} does not advance: page {page} "
                                     f"brings no bar after {newest.isoformat()} yet announces another page"),
                        method="GET", path=_path_of(label))
                newest = page_newest if newest is None else max(newest, page_newest)
            elif body.get("next_url"):
                empty_pages += 1
                empty_run += 1
                if empty_run >= self.max_empty_pages:
                    stopped = (f"{empty_run} consecutive pages without results still announced a next page; "
                               f"stopped following next_url after page {page}")
                    break
            frame, moved = normalize_stamps(bars, multiplier, timespan)
            inside = ((frame["ts"] >= start_ts) & (frame["ts"] < end_ts)).to_numpy()
            restamped += int((moved & inside).sum())
            frame = frame[inside].sort_values("ts", kind="stable")
            before = len(frame)
            frame = frame.drop_duplicates("ts", keep="last").reset_index(drop=True)
            duplicates += before - len(frame)
            problem = frame[PROBLEM_COLUMN].astype(object)
            frame[PROBLEM_COLUMN] = problem.where(problem.notna(), None)  # None, not NaN, on good rows
            problems += int(frame[PROBLEM_COLUMN].notna().sum())
            if len(problem_texts) < UNPLACEABLE_SAMPLE:
                problem_texts.extend(frame[PROBLEM_COLUMN].dropna().astype(str).head(UNPLACEABLE_SAMPLE))
            yield frame

        what = f"GET {path}"
        if stopped is not None:
            warnings.append(f"{what}: {stopped}; the answer may be incomplete")
        if unplaceable:
            warnings.append(f"{what}: {len(unplaceable)} row(s) without a usable t left out, e.g. "
                            + "; ".join(unplaceable[:UNPLACEABLE_SAMPLE]))
        if problems:
            warnings.append(f"{what}: {problems} row(s) with null or non-numeric fields, e.g. "
                            + "; ".join(problem_texts[:UNPLACEABLE_SAMPLE]))
        for line in warnings:
            self._emit(logging.WARNING, line)
        return FetchResult(
            bars=empty_bars(), requests=cost.requests, pages=cost.pages, duplicates=duplicates,
            bars_received=received, statuses=tuple(statuses), empty_pages=empty_pages, problem_rows=problems,
            unplaceable=len(unplaceable), unplaceable_sample=unplaceable[:UNPLACEABLE_SAMPLE],
            restamped=restamped, stopped_early=stopped, warnings=warnings,
        )

    def get_snapshot(self, ticker: str) -> Snapshot:
        """Latest quote/trade of one forex (`C:`) or crypto (`X:`) ticker."""
        _check_ticker(ticker)
        market = next((m for prefix, m in _SNAPSHOT_MARKETS.items() if ticker.startswith(prefix)), None)
        if market is None:
            raise ValueError(f"no single-ticker snapshot endpoint for {ticker!r}: only C: (forex) and X: (crypto)")
        path = f"/v2/snapshot/locale/global/markets/{market}/tickers/{quote(ticker, safe=':')}"
        label = f"GET {path}"
        body = self._request(path, None, label=label, cost=_Cost())
        self._check_status(body, label)
        try:
            return snapshot_from_v2(body)
        except ResponseShapeError as exc:
            raise self._shape_error(label, str(exc)) from None

    def get_universal_snapshot(self, tickers: Sequence[str]) -> tuple[list[Snapshot], dict[str, str]]:
        """Snapshots of many tickers via `/v3/snapshot`, 250 a call; per-ticker failures in the dict.

        Tickers the answer reports as errors, or leaves out, are returned in the dict (ticker →
        reason) rather than raised, so one delisted ticker does not cost the others.
        """
        if isinstance(tickers, str):
            raise ValueError("tickers must be a sequence of tickers, not one string")
        wanted = list(dict.fromkeys(tickers))
        for t in wanted:
            _check_ticker(t)
        found: dict[str, Snapshot] = {}
        errors: dict[str, str] = {}
        for i in range(0, len(wanted), UNIVERSAL_BATCH):
            batch = wanted[i : i + UNIVERSAL_BATCH]
            params = {"ticker.any_of": ",".join(batch), "limit": str(UNIVERSAL_BATCH)}
            for _page, label, body in self._paginate("/v3/snapshot", params, _Cost()):
                self._check_status(body, label)
                results = body.get("results")
                if results is not None and not isinstance(results, list):
                    raise self._shape_error(label, f"'results' is {type(results).__name__}, not a list")
                for idx, item in enumerate(results or []):
                    if not isinstance(item, dict):
                        raise self._shape_error(label, f"results[{idx}] is {type(item).__name__}, not an object")
                    ticker = item.get("ticker")
                    if ticker not in batch:
                        continue
                    if item.get("error"):
                        detail = item.get("message") or ""
                        errors[ticker] = self._redact(f"{item['error']}: {detail}".rstrip(": "))
                        continue
                    try:
                        found[ticker] = snapshot_from_universal(item)
                    except ResponseShapeError as exc:
                        errors[ticker] = self._redact(str(exc))
        for t in wanted:
            if t not in found and t not in errors:
                errors[t] = "not in the universal snapshot answer"
            if t in found:
                errors.pop(t, None)
        return [found[t] for t in wanted if t in found], errors

    # ------------------------------------------------------------------ paging
    def _paginate(self, path: str, params: dict[str, str], cost: _Cost) -> Iterator[tuple[int, str, dict[str, Any]]]:
        """Yield (page number, request label, body) for the first page and every `next_url`."""
        target: str | httpx.URL = path
        query: dict[str, str] | None = params
        first_label = f"GET {path}"
        seen = {str(self._http.build_request("GET", path, params=params).url)}
        page = 1
        while True:
            label = first_label if page == 1 else f"{first_label} (page {page})"
            body = self._request(target, query, label=label, cost=cost)
            yield page, label, body
            next_url = body.get("next_url")
            if not next_url:
                return
            if not isinstance(next_url, str):
                raise self._shape_error(label, f"'next_url' is {type(next_url).__name__}, not a string")
            target, query = self._next_target(next_url, label), None
            if str(target) in seen:
                raise MassivePaginationError(
                    self._redact(f"Massive API pagination of {first_label} does not advance: the next_url of "
                                 f"page {page} repeats an earlier page"),
                    method="GET", path=path)
            seen.add(str(target))
            page += 1
            if page > self.max_pages:
                raise MassivePaginationError(
                    f"Massive API pagination of {self._redact(first_label)} exceeded {self.max_pages} pages",
                    method="GET", path=path)

    def _next_target(self, next_url: str, label: str) -> httpx.URL:
        """`next_url` as-is, minus any key parameter, and never sent to another host with our key."""
        try:
            url = httpx.URL(next_url)
        except (httpx.InvalidURL, TypeError) as exc:
            raise self._shape_error(label, f"'next_url' is not a URL ({type(exc).__name__})") from None
        if url.is_relative_url:
            url = self._base.join(url)
        if any(k.lower() in _KEY_PARAMS for k in url.params):
            url = url.copy_with(params=httpx.QueryParams(
                [(k, v) for k, v in url.params.multi_items() if k.lower() not in _KEY_PARAMS]))
        if (url.scheme, url.host, url.port) != (self._base.scheme, self._base.host, self._base.port):
            self._emit(logging.WARNING, f"next_url of {label} points to another host; requesting its path "
                                        f"from {self._base.host} instead")
            url = self._base.join(url.raw_path.decode("ascii"))
        return url

    # ------------------------------------------------------------------ one request, with retries
    def _send(self, target: str | httpx.URL, params: dict[str, str] | None, ticket: object) -> httpx.Response:
        """One HTTP attempt; the limiter's ticket is settled as soon as it ends, answered or not, so
        the request counts from a moment it had certainly reached the server by (ratelimit.py)."""
        try:
            return self._http.get(target, params=params)
        finally:
            settle_ticket(ticket)

    def _request(self, target: str | httpx.URL, params: dict[str, str] | None, *, label: str,
                 cost: _Cost) -> dict[str, Any]:
        """GET `target` until it answers 2xx JSON or the retries for its failure kind run out."""
        throttled = failures = malformed = 0
        attempt = 0
        while True:
            attempt += 1
            ticket = self._acquire() if self._acquire is not None else None
            self._bump("requests")
            cost.requests += 1
            started = time.monotonic()
            try:
                response = self._send(target, params, ticket)
            except httpx.TimeoutException as exc:
                self._bump("timeouts")
                failures += 1
                self._emit(logging.DEBUG, f"{label} attempt {attempt}: {type(exc).__name__} after "
                                          f"{time.monotonic() - started:.3f}s")
                if failures > self.max_retries:
                    raise MassiveTimeoutError(
                        self._redact(f"Massive API did not answer {label} within the timeout "
                                     f"({_describe_timeout(self._timeout)}); {attempt} attempts, last: "
                                     f"{type(exc).__name__}"),
                        method="GET", path=_path_of(label)) from exc
                self._backoff(label, attempt, failures, type(exc).__name__)
                continue
            except httpx.TransportError as exc:
                self._bump("connection_errors")
                failures += 1
                self._emit(logging.DEBUG, f"{label} attempt {attempt}: {type(exc).__name__}: {exc}")
                if failures > self.max_retries:
                    raise MassiveConnectionError(
                        self._redact(f"Massive API unreachable for {label} at {self.base_url}: "
                                     f"{type(exc).__name__}: {exc} ({attempt} attempts)"),
                        method="GET", path=_path_of(label)) from exc
                self._backoff(label, attempt, failures, type(exc).__name__)
                continue

            status = response.status_code
            self._emit(logging.DEBUG, f"{label} attempt {attempt} -> {status} in "
                                      f"{time.monotonic() - started:.3f}s")
            if 200 <= status < 300:
                try:
                    body = response.json()
                except (ValueError, httpx.DecodingError):
                    self._bump("malformed")
                    malformed += 1
                    if malformed > self.malformed_retries:
                        raise MassiveResponseError(
                            self._redact(f"Massive API answered {label} with a body that is not JSON "
                                         f"({response.headers.get('content-type', 'no content-type')}, "
                                         f"{len(response.content)} bytes, starts {_snippet(response.text, 60)!r}); "
                                         f"{attempt} attempts"),
                            method="GET", path=_path_of(label), status=status) from None
                    self._backoff(label, attempt, malformed, "body is not JSON")
                    continue
                if not isinstance(body, dict):
                    raise self._shape_error(label, f"body is a JSON {type(body).__name__}, not an object")
                self._bump("pages")
                cost.pages += 1
                return body

            api_message = self._api_message(response)
            if status in (401, 403):
                hint = ("check MASSIVE_API_KEY" if status == 401
                        else "not entitled: the plan of MASSIVE_API_KEY does not include this data")
                error_type = MassiveAuthError if status == 401 else MassiveNotEntitledError
                raise error_type(
                    self._redact(f"Massive API refused {label}: {status} {api_message} ({hint})"),
                    method="GET", path=_path_of(label), status=status, api_message=api_message)
            if status == 429:
                self._bump("throttled_429")
                throttled += 1
                if throttled > self.max_retries:
                    raise MassiveRateLimitError(
                        self._redact(f"Massive API kept throttling {label}: 429 {api_message} after "
                                     f"{throttled} throttled attempts; lower MASSIVE_RATE_LIMIT_PER_MINUTE"),
                        method="GET", path=_path_of(label), status=status, api_message=api_message)
                wait = self._throttle_wait(response)
                self._retry(label, attempt, wait, f"429 {api_message}")
                continue
            if status >= 500 or status == 408:
                self._bump("server_errors")
                failures += 1
                if failures > self.max_retries:
                    raise MassiveServerError(
                        self._redact(f"Massive API failed {label}: {status} {api_message} "
                                     f"({attempt} attempts)"),
                        method="GET", path=_path_of(label), status=status, api_message=api_message)
                self._backoff(label, attempt, failures, f"{status} {api_message}")
                continue
            if status == 404:
                raise MassiveNotFoundError(
                    self._redact(f"Massive API answered {label}: 404 not found ({api_message})"),
                    method="GET", path=_path_of(label), status=status, api_message=api_message)
            raise MassiveError(
                self._redact(f"Massive API rejected {label}: {status} {api_message}"),
                method="GET", path=_path_of(label), status=status, api_message=api_message)

    # ------------------------------------------------------------------ helpers
    def _backoff(self, label: str, attempt: int, n: int, reason: str) -> None:
        """Wait base * 2^(n-1), stretched by up to `jitter` (so workers do not retry in step), capped."""
        delay = self.backoff_base * (2 ** (n - 1)) * (1.0 + self.jitter * self._rng.random())
        self._retry(label, attempt, min(self.backoff_max, delay), reason)

    def _retry(self, label: str, attempt: int, wait: float, reason: str) -> None:
        self._bump("retries")
        self._emit(logging.WARNING, f"{label} attempt {attempt} failed ({reason}); retrying in {wait:.2f}s")
        self._sleep(wait)

    def _throttle_wait(self, response: httpx.Response) -> float:
        """Honour `Retry-After` (seconds or HTTP date), capped; without it wait for the window."""
        seconds = retry_after_seconds(response)
        return self.throttle_wait if seconds is None else min(seconds, self.max_retry_after)

    def _api_message(self, response: httpx.Response) -> str:
        """The API's own `message`/`error` text, an HTML page's title, or the reason phrase."""
        reason = response.reason_phrase or "error"
        try:
            body = response.json()
        except (ValueError, httpx.DecodingError):
            body = None
        if isinstance(body, dict):
            text = body.get("message") or body.get("error") or body.get("status")
            if isinstance(text, str) and text:
                return self._redact(_snippet(text, 300))
            return reason
        raw = response.text
        title = _TITLE_RE.search(raw)
        text = title.group(1) if title else _TAG_RE.sub(" ", raw)
        text = _snippet(text, 120)
        return self._redact(f"{reason} ({text})" if text and text != reason else reason)

    def _check_status(self, body: dict[str, Any], label: str) -> None:
        status = body.get("status")
        if status == "NOT_AUTHORIZED":  # seen as a 200 too: the same plan problem as a 403
            detail = body.get("message") or body.get("error") or "not entitled"
            raise MassiveNotEntitledError(
                self._redact(f"Massive API refused {label}: NOT_AUTHORIZED {_snippet(str(detail), 300)} "
                             "(not entitled: the plan of MASSIVE_API_KEY does not include this data)"),
                method="GET", path=_path_of(label), status=403, api_message=str(detail))
        if status not in OK_STATUSES:
            raise self._shape_error(label, f"'status' is {status!r}, expected one of {sorted(OK_STATUSES)}")

    def _shape_error(self, label: str, detail: str) -> MassiveResponseError:
        return MassiveResponseError(self._redact(f"Massive API answered {label} with an unexpected shape: {detail}"),
                                    method="GET", path=_path_of(label))

    def _bump(self, counter: str) -> None:
        with self._lock:
            setattr(self._stats, counter, getattr(self._stats, counter) + 1)

    def _emit(self, level: int, message: str) -> None:
        if self._log.isEnabledFor(level):
            self._log.log(level, "%s", self._redact(message))


def retry_after_seconds(response: httpx.Response) -> float | None:
    """The answer's `Retry-After` in seconds (a number or an HTTP date, never negative), or None
    when it has none that can be read (the caller then waits its own default)."""
    header = response.headers.get("retry-after")
    if header is None:
        return None
    try:
        seconds = float(header)
    except ValueError:
        try:
            when = parsedate_to_datetime(header)
        except (TypeError, ValueError):
            return None
        seconds = (pd.Timestamp(when) - pd.Timestamp.now(tz="UTC")).total_seconds()
    return None if seconds != seconds else max(seconds, 0.0)  # NaN: unreadable


def _explicit_timeout(timeout: httpx.Timeout | float) -> httpx.Timeout:
    """Refuse infinite waits: every phase of a request needs a finite, positive limit."""
    if isinstance(timeout, bool):
        raise ValueError(f"timeout must be seconds or httpx.Timeout, got {timeout!r}")
    if isinstance(timeout, (int, float)):
        timeout = httpx.Timeout(float(timeout))
    if not isinstance(timeout, httpx.Timeout):
        raise ValueError(f"timeout must be seconds or httpx.Timeout, got {timeout!r}")
    for phase in ("connect", "read", "write", "pool"):
        value = getattr(timeout, phase)
        if value is None or value <= 0:
            raise ValueError(f"timeout.{phase} must be a positive number of seconds (no infinite waits), got {value!r}")
    return timeout


def _describe_timeout(timeout: httpx.Timeout) -> str:
    return f"connect {timeout.connect:g}s, read {timeout.read:g}s"


def _check_ticker(ticker: Any) -> None:
    if not isinstance(ticker, str) or not _TICKER_RE.match(ticker):
        raise ValueError(f"ticker must look like C:EURUSD, X:BTCUSD or I:SPX, got {ticker!r}")


def _path_of(label: str) -> str:
    """`GET /v2/... (page 3)` → `/v2/...`."""
    return label.split(" ", 2)[1] if " " in label else label


def _snippet(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
