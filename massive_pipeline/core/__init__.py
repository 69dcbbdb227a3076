"""The Dagster-free core: the symbol catalog, market calendars, timeframes, resampling and time.

Pure functions and value objects with no I/O but reading the catalog file: everything above
(the client, the store, the assets) builds on these, and these import nothing of theirs.
"""
