#!/usr/bin/env bash
# Build srcohort's two Kaapana images for real, with Debian's buildah, on stand-ins for Kaapana's
# local base images, into a buildah store in srcohort's cache (outside the repository):
#
#   local-only/base-python-cpu:latest  Debian bookworm made with debootstrap: Python 3 in a venv
#                                      at /opt/venv on PATH and dcmtk, as Kaapana's base has them
#                                      (data-processing/base-images/base-python-cpu/Dockerfile;
#                                      Kaapana's is Ubuntu 24.04 with Python 3.12, torch, kaapanapy)
#   local-only/base-installer:latest   the same base (Kaapana's adds base-installer's run.py)
#   localhost/srcohort:<version>       ./Dockerfile, built in its own folder
#   localhost/dag-srcohort:0.0.0       extension/docker/Dockerfile, built in its own folder
#
# buildah runs rootless-free here with --storage-driver vfs --isolation chroot. The base is made
# once and kept; the two srcohort images are rebuilt every time (a changed Dockerfile or package
# must show). Prints the time of each stage. Usage: bash tools/build-kaapana-images.sh
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ -n "${SRCOHORT_CACHE:-}" ]]; then CACHE="${SRCOHORT_CACHE}"
elif [[ "$(id -u)" -eq 0 ]]; then CACHE=/var/cache/srcohort
else CACHE="${HOME}/.cache/srcohort"; fi
STORE="${CACHE}/buildah"
VERSION="${KAAPANA_BUILD_VERSION:-0.6.0}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
B=(buildah --storage-driver vfs --root "${STORE}/storage" --runroot "${STORE}/run")
mkdir -p "${STORE}"

stage() { echo "== $1: $(( SECONDS - started )) s"; started=${SECONDS}; }
started=${SECONDS}

if ! "${B[@]}" inspect --type image local-only/base-python-cpu:latest >/dev/null 2>&1; then
    rootfs="$(mktemp -d "${STORE}/rootfs.XXXXXX")"
    debootstrap --variant=minbase --include=python3,python3-venv,dcmtk,ca-certificates \
        bookworm "${rootfs}" "${MIRROR}" >/dev/null
    # This build machine's own TLS roots (a proxy's CA, if any): the image must reach PyPI
    # from here. They belong to the stand-in base only, never to srcohort's Dockerfile.
    cp /usr/local/share/ca-certificates/*.crt "${rootfs}/usr/local/share/ca-certificates/" \
        2>/dev/null || true
    chroot "${rootfs}" update-ca-certificates >/dev/null
    chroot "${rootfs}" python3 -m venv /opt/venv
    rm -rf "${rootfs}"/var/cache/apt/archives/*.deb "${rootfs}"/var/lib/apt/lists/*
    mkdir -p "${rootfs}/kaapana/app"
    stage "debootstrap"
    ctr="$("${B[@]}" from scratch)"
    "${B[@]}" copy "${ctr}" "${rootfs}/" / >/dev/null
    "${B[@]}" config --env PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        --env DEBIAN_FRONTEND=noninteractive --workingdir /kaapana/app \
        --env PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
        --env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
        --env REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt \
        --label IMAGE=base-python-cpu "${ctr}"
    "${B[@]}" commit --quiet "${ctr}" local-only/base-python-cpu:latest >/dev/null
    "${B[@]}" rm "${ctr}" >/dev/null
    "${B[@]}" tag local-only/base-python-cpu:latest local-only/base-installer:latest
    rm -rf "${rootfs}"
    stage "base image committed"
fi

"${B[@]}" bud --isolation chroot --layers=false --quiet -t "localhost/srcohort:${VERSION}" \
    -f "${REPO}/Dockerfile" "${REPO}" >/dev/null
stage "srcohort image (context: ${REPO})"
"${B[@]}" bud --isolation chroot --layers=false --quiet -t localhost/dag-srcohort:0.0.0 \
    -f "${REPO}/extension/docker/Dockerfile" "${REPO}/extension/docker" >/dev/null
stage "dag-srcohort image (context: extension/docker)"
"${B[@]}" images
echo "buildah store: ${STORE}"
