"""Alembic migrations of the candle store (run by `massive_pipeline.store.migrate`, not by users)."""
