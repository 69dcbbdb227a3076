"""Errors raised by the candle store.

Callers (assets, the CLI) need to tell a misconfiguration, which no retry will fix, from a
database that is down, which a later run may get past; anything else the driver reports is a
plain `StoreError`. Every message names the store by its masked URL so that logs never carry a
password.
"""

from __future__ import annotations


class StoreError(RuntimeError):
    """A candle-store operation failed; the message names the store and the operation."""


class StoreConfigError(StoreError, ValueError):
    """The store URL is malformed or names a backend the store does not support."""


class StoreUnavailableError(StoreError):
    """The database could not be reached (down, wrong host or port, missing database)."""
