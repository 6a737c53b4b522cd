#!/usr/bin/env bash
# Build helm from source into <repo>/.tools/bin (no binary download needed).
# Idempotent: does nothing when .tools/bin/helm is already the wanted version.
# Usage: bash tools/install-helm.sh   (env HELM_VERSION overrides the version)
set -euo pipefail

HELM_VERSION="${HELM_VERSION:-v3.16.4}"
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN_DIR="${REPO_ROOT}/.tools/bin"
HELM="${BIN_DIR}/helm"

# The build below stamps the version, so `helm version` reports it like a
# release binary does.
installed_version() {
    "$1" version --template '{{.Version}}' 2>/dev/null || true
}

if [[ -x "${HELM}" && "$(installed_version "${HELM}")" == "${HELM_VERSION}" ]]; then
    echo "helm ${HELM_VERSION} already installed: ${HELM}"
    exit 0
fi

if ! command -v go >/dev/null 2>&1; then
    echo "error: go is required to build helm (https://go.dev/dl/)" >&2
    exit 1
fi

mkdir -p "${BIN_DIR}"
echo "building helm ${HELM_VERSION} with $(go version) ..."
start=${SECONDS}
GOBIN="${BIN_DIR}" CGO_ENABLED=0 go install \
    -ldflags "-X helm.sh/helm/v3/internal/version.version=${HELM_VERSION}" \
    "helm.sh/helm/v3/cmd/helm@${HELM_VERSION}"
echo "built in $((SECONDS - start)) s"

"${HELM}" version --short
echo "helm installed: ${HELM}"
