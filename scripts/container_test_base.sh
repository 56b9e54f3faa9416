#!/usr/bin/env bash
# A local stand-in for the python:X.Y-slim base image, for machines that reach the Debian mirror
# and the package index but no container registry (tests/integration/test_journey_build.py then
# builds and runs the image of `keel build` on it):
#   sudo ./scripts/container_test_base.sh            # -> localhost/keel-test-base:bookworm
#   KEELWORK_TEST_BASE_IMAGE=localhost/keel-test-base:bookworm pytest tests/integration/test_journey_build.py
# Debian bookworm (minbase) with its python3 (3.11), pip and `python`; the host's CA bundle goes in
# so pip in the build trusts what this machine trusts (an intercepting proxy's CA); Debian's
# "externally managed" marker is removed, as the python images have none. Needs root, debootstrap
# and podman (apt-get install debootstrap podman buildah).
set -euo pipefail
name=${1:-localhost/keel-test-base:bookworm}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
debootstrap --variant=minbase --include=python3,python3-pip,python-is-python3,ca-certificates \
  bookworm "$root/fs" "$mirror" >"$root/debootstrap.log" 2>&1 || { tail -20 "$root/debootstrap.log"; exit 1; }
rm -f "$root"/fs/usr/lib/python3.*/EXTERNALLY-MANAGED
cp /etc/ssl/certs/ca-certificates.crt "$root/fs/etc/ssl/certs/ca-certificates.crt"
tar -C "$root/fs" -cf "$root/base.tar" .
podman --storage-driver vfs import --change 'CMD ["python3"]' "$root/base.tar" "$name"
echo "base image: $name"
