#!/usr/bin/env bash
# Installs uv into .tools/ (a private virtual environment) when it is not on PATH.
# A venv sidesteps PEP 668: Debian and Ubuntu refuse `pip install` into the system Python.
set -euo pipefail

python=${1:-python3}
version=${2:?usage: bootstrap-uv.sh PYTHON UV_VERSION}
tools=.tools

if ! command -v "$python" >/dev/null 2>&1; then
    echo "error: $python not found. Install Python 3.11 or newer (Debian/Ubuntu: apt-get install python3)." >&2
    exit 1
fi
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "error: Hearth needs Python 3.11 or newer; $python is $("$python" -V 2>&1)." >&2
    exit 1
fi

if ! "$python" -m venv "$tools" >/dev/null 2>&1; then
    rm -rf "$tools"
    # Debian and Ubuntu ship venv separately.
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "Installing python3-venv with apt-get (needed to install uv)..."
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv
        "$python" -m venv "$tools"
    else
        echo "error: '$python -m venv' does not work here. On Debian/Ubuntu run:" >&2
        echo "    sudo apt-get install python3-venv" >&2
        echo "or install uv yourself (https://docs.astral.sh/uv/) and run make again." >&2
        exit 1
    fi
fi
"$tools/bin/python" -m pip install --quiet --disable-pip-version-check "uv==$version"
echo "Installed $("$tools/bin/uv" --version) in $tools/"
