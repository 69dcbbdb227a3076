"""The reconnect schedule: doubling from `initial` up to `maximum`, minus a random share."""

from __future__ import annotations

import pytest

from massive_pipeline.stream.backoff import Backoff


def test_without_randomness_the_delays_double_up_to_the_cap():
    backoff = Backoff(initial=0.5, factor=2.0, maximum=8.0, jitter=0.5, random=lambda: 0.0)
    assert [backoff.delay(n) for n in range(1, 8)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]


def test_jitter_takes_at_most_its_share_off_each_delay():
    backoff = Backoff(initial=1.0, maximum=30.0, jitter=0.5, random=lambda: 0.999)
    assert backoff.delay(1) == pytest.approx(0.5005)
    assert backoff.delay(10) == pytest.approx(30 * 0.5005)
    draws = iter([0.0, 0.25, 0.5])
    varied = Backoff(initial=4.0, maximum=30.0, jitter=0.5, random=lambda: next(draws))
    assert [varied.delay(1), varied.delay(1), varied.delay(1)] == [4.0, 3.5, 3.0]


def test_a_huge_attempt_number_stays_at_the_cap():
    assert Backoff(random=lambda: 0.0).delay(10_000) == 30.0


@pytest.mark.parametrize("kwargs", [{"initial": 0}, {"initial": 5, "maximum": 1}, {"factor": 0.5}, {"jitter": 1.5}])
def test_a_bad_schedule_is_refused(kwargs: dict):
    with pytest.raises(ValueError, match="backoff"):
        Backoff(**kwargs)


def test_attempts_count_from_one():
    with pytest.raises(ValueError, match="attempt must be at least 1"):
        Backoff().delay(0)
