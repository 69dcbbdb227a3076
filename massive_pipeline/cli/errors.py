"""Which errors the command line reports as one line rather than a traceback.

These are the errors whose message already names the thing at fault (a catalog entry, a store
URL, an API request, a run): a traceback would add noise, not information.
"""

from __future__ import annotations


def is_user_facing(exc: BaseException) -> bool:
    from massive_pipeline.candles.partitions import PartitionRangeError
    from massive_pipeline.cli.launch import BackfillError
    from massive_pipeline.core.calendars import UnknownCalendarError
    from massive_pipeline.core.catalog import CatalogError, UnknownSymbolError
    from massive_pipeline.massive import MassiveError
    from massive_pipeline.massive.ratelimit import RateLimiterConfigError
    from massive_pipeline.store import StoreError

    return isinstance(
        exc,
        (CatalogError, UnknownSymbolError, UnknownCalendarError, MassiveError, RateLimiterConfigError,
         BackfillError, PartitionRangeError, StoreError),
    )
