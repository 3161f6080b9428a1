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
  "$ROOT/tools/plot" "$tmp/out" --out "$tmp/fig" --script "$tmp/fig.gp" > /dev/null
  check "plot png" test -s "$tmp/fig.png"
  check "plot svg" test -s "$tmp/fig.svg"
  # Sizes on a numeric log2 axis, cycles drawn as time, series in natural order
  # (linux-6.7 before linux-6.15), each with its own dash pattern and marker.
  check "plot: sizes on a log2 axis" grep -q '^set logscale x 2$' "$tmp/fig.gp"
  check "plot: time with a unit" grep -q "^set ylabel 'time (µs)'$" "$tmp/fig.gp"
  check "plot: natural version order" python3 -c "
import re
t = re.findall(r\"title '([^']*)'\", open('$tmp/fig.gp').read())
assert t[-2:] == ['kernel=linux-6.7', 'kernel=linux-6.15'], t"
  check "plot: distinct dash patterns" test "$(grep -o ' dt [0-9]* ' "$tmp/fig.gp" | sort -u | wc -l)" -eq 2
  "$ROOT/tools/plot" "$tmp/out" --kind kops --region munmap --style paper --out "$tmp/kops" > /dev/null
  check "plot kops of a region, paper style (pdf)" test -s "$tmp/kops.pdf"
fi
cat > "$tmp/bad.json" <<JSON
{"name": "b", "machine": "x86_small", "workload": {"preset": "munmap", "params": {"size": "1MiB"}},
 "sweep": {"kernel": ["linux-6.15", "linux-9.99"]}}
JSON
"$TLBSIM" run "$tmp/bad.json" --out "$tmp/bad" -j 2 > "$tmp/log3" 2>&1
check "bad point exits 2" test $? -eq 2
check "bad point named" grep -q 'sweep point 1 (kernel=linux-9.99) bad_input' "$tmp/log3"
check "good point kept" test -s "$tmp/bad/000-kernel=linux-6.15/stats.json"
# Overrides are never dropped when an axis selects a preset (regression: --set
# machine.cpus=4 and the file's own overrides were thrown away, silently).
cat > "$tmp/presets.json" <<JSON
{"name": "p", "machine": {"preset": "x86_small", "stlb": {"hit_latency_cycles": 9}}, "kernel": "linux-6.15",
 "workload": {"preset": "munmap", "params": {"size": "1MiB"}},
 "sweep": {"machine": ["x86_small", "x86_server", "arm64_small"], "kernel": ["linux-6.7", "linux-6.15"]}}
JSON
"$TLBSIM" run "$tmp/presets.json" --out "$tmp/presets" -j 2 --quiet --set machine.cpus=4 \
  --set kernel.x86_flush_ceiling=7 > "$tmp/log4" 2>&1
check "preset sweep exits 0" test $? -eq 0
cpus_ok=1
for f in "$tmp/presets/"*/stats.json; do
  python3 - "$f" <<'PY' || cpus_ok=0
import json, sys
c = json.load(open(sys.argv[1]))["config"]
assert c["machine"]["cpus"] == 4, (sys.argv[1], c["machine"]["cpus"])
assert c["kernel"]["x86_flush_ceiling"] == 7, c["kernel"]["x86_flush_ceiling"]
assert c["machine"]["name"] == c["machine_preset"]
assert c["machine"]["stlb"]["hit_latency_cycles"] == 9
PY
done
check "every point runs on 4 CPUs with every override" test "$cpus_ok" -eq 1
check "six points" test "$(ls -d "$tmp/presets/"*/ | wc -l)" -eq 6
check "sweep.csv shows the effective configuration" \
  python3 -c "import csv,sys; r=list(csv.DictReader(open('$tmp/presets/sweep.csv'))); assert all(x['machine.cpus']=='4' and x['kernel.x86_flush_ceiling']=='7' and x['config_hash'] for x in r), r[0].keys()"
# --resume reruns a point whose effective configuration changed.
"$TLBSIM" run "$tmp/presets.json" --out "$tmp/presets" -j 2 --quiet --resume --set machine.cpus=4 \
  --set kernel.x86_flush_ceiling=7 > /dev/null 2>&1
check "resume with the same overrides skips all" test "$(grep -c ',skipped,' "$tmp/presets/sweep.csv")" -eq 6
"$TLBSIM" run "$tmp/presets.json" --out "$tmp/presets" -j 2 --quiet --resume --set machine.cpus=2 \
  --set kernel.x86_flush_ceiling=7 > /dev/null 2>&1
check "resume with a changed override reruns all" test "$(grep -c ',ok,' "$tmp/presets/sweep.csv")" -eq 6
# An override of a swept key is refused.
"$TLBSIM" run "$tmp/presets.json" --out "$tmp/conflict" --quiet --set kernel=linux-6.9 > "$tmp/log5" 2>&1
check "override of an axis exits 2" test $? -eq 2
check "override of an axis named" grep -q '/sweep/kernel: the sweep axis "kernel" conflicts with --set "kernel=linux-6.9"' "$tmp/log5"

# Workers die with their parent (issue 16 item 17): SIGKILL the sweep parent while
# two workers run; none survives to finish a point sweep.csv lists as pending.
cat > "$tmp/kill.json" <<JSON
{"name": "k", "machine": "x86_small", "workload": {"preset": "populate", "params": {"size": "768MiB"}},
 "sweep": {"seed": [1, 2, 3, 4]}}
JSON
"$TLBSIM" run "$tmp/kill.json" --out "$tmp/kill" -j 2 --quiet > /dev/null 2>&1 &
parent=$!
workers=""
for _ in $(seq 200); do
  workers="$(pgrep -P "$parent" | tr '\n' ' ')"
  [ "$(wc -w <<<"$workers")" -ge 2 ] && break
  sleep 0.05
done
check "two workers started" test "$(wc -w <<<"$workers")" -ge 2
kill -KILL "$parent"
wait "$parent" 2>/dev/null
alive=1
for _ in $(seq 100); do
  alive=0
  for w in $workers; do kill -0 "$w" 2>/dev/null && alive=1; done
  [ "$alive" -eq 0 ] && break
  sleep 0.05
done
check "no worker outlives a SIGKILLed parent" test "$alive" -eq 0
# --resume reconciles: stale temporary files of killed writers are removed, every
# point ends ok or skipped, none pending.
d0="$(ls -d "$tmp/kill/000-"*)"
touch "$d0/stats.json.tmp.999999" "$d0/stats.csv.tmp.999999"
"$TLBSIM" run "$tmp/kill.json" --out "$tmp/kill" -j 2 --resume --quiet > /dev/null 2>&1
check "resume after SIGKILL exits 0" test $? -eq 0
check "resume leaves no point pending" test "$(grep -cE ',(ok|skipped),' "$tmp/kill/sweep.csv")" -eq 4
check "resume removes stale temporary files" test -z "$(find "$tmp/kill" -name '*.tmp.*')"
# A second sweep on the same directory while one runs is refused, not raced.
"$TLBSIM" run "$tmp/kill.json" --out "$tmp/kill2" -j 1 --quiet > /dev/null 2>&1 &
first=$!
for _ in $(seq 200); do [ -e "$tmp/kill2/.sweep.lock" ] && break; sleep 0.05; done
sleep 0.2
msg="$("$TLBSIM" run "$tmp/kill.json" --out "$tmp/kill2" -j 1 --resume --quiet 2>&1)"
check "concurrent sweep on one directory exits 2" test $? -eq 2
check "concurrent sweep names the lock" grep -q "is locked" <<<"$msg"
kill -TERM "$first" 2>/dev/null
wait "$first" 2>/dev/null

echo "$pass passed, $fails failed"
[ "$fails" -eq 0 ]
