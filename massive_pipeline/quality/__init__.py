"""Data quality: validation before storage, asset checks, gaps, verify report."""
