#!/usr/bin/env bash
# Trace importers: the checked-in samples (valgrind lackey on /bin/true, strace -f of
# `sh -c 'ls /usr | wc -l'`, both real runs) convert to the expected op counts, the
# results validate and run, and malformed lines are reported with their number.
set -u
TLBSIM="$1"
ROOT="$2"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
fails=0
pass=0
check() {
  local name="$1"
  shift
  if "$@"; then pass=$((pass + 1)); else echo "FAIL $name"; fails=$((fails + 1)); fi
}
export TLBSIM_ROOT="$ROOT"
out="$("$ROOT/tools/import-lackey" "$ROOT/tests/data/lackey-true.txt" -o "$tmp/true.json")"
check "lackey import" test $? -eq 0
check "lackey counts" grep -q "3994 accesses → 1592 page runs" <<<"$out"
check "lackey mappings" grep -q "over 2 mappings (12 pages)" <<<"$out"
check "lackey trace lines" test "$(grep -vc '^#' "$tmp/true.trace")" -eq 1592
cat > "$tmp/exp-true.json" <<JSON
{"machine": "x86_small", "kernel": "linux-6.15", "workload": $(cat "$tmp/true.json")}
JSON
# The workload names its trace relative to the workload file: run it as a catalog
# entry placed next to the trace.
mkdir -p "$tmp/root/configs" "$tmp/root/workloads/catalog"
cp -r "$ROOT/configs/machines" "$ROOT/configs/kernels" "$tmp/root/configs/"
cp "$tmp/true.json" "$tmp/true.trace" "$tmp/root/workloads/catalog/"
echo '{"machine": "x86_small", "workload": "true"}' > "$tmp/run-true.json"
TLBSIM_ROOT="$tmp/root" "$TLBSIM" run "$tmp/run-true.json" --out "$tmp/r1" --quiet
check "lackey replay runs" test $? -eq 0
check "lackey replay accesses" python3 -c "
import json,sys
s=json.load(open('$tmp/r1/stats.json'))['stats']['system']
sys.exit(0 if s['regions']['region[trace]']['accesses']['value']==3994 else 1)"
printf 'I  0401ab70,3\nthis is not lackey\n' > "$tmp/bad.txt"
msg="$("$ROOT/tools/import-lackey" "$tmp/bad.txt" -o "$tmp/bad.json" 2>&1)"
check "lackey malformed exit 2" test $? -eq 2
check "lackey malformed line number" grep -q "line 2:" <<<"$msg"

out="$("$ROOT/tools/import-strace" "$ROOT/tests/data/strace-sh-ls-wc.txt" -o "$tmp/sh.json")"
check "strace import" test $? -eq 0
check "strace counts" grep -q "3 process(es), 3 thread(s); ops: exit 3, fork 2, mmap 62, mprotect 5, munmap 22, wait 2" <<<"$out"
out="$("$ROOT/tools/import-strace" "$ROOT/tests/data/strace-sh-ls-wc.txt" -o "$tmp/sh2.json" --supported-only --touch)"
check "strace supported-only counts" grep -q "ops: mmap 62, munmap 22, touch 18" <<<"$out"
echo "{\"machine\": \"x86_small\", \"workload\": $(cat "$tmp/sh2.json")}" > "$tmp/run-sh.json"
"$TLBSIM" run "$tmp/run-sh.json" --out "$tmp/r2" --quiet --set machine.cpus=4
check "strace workload runs" test $? -eq 0
printf '1 1.0 mmap(NULL, 4096, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0x1000\ngarbage\n' > "$tmp/bad2.txt"
msg="$("$ROOT/tools/import-strace" "$tmp/bad2.txt" -o "$tmp/bad2.json" 2>&1)"
check "strace malformed exit 2" test $? -eq 2
check "strace malformed line number" grep -q "line 2:" <<<"$msg"
echo "$pass passed, $fails failed"
[ "$fails" -eq 0 ]
