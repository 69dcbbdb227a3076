#!/bin/sh
# Run once by the postgres image on an empty data directory (/docker-entrypoint-initdb.d): the
# candle store gets its own database, next to Dagster's. They must not share one: both have a
# table named `snapshots`.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -c "CREATE DATABASE \"${MASSIVE_CANDLES_DB:-candles}\""
