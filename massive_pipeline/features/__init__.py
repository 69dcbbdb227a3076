"""Features computed from the stored candles: the model of a downstream consumer.

`compute.py` the pure feature functions (log returns, realized volatility, ATR), `checks.py`
their checks as pure functions of frames, `assets.py` one features asset per symbol × H1/D1
taking its candle asset as an input through the candle IO manager, `definitions.py` what the
composition root merges.
"""
