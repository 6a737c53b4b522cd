#!/usr/bin/env bash
# Build MinIO's server from source through the Go module proxy into srcohort's cache (outside
# the repository, beside the OpenSearch distribution): the real S3 server of the Kaapana test
# platform (tests/platform/bucket.py). Idempotent: nothing happens when the wanted build is there.
# About 3-5 minutes and 150 MB with a cold Go module cache; seconds with a warm one.
# Usage: bash tools/install-minio.sh   (env MINIO_VERSION overrides the pinned version)
set -euo pipefail

# The newest module version when this was written (`go install ...@latest` resolved to it).
MINIO_VERSION="${MINIO_VERSION:-v0.0.0-20260212201848-7aac2a2c5b7c}"
if [[ -n "${SRCOHORT_CACHE:-}" ]]; then
    CACHE="${SRCOHORT_CACHE}"
elif [[ "$(id -u)" -eq 0 ]]; then
    CACHE=/var/cache/srcohort
else
    CACHE="${HOME}/.cache/srcohort"
fi
BIN_DIR="${CACHE}/bin"
STAMP="${BIN_DIR}/minio.version"

if [[ -x "${BIN_DIR}/minio" && "$(cat "${STAMP}" 2>/dev/null)" == "${MINIO_VERSION}" ]]; then
    echo "minio ${MINIO_VERSION} already installed: ${BIN_DIR}/minio"
    exit 0
fi
if ! command -v go >/dev/null 2>&1; then
    echo "error: go is required to build MinIO (apt-get install golang-go)" >&2
    exit 1
fi
mkdir -p "${BIN_DIR}"
echo "building minio ${MINIO_VERSION} with $(go version) ..."
start=${SECONDS}
(cd /tmp && GOBIN="${BIN_DIR}" CGO_ENABLED=0 go install "github.com/minio/minio@${MINIO_VERSION}")
echo "${MINIO_VERSION}" > "${STAMP}"
echo "built in $((SECONDS - start)) s: ${BIN_DIR}/minio"
