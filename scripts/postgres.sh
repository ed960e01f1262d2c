#!/usr/bin/env bash
# Run a throw-away PostgreSQL on 127.0.0.1 for Conveyor's tests and for trying the distributed mode on one machine:
# Debian's server binaries (installed when missing) and a cluster of its own, apart from Debian's `main` cluster.
# Every local and 127.0.0.1 connection is trusted without a password: never keep data that matters in it.
# Idempotent: when the server already answers, only the role and the database are checked.
#
#   CONVEYOR_POSTGRES_PORT  the port on 127.0.0.1 (default 15432)
#   CONVEYOR_POSTGRES_DATA  the data directory, also holding the unix socket (default /var/lib/conveyor-postgres)
#   CONVEYOR_POSTGRES_LOG   the server's log (default /var/log/conveyor-postgres.log)
#
# Then connect to postgresql+asyncpg://conveyor@127.0.0.1:15432/conveyor (the role `conveyor` may create databases).
set -Eeuo pipefail

PORT="${CONVEYOR_POSTGRES_PORT:-15432}"
DATA="${CONVEYOR_POSTGRES_DATA:-/var/lib/conveyor-postgres}"
SERVER_LOG="${CONVEYOR_POSTGRES_LOG:-/var/log/conveyor-postgres.log}"
STARTED=$SECONDS

# shellcheck source=scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

[[ "$PORT" =~ ^[0-9]+$ ]] || fail "CONVEYOR_POSTGRES_PORT must be a port number, got '$PORT'"

# The major versions whose server is installed, one a line.
server_versions() {
    local path
    for path in /usr/lib/postgresql/*/bin/postgres; do
        if [[ -x "$path" ]]; then
            path=${path#/usr/lib/postgresql/}
            printf '%s\n' "${path%%/*}"
        fi
    done
}

# Debian's server when none is installed; then the newest one, unless the data directory was made by another: a
# cluster runs only on its own major version.
install_server() {
    if [[ -z "$(server_versions)" ]]; then
        [[ $(id -u) -eq 0 ]] || fail "PostgreSQL's server is not installed, and installing it needs root"
        apt_install postgresql
        [[ -n "$(server_versions)" ]] || fail "apt-get installed postgresql but no server is in /usr/lib/postgresql"
    fi
    local version
    if [[ -f "$DATA/PG_VERSION" ]]; then
        version=$(cat "$DATA/PG_VERSION")
        [[ -x "/usr/lib/postgresql/$version/bin/postgres" ]] \
            || fail "$DATA holds a PostgreSQL $version cluster, whose server is missing: remove $DATA to start afresh"
    else
        version=$(server_versions | sort -V | tail -n 1)
    fi
    BIN="/usr/lib/postgresql/$version/bin"
}

answers() {
    "$BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT" -U postgres -d postgres -t 2
}

# As the cluster's owner, from a directory it may enter.
as_postgres() {
    if [[ $(id -un) == postgres ]]; then
        (cd / && "$@")
    else
        (cd / && runuser -u postgres -- "$@")
    fi
}

# initdb into a directory beside the data directory, moved into place when complete: a half-made cluster is never
# taken for a cluster.
create_cluster() {
    [[ -f "$DATA/PG_VERSION" ]] && return
    [[ ! -e "$DATA" ]] || fail "$DATA exists but holds no cluster: remove it to start afresh"
    id postgres >/dev/null 2>&1 || fail "no postgres user (Debian's postgresql package creates it)"
    local work="$DATA.new"
    rm -rf "$work"
    mkdir -p "$(dirname "$DATA")"
    install -d -o postgres -g postgres -m 700 "$work"
    say "creating a cluster with $BIN/initdb in $DATA"
    if ! as_postgres "$BIN/initdb" -D "$work" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 \
        >"$work.log" 2>&1; then
        cat "$work.log" >&2
        fail "initdb of $DATA failed (its output above)"
    fi
    printf "\ninclude_if_exists = 'conveyor.conf'\n" >>"$work/postgresql.conf"
    rm -f "$work.log"
    mv "$work" "$DATA"
}

# Written at every start, so that a changed port takes effect.
write_config() {
    cat >"$DATA/conveyor.conf" <<EOF
# Written by Conveyor's scripts/postgres.sh: a server for tests, on 127.0.0.1 only.
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$DATA'
# Each test has a database of its own and the services hold pools: many connections.
max_connections = 200
timezone = 'UTC'
log_timezone = 'UTC'
log_line_prefix = '%m [%p] %q%u@%d '
EOF
    cat >"$DATA/pg_hba.conf" <<'EOF'
# Written by Conveyor's scripts/postgres.sh: any role, without a password, from this machine only (tests only).
local all all               trust
host  all all 127.0.0.1/32  trust
EOF
    chown postgres:postgres "$DATA/conveyor.conf" "$DATA/pg_hba.conf"
}

running_pid() {
    local pid
    [[ -f "$DATA/postmaster.pid" ]] && pid=$(head -n 1 "$DATA/postmaster.pid") \
        && grep -qa postgres "/proc/$pid/cmdline" 2>/dev/null && printf '%s' "$pid"
}

start_server() {
    local pid deadline
    if pid=$(running_pid); then
        local port
        port=$(sed -n 4p "$DATA/postmaster.pid")
        [[ "$port" == "$PORT" ]] || fail "the server of $DATA runs on port $port, not $PORT: stop it with" \
            "'runuser -u postgres -- $BIN/pg_ctl stop -D $DATA' or set CONVEYOR_POSTGRES_PORT=$port"
        say "server process $pid is already running; waiting for it to answer"
    else
        # Left by a server that did not stop (the machine or container restarted): its pid may be another process's.
        rm -f "$DATA/postmaster.pid"
        write_config
        mkdir -p "$(dirname "$SERVER_LOG")"
        touch "$SERVER_LOG"
        chown postgres:postgres "$SERVER_LOG"
        say "starting $("$BIN/postgres" -V) on 127.0.0.1:$PORT (log: $SERVER_LOG)"
        # pg_ctl detaches the server; -w returns once it accepts connections, or as soon as it has exited.
        as_postgres "$BIN/pg_ctl" start -D "$DATA" -l "$SERVER_LOG" -w -t 60 -s >/dev/null \
            || { tail -n 30 "$SERVER_LOG" >&2; fail "the server exited, or did not start within 60s (its log above)"; }
        pid=$(running_pid) || { tail -n 30 "$SERVER_LOG" >&2; fail "the server exited (its log above)"; }
    fi
    deadline=$((SECONDS + 60))
    until answers; do
        kill -0 "$pid" 2>/dev/null || { tail -n 30 "$SERVER_LOG" >&2; fail "the server exited (its log above)"; }
        ((SECONDS < deadline)) || {
            tail -n 30 "$SERVER_LOG" >&2
            fail "the server (pid $pid) did not answer on 127.0.0.1:$PORT within 60s (its log above)"
        }
        sleep 0.2
    done
}

# The role and database that the tests and services connect as; VERSION is the server's.
ensure_role_and_database() {
    VERSION=$("$BIN/psql" -X -q -t -A -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PORT" -U postgres -d postgres <<'EOF'
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'conveyor') THEN
        CREATE ROLE conveyor LOGIN SUPERUSER CREATEDB;
    END IF;
END
$$;
SELECT 'CREATE DATABASE conveyor OWNER conveyor' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'conveyor')
\gexec
SELECT split_part(current_setting('server_version'), ' ', 1);
EOF
    ) || fail "could not create the role and database conveyor on 127.0.0.1:$PORT (psql's error above)"
}

install_server
if answers; then
    say "a server answers on 127.0.0.1:$PORT"
else
    [[ $(id -u) -eq 0 || $(id -un) == postgres ]] \
        || fail "no server answers on 127.0.0.1:$PORT, and starting one needs root"
    create_cluster
    start_server
fi
ensure_role_and_database
say "ready: PostgreSQL $VERSION answers on 127.0.0.1:$PORT ($((SECONDS - STARTED))s)"
