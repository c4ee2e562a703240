# shellcheck shell=bash
# Helpers shared by deploy/engines/*.sh. Sourced, never run. The caller sets ENGINE first.
#
# Conventions: progress and errors go to stderr; stdout carries only the KEY=VALUE connection
# lines, so `export $(bash deploy/engines/up.sh)` works.

# shellcheck disable=SC2034 # used by the scripts that source this file
ENGINES_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# HOME may be unset under `env -i`; fall back to the passwd entry.
: "${HOME:=$(getent passwd "$(id -u)" | cut -d: -f6)}"
ENGINES_HOME="${FLOWLOOM_ENGINES_HOME:-$HOME/.cache/flowloom-engines}"
LOOPBACK=127.0.0.1
# runuser, and apt's own helpers, live in sbin, which a minimal PATH (env -i, cron, CI) lacks.
for _dir in /usr/local/sbin /usr/sbin /sbin; do
  [[ :$PATH: == *":$_dir:"* ]] || PATH="$PATH:$_dir"
done
unset _dir
export PATH
export DEBIAN_FRONTEND=noninteractive

say() { printf '[%s] %s\n' "${ENGINE:-engines}" "$*" >&2; }
warn() { printf '[%s] WARNING: %s\n' "${ENGINE:-engines}" "$*" >&2; }
# die MESSAGE [HINT...]: the hint lines say what to do next.
die() {
  printf '[%s] ERROR: %s\n' "${ENGINE:-engines}" "$1" >&2
  shift
  local line
  for line in "$@"; do printf '[%s]   -> %s\n' "${ENGINE:-engines}" "$line" >&2; done
  exit 1
}

is_root() { [[ $(id -u) -eq 0 ]]; }

# port_open PORT [HOST]: true when something accepts TCP connections there.
port_open() {
  # shellcheck disable=SC2016 # $1 and $2 expand in the child shell
  timeout 2 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "${2:-$LOOPBACK}" "$1" 2>/dev/null
}

# pid_matches PIDFILE PATTERN: true when the pid in PIDFILE is alive and its command line
# contains PATTERN (guards against a stale pidfile whose pid was reused).
pid_matches() {
  local pidfile=$1 pattern=$2 pid
  [[ -s $pidfile ]] || return 1
  pid=$(<"$pidfile")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  [[ -r /proc/$pid/cmdline ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$pattern"
}

# A zombie counts as gone: whoever reaps orphans here (pid 1) may be slow to do it.
pid_gone() {
  kill -0 "$1" 2>/dev/null || return 0
  [[ $(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) == Z ]]
}

# Serialise concurrent runs for one engine (two shells, or a test runner and a person).
take_lock() {
  mkdir -p "$ENGINES_HOME"
  exec 9>"$ENGINES_HOME/.$ENGINE.lock"
  if ! flock -n 9; then
    say "another run for $ENGINE holds $ENGINES_HOME/.$ENGINE.lock; waiting up to 10 min"
    flock -w 600 9 || die "timed out waiting for $ENGINES_HOME/.$ENGINE.lock" \
      "find the other run with: ps -ef | grep deploy/engines"
  fi
}

pkg_installed() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

# apt_install PKG...: installs the packages that are missing. `apt-get update` runs first unless
# one of these scripts ran it in the last hour (up.sh runs several scripts in a row); if the
# install then fails, it updates and tries once more.
apt_install() {
  local missing=() pkg
  for pkg in "$@"; do pkg_installed "$pkg" || missing+=("$pkg"); done
  ((${#missing[@]} == 0)) && return 0
  command -v apt-get >/dev/null ||
    die "missing packages: ${missing[*]}, and apt-get is not available" \
      "install them with your system's package manager, then re-run"
  local sudo=()
  if ! is_root; then
    if ! command -v sudo >/dev/null || ! sudo -n true 2>/dev/null; then
      die "missing packages: ${missing[*]}; installing them needs root" \
        "run: sudo apt-get update && sudo apt-get install -y ${missing[*]}"
    fi
    sudo=(sudo -n)
  fi
  local apt_opts=(-q -y -o DPkg::Lock::Timeout=300 -o Dpkg::Use-Pty=0)
  local stamp="$ENGINES_HOME/.apt-updated"
  mkdir -p "$ENGINES_HOME"
  _apt_update() {
    say "apt-get update (needed to install: ${missing[*]})"
    "${sudo[@]}" apt-get "${apt_opts[@]}" update >&2 ||
      die "apt-get update failed (output above)" "check that the Debian mirror is reachable, then re-run"
    touch "$stamp"
  }
  _apt_get_install() {
    say "apt-get install ${missing[*]}"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" \
      install --no-install-recommends "${missing[@]}" >&2
  }
  if [[ -n $(find "$stamp" -mmin -60 2>/dev/null) ]]; then
    _apt_get_install && return 0
    warn "install failed with the package lists from the last hour; updating them and retrying"
  fi
  _apt_update
  _apt_get_install ||
    die "apt-get install ${missing[*]} failed (output above)" \
      "try by hand: apt-get update && apt-get install -y ${missing[*]}"
}

# wait_until SECONDS DESCRIPTION COMMAND...: polls COMMAND every 0.25 s.
wait_until() {
  local limit=$1 what=$2 began=$SECONDS
  shift 2
  until "$@"; do
    ((SECONDS - began < limit)) || return 1
    sleep 0.25
  done
  say "$what after $((SECONDS - began))s"
}

# show_log_tail FILE [LINES]: for failure messages.
show_log_tail() {
  local file=$1 lines=${2:-40}
  [[ -f $file ]] || return 0
  printf '[%s] ---- last %s lines of %s ----\n' "$ENGINE" "$lines" "$file" >&2
  tail -n "$lines" "$file" >&2
  printf '[%s] ----\n' "$ENGINE" >&2
}

usage_and_exit() {
  printf 'usage: %s up|down|status\n' "$0" >&2
  exit 2
}

_START=$SECONDS
