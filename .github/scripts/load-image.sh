#!/usr/bin/env bash
# load-image.sh ARCHIVE ARCH NAME: loads the linux/ARCH image of the multi-platform OCI
# archive that the release workflow built (build job, docker/build-push-action with
# type=oci) into the Docker engine as NAME, for the jobs that run and scan it.
#
# It then checks that the engine holds those very layers: the image's RootFS layers must be
# the diff IDs that the archive's config for linux/ARCH names. (The image ID is no proof: an
# engine with the containerd image store shows a manifest digest there, not the config's.)
# It loads through `docker load` rather than skopeo's docker-daemon transport, so that no
# Docker API version has to match.
set -euo pipefail

fail() {
    echo "load-image: error: $*" >&2
    exit 1
}

[ $# -eq 3 ] || fail "usage: load-image.sh ARCHIVE ARCH NAME"
archive=$1
arch=$2
name=$3
[ -f "$archive" ] || fail "no archive at $archive"
for tool in jq skopeo docker tar; do
    command -v "$tool" >/dev/null 2>&1 || fail "$tool is not installed"
done

layout=$(mktemp -d)
trap 'rm -rf "$layout"' EXIT
tar -xf "$archive" -C "$layout"
[ -f "$layout/index.json" ] || fail "$archive is not an OCI image layout (no index.json)"

# sha256:abc… → the blob's path in the layout.
blob() {
    local path="$layout/blobs/${1/://}"
    [ -f "$path" ] || fail "$archive lacks the blob $1"
    echo "$path"
}

[ "$(jq '.manifests | length' "$layout/index.json")" = 1 ] ||
    fail "$archive must hold exactly one image index"
index=$(jq -r '.manifests[0].digest' "$layout/index.json")
manifest=$(jq -r --arg arch "$arch" \
    '[.manifests[] | select(.platform.os == "linux" and .platform.architecture == $arch)]
     | if length == 1 then .[0].digest else "" end' "$(blob "$index")")
[ -n "$manifest" ] || fail "the index $index has no single linux/$arch image"
config=$(jq -r '.config.digest' "$(blob "$manifest")")
expected=$(jq -c '.rootfs.diff_ids' "$(blob "$config")")

skopeo copy --quiet --override-os linux --override-arch "$arch" \
    "oci:$layout" "docker-archive:$layout/image.tar:$name"
docker load --quiet --input "$layout/image.tar" >/dev/null

loaded=$(docker image inspect --format '{{json .RootFS.Layers}}' "$name")
[ "$loaded" = "$expected" ] ||
    fail "$name does not hold the layers of linux/$arch in $archive: $loaded, not $expected"
architecture=$(docker image inspect --format '{{.Os}}/{{.Architecture}}' "$name")
[ "$architecture" = "linux/$arch" ] || fail "$name is $architecture, not linux/$arch"
echo "load-image: $name is linux/$arch $manifest of the index $index"
