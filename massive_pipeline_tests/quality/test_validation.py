"""The candle schema and the split of fetched bars into stored rows and quarantined rejects."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from massive_pipeline.core.resample import resample_bars
from massive_pipeline.core.timeframes import Timeframe
from massive_pipeline.quality import schemas
from massive_pipeline.quality.validation import (
    CATEGORY_DUPLICATE,
    CATEGORY_GRID,
    CATEGORY_OHLC,
    CATEGORY_VALUE,
    BarsShapeError,
    validate_bars,
)


def _bars(n: int = 20, start: str = "2026-10-13 09:00", freq: str = "1min") -> pd.DataFrame:
    rng = np.random.default_rng(7)
    close = 1.08 * np.exp(np.cumsum(rng.normal(0, 1e-4, n)))
    open_ = np.r_[1.08, close[:-1]]
    return pd.DataFrame(
        {
            "ts": pd.date_range(start, periods=n, freq=freq, tz="UTC"),
            "open": open_,
            "high": np.maximum(open_, close) * 1.0001,
            "low": np.minimum(open_, close) * 0.9999,
            "close": close,
            "volume": rng.integers(1, 100, n).astype(float),
            "vwap": close,
            "trades": pd.array(rng.integers(1, 50, n), dtype="Int64"),
        }
    )


def test_clean_bars_pass_every_timeframe_model():
    for tf in (Timeframe.M1, Timeframe.H1, Timeframe.D1, Timeframe.W1):
        freq = {"W1": "7D"}.get(tf.value, tf.pandas_freq)
        start = "2026-10-12" if tf is Timeframe.W1 else "2026-10-13"  # a Monday for W1
        bars = _bars(12, start, freq)
        schemas.candle_model(tf).validate(bars)
        checked = validate_bars(bars, tf)
        assert checked.rows_rejected == 0 and len(checked.valid) == 12


def test_bad_rows_are_split_out_with_every_reason():
    bars = _bars()
    bars.loc[2, ["high", "low"]] = bars.loc[2, ["low", "high"]].to_numpy()  # high < low, as the server's fault does
    bars.loc[4, "close"] = np.inf
    bars.loc[6, "open"] = -1.0
    bars.loc[8, "volume"] = -5.0
    bars.loc[10, "ts"] += pd.Timedelta(seconds=30)
    bars.loc[12, "ts"] = bars.loc[11, "ts"]  # a second bar for the same minute
    bars.loc[14, "high"] = np.nan
    checked = validate_bars(bars.sample(frac=1.0, random_state=1), Timeframe.M1)  # order does not matter

    rejects = checked.rejects.set_index(checked.rejects["ts"].dt.strftime("%H:%M:%S"))
    assert "high < low" in rejects.loc["09:02:00", "reason"]
    assert rejects.loc["09:02:00", "categories"] == {CATEGORY_OHLC}
    assert "close not finite" in rejects.loc["09:04:00", "reason"]
    assert "open ≤ 0" in rejects.loc["09:06:00", "reason"]
    assert rejects.loc["09:08:00", "reason"] == "volume < 0"
    assert rejects.loc["09:10:30", "reason"] == "ts not on the M1 grid"
    assert rejects.loc["09:10:30", "categories"] == {CATEGORY_GRID}
    assert "high missing" in rejects.loc["09:14:00", "reason"]
    assert CATEGORY_VALUE in rejects.loc["09:14:00", "categories"]
    dup = checked.rejects[checked.rejects["categories"].apply(lambda c: CATEGORY_DUPLICATE in c)]
    assert len(dup) == 1 and dup["ts"].iloc[0] == bars.loc[11, "ts"]
    # nothing is lost: every input row is either stored or rejected, and the stored ones are clean
    assert len(checked.valid) + checked.rows_rejected == len(bars)
    assert checked.rows_rejected == 7
    schemas.candle_model(Timeframe.M1).validate(checked.valid)
    assert checked.valid["ts"].is_monotonic_increasing
    assert checked.reason_counts()["high < low"] == 1
    assert checked.metadata()["rows_rejected"] == 7


def test_grid_depends_on_the_timeframe():
    bars = _bars(6, "2026-10-13 09:05", "5min")  # 09:05 .. 09:30: none on the hour
    assert validate_bars(bars, Timeframe.M5).rows_rejected == 0
    h1 = validate_bars(bars, Timeframe.H1)
    assert h1.rows_rejected == 6 and set(h1.rejects["reason"]) == {"ts not on the H1 grid"}
    tuesday = _bars(2, "2026-10-13", "7D")
    assert set(validate_bars(tuesday, Timeframe.W1).rejects["reason"]) == {"ts not on the W1 grid"}


def test_a_frame_without_timezone_is_refused_as_a_whole():
    bars = _bars()
    bars["ts"] = bars["ts"].dt.tz_localize(None)
    with pytest.raises(BarsShapeError, match="timezone-aware"):
        validate_bars(bars, Timeframe.M1, "EURUSD M1")
    with pytest.raises(BarsShapeError, match=r"lack column\(s\) \['volume'\]"):
        validate_bars(_bars().drop(columns=["volume"]), Timeframe.M1)


def test_empty_window_is_valid():
    checked = validate_bars(_bars().iloc[:0], Timeframe.M1)
    assert checked.valid.empty and checked.rows_rejected == 0


def test_derived_bars_must_agree_with_their_base():
    base = _bars(120)
    h1 = resample_bars(base, Timeframe.H1)
    schemas.DerivedAgreement.validate(schemas.derived_comparison(h1, base, Timeframe.H1))
    tampered = h1.copy()
    tampered.loc[1, "close"] *= 1.01
    with pytest.raises(Exception, match="close_matches_base"):
        schemas.DerivedAgreement.validate(schemas.derived_comparison(tampered, base, Timeframe.H1))
    missing_bucket = h1.iloc[:1]  # the base has two hours, the derived series only one
    with pytest.raises(Exception, match="open_matches_base"):
        schemas.DerivedAgreement.validate(schemas.derived_comparison(missing_bucket, base, Timeframe.H1))


def _with_provider_problems() -> pd.DataFrame:
    """What the API client hands over: `provider_problem` set on the rows the provider sent malformed,
    NaN (or the raw text) in their bad fields."""
    bars = _bars(8)
    bars["provider_problem"] = pd.Series([None] * len(bars), dtype=object)
    bars["high"] = bars["high"].astype(object)
    bars.loc[1, ["open", "provider_problem"]] = [np.nan, "o is null"]
    bars.loc[3, ["high", "provider_problem"]] = ["abc", "h is 'abc' (not a number)"]
    bars.loc[5, ["provider_problem"]] = ["v is null"]  # flagged although its values look fine
    bars.loc[5, "volume"] = np.nan
    # a malformed copy of bar 6 arriving first: it must not make the good bar 6 a duplicate
    copy = bars.loc[[6]].assign(close=np.nan, provider_problem="c is null")
    return pd.concat([copy, bars], ignore_index=True)


def test_rows_the_provider_sent_malformed_are_rejected_with_its_words():
    bars = _with_provider_problems()
    checked = validate_bars(bars, Timeframe.M1, "EURUSD M1")
    assert checked.rows_rejected == 4 and len(checked.valid) == 5
    assert len(checked.valid) + checked.rows_rejected == len(bars)
    rejects = checked.rejects.set_index(checked.rejects["ts"].dt.strftime("%H:%M"))
    assert rejects.loc["09:01", "reason"] == "o is null; open missing"
    assert rejects.loc["09:03", "reason"].startswith("h is 'abc' (not a number); high missing")
    assert rejects.loc["09:05", "reason"] == "v is null; volume missing"
    assert rejects.loc["09:06", "reason"] == "c is null; close missing"
    assert all(CATEGORY_VALUE in c for c in checked.rejects["categories"])
    # the good bar of 09:06 is stored, the column is gone and the stored rows are clean floats
    assert checked.valid["ts"].dt.strftime("%H:%M").tolist() == ["09:00", "09:02", "09:04", "09:06", "09:07"]
    assert "provider_problem" not in checked.valid.columns and "provider_problem" not in checked.rejects.columns
    assert checked.valid["high"].dtype == np.float64
    schemas.candle_model(Timeframe.M1).validate(checked.valid)
    assert checked.reason_counts()["o is null"] == 1


def test_a_flagged_row_also_gets_every_other_rule_it_breaks():
    bars = _bars(3)
    bars["provider_problem"] = [None, "n is 'x' (not a number)", None]
    bars.loc[1, ["high", "low"]] = bars.loc[1, ["low", "high"]].to_numpy()  # and high < low as well
    checked = validate_bars(bars, Timeframe.M1)
    first, *others = checked.rejects["reason"].iloc[0].split("; ")
    assert first == "n is 'x' (not a number)"  # the provider's words first, then the rules in any order
    assert sorted(others) == ["high < low", "high < max(open, close)", "low > min(open, close)"]
    assert checked.rejects["categories"].iloc[0] == {CATEGORY_VALUE, CATEGORY_OHLC}


def test_provider_problem_column_on_good_or_empty_frames():
    bars = _bars(4).assign(provider_problem=None)
    checked = validate_bars(bars, Timeframe.M1)
    assert checked.rows_rejected == 0 and list(checked.valid.columns) == list(_bars(4).columns)
    empty = validate_bars(bars.iloc[:0], Timeframe.M1)
    assert empty.valid.empty and "provider_problem" not in empty.valid.columns
    # a value nobody explains is still a broken frame, named in one line
    unexplained = _bars(3).assign(provider_problem=None)
    unexplained["low"] = unexplained["low"].astype(object)
    unexplained.loc[2, "low"] = "abc"
    with pytest.raises(BarsShapeError, match=r"EURUSD M1: column 'low' is not numeric \('abc'\)"):
        validate_bars(unexplained, Timeframe.M1, "EURUSD M1")
