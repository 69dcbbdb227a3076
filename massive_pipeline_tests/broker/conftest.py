"""A candle store holding the bundled server's XAUUSD bars, shared by the broker tests of a module.

H1 from mid-February to late November 2025 (both US daylight-saving changes, 9 March and
2 November) and M15 for June 2025, fetched once per module over HTTP from the bundled server.
"""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
import pytest

from massive_pipeline.core.timeframes import Timeframe
from massive_pipeline.store import CandleStore
from massive_pipeline.testing.devserver import DevServer
from massive_pipeline_tests.broker.broker_files import store_server_bars

H1_SPAN = ("2025-02-15", "2025-11-20")
M15_SPAN = ("2025-06-02", "2025-07-01")


@pytest.fixture(scope="module")
def xau_store(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[CandleStore, dict[Timeframe, pd.DataFrame]]]:
    url = f"sqlite:///{tmp_path_factory.mktemp('broker_store')}/candles.sqlite"
    store = CandleStore(url)
    with DevServer(port=0) as server:
        bars = {
            Timeframe.H1: store_server_bars(server, store, "C:XAUUSD", "XAUUSD", Timeframe.H1, *H1_SPAN),
            Timeframe.M15: store_server_bars(server, store, "C:XAUUSD", "XAUUSD", Timeframe.M15, *M15_SPAN),
        }
    yield store, bars
    store.dispose()
