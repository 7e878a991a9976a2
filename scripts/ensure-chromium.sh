#!/usr/bin/env bash
# Makes sure the browser tests have a Chromium: the one HEARTH_CHROMIUM names, or Debian's at
# /usr/bin/chromium, which it installs with apt-get when it can (root and apt-get).
# Silent when there is nothing to do. Never runs `playwright install`: that downloads a browser
# build of Playwright's own, which fails on a closed network; Debian's package works as well.
set -euo pipefail

chromium=/usr/bin/chromium

if [ -n "${HEARTH_CHROMIUM:-}" ]; then
    if [ -f "$HEARTH_CHROMIUM" ] && [ -x "$HEARTH_CHROMIUM" ]; then
        exit 0
    fi
    echo "error: HEARTH_CHROMIUM is set to '$HEARTH_CHROMIUM', which is not an executable file." >&2
    echo "Point it at a Chromium or Chrome binary, or unset it to use Debian's $chromium." >&2
    exit 1
fi

if [ -x "$chromium" ]; then
    exit 0
fi

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "error: the browser tests need Chromium at $chromium, and it is not installed." >&2
    echo "On Debian/Ubuntu install it with:" >&2
    echo "    sudo apt-get install chromium" >&2
    echo "On other systems, set HEARTH_CHROMIUM to the path of a Chromium or Chrome binary." >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
trap 'rm -f "$log"' EXIT

# Waits for another apt-get or dpkg to finish instead of failing on its lock.
apt_get() {
    apt-get -qq -o DPkg::Lock::Timeout=300 "$@" >>"$log" 2>&1
}

echo "Installing Chromium with apt-get (for the browser tests)..."
started=$SECONDS
# Missing or outdated package lists make the install fail (no such package, or a 404 for a
# version the mirror has replaced): refresh them then, and try once more.
if ! apt_get install -y chromium; then
    if ! { apt_get update && apt_get install -y chromium; }; then
        cat "$log" >&2
        echo "error: 'apt-get install chromium' failed (output above)." >&2
        exit 1
    fi
fi
if [ ! -x "$chromium" ]; then
    echo "error: apt-get installed chromium, but there is no $chromium." >&2
    exit 1
fi
echo "Installed $("$chromium" --version 2>/dev/null || echo chromium) at $chromium" \
    "in $((SECONDS - started)) s."
