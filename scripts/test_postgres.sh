# shellcheck shell=bash
# Sourced by test.sh after scripts/bootstrap.sh (it uses apt_install from there).
# test_postgres_start gives the test run a throwaway PostgreSQL server and exports
# CALLCENTER_TEST_PG_URL for pytest; an EXIT trap stops the server and deletes its
# directory however the run ends. When CALLCENTER_TEST_PG_URL is already set, that
# server is used and nothing is started.
#   - the cluster lives in a mktemp directory, owned by the `postgres` user when we are
#     root (the server refuses to run as root);
#   - it listens on 127.0.0.1 only, on a port that was free a moment before, with its
#     unix socket inside the directory, so it cannot meet a system cluster;
#   - trust authentication, and durability off: the data is thrown away anyway.

TEST_PG_DB=callcenter_test
TEST_PG_READY_TIMEOUT_S=30
TEST_PG_DIR=""
TEST_PG_BIN=""

# Run a server-side command as the cluster's owner, from inside the cluster directory
# (the postgres user may not be allowed into the repository's directory).
_test_pg_as_owner() {
    if [[ $EUID -eq 0 ]]; then
        (cd "$TEST_PG_DIR" && runuser -u postgres -- "$@")
    else
        (cd "$TEST_PG_DIR" && "$@")
    fi
}

_test_pg_free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

test_postgres_stop() {
    if [[ -z "$TEST_PG_DIR" ]]; then return 0; fi
    if [[ -f "$TEST_PG_DIR/data/postmaster.pid" ]]; then
        _test_pg_as_owner "$TEST_PG_BIN/pg_ctl" stop -D "$TEST_PG_DIR/data" -m immediate -w \
            >/dev/null 2>&1 || true
    fi
    rm -rf "$TEST_PG_DIR"
    TEST_PG_DIR=""
}

# Start the server on PORT and wait until it accepts connections. Fails early when the
# server logs a FATAL error (a port taken between the check and the bind, say) other
# than the one our own pg_isready probes cause while it starts up.
_test_pg_start_on() {
    local port=$1 log="$TEST_PG_DIR/server.log" deadline
    _test_pg_as_owner "$TEST_PG_BIN/pg_ctl" start -W -D "$TEST_PG_DIR/data" -l "$log" \
        -o "-p $port" >/dev/null || return 1
    deadline=$((SECONDS + TEST_PG_READY_TIMEOUT_S))
    until "$TEST_PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$port" -d postgres -U postgres; do
        if awk '/FATAL/ && !/the database system is starting up/ { bad = 1 } END { exit !bad }' \
            "$log" 2>/dev/null || ((SECONDS >= deadline)); then
            cat "$log" >&2 2>/dev/null || true
            _test_pg_as_owner "$TEST_PG_BIN/pg_ctl" stop -D "$TEST_PG_DIR/data" -m immediate \
                -w >/dev/null 2>&1 || true
            return 1
        fi
        sleep 0.1
    done
}

test_postgres_start() {
    if [[ -n "${CALLCENTER_TEST_PG_URL:-}" ]]; then
        echo "test.sh: using the PostgreSQL server given in CALLCENTER_TEST_PG_URL" >&2
        return 0
    fi
    if ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
        apt_install postgresql || return 1
    fi
    TEST_PG_BIN="$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
    if [[ ! -x "$TEST_PG_BIN/initdb" ]]; then
        echo "test.sh: no initdb under /usr/lib/postgresql after installing postgresql" >&2
        return 1
    fi

    TEST_PG_DIR="$(mktemp -d "${TMPDIR:-/tmp}/callcenter-test-pg.XXXXXX")" || return 1
    trap test_postgres_stop EXIT
    # Without these, Ctrl-C or a kill would end the shell without running the EXIT trap.
    trap 'exit 130' INT
    trap 'exit 143' TERM
    if [[ $EUID -eq 0 ]]; then chown postgres:postgres "$TEST_PG_DIR" || return 1; fi

    _test_pg_as_owner "$TEST_PG_BIN/initdb" -D "$TEST_PG_DIR/data" -U postgres \
        --auth=trust --encoding=UTF8 --locale=C --no-sync >/dev/null || return 1
    _test_pg_as_owner tee "$TEST_PG_DIR/data/pg_hba.conf" >/dev/null <<'EOF' || return 1
local all all            trust
host  all all 127.0.0.1/32 trust
EOF
    _test_pg_as_owner tee -a "$TEST_PG_DIR/data/postgresql.conf" >/dev/null <<EOF || return 1
listen_addresses = '127.0.0.1'
unix_socket_directories = '$TEST_PG_DIR'
fsync = off
synchronous_commit = off
full_page_writes = off
EOF

    local attempt port=""
    for attempt in 1 2 3; do
        port="$(_test_pg_free_port)"
        if _test_pg_start_on "$port"; then break; fi
        echo "test.sh: PostgreSQL did not start on port $port (attempt $attempt)" >&2
        port=""
        rm -f "$TEST_PG_DIR/server.log"
    done
    if [[ -z "$port" ]]; then return 1; fi

    "$TEST_PG_BIN/createdb" -h 127.0.0.1 -p "$port" -U postgres "$TEST_PG_DB" || return 1
    export CALLCENTER_TEST_PG_URL="postgresql+asyncpg://postgres@127.0.0.1:$port/$TEST_PG_DB"
    echo "test.sh: throwaway PostgreSQL at 127.0.0.1:$port ($TEST_PG_DIR)" >&2
}
