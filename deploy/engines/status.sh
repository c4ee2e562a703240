#!/usr/bin/env bash
# Prints one line per engine; exits 0 when every engine asked about is up, 3 otherwise.
# usage: status.sh [postgres|redis|kafka ...]
set -euo pipefail
ENGINE=engines
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ALL=(postgres redis kafka)
names=("$@")
((${#names[@]})) || names=("${ALL[@]}")
rc=0
for name in "${names[@]}"; do
  [[ " ${ALL[*]} " == *" $name "* ]] || die "unknown engine '$name'" "known engines: ${ALL[*]}"
  bash "$ENGINES_DIR/$name.sh" status || rc=3
done
exit "$rc"
