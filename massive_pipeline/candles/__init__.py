"""The candle assets: one partitioned asset per symbol × timeframe, their partitions and jobs.

`assets.py` builds the assets from the catalog (fetched base timeframe, derived higher ones),
`partitions.py` their partitions definitions and the partition ranges of a span of days, `jobs.py`
the asset jobs sharing one partitions definition, and `write_report.py` what a write tells the run
(its metadata and its run config). Runs are requested from Dagster by the schedules and sensors;
the command line's in-process launcher is `cli/launch.py`.
"""
