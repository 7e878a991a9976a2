#!/bin/sh
# The official postgres image's interface, for the test-only image: POSTGRES_USER,
# POSTGRES_PASSWORD (or POSTGRES_PASSWORD_FILE), POSTGRES_DB, POSTGRES_INITDB_ARGS (split on
# spaces, as the official image does); on first start, initdb, then
# every /docker-entrypoint-initdb.d/*.sql against POSTGRES_DB on a server that listens on its
# socket only (so a TCP health check does not see it ready too early); then PostgreSQL on
# port 5432 of every interface, with password authentication over TCP.
set -eu

if [ "${1:-}" != postgres ]; then
    exec "$@"
fi
shift

if [ -n "${POSTGRES_PASSWORD_FILE:-}" ]; then
    POSTGRES_PASSWORD=$(cat "$POSTGRES_PASSWORD_FILE")
fi
: "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE}"
user=${POSTGRES_USER:-postgres}
database=${POSTGRES_DB:-$user}
socket_dir=/tmp

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    password_file=$(mktemp)
    printf '%s\n' "$POSTGRES_PASSWORD" >"$password_file"
    # PostgreSQL 18's initdb turns page checksums on by default, 17's (the real image's) off:
    # off first, as in 17, so only POSTGRES_INITDB_ARGS turns them on, as it must there.
    # shellcheck disable=SC2086 # word splitting is the interface
    initdb --pgdata="$PGDATA" --username="$user" --pwfile="$password_file" \
        --auth-local=trust --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 \
        --no-instructions --no-data-checksums ${POSTGRES_INITDB_ARGS:-} >/dev/null
    rm -f "$password_file"
    printf "listen_addresses = '*'\nunix_socket_directories = '%s'\n" "$socket_dir" \
        >>"$PGDATA/postgresql.conf"
    printf 'host all all all scram-sha-256\n' >>"$PGDATA/pg_hba.conf"

    pg_ctl --pgdata="$PGDATA" --silent --wait -o "-c listen_addresses=''" start
    if [ "$database" != postgres ]; then
        createdb --host="$socket_dir" --username="$user" "$database"
    fi
    for script in /docker-entrypoint-initdb.d/*.sql; do
        [ -e "$script" ] || continue
        echo "entrypoint: running $script"
        psql --host="$socket_dir" --username="$user" --dbname="$database" \
            --set=ON_ERROR_STOP=1 --quiet --file="$script"
    done
    pg_ctl --pgdata="$PGDATA" --silent --wait --mode=fast stop
    echo "entrypoint: initialised $PGDATA"
fi

exec postgres -D "$PGDATA" "$@"
