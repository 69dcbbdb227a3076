"""The candle assets: one partitioned asset per symbol × timeframe, their jobs, and launching runs.

`assets.py` builds the assets from the catalog (fetched base timeframe, derived higher ones),
`partitions.py` their partitions definitions, `jobs.py` the asset jobs sharing one partitions
definition, `launch.py` the command line's in-process launcher, and `write_report.py` what a write
tells the run (its metadata and its run config).
"""
