#!/usr/bin/env bash
# The Vega libraries OpenSearch Dashboards 2.19 renders Vega panels with (vega 5.23.0,
# vega-interpreter 1.0.5, vega-lite 5.6.1: vega-lite versions after it need vega >= 5.24), for
# tests/test_dashboards.py to render every generated panel headless in node.
# Idempotent; installs into <repo>/.tools/vega (npm registry).
set -euo pipefail
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PREFIX="${REPO_ROOT}/.tools/vega"
WANT="vega@5.23.0 vega-lite@5.6.1 vega-interpreter@1.0.5"
if [[ -f "${PREFIX}/.installed" && "$(cat "${PREFIX}/.installed")" == "${WANT}" ]]; then
    echo "vega libraries present: ${PREFIX}"
    exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
    echo "error: npm is required to install the Vega libraries" >&2
    exit 1
fi
mkdir -p "${PREFIX}"
[[ -f "${PREFIX}/package.json" ]] || echo '{"private": true}' > "${PREFIX}/package.json"
# shellcheck disable=SC2086
npm install --prefix "${PREFIX}" --no-audit --no-fund --silent ${WANT}
echo "${WANT}" > "${PREFIX}/.installed"
echo "vega libraries installed: ${PREFIX}"
