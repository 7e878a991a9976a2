#!/usr/bin/env bash
# Makes sure the tests have Redis: redis-server installed (the worker tests start servers of
# their own on free ports) and a server answering at TEST_REDIS_URL (default
# redis://127.0.0.1:6379/15). As root, installs Debian's redis-server with apt-get and, when
# nothing answers at that local address, starts one there: loopback only, nothing saved to
# disk, left running after the tests (stop it with `redis-cli -p PORT shutdown nosave`).
# Otherwise stops and names the command to run. Silent when there is nothing to do.
set -euo pipefail

here=$(dirname "$0")
url=${TEST_REDIS_URL:-redis://127.0.0.1:6379/15}

fail() {
    echo "error: $*" >&2
    exit 1
}

can_apt() {
    [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1
}

[[ $url =~ ^rediss?://([^@/]*@)?(\[([^]]*)\]|([^:/]*))(:([0-9]+))? ]] ||
    fail "TEST_REDIS_URL=$url is not a redis:// URL."
host=${BASH_REMATCH[3]:-${BASH_REMATCH[4]:-127.0.0.1}}
port=${BASH_REMATCH[6]:-6379}

answers() {
    # shellcheck disable=SC2016 # $1 and $2 are the inner shell's arguments
    timeout 3 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$host" "$port" 2>/dev/null
}

is_local() {
    case $host in 127.* | localhost | ::1) return 0 ;; *) return 1 ;; esac
}

start_command="redis-server --daemonize yes --bind $host --port $port --save '' --appendonly no"

if ! command -v redis-server >/dev/null 2>&1; then
    if ! can_apt; then
        echo "error: the tests need redis-server (the worker tests start their own), and it is" \
            "not installed." >&2
        echo "On Debian/Ubuntu install it with:" >&2
        echo "    sudo apt-get install redis-server" >&2
        answers || echo "and, unless the package's service starts it, run: $start_command" >&2
        exit 1
    fi
    started=$SECONDS
    "$here/apt-install.sh" "for the Redis tests" redis-server --no-install-recommends
    command -v redis-server >/dev/null 2>&1 ||
        fail "apt-get installed redis-server, but there is no redis-server on PATH."
    echo "Installed $(redis-server --version | cut -d ' ' -f 1-3) in $((SECONDS - started)) s."
fi

if answers; then
    exit 0
fi
if ! is_local; then
    fail "nothing answers at TEST_REDIS_URL=$url: start that Redis, or point TEST_REDIS_URL" \
        "at one that runs."
fi
if [ "$(id -u)" != 0 ]; then
    echo "error: the tests need Redis at $host:$port (TEST_REDIS_URL), and nothing answers there." >&2
    echo "Start one with:" >&2
    echo "    $start_command" >&2
    echo "(or sudo systemctl start redis-server), or set TEST_REDIS_URL to a Redis that runs." >&2
    exit 1
fi

# As the package's redis user where there is one: a server need not run as root.
as_redis=()
directory=/tmp
if id redis >/dev/null 2>&1 && [ -d /var/lib/redis ]; then
    as_redis=(runuser -u redis --)
    directory=/var/lib/redis
fi
"${as_redis[@]}" redis-server --daemonize yes --bind "$host" --port "$port" --save '' \
    --appendonly no --dir "$directory" --logfile '' --pidfile "$directory/test-redis-$port.pid" ||
    fail "redis-server did not start on $host:$port (see its output above)."
for _ in $(seq 50); do
    if answers; then
        echo "Started redis-server on $host:$port for the tests; it keeps running" \
            "(stop it with: redis-cli -p $port shutdown nosave)."
        exit 0
    fi
    sleep 0.2
done
fail "redis-server was started on $host:$port but does not answer there after 10 s."
