#!/usr/bin/env bash
# Makes sure the mail tests have Dovecot's IMAP server (Debian's dovecot-imapd), which they
# start as a private instance of their own on loopback (tests/support/mail.py). Installs it
# with apt-get when it can (root and apt-get); silent when there is nothing to do.
# The system's Dovecot service is not wanted: if the install started it, it is stopped again.
set -euo pipefail

dovecot=/usr/sbin/dovecot
imap=/usr/lib/dovecot/imap

if [ -x "$dovecot" ] && [ -x "$imap" ]; then
    exit 0
fi

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "error: the mail tests need Dovecot's IMAP server ($dovecot and $imap)," \
        "and it is not installed." >&2
    echo "On Debian/Ubuntu install it with:" >&2
    echo "    sudo apt-get install dovecot-imapd" >&2
    echo "The tests run a private instance on 127.0.0.1; the system service may stay stopped." >&2
    exit 1
fi

started=$SECONDS
"$(dirname "$0")/apt-install.sh" "for the mail tests" dovecot-imapd --no-install-recommends
if [ ! -x "$dovecot" ] || [ ! -x "$imap" ]; then
    echo "error: apt-get installed dovecot-imapd, but there is no $dovecot or $imap." >&2
    exit 1
fi

# On a machine with an init system the package starts Dovecot on ports 143 and 993 of every
# address. The tests do not use it, and nobody asked for a mail server: stop it (it stays
# enabled; `systemctl disable dovecot` or `update-rc.d dovecot disable` turns that off).
if [ -d /run/systemd/system ]; then
    systemctl stop dovecot.socket dovecot.service >/dev/null 2>&1 || true
elif command -v invoke-rc.d >/dev/null 2>&1; then
    # Refused (exit 101) where a policy-rc.d kept the install from starting it: nothing to stop.
    invoke-rc.d dovecot stop >/dev/null 2>&1 || true
fi
echo "Installed $("$dovecot" --version 2>/dev/null | sed 's/^/Dovecot /' || echo dovecot)" \
    "in $((SECONDS - started)) s; the system service is stopped, the tests run their own."
