#!/bin/sh
# backup.sh: the Compose stack's scheduled database backup (the `backup` profile of
# docker-compose.yml, which runs it in the PostgreSQL image: pg_dump is then the server's own
# major version, and its dump restores into that server).
#
#   backup.sh           a dump now, then one every BACKUP_INTERVAL, until stopped
#   backup.sh --once    one dump, then exit: 0 when it was written and pg_restore reads it
#   backup.sh --check   the health check: 0 while the newest dump is younger than two intervals
#
# Each dump is /backups/hearth-<UTC time>.dump, pg_dump's custom format (pg_restore reads it),
# mode 0600; written under a temporary name and renamed once pg_restore has read it back, so a
# dump under the final name is always whole. Then all but the newest BACKUP_KEEP are removed.
#
# Environment: BACKUP_INTERVAL (default 1d: a number of seconds, or with m, h or d),
# BACKUP_KEEP (default 7), POSTGRES_PASSWORD_FILE, and libpq's PGHOST, PGUSER, PGDATABASE.
set -eu

dir=/backups
interval=${BACKUP_INTERVAL:-1d}
keep=${BACKUP_KEEP:-7}
# Dumps hold every document and setting: for this user only.
umask 077

fail() {
    echo "backup: error: $*" >&2
    exit 1
}

log() {
    echo "backup: $(date -u +%Y-%m-%dT%H:%M:%SZ) $*"
}

# 90, 90s, 15m, 6h, 1d -> seconds; nothing for anything else.
seconds() {
    number=${1%[smhd]}
    case $number in
        "" | *[!0-9]*) return 1 ;;
    esac
    case $1 in
        *m) echo $((number * 60)) ;;
        *h) echo $((number * 3600)) ;;
        *d) echo $((number * 86400)) ;;
        *) echo "$number" ;;
    esac
}

if ! period=$(seconds "$interval") || [ "$period" -eq 0 ]; then
    fail "BACKUP_INTERVAL must be a number of seconds, or of minutes, hours or days with" \
        "m, h or d (e.g. 6h or 1d); it is '$interval'."
fi
case $keep in
    "" | *[!0-9]* | 0) fail "BACKUP_KEEP must be a whole number, 1 or more; it is '$keep'." ;;
esac

# The dumps, newest first (their names sort by time).
dumps() {
    find "$dir" -maxdepth 1 -type f -name 'hearth-*.dump' 2>/dev/null | sort -r
}

if [ "${1:-}" = --check ]; then
    newest=$(dumps | head -n 1)
    [ -n "$newest" ] || fail "no dump in $dir yet."
    age=$(($(date +%s) - $(stat -c %Y "$newest")))
    [ "$age" -lt $((2 * period)) ] ||
        fail "the newest dump, $newest, is $age s old (BACKUP_INTERVAL is $interval)."
    echo "backup: the newest dump, $newest, is $age s old"
    exit 0
fi

[ -d "$dir" ] || fail "$dir is not mounted (BACKUP_DIR in docker-compose.yml)."
probe=$dir/.hearth-write-probe
if ! (: >"$probe") 2>/dev/null; then
    fail "cannot write to BACKUP_DIR ($dir here; owned by uid $(stat -c %u "$dir"), running as" \
        "uid $(id -u)): set BACKUP_USER in .env to the owner's uid:gid, as $(stat -c %u:%g "$dir")."
fi
rm -f "$probe"
# What a dump cut short by a stop left behind.
find "$dir" -maxdepth 1 -type f -name '.hearth-*.dump.partial' -exec rm -f {} +
password_file=${POSTGRES_PASSWORD_FILE:-/run/secrets/postgres_password}
PGPASSWORD=$(cat "$password_file") || fail "cannot read the database password from $password_file."
export PGPASSWORD

dump() {
    name=hearth-$(date -u +%Y%m%dT%H%M%SZ).dump
    partial=$dir/.$name.partial
    if ! pg_dump --format=custom --file="$partial"; then
        rm -f "$partial"
        echo "backup: error: pg_dump failed (its message is above); no dump written" >&2
        return 1
    fi
    if ! pg_restore --list "$partial" >/dev/null; then
        rm -f "$partial"
        echo "backup: error: pg_restore cannot read the dump just made; removed it" >&2
        return 1
    fi
    mv "$partial" "$dir/$name"
    log "wrote $dir/$name ($(wc -c <"$dir/$name") bytes)"
    dumps | tail -n +$((keep + 1)) | while read -r old; do
        rm -f "$old"
        log "removed $old (BACKUP_KEEP is $keep)"
    done
}

if [ "${1:-}" = --once ]; then
    dump
    exit
fi
[ $# -eq 0 ] || fail "unknown argument '$1' (--once, --check or none)."

# This shell is the container's PID 1, which ignores SIGTERM unless it asks for it: stop at
# once on `docker compose stop`, not after its timeout (a dump cut short is never renamed).
trap 'exit 0' TERM INT
log "a dump now, then every $interval, keeping the newest $keep, in $dir"
while :; do
    # A failed dump is logged and tried again at the next interval; the health check turns
    # unhealthy once no dump is younger than two intervals.
    dump || true
    # In the background and waited for: a trap runs only once the command it interrupts ends.
    sleep "$period" &
    wait $!
done
