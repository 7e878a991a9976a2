#!/usr/bin/env bash
# pristine-check.sh: `make run` and `make test` on a pristine Debian 12, as root and as an
# ordinary user, to prove the two commands install (or name) everything they need.
# Run by hand, as root, on a machine with a Docker engine; not part of `make test`.
#
# The machine is a Docker container of an image made here with debootstrap: bookworm's
# minbase with python3, make and git only, from this machine's Debian mirror. A container,
# not a chroot: it has its own network namespace, so the PostgreSQL and Redis this machine
# runs on 127.0.0.1 are not there to be found by mistake, while PyPI and the Debian mirror are
# reached through the engine's bridge (NAT); /proc, /sys and /dev come with it. It has the
# powers a machine's root has (all capabilities and devices, writable cgroups), so that
# `make test` can start the Docker engine its Compose test needs inside it, with
# /var/lib/docker on a volume of its own (removed with the container); /tmp too, since an
# overlay mount (the Docker engine's, install.sh's test) cannot have its upper directory on
# the container's own overlay root, while on a machine's disk it can. This machine's CA
# bundle ($SSL_CERT_FILE) is handed in read-only for HTTPS to PyPI; resolv.conf is the
# engine's (this machine's), made a file of the container's /etc.
#
# The repository goes in as a clone of this working tree's HEAD (commit first: uncommitted
# changes are not in it), at /root/hearth for root and /home/tester/hearth for the user
# `tester`. Each step reports its result and duration:
#   root-run   make run as root until /readyz answers 200, then Ctrl-C (SIGINT) stops it
#   root-test  make test as root
#   user-run   make run as tester
#   user-test  make test as tester
# Steps run in the order given, in one container (so user steps after root steps find what
# root's installed); `--steps user-run,user-test` alone shows what a user meets on a machine
# where nothing was installed. Logs go to $HEARTH_PRISTINE_DIR (default
# /var/tmp/hearth-pristine)/<time>/.
# shellcheck disable=SC2016 # the single-quoted commands are expanded by the container's shell
set -euo pipefail

usage="usage: scripts/pristine-check.sh [--steps LIST] [--rebuild] [--keep]
  --steps LIST  comma-separated steps among root-run, root-test, user-run, user-test
                (default: root-run,root-test,user-run,user-test)
  --rebuild     make the pristine image again even if the engine has it
  --keep        leave the container running at the end (docker rm -f -v NAME removes it)"

steps="root-run,root-test,user-run,user-test"
rebuild=false
keep=false
while [ $# -gt 0 ]; do
    case $1 in
        --steps)
            [ $# -ge 2 ] || { echo "$usage" >&2; exit 2; }
            steps=$2
            shift 2
            ;;
        --rebuild) rebuild=true; shift ;;
        --keep) keep=true; shift ;;
        -h | --help) echo "$usage"; exit 0 ;;
        *) echo "$usage" >&2; exit 2 ;;
    esac
done

cd "$(dirname "$0")/.."
root=$PWD
image=hearth-pristine/debian-minbase:bookworm-1
container=hearth-pristine-$$
suite=bookworm
ready_timeout=${HEARTH_PRISTINE_READY_TIMEOUT:-1200}
test_timeout=${HEARTH_PRISTINE_TEST_TIMEOUT:-10800}
logs=${HEARTH_PRISTINE_DIR:-/var/tmp/hearth-pristine}/$(date -u +%Y%m%dT%H%M%SZ)
ca_bundle=${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}

fail() {
    echo "pristine-check: error: $*" >&2
    exit 1
}

log() {
    echo "pristine-check: $*"
}

IFS=, read -r -a step_list <<<"$steps"
for step in "${step_list[@]}"; do
    case $step in root-run | root-test | user-run | user-test) ;; *) fail "unknown step '$step'." ;; esac
done
[ "$(id -u)" = 0 ] || fail "run it as root (debootstrap, and a container with root's powers)."
docker info >/dev/null 2>&1 || fail "no Docker engine answers (docker info fails)."
[ -r "$ca_bundle" ] || fail "cannot read the CA bundle $ca_bundle (SSL_CERT_FILE)."
mkdir -p "$logs"

# shellcheck source=scripts/lib/debian-mirror.sh
source scripts/lib/debian-mirror.sh # the working directory is the repository

make_image() {
    if ! $rebuild && docker image inspect "$image" >/dev/null 2>&1; then
        log "image $image: made before (--rebuild makes it again)"
        return
    fi
    if ! command -v debootstrap >/dev/null 2>&1; then
        scripts/apt-install.sh "for the pristine image" debootstrap --no-install-recommends
    fi
    local mirror rootfs started=$SECONDS
    mirror=$(debian_mirror)
    rootfs=$(mktemp -d /var/tmp/hearth-pristine-rootfs.XXXXXX)
    log "making $image: debootstrap --variant=minbase --include=python3,make,git $suite from $mirror"
    if ! debootstrap --variant=minbase --include=python3,make,git "$suite" "$rootfs" "$mirror" \
        >"$logs/debootstrap.log" 2>&1; then
        tail -n 20 "$logs/debootstrap.log" >&2
        rm -rf "$rootfs"
        fail "debootstrap failed (the end of $logs/debootstrap.log is above)."
    fi
    # As a fresh install leaves it: no package lists yet (apt-get update fetches them).
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    tar --numeric-owner -C "$rootfs" -c . |
        docker import --change 'ENV LANG=C.UTF-8' - "$image" >/dev/null
    rm -rf "$rootfs"
    log "made $image in $((SECONDS - started)) s"
}

cleanup() {
    if $keep; then
        log "the container $container is left running (docker rm -f -v $container removes it)"
    else
        docker rm -f -v "$container" >/dev/null 2>&1 || true
    fi
}

results=()
report() {
    results+=("$(printf '%-10s %-6s %6s s  %s' "$1" "$2" "$3" "$4")")
    log "$1: $2 in $3 s${4:+ ($4)}"
}

# The commands run inside, as root or as tester, from the user's clone.
in_container() {
    local user=$1
    shift
    local home=/root
    [ "$user" = root ] || home=/home/$user
    docker exec -u "$user" -w "$home/hearth" -e HOME="$home" -e USER="$user" \
        -e SSL_CERT_FILE=/run/pristine/ca.pem -e PIP_CERT=/run/pristine/ca.pem \
        -e REQUESTS_CA_BUNDLE=/run/pristine/ca.pem "$container" "$@"
}

# The modes of the directories above the two clones: embedded PostgreSQL must not open up
# more of them than it needs.
directory_modes() {
    in_container root stat -c '%n %a' /root /home/tester 2>/dev/null | paste -sd ' ' || true
}

# make run, in the background inside; polls /readyz with the image's python3 (no curl in a
# minbase); then Ctrl-C, as a person stops it.
run_step() {
    local user=$1 name=$2 started=$SECONDS status=""
    in_container "$user" bash -c 'setsid make run >/tmp/make-run-$USER.log 2>&1 & echo $! >/tmp/make-run-$USER.pid'
    while [ $((SECONDS - started)) -lt "$ready_timeout" ]; do
        status=$(in_container "$user" python3 -c '
import urllib.request, urllib.error
try:
    print(urllib.request.urlopen("http://127.0.0.1:8000/readyz", timeout=5).status)
except urllib.error.HTTPError as exc:
    print(exc.code)
except OSError:
    print("-")' 2>/dev/null || echo "-")
        [ "$status" = 200 ] && break
        if ! in_container "$user" bash -c 'kill -0 "$(cat /tmp/make-run-$USER.pid)"' 2>/dev/null; then
            status=exited
            break
        fi
        sleep 1
    done
    local ready=$((SECONDS - started))
    # Ctrl-C: SIGINT to make's process group, as a terminal sends it.
    in_container "$user" bash -c 'kill -INT -- -"$(cat /tmp/make-run-$USER.pid)"' 2>/dev/null || true
    local stopped=no
    for _ in $(seq 60); do
        if ! in_container "$user" bash -c 'kill -0 "$(cat /tmp/make-run-$USER.pid)"' 2>/dev/null; then
            stopped=yes
            break
        fi
        sleep 1
    done
    [ "$stopped" = yes ] || in_container "$user" bash -c 'kill -KILL -- -"$(cat /tmp/make-run-$USER.pid)"' 2>/dev/null || true
    docker cp "$container:/tmp/make-run-$user.log" "$logs/$name.log" >/dev/null 2>&1 || true
    local modes
    modes=$(directory_modes)
    if [ "$status" = 200 ]; then
        report "$name" ok "$ready" "/readyz 200; stopped by Ctrl-C: $stopped; modes: $modes_before -> $modes"
    else
        report "$name" FAILED "$ready" "/readyz: ${status:-no answer}; see $logs/$name.log"
        tail -n 15 "$logs/$name.log" | sed 's/^/    /'
    fi
}

test_step() {
    local user=$1 name=$2 started=$SECONDS code=0
    in_container "$user" timeout --signal=INT "$test_timeout" make test \
        >"$logs/$name.log" 2>&1 || code=$?
    local took=$((SECONDS - started)) summary
    summary=$(grep -E '^(=+ )?[0-9]+ (passed|failed|error)|^make: \*\*\*|stops here|^FAILED|^ERROR' \
        "$logs/$name.log" | tail -n 3 | tr '\n' ' ' || true)
    if [ "$code" = 0 ]; then
        report "$name" ok "$took" "$summary"
    else
        report "$name" FAILED "$took" "exit $code; $summary; see $logs/$name.log"
        tail -n 25 "$logs/$name.log" | sed 's/^/    /'
    fi
}

started_all=$SECONDS
make_image
clone=$(mktemp -d /var/tmp/hearth-pristine-clone.XXXXXX)
trap 'cleanup; rm -rf "$clone"' EXIT
git clone --quiet --no-hardlinks "$root" "$clone/hearth"
log "repository: $(git -C "$clone/hearth" log -1 --format='%h %s')"
if [ -n "$(git status --porcelain)" ]; then
    log "note: the working tree has uncommitted changes, which the clone does not hold"
fi

# Every capability but CAP_SYS_RESOURCE, which this engine may not grant (so no
# --privileged), all devices, no seccomp or AppArmor profile, a cgroup namespace of its own,
# and a machine's /dev/shm rather than the engine's 64 MB (PostgreSQL's shared memory).
docker run -d --name "$container" --hostname pristine \
    --cap-add ALL --cap-drop SYS_RESOURCE --device-cgroup-rule 'a *:* rmw' \
    --security-opt seccomp=unconfined --security-opt apparmor=unconfined \
    --security-opt systempaths=unconfined --cgroupns private --shm-size 2g \
    --mount type=volume,dst=/var/lib/docker --mount type=volume,dst=/tmp \
    -v "$ca_bundle:/run/pristine/ca.pem:ro" \
    "$image" bash -c 'trap "exit 0" TERM; while :; do sleep 3600 & wait $!; done' >/dev/null
# What a machine's root has and a container lacks: /sys and the cgroup hierarchies writable
# (the engine mounts them read-only), so the Docker engine `make test` starts can work; and
# resolv.conf, hosts and hostname as files of /etc rather than the engine's bind mounts over
# it, which an overlay mounted on /etc (install.sh's test) would hide, leaving no DNS.
docker exec "$container" bash -c 'for file in /etc/resolv.conf /etc/hosts /etc/hostname; do
        content=$(cat "$file")
        umount "$file" && printf "%s\n" "$content" >"$file"
    done
    mount -o remount,rw /sys
    if [ "$(stat -fc %T /sys/fs/cgroup)" = cgroup2fs ]; then
        mount -o remount,rw /sys/fs/cgroup
    else
        for hierarchy in /sys/fs/cgroup/*/; do
            name=$(basename "$hierarchy")
            options=$name
            [ "$name" = systemd ] && options=none,name=systemd
            umount "$hierarchy" && mount -t cgroup -o "$options" cgroup "$hierarchy"
        done
    fi' || fail "cannot set up /etc, /sys and the cgroups in the container."
docker cp "$clone/hearth" "$container:/root/hearth"
docker exec "$container" bash -c 'useradd --create-home --shell /bin/bash tester &&
    cp -a /root/hearth /home/tester/hearth && chown -R tester:tester /home/tester/hearth'
modes_before=$(directory_modes)
log "container $container: $(docker exec "$container" cat /etc/debian_version), python3," \
    "make, git; logs in $logs/"

for step in "${step_list[@]}"; do
    user=root
    [ "${step%-*}" = root ] || user=tester
    case $step in
        *-run) run_step "$user" "$step" ;;
        *-test) test_step "$user" "$step" ;;
    esac
done

log "summary ($((SECONDS - started_all)) s in all):"
printf '  %s\n' "${results[@]}"
