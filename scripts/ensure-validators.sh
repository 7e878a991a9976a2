#!/usr/bin/env bash
# Makes sure the deployment-file tests have the two validators that do not come from PyPI
# for every platform: shellcheck and systemd-analyze (Debian's shellcheck and systemd
# packages), curl, which scripts/health-check.sh (tested against a real server) uses, and
# ps (procps), with which install.sh's test reads whom Hearth runs as; installing them with
# apt-get when it can (root and apt-get).
# Silent when there is nothing to do. The other validators (hadolint, actionlint, compose,
# helm, kubernetes-validate, kubectl) are locked dev dependencies in .venv.
set -euo pipefail

missing=()
command -v shellcheck >/dev/null 2>&1 || missing+=(shellcheck)
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v ps >/dev/null 2>&1 || missing+=(procps)
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "error: the deployment tests need ${missing[*]}, not installed here." >&2
    echo "On Debian/Ubuntu install them with:" >&2
    echo "    sudo apt-get install ${missing[*]}" >&2
    exit 1
fi

here=$(dirname "$0")
for package in "${missing[@]}"; do
    "$here/apt-install.sh" "deployment-file tests" "$package" --no-install-recommends
done
