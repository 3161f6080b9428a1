#!/usr/bin/env bash
# TLB "replacement": "random" draws from the experiment seed (issue 16 item 12): the
# same deterministic access stream with two seeds gives different STLB miss counts,
# and the same seed twice the same counts.
set -u
TLBSIM="$1"
ROOT="$2"
export TLBSIM_ROOT="$ROOT"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cat > "$tmp/rr.json" <<'JSON'
{"machine": {"preset": "x86_small", "l1d": {"replacement": "random"}, "stlb": {"replacement": "random"}},
 "workload": {"processes": [{"threads": [{"cpu": 0, "ops": [
   {"op": "mmap", "name": "b", "size": "16MiB", "populate": true},
   {"op": "region", "name": "r", "ops": [{"op": "touch", "mapping": "b", "access": "read", "repeat": 4}]}]}]}]}}
JSON
misses() {
  "$TLBSIM" run "$tmp/rr.json" --out "$tmp/out-$1-$2" --quiet --set "seed=$1" || exit 1
  python3 -c "import json; print(json.load(open('$tmp/out-$1-$2/stats.json'))['stats']['system']['cpu'][0]['stlb']['misses']['value'])"
}
a="$(misses 1 a)"; b="$(misses 2 a)"; again="$(misses 1 b)"
fails=0
[ "$a" != "$b" ] || { echo "FAIL: seeds 1 and 2 give the same STLB misses ($a): the seed is ignored"; fails=1; }
[ "$a" = "$again" ] || { echo "FAIL: seed 1 twice gives $a and $again: not deterministic"; fails=1; }
[ "$fails" -eq 0 ] && echo "random replacement follows the seed ($a vs $b misses)"
exit "$fails"
