#!/usr/bin/env bash
# Makes sure the PostgreSQL, Redis and RabbitMQ servers the tests talk to answer on 127.0.0.1.
# Starts them when installed but down, installs them from Debian's packages when absent.
set -euo pipefail

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
apt_updated=0
apt_install() {
  if [ "$apt_updated" = 0 ]; then
    # an install interrupted earlier (a CI run stopped mid-way) leaves dpkg refusing every install
    as_root env DEBIAN_FRONTEND=noninteractive dpkg --configure -a
    as_root apt-get update -qq; apt_updated=1
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}
wait_for() {  # wait_for NAME CMD...: poll until CMD succeeds, 60 s at most
  local name=$1; shift
  for _ in $(seq 1 120); do "$@" >/dev/null 2>&1 && { echo "$name is up"; return 0; }; sleep 0.5; done
  echo "$name did not come up" >&2; return 1
}

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432; }
if ! command -v pg_isready >/dev/null 2>&1; then apt_install postgresql postgresql-client; fi
if ! pg_up; then
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then apt_install postgresql; fi
  ver=$(ls /etc/postgresql | sort -V | tail -n 1)
  conf=/etc/postgresql/$ver/main
  # trust auth on loopback for the test databases, as on the development machines
  if ! grep -q "^host all all 127.0.0.1/32 trust" "$conf/pg_hba.conf"; then
    as_root sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\nlocal all all trust' "$conf/pg_hba.conf"
  fi
  as_root pg_ctlcluster --skip-systemctl-redirect "$ver" main start || true
  wait_for PostgreSQL pg_up
  for db in test root; do
    psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='$db'" | grep -q 1 \
      || psql -h 127.0.0.1 -U postgres -c "CREATE DATABASE $db" >/dev/null
  done
else
  echo "PostgreSQL is up"
fi

redis_up() { redis-cli -h 127.0.0.1 -p 6379 ping | grep -q PONG; }
if ! command -v redis-server >/dev/null 2>&1; then apt_install redis-server redis-tools; fi
if ! redis_up; then
  as_root mkdir -p /var/lib/redis /var/log/redis
  as_root redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  wait_for Redis redis_up
else
  echo "Redis is up"
fi

# The Celery executor's test (massive_pipeline_tests/candles/test_celery_executor.py) takes its broker
# from MASSIVE_TEST_CELERY_BROKER, by default this RabbitMQ on 5672 (guest/guest, which RabbitMQ
# accepts from loopback). The listener opens once the broker has booted, so an open port is an answer.
amqp_up() { timeout 2 bash -c 'exec 3<>/dev/tcp/127.0.0.1/5672' 2>/dev/null; }
if [ -z "${MASSIVE_TEST_CELERY_BROKER:-}" ]; then
  if ! command -v rabbitmq-server >/dev/null 2>&1; then apt_install rabbitmq-server; fi
  if ! amqp_up; then
    if [ -x /etc/init.d/rabbitmq-server ]; then as_root /etc/init.d/rabbitmq-server start || true
    else as_root rabbitmq-server -detached || true; fi
    wait_for RabbitMQ amqp_up
  else
    echo "RabbitMQ is up"
  fi
fi

# The browser tests drive Debian's Chromium through Debian's chromedriver (nothing downloads a
# browser of its own).
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then apt_install chromium chromium-driver; fi
echo "Chromium: $(/usr/bin/chromium --version 2>/dev/null || echo missing)"
