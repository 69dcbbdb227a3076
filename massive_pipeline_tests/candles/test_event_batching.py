"""The batched event writes of ranged candle runs: on for the run, off afterwards, and an
operator's own `DAGSTER_EVENT_BATCH_SIZE` kept."""

from __future__ import annotations

import os

import pytest

from massive_pipeline.candles.event_batching import EVENT_BATCH_SIZE_ENV, event_batching


def test_batching_is_on_during_the_block_and_off_after(monkeypatch):
    monkeypatch.delenv(EVENT_BATCH_SIZE_ENV, raising=False)
    with event_batching(250) as size:
        assert size == 250 and os.environ[EVENT_BATCH_SIZE_ENV] == "250"
    assert EVENT_BATCH_SIZE_ENV not in os.environ


def test_batching_is_off_after_a_failed_run(monkeypatch):
    monkeypatch.delenv(EVENT_BATCH_SIZE_ENV, raising=False)
    with pytest.raises(RuntimeError, match="step failed"), event_batching():
        raise RuntimeError("step failed")
    assert EVENT_BATCH_SIZE_ENV not in os.environ


@pytest.mark.parametrize("chosen", ["0", "50"])
def test_an_operators_size_is_kept(monkeypatch, chosen):
    monkeypatch.setenv(EVENT_BATCH_SIZE_ENV, chosen)
    with event_batching(1000) as size:
        assert size == int(chosen) and os.environ[EVENT_BATCH_SIZE_ENV] == chosen
    assert os.environ[EVENT_BATCH_SIZE_ENV] == chosen
