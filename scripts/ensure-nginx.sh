#!/usr/bin/env bash
# Makes sure the reverse-proxy tests have nginx (Debian's nginx package), which they start as
# a private instance of their own on loopback (tests/support/nginx.py). Installs it with
# apt-get when it can (root and apt-get); silent when there is nothing to do.
# The system's nginx service is not wanted: if the install started it, it is stopped again.
set -euo pipefail

nginx=/usr/sbin/nginx

if [ -x "$nginx" ]; then
    exit 0
fi

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "error: the reverse-proxy tests need nginx ($nginx), and it is not installed." >&2
    echo "On Debian/Ubuntu install it with:" >&2
    echo "    sudo apt-get install nginx" >&2
    echo "The tests run a private instance on 127.0.0.1; the system service may stay stopped." >&2
    exit 1
fi

started=$SECONDS
"$(dirname "$0")/apt-install.sh" "for the reverse-proxy tests" nginx --no-install-recommends
if [ ! -x "$nginx" ]; then
    echo "error: apt-get installed nginx, but there is no $nginx." >&2
    exit 1
fi

# On a machine with an init system the package starts nginx on port 80 of every address.
# The tests do not use it, and nobody asked for a web server: stop it (it stays enabled;
# `systemctl disable nginx` or `update-rc.d nginx disable` turns that off).
if [ -d /run/systemd/system ]; then
    systemctl stop nginx.service >/dev/null 2>&1 || true
elif command -v invoke-rc.d >/dev/null 2>&1; then
    # Refused (exit 101) where a policy-rc.d kept the install from starting it: nothing to stop.
    invoke-rc.d nginx stop >/dev/null 2>&1 || true
fi
echo "Installed $("$nginx" -v 2>&1 | sed 's|^nginx version: ||' || echo nginx)" \
    "in $((SECONDS - started)) s; the system service is stopped, the tests run their own."
