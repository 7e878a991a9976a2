# shellcheck shell=bash
# debian_mirror: this machine's Debian mirror (the one apt uses), for debootstrap; Debian's
# own when apt names none. Sourced by scripts/test-compose.sh and scripts/pristine-check.sh.
debian_mirror() {
    local mirror
    mirror=$(
        {
            grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{ print $2 }'
            grep -hsE '^deb[[:space:]]' /etc/apt/sources.list /etc/apt/sources.list.d/*.list |
                awk '{ print ($2 ~ /^\[/) ? $3 : $2 }'
        } | grep -v -- '-security' | grep -m 1 '/debian/\?$' || true
    )
    echo "${mirror:-http://deb.debian.org/debian}"
}
