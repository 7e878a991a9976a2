#!/usr/bin/env bash
# Makes sure the browser tests have a Chromium: the one HEARTH_CHROMIUM names, or Debian's at
# /usr/bin/chromium, which it installs with apt-get when it can (root and apt-get); and
# libatomic1, which the Node.js of Playwright's driver (in .venv) links against and a minimal
# Debian lacks. Silent when there is nothing to do. Never runs `playwright install`: that
# downloads a browser build of Playwright's own, which fails on a closed network; Debian's
# package works as well.
set -euo pipefail

chromium=/usr/bin/chromium

can_apt() {
    [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1
}

# Playwright's driver: the Node.js binary the playwright package ships. It runs with what
# the system has; where it cannot start for want of libatomic.so.1, install libatomic1.
has_libatomic() {
    # Not `ldconfig -p | grep -q`: grep leaving early would fail the pipe (pipefail).
    case $(/sbin/ldconfig -p 2>/dev/null) in *"libatomic.so.1 "*) return 0 ;; *) return 1 ;; esac
}
if ! has_libatomic; then
    if ! can_apt; then
        echo "error: the browser tests need libatomic.so.1 (Playwright's driver, a Node.js" \
            "binary, links against it), and it is not installed." >&2
        echo "On Debian/Ubuntu install it with:" >&2
        echo "    sudo apt-get install libatomic1" >&2
        exit 1
    fi
    "$(dirname "$0")/apt-install.sh" "for Playwright's driver" libatomic1 --no-install-recommends
    if ! has_libatomic; then
        echo "error: apt-get installed libatomic1, but ldconfig does not list libatomic.so.1." >&2
        exit 1
    fi
fi

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

if ! can_apt; then
    echo "error: the browser tests need Chromium at $chromium, and it is not installed." >&2
    echo "On Debian/Ubuntu install it with:" >&2
    echo "    sudo apt-get install chromium" >&2
    echo "On other systems, set HEARTH_CHROMIUM to the path of a Chromium or Chrome binary." >&2
    exit 1
fi

started=$SECONDS
"$(dirname "$0")/apt-install.sh" "for the browser tests" chromium
if [ ! -x "$chromium" ]; then
    echo "error: apt-get installed chromium, but there is no $chromium." >&2
    exit 1
fi
echo "Installed $("$chromium" --version 2>/dev/null || echo chromium) at $chromium" \
    "in $((SECONDS - started)) s."
