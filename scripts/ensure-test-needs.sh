#!/usr/bin/env bash
# Makes sure of everything outside .venv that `make test` needs, before it spends minutes on
# lint and type checks: each scripts/ensure-*.sh in turn (PostgreSQL and Redis, Chromium and
# Playwright's libatomic1, Dovecot, nginx, shellcheck/systemd-analyze/curl, Prometheus). As
# root they install and start what is missing; otherwise each says what to run. All are
# asked, so one run names everything that is missing, and the packages to install are
# gathered into a single apt-get command. The Docker engine is the Compose test's own
# (scripts/test-compose.sh installs and starts it as root); as another user it is checked
# here. Silent when there is nothing to do.
set -euo pipefail

here=$(dirname "$0")
errors=$(mktemp)
trap 'rm -f "$errors" "$errors.packages"' EXIT
failed=0

for need in postgres redis chromium dovecot nginx validators prometheus; do
    if ! "$here/ensure-$need.sh" 2>"$errors"; then
        failed=$((failed + 1))
    fi
    if [ -s "$errors" ]; then
        cat "$errors" >&2
        sed -n 's/^ *sudo apt-get install //p' "$errors" >>"$errors.packages"
    fi
done

if [ "$(id -u)" != 0 ] && ! docker info >/dev/null 2>&1; then
    failed=$((failed + 1))
    echo "error: the Compose test needs a Docker engine that $(id -un) may use, and" \
        "\`docker info\` fails." >&2
    if command -v docker >/dev/null 2>&1; then
        echo "Start the engine if it is not running, and let yourself use it (then log in again):" >&2
        echo "    sudo systemctl start docker   (without systemd: sudo dockerd &)" >&2
    else
        echo "On Debian/Ubuntu install it, and let yourself use it (then log in again):" >&2
        echo "    sudo apt-get install docker.io" >&2
        echo "docker.io" >>"$errors.packages"
    fi
    echo "    sudo usermod -aG docker $(id -un)" >&2
fi

packages=""
if [ -f "$errors.packages" ]; then
    packages=$(tr ' ' '\n' <"$errors.packages" | awk 'NF && !seen[$0]++' | tr '\n' ' ')
    rm -f "$errors.packages"
fi
if [ "$failed" -gt 0 ]; then
    echo >&2
    echo "make test stops here: $failed of the tests' needs are missing (above)." >&2
    if [ -n "$packages" ]; then
        echo "The packages, all at once: sudo apt-get install ${packages% }" >&2
    fi
    echo "Run make test as root to have it install and start them." >&2
    exit 1
fi
