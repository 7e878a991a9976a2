#!/usr/bin/env bash
# test-systemd.sh: Hearth installed by deploy/systemd/install.sh under a real systemd, booted
# as PID 1 in a container on a real Docker engine (`make test-systemd`).
#
# usage: scripts/test-systemd.sh [PYTEST-ARGUMENTS...]
#
# Makes sure of a Docker engine and of the debootstrapped Debian base image exactly as
# scripts/test-compose.sh does (it sources that script's functions: Debian's docker.io is
# installed and dockerd started as root when missing, and stopped at the end if started
# here), then runs tests/systemd/in_container.py with pytest, which builds the systemd image
# once (tests/systemd/Dockerfile), and needs the suite's PostgreSQL and Redis on this host.
# Never skips: whatever is missing and cannot be installed fails the run, saying how to fix it.
set -euo pipefail

cd "$(dirname "$0")/.."
# shellcheck source=/dev/null
source scripts/test-compose.sh
# What it sets: the Python of .venv and the base image's tag.
python=${python:?} base_image=${base_image:?}
# After the source: the same helpers, under this test's name.
log() {
    echo "test-systemd: $*"
}
fail() {
    local message="$*"
    echo "test-systemd: error: ${message//make test-compose/make test-systemd}" >&2
    exit 1
}

case ${1:-} in
    -h | --help)
        awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
        exit 0
        ;;
esac

started=$SECONDS
ensure_engine
ensure_base_image
log "engine $(docker version --format '{{.Server.Version}}'), base $base_image," \
    "cgroup $(stat -fc %T /sys/fs/cgroup): ready in $((SECONDS - started)) s"
HEARTH_BASE_IMAGE=$base_image "$python" -m pytest -p no:cacheprovider \
    tests/systemd/in_container.py "$@"
