#!/usr/bin/env bash
# Installs (when missing) and starts the test engines on loopback; a no-op for those already up.
# usage: up.sh [postgres|redis|kafka ...]        (default: all three; npm run engines:up -- NAMES)
# stdout: one KEY=VALUE line per engine (its connection URL); progress goes to stderr.
set -euo pipefail
ENGINE=engines
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ALL=(postgres redis kafka)
names=("$@")
((${#names[@]})) || names=("${ALL[@]}")
for name in "${names[@]}"; do
  [[ " ${ALL[*]} " == *" $name "* ]] || die "unknown engine '$name'" "known engines: ${ALL[*]}"
done

failed=()
for name in "${names[@]}"; do
  bash "$ENGINES_DIR/$name.sh" up || failed+=("$name")
done
if ((${#failed[@]})); then
  die "failed to start: ${failed[*]} (messages above)" \
    "fix the cause and re-run: bash deploy/engines/up.sh ${failed[*]}" \
    "engines already up are left running; stop them with: bash deploy/engines/down.sh"
fi
say "up: ${names[*]} in $((SECONDS - _START))s; the URLs above are also exported by: source deploy/engines/env.sh"
