#!/usr/bin/env bash
# Make sure PostgreSQL and RabbitMQ answer on their standard local ports: start them when
# they are installed and down; say what to do when they are missing. Then make sure the
# project can log in to PostgreSQL over TCP (see ensure_postgres_login).
#   infra/local/ensure-services.sh                 everything
#   infra/local/ensure-services.sh postgres-login  only the login step (CRM_PG_PORT, PGHOST,
#                                                  PGPASSFILE move it; tests use a private cluster)
set -uo pipefail

PG_PORT=${CRM_PG_PORT:-5432}
# The passwords provision_database gives the service roles when none is set (the role's name).
SERVICE_ROLES=(identity_svc:identity engagement_svc:engagement rewards_svc:rewards)

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {
  local port=$1 name=$2 seconds=${3:-60}
  for _ in $(seq "$seconds"); do port_open "$port" && return 0; sleep 1; done
  echo "error: $name did not come up on 127.0.0.1:$port within ${seconds}s" >&2
  return 1
}

# The project connects as postgres (provisioning, tests) and as each service's role, over TCP
# to 127.0.0.1, with no password in its URLs. A fresh Debian cluster refuses that (pg_hba.conf:
# peer on the socket, scram-sha-256 on TCP). libpq and asyncpg both read passwords from
# ~/.pgpass (or $PGPASSFILE), so, as root, this gives postgres a random password over the unix
# socket (peer auth as the postgres OS user), sets the service roles' passwords to the ones
# provisioning gives them, and writes all of them to that file. pg_hba.conf is left alone.
pg_login_works() {
  psql -w -X -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -tAc "SELECT 1" >/dev/null 2>&1
}

as_postgres_psql() {
  su postgres -s /bin/sh -c "psql -X -q -v ON_ERROR_STOP=1 -p $PG_PORT -d postgres" >/dev/null
}

ensure_postgres_login() {
  pg_login_works && return 0
  local passfile=${PGPASSFILE:-$HOME/.pgpass}
  if [ "$(id -u)" -ne 0 ] || ! command -v psql >/dev/null || ! id postgres >/dev/null 2>&1; then
    cat >&2 <<MSG
error: cannot log in to PostgreSQL on 127.0.0.1:$PG_PORT as postgres without a password.
  Debian's default pg_hba.conf asks for a password on TCP. Either run this as root once
  (it sets passwords and writes $passfile), or do it yourself:
    sudo -u postgres psql -c "ALTER ROLE postgres PASSWORD 'choose-one'"
    printf '127.0.0.1:$PG_PORT:*:postgres:choose-one\n' >> $passfile; chmod 600 $passfile
  and one line 127.0.0.1:$PG_PORT:*:<service>_svc:<service> for identity, engagement and
  rewards; or trust local TCP logins in pg_hba.conf (host all all 127.0.0.1/32 trust).
MSG
    return 1
  fi
  echo "PostgreSQL asks for passwords on TCP: setting them, and writing $passfile" >&2
  local password sql="" entry role secret
  password=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
  sql="ALTER ROLE postgres PASSWORD '$password';"
  for entry in "${SERVICE_ROLES[@]}"; do
    role=${entry%%:*} secret=${entry#*:}
    sql+=" DO \$\$ BEGIN IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$role') THEN"
    sql+=" ALTER ROLE $role PASSWORD '$secret'; END IF; END \$\$;"
  done
  if ! printf '%s\n' "$sql" | as_postgres_psql; then
    echo "error: could not set passwords as the postgres OS user (peer auth on the socket)" >&2
    return 1
  fi
  touch "$passfile" && chmod 600 "$passfile"
  # Replace earlier lines of this script for the same host and port, keep everything else.
  grep -v "^127\.0\.0\.1:$PG_PORT:\*:\(postgres\|[a-z]*_svc\):" "$passfile" > "$passfile.new"
  {
    echo "127.0.0.1:$PG_PORT:*:postgres:$password"
    for entry in "${SERVICE_ROLES[@]}"; do echo "127.0.0.1:$PG_PORT:*:$entry"; done
  } >> "$passfile.new"
  mv "$passfile.new" "$passfile" && chmod 600 "$passfile"
  pg_login_works || { echo "error: still cannot log in as postgres over TCP" >&2; return 1; }
}

if [ "${1:-}" = postgres-login ]; then
  ensure_postgres_login
  exit
fi

if ! port_open "$PG_PORT"; then
  if command -v pg_ctlcluster >/dev/null && ls /etc/postgresql >/dev/null 2>&1; then
    echo "starting PostgreSQL..." >&2
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n1)" main start
    wait_port "$PG_PORT" PostgreSQL 60 || exit 1
  else
    echo "error: PostgreSQL is not running on 127.0.0.1:$PG_PORT and is not installed here." >&2
    echo "  Install it (Debian: apt-get install postgresql), or run" >&2
    echo "  'docker compose up postgres'." >&2
    exit 1
  fi
fi
ensure_postgres_login || exit 1

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
