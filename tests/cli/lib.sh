# Shared by the CLI test scripts: `source "$(dirname "$0")/lib.sh" "$@"` with the
# arguments TLBSIM ROOT. Sets TLBSIM, ROOT (and TLBSIM_ROOT for the binary), a
# scratch directory $tmp removed at exit, and check(); finish() prints the tally
# and exits non-zero on any failure.
set -u
TLBSIM="$1"
ROOT="$2"
export TLBSIM_ROOT="$ROOT"
unset TLBSIM_PATH
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
fails=0
pass=0
check() {  # NAME CONDITION...
  local name="$1"
  shift
  if "$@"; then pass=$((pass + 1)); else echo "FAIL $name"; fails=$((fails + 1)); fi
}
finish() {
  echo "$pass passed, $fails failed"
  [ "$fails" -eq 0 ] && exit 0
  exit 1
}
