#!/usr/bin/env bash
# Makes sure PostgreSQL (127.0.0.1:5432) and NATS with JetStream (127.0.0.1:4222) are running,
# installing them from Debian packages and starting them when they are not. Prints the
# OSB_TEST_POSTGRES_URL to use when it had to set a password itself (fresh installs do not
# trust TCP connections). Idempotent.
set -euo pipefail

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() {
  for _ in $(seq 1 60); do port_open "$1" && return 0; sleep 0.5; done
  echo "services: nothing listens on 127.0.0.1:$1 after 30 s" >&2; return 1
}

# --- PostgreSQL -------------------------------------------------------------------------
if ! port_open 5432; then
  if ! command -v pg_ctlcluster >/dev/null 2>&1; then
    echo "services: installing postgresql"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq postgresql
  fi
  version="$(ls /etc/postgresql | sort -n | tail -n 1)"
  if [ -z "$version" ]; then
    echo "services: no PostgreSQL cluster found under /etc/postgresql" >&2; exit 1
  fi
  echo "services: starting PostgreSQL $version"
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  wait_port 5432
fi
default_url="postgres://postgres@127.0.0.1:5432/postgres"
url="${OSB_TEST_POSTGRES_URL:-$default_url}"
if ! psql "$url" -Atqc 'select 1' >/dev/null 2>&1; then
  # A fresh install asks TCP clients for a password: give the test superuser one.
  echo "services: setting a password for the postgres role (fresh install)"
  as_root su postgres -c "psql -qc \"ALTER USER postgres PASSWORD 'postgres'\"" >/dev/null
  url="postgres://postgres:postgres@127.0.0.1:5432/postgres"
  psql "$url" -Atqc 'select 1' >/dev/null
  echo "OSB_TEST_POSTGRES_URL=$url"
fi

# --- NATS with JetStream --------------------------------------------------------------
if ! port_open 4222; then
  if ! command -v nats-server >/dev/null 2>&1 && [ ! -x /usr/sbin/nats-server ]; then
    echo "services: installing nats-server"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq nats-server
  fi
  nats_bin="$(command -v nats-server || echo /usr/sbin/nats-server)"
  echo "services: starting NATS with JetStream"
  as_root mkdir -p /var/lib/nats-server
  as_root start-stop-daemon --start --oknodo --background --exec "$nats_bin" -- \
    -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log
  wait_port 4222
fi
