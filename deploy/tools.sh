#!/usr/bin/env bash
# Installs the tools the chart checks need, idempotently, into the engines cache (outside the repo):
#   helm                 built with `go install` from the Go module proxy
#   kubernetes-validate  from PyPI into its own virtualenv (it ships the Kubernetes schemas: offline)
# A second run is a no-op that takes well under a second.
#
# Usage: bash deploy/tools.sh            # progress on stderr; stdout is only KEY=VALUE lines:
#          FLOWLOOM_HELM=/…/bin/helm
#          FLOWLOOM_KUBERNETES_VALIDATE=/…/bin/kubernetes-validate
set -euo pipefail

HELM_VERSION="${FLOWLOOM_HELM_VERSION:-v3.21.4}"
KUBERNETES_VALIDATE_VERSION="${FLOWLOOM_KUBERNETES_VALIDATE_VERSION:-1.37.0}"

: "${HOME:=$(getent passwd "$(id -u)" | cut -d: -f6)}"
TOOLS_HOME="${FLOWLOOM_ENGINES_HOME:-$HOME/.cache/flowloom-engines}"
BIN="$TOOLS_HOME/bin"
VENV="$TOOLS_HOME/kubernetes-validate-venv"

say() { printf '[tools] %s\n' "$*" >&2; }
die() {
  printf '[tools] ERROR: %s\n' "$1" >&2
  shift
  local line
  for line in "$@"; do printf '[tools]   -> %s\n' "$line" >&2; done
  exit 1
}

mkdir -p "$BIN"
# Two runs at once (parallel test files, a person and CI) install once.
exec 9>"$TOOLS_HOME/.tools.lock"
flock 9

# helm: `go install` puts the module version into the build info, which `helm version` prints.
helm_ok() {
  [[ -x $BIN/helm ]] && [[ $("$BIN/helm" version --template '{{.Version}}' 2>/dev/null) == "$HELM_VERSION" ]]
}
if helm_ok; then
  say "helm $HELM_VERSION already installed ($BIN/helm)"
else
  command -v go >/dev/null || die "go is not installed, and helm is built with it" \
    "install Go ≥ 1.24 (apt-get install -y golang-go, or the toolchain of your choice), then run this again"
  say "building helm $HELM_VERSION with go install (first time: a few minutes; cached afterwards)"
  # The ldflags are the ones helm's Makefile sets: without them `helm version` says "v3.21" and helm
  # assumes Kubernetes 1.20 for `helm template` and lint's deprecation checks. The Kubernetes version is
  # one past the client-go helm is built with (v0.35.x → 1.35), as in the Makefile.
  (cd "$TOOLS_HOME" && GOFLAGS=-mod=mod go mod download -json "helm.sh/helm/v3@$HELM_VERSION" >/dev/null) ||
    die "go mod download helm.sh/helm/v3@$HELM_VERSION failed" \
      "check that the Go module proxy is reachable (go env GOPROXY)"
  helm_src="$(go env GOMODCACHE)/helm.sh/helm/v3@$HELM_VERSION"
  client_go="$(awk '$1 == "k8s.io/client-go" { print $2 }' "$helm_src/go.mod")" # v0.35.1
  k8s_minor="$(cut -d. -f2 <<<"$client_go")"
  ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
  for pkg in pkg/lint/rules pkg/chartutil; do
    ldflags+=" -X helm.sh/helm/v3/$pkg.k8sVersionMajor=1 -X helm.sh/helm/v3/$pkg.k8sVersionMinor=$k8s_minor"
  done
  # GOFLAGS=-mod=mod: ignore a go.work or vendor folder the caller may have around.
  GOBIN="$BIN" GOFLAGS=-mod=mod go install -ldflags "$ldflags" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" >&2 ||
    die "go install helm.sh/helm/v3/cmd/helm@$HELM_VERSION failed" \
      "check that the Go module proxy is reachable (go env GOPROXY) and that Go is recent enough"
  helm_ok || die "$BIN/helm does not report version $HELM_VERSION" \
    "it reports: $("$BIN/helm" version --short 2>&1 || true)"
fi

# kubernetes-validate: its own virtualenv, so nothing is installed into the system Python.
kv_ok() {
  [[ -x $VENV/bin/kubernetes-validate ]] &&
    [[ $("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("kubernetes-validate"))' 2>/dev/null) == "$KUBERNETES_VALIDATE_VERSION" ]]
}
if kv_ok; then
  say "kubernetes-validate $KUBERNETES_VALIDATE_VERSION already installed ($VENV)"
else
  PYTHON="$(command -v python3 || true)"
  [[ -n $PYTHON ]] || die "python3 is not installed" "apt-get install -y python3 python3-venv"
  say "installing kubernetes-validate $KUBERNETES_VALIDATE_VERSION from PyPI into $VENV"
  # An interrupted install leaves kv_ok false, so the next run starts this venv again from nothing.
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV" >&2 ||
    die "python3 -m venv failed" "apt-get install -y python3-venv (Debian splits it out), then run this again"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION" >&2 ||
    die "pip install kubernetes-validate==$KUBERNETES_VALIDATE_VERSION failed" "check that PyPI is reachable"
  kv_ok || die "kubernetes-validate did not install into $VENV"
fi
ln -sf "$VENV/bin/kubernetes-validate" "$BIN/kubernetes-validate"

echo "FLOWLOOM_HELM=$BIN/helm"
echo "FLOWLOOM_KUBERNETES_VALIDATE=$BIN/kubernetes-validate"
