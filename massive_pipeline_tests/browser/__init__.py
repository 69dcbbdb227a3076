"""The Dagster UI driven in headless Chromium."""
