"""Reliability: the pipeline under crashes, faults, concurrency, a database outage and bad input."""
