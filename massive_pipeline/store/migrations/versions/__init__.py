"""Revisions of the candle store schema, oldest first; each file is frozen once released."""
