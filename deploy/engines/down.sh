#!/usr/bin/env bash
# Stops the test engines started by up.sh; their data and the download caches stay.
# usage: down.sh [postgres|redis|kafka ...]      (default: all three; npm run engines:down -- NAMES)
set -euo pipefail
ENGINE=engines
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ALL=(kafka redis postgres)
names=("$@")
((${#names[@]})) || names=("${ALL[@]}")
for name in "${names[@]}"; do
  [[ " ${ALL[*]} " == *" $name "* ]] || die "unknown engine '$name'" "known engines: ${ALL[*]}"
done

failed=()
for name in "${names[@]}"; do
  bash "$ENGINES_DIR/$name.sh" down || failed+=("$name")
done
((${#failed[@]} == 0)) || die "failed to stop: ${failed[*]} (messages above)"
say "down: ${names[*]} in $((SECONDS - _START))s"
