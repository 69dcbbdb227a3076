"""Scrub API keys out of any text that leaves the client.

The client never puts the key in a URL, a message or a log line; this is the second line of
defence for text it does not fully control (an error body that echoes the request, a `next_url`
that carries `apiKey=`, a proxy's HTML page).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

MASK = "***"

# `apiKey=...` in a query string, JSON-ish text or a log line; any case, value up to a delimiter.
_QUERY_KEY = re.compile(r"(?i)(\bapi[_-]?key\s*[=:]\s*[\"']?)([^\s&\"',;}<>]+)")
# `Bearer <token>` in an echoed header.
_BEARER = re.compile(r"(?i)(\bbearer\s+)([A-Za-z0-9._~+/=-]+)")

# Shorter "secrets" would mask ordinary words and numbers in messages; real keys are ~32 chars.
_MIN_SECRET_LEN = 4


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Return `text` with every given secret, `apiKey=` value and bearer token replaced by `***`."""
    if not text:
        return text
    for secret in sorted({s for s in secrets if s and len(s) >= _MIN_SECRET_LEN}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    text = _QUERY_KEY.sub(lambda m: m.group(1) + MASK, text)
    return _BEARER.sub(lambda m: m.group(1) + MASK, text)


class Redactor:
    """A `redact` bound to one client's key, so every call site scrubs the same secret."""

    __slots__ = ("_secrets",)

    def __init__(self, *secrets: str) -> None:
        self._secrets = tuple(s for s in secrets if s)

    def __call__(self, text: object) -> str:
        return redact(str(text), self._secrets)

    def __repr__(self) -> str:
        return f"Redactor({len(self._secrets)} secret(s))"
