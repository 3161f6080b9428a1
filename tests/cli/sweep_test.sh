#!/usr/bin/env bash
# Sweeps: every point runs, sweep.csv has one row per point; after an interruption
# (a point's result removed) --resume runs only the missing point; a bad point is
# reported by number and the others keep their results; compare and plot work on
# the results.
set -u
TLBSIM="$1"
ROOT="$2"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
fails=0
pass=0
check() {  # NAME CONDITION...
  local name="$1"
  shift
  if "$@"; then pass=$((pass + 1)); else echo "FAIL $name"; fails=$((fails + 1)); fi
}
export TLBSIM_ROOT="$ROOT"
cat > "$tmp/sweep.json" <<JSON
{"name": "t", "machine": "x86_small", "kernel": "linux-6.15",
 "workload": {"preset": "munmap", "params": {"size": "1MiB"}},
 "sweep": {"kernel": ["linux-6.7", "linux-6.15"], "workload.params.size": ["1MiB", "2MiB"]}}
JSON
"$TLBSIM" run "$tmp/sweep.json" --out "$tmp/out" -j 2 > "$tmp/log1" 2>&1
check "sweep exits 0" test $? -eq 0
check "one row per point" test "$(tail -n +2 "$tmp/out/sweep.csv" | wc -l)" -eq 4
check "all ok" test "$(grep -c ',ok,' "$tmp/out/sweep.csv")" -eq 4
check "progress lines" grep -q '\[4/4\]' "$tmp/log1"
rm "$tmp/out/001-"*/stats.json
"$TLBSIM" run "$tmp/sweep.json" --out "$tmp/out" -j 2 --resume > "$tmp/log2" 2>&1
check "resume exits 0" test $? -eq 0
check "resume skips finished points" test "$(grep -c ',skipped,' "$tmp/out/sweep.csv")" -eq 3
check "resume reruns the missing point" test "$(grep -c ',ok,' "$tmp/out/sweep.csv")" -eq 1
"$TLBSIM" compare "$tmp/out/000-"* "$tmp/out/001-"* > "$tmp/cmp" 2>&1
check "compare exits 0" test $? -eq 0
check "compare shows ratios" grep -q 'region\[munmap\].cycles.*x' "$tmp/cmp"
"$TLBSIM" compare --markdown "$tmp/out/000-"* "$tmp/out/002-"* | grep -q '^| `system' 
check "compare --markdown" test $? -eq 0
if command -v gnuplot >/dev/null; then
  "$ROOT/tools/plot" "$tmp/out" --out "$tmp/fig" > /dev/null
  check "plot png" test -s "$tmp/fig.png"
  check "plot svg" test -s "$tmp/fig.svg"
fi
cat > "$tmp/bad.json" <<JSON
{"name": "b", "machine": "x86_small", "workload": {"preset": "munmap", "params": {"size": "1MiB"}},
 "sweep": {"kernel": ["linux-6.15", "linux-9.99"]}}
JSON
"$TLBSIM" run "$tmp/bad.json" --out "$tmp/bad" -j 2 > "$tmp/log3" 2>&1
check "bad point exits 2" test $? -eq 2
check "bad point named" grep -q 'sweep point 1 (kernel=linux-9.99) bad_input' "$tmp/log3"
check "good point kept" test -s "$tmp/bad/000-kernel=linux-6.15/stats.json"
echo "$pass passed, $fails failed"
[ "$fails" -eq 0 ]
