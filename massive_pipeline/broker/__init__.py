"""Broker comparison: a broker's MT4/MT5 bar exports against the store's candles.

`exports` reads the files, `offset` finds the broker's server-time offset from the data,
`compare` measures broker − store prices, `comparison` runs the three and records the result
(the CLI and the Dagster asset both call it). The Dagster part (`brokers.yaml`, the sensor and the
`brokers/<name>/<symbol>` assets) is in `config`, `filenames`, `assets`, `sensor` and `definitions`.
"""
