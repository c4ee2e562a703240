#!/usr/bin/env bash
# Checks the deployment files offline, with no cluster and no Docker engine:
#   1. helm lint --strict, with the default values and with values-production.yaml
#   2. helm template, both ways, into OUT_DIR/default.yaml and OUT_DIR/production.yaml
#   3. kubernetes-validate --strict against the Kubernetes schemas (FLOWLOOM_KUBE_VERSION, default 1.36)
#   4. hadolint on the Dockerfile
#   5. docker-compose.yml loaded as `docker compose config` does (compose-go) into OUT_DIR/compose.json,
#      with deploy/compose.env.example as its .env
# It installs its tools first (deploy/tools.sh). Stops at the first failing step and names it.
#
# Usage: bash deploy/helm-check.sh [OUT_DIR]      (default: a new temporary folder, printed at the end)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CHART="$ROOT/helm/flowloom"
KUBE_VERSION="${FLOWLOOM_KUBE_VERSION:-1.36}"
OUT="${1:-$(mktemp -d "${TMPDIR:-/tmp}/flowloom-helm-check.XXXXXX")}"
mkdir -p "$OUT"

tools="$(bash "$ROOT/deploy/tools.sh")"
eval "$(grep -E '^FLOWLOOM_[A-Z_]+=' <<<"$tools" | sed 's/^/export /')"

current=""
step() {
  current="$1"
  printf '\n[helm-check] %s\n' "$1" >&2
}
on_exit() {
  local rc=$?
  [[ $rc -eq 0 ]] || printf '\n[helm-check] FAILED: %s (exit %s)\n' "$current" "$rc" >&2
}
trap on_exit EXIT

step "helm lint --strict (default values)"
"$FLOWLOOM_HELM" lint --strict --kube-version "$KUBE_VERSION" "$CHART" >&2

step "helm lint --strict (values-production.yaml)"
"$FLOWLOOM_HELM" lint --strict --kube-version "$KUBE_VERSION" -f "$CHART/values-production.yaml" "$CHART" >&2

step "helm template (default values) > $OUT/default.yaml"
"$FLOWLOOM_HELM" template flowloom "$CHART" --namespace flowloom --kube-version "$KUBE_VERSION" \
  >"$OUT/default.yaml"

step "helm template (values-production.yaml) > $OUT/production.yaml"
"$FLOWLOOM_HELM" template flowloom "$CHART" --namespace flowloom --kube-version "$KUBE_VERSION" \
  -f "$CHART/values-production.yaml" >"$OUT/production.yaml"

step "kubernetes-validate --strict -k $KUBE_VERSION"
"$FLOWLOOM_KUBERNETES_VALIDATE" --strict --quiet -k "$KUBE_VERSION" "$OUT/default.yaml" "$OUT/production.yaml" >&2

step "hadolint Dockerfile"
"$FLOWLOOM_HADOLINT" "$ROOT/Dockerfile" >&2

step "docker-compose.yml (compose-go, as docker compose config) > $OUT/compose.json"
mkdir -p "$OUT/compose"
cp "$ROOT/docker-compose.yml" "$OUT/compose/docker-compose.yml"
# The example .env with the one value compose insists on.
sed 's/^POSTGRES_PASSWORD=$/POSTGRES_PASSWORD=check-only/' "$ROOT/deploy/compose.env.example" >"$OUT/compose/.env"
"$FLOWLOOM_COMPOSE_CHECK" -f "$OUT/compose/docker-compose.yml" -env-file "$OUT/compose/.env" >"$OUT/compose.json"

printf '\n[helm-check] all checks passed; rendered files in %s\n' "$OUT" >&2
echo "$OUT"
