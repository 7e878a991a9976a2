#!/usr/bin/env bash
# push-image.sh ARCHIVE DIGEST REF...: pushes the OCI archive that the release workflow
# built, ran and scanned to each REF (registry/repository:tag), byte for byte: skopeo copies
# the image index with both platforms and their SBOM and provenance attestations, and
# --preserve-digests makes it fail rather than recompress or convert anything. DIGEST is the
# index digest the build recorded; the registry must then serve that index under it.
# Registry credentials come from `docker login` (docker/login-action), which skopeo reads.
set -euo pipefail

fail() {
    echo "push-image: error: $*" >&2
    exit 1
}

[ $# -ge 3 ] || fail "usage: push-image.sh ARCHIVE DIGEST REF..."
archive=$1
digest=$2
shift 2
[ -f "$archive" ] || fail "no archive at $archive"
[[ $digest =~ ^sha256:[0-9a-f]{64}$ ]] || fail "'$digest' is not a sha256 digest"

layout=$(mktemp -d)
trap 'rm -rf "$layout"' EXIT
tar -xf "$archive" -C "$layout"
archived=$(jq -r '.manifests[0].digest' "$layout/index.json")
[ "$archived" = "$digest" ] || fail "$archive holds the index $archived, not $digest"

for ref in "$@"; do
    [[ $ref == */*:* && $ref != *@* ]] || fail "'$ref' is not registry/repository:tag"
    echo "push-image: $ref"
    skopeo copy --quiet --all --preserve-digests "oci:$layout" "docker://$ref"
    served=$(skopeo inspect --raw "docker://$ref" | sha256sum | cut -d ' ' -f 1)
    [ "sha256:$served" = "$digest" ] || fail "$ref serves the index sha256:$served, not $digest"
done
echo "push-image: pushed $digest to $# tag(s)"
