#!/usr/bin/env bash
# apt-install.sh PURPOSE PACKAGE [apt-get install options...]
# Installs a Debian package for the test suite, quietly: waits for another apt-get or dpkg
# instead of failing on its lock, and refreshes the package lists once if the install fails
# (missing or outdated lists: no such package, or a 404 for a version the mirror replaced).
# Prints apt's output only when it fails. The caller checks it may install (root, apt-get).
set -euo pipefail

purpose=$1
package=$2
shift 2

export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
trap 'rm -f "$log"' EXIT

apt_get() {
    apt-get -qq -o DPkg::Lock::Timeout=300 "$@" >>"$log" 2>&1
}

echo "Installing $package with apt-get ($purpose)..."
if ! apt_get install -y "$@" "$package"; then
    if ! { apt_get update && apt_get install -y "$@" "$package"; }; then
        cat "$log" >&2
        echo "error: 'apt-get install $package' failed (output above)." >&2
        exit 1
    fi
fi
