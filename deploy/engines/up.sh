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

# Kafka's first run spends about a minute in Maven; let that overlap the other engines' start.
# Only when Java and Maven are already there, so that two scripts never run apt at once.
prefetch_pid=""
if [[ " ${names[*]} " == *" kafka "* ]] && ((${#names[@]} > 1)) &&
  command -v java >/dev/null && command -v mvn >/dev/null; then
  bash "$ENGINES_DIR/kafka.sh" fetch &
  prefetch_pid=$!
  trap '[[ -n $prefetch_pid ]] && kill "$prefetch_pid" 2>/dev/null' EXIT
fi

failed=()
for name in "${names[@]}"; do
  if [[ $name == kafka && -n $prefetch_pid ]]; then
    # A failed prefetch is not fatal here: `kafka.sh up` fetches again and reports the cause.
    wait "$prefetch_pid" || true
    prefetch_pid=""
  fi
  bash "$ENGINES_DIR/$name.sh" up || failed+=("$name")
done
if ((${#failed[@]})); then
  die "failed to start: ${failed[*]} (messages above)" \
    "fix the cause and re-run: bash deploy/engines/up.sh ${failed[*]}" \
    "engines already up are left running; stop them with: bash deploy/engines/down.sh"
fi
say "up: ${names[*]} in $((SECONDS - _START))s; the URLs above are also exported by: source deploy/engines/env.sh"
