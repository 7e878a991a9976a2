#!/usr/bin/env bash
# Makes sure the metrics tests have a real Prometheus and promtool: Debian's `prometheus`
# package (/usr/bin/prometheus, /usr/bin/promtool), which it installs with apt-get when it
# can (root and apt-get). Silent when there is nothing to do. The tests start their own
# Prometheus on a free port with a data directory of their own; the package's service is
# not needed (on a systemd host apt-get starts it; `systemctl disable --now prometheus`
# stops it if you do not want it).
set -euo pipefail

prometheus=/usr/bin/prometheus
promtool=/usr/bin/promtool

if [ -x "$prometheus" ] && [ -x "$promtool" ]; then
    exit 0
fi

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    missing=""
    [ -x "$prometheus" ] || missing="$missing $prometheus"
    [ -x "$promtool" ] || missing="$missing $promtool"
    echo "error: the metrics tests need Prometheus and promtool; missing:$missing" >&2
    echo "On Debian/Ubuntu install them with:" >&2
    echo "    sudo apt-get install prometheus" >&2
    exit 1
fi

started=$SECONDS
"$(dirname "$0")/apt-install.sh" "for the metrics tests" prometheus
for program in "$prometheus" "$promtool"; do
    if [ ! -x "$program" ]; then
        echo "error: apt-get installed prometheus, but there is no $program." >&2
        exit 1
    fi
done
echo "Installed $("$prometheus" --version 2>/dev/null | head -n 1 || echo prometheus)" \
    "in $((SECONDS - started)) s."
