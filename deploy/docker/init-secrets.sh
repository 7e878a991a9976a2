#!/bin/sh
# init-secrets.sh [DIR]: writes the Docker secrets the Compose stack reads, once.
# Each missing file in DIR (default ./secrets) gets a fresh random value; an existing file is
# never touched, so running it again is safe. `make up` runs it for you.
#
#   secret_key         signs sessions and tokens (SECRET_KEY)
#   admin_password     the operator console's password (ADMIN_PASSWORD)
#   postgres_password  the password of PostgreSQL's `hearth` user
#   database_url       Hearth's DATABASE_URL, with that same password
#
# The directory is private to you (0700). The files in it are 0644 because Compose mounts
# them into the containers as they are, and Hearth runs there as an unprivileged user; the
# directory's mode keeps other users of this host out.
set -eu

dir=${1:-secrets}

random() {
    # Letters and digits only: safe in a URL, in YAML and on a command line.
    LC_ALL=C tr -dc 'A-Za-z0-9' </dev/urandom | head -c "$1"
}

write() {
    name=$1
    value=$2
    if [ -e "$dir/$name" ]; then
        return
    fi
    (umask 022 && printf '%s\n' "$value" >"$dir/$name.tmp")
    mv "$dir/$name.tmp" "$dir/$name"
    echo "Wrote $dir/$name"
}

mkdir -p "$dir"
chmod 0700 "$dir"

write secret_key "$(random 64)"
write admin_password "$(random 24)"
write postgres_password "$(random 32)"
if [ ! -e "$dir/database_url" ]; then
    password=$(head -n 1 "$dir/postgres_password")
    write database_url "postgresql://hearth:$password@postgres:5432/hearth"
fi
