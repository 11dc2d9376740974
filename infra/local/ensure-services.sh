#!/usr/bin/env bash
# Make sure PostgreSQL and RabbitMQ answer on their standard local ports: start them when
# they are installed and down; say what to do when they are missing.
set -uo pipefail

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {
  local port=$1 name=$2 seconds=${3:-60}
  for _ in $(seq "$seconds"); do port_open "$port" && return 0; sleep 1; done
  echo "error: $name did not come up on 127.0.0.1:$port within ${seconds}s" >&2
  return 1
}

if ! port_open 5432; then
  if command -v pg_ctlcluster >/dev/null && ls /etc/postgresql >/dev/null 2>&1; then
    echo "starting PostgreSQL..." >&2
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n1)" main start
    wait_port 5432 PostgreSQL 60 || exit 1
  else
    echo "error: PostgreSQL is not running on 127.0.0.1:5432 and is not installed here." >&2
    echo "  Install it (Debian: apt-get install postgresql) with trust auth for local" >&2
    echo "  connections, or run 'docker compose up postgres'." >&2
    exit 1
  fi
fi

if ! port_open 5672; then
  if command -v rabbitmq-server >/dev/null; then
    echo "starting RabbitMQ..." >&2
    rabbitmq-server -detached
    wait_port 5672 RabbitMQ 90 || exit 1
  else
    echo "error: RabbitMQ is not running on 127.0.0.1:5672 and is not installed here." >&2
    echo "  Install it (Debian: apt-get install rabbitmq-server), or run" >&2
    echo "  'docker compose up rabbitmq'." >&2
    exit 1
  fi
fi
# Partner subscriptions are provisioned through the management HTTP API (identity.partners).
# Enabling an enabled plugin is a no-op, and it needs no broker restart.
if command -v rabbitmq-plugins >/dev/null && ! port_open 15672; then
  rabbitmq-plugins -q enable rabbitmq_management >/dev/null || {
    echo "error: could not enable rabbitmq_management (partner subscriptions need it)" >&2
    exit 1
  }
  wait_port 15672 "RabbitMQ management" 60 || exit 1
fi
echo "PostgreSQL and RabbitMQ (with management on :15672) are up." >&2
