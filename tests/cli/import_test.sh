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

# Regression (issue 16 item 10): every fork needs a "cpu"; the shipped sample was
# unrunnable. A trace that needs more CPUs than --cpus is refused with the count.
msg="$("$ROOT/tools/import-strace" "$ROOT/tests/data/strace-sh-ls-wc.txt" -o "$tmp/sh.json" 2>&1)"
check "strace too few CPUs exit 2" test $? -eq 2
check "strace names the CPUs it needs" grep -q "needs 5 CPUs.*--cpus 5" <<<"$msg"
out="$("$ROOT/tools/import-strace" "$ROOT/tests/data/strace-sh-ls-wc.txt" -o "$tmp/sh.json" --cpus 5)"
check "strace import" test $? -eq 0
check "strace counts" grep -q "3 process(es), 3 thread(s) on 5 CPUs; ops: exit 3, fork 2, mmap 62, mprotect 5, munmap 22, wait 2" <<<"$out"
check "strace forks name their CPU" python3 -c "
import json,sys
w=json.load(open('$tmp/sh.json'))
forks=[o for p in w['processes'] for t in p['threads'] for o in t['ops'] if o['op']=='fork']
sys.exit(0 if len(forks)==2 and sorted(f['cpu'] for f in forks)==[3,4] else 1)"
echo "{\"machine\": \"x86_small\", \"workload\": $(cat "$tmp/sh.json")}" > "$tmp/run-sh-full.json"
"$TLBSIM" run "$tmp/run-sh-full.json" --out "$tmp/r3" --quiet --set machine.cpus=5
check "strace workload with forks runs" test $? -eq 0
out="$("$ROOT/tools/import-strace" "$ROOT/tests/data/strace-sh-ls-wc.txt" -o "$tmp/sh2.json" --cpus 5 --supported-only --touch)"
check "strace supported-only counts" grep -q "ops: exit 3, fork 2, mmap 62, mprotect 5, munmap 22, touch 18, wait 2" <<<"$out"
echo "{\"machine\": \"x86_small\", \"workload\": $(cat "$tmp/sh2.json")}" > "$tmp/run-sh.json"
"$TLBSIM" run "$tmp/run-sh.json" --out "$tmp/r2" --quiet --set machine.cpus=5
check "strace workload runs" test $? -eq 0
printf '1 1.0 mmap(NULL, 4096, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0x1000\ngarbage\n' > "$tmp/bad2.txt"
msg="$("$ROOT/tools/import-strace" "$tmp/bad2.txt" -o "$tmp/bad2.json" 2>&1)"
check "strace malformed exit 2" test $? -eq 2
check "strace malformed line number" grep -q "line 2:" <<<"$msg"

# Importers never emit a workload tlbsim rejects, and stop at bad input with exit 2
# and its line number (issue 16 item 10).
strace_bad() {  # NAME WANT TRACE-TEXT
  printf '%b' "$3" > "$tmp/$1.txt"
  local m
  m="$("$ROOT/tools/import-strace" "$tmp/$1.txt" -o "$tmp/$1.json" 2>&1)"
  local rc=$?
  check "strace $1 exit 2" test "$rc" -eq 2
  check "strace $1 message" grep -q -- "$2" <<<"$m"
}
strace_bad beyond_task_size "line 1: expected a page-aligned mapping inside the user address space" \
  '1 1.0 mmap(0x1000010000000, 8192, PROT_READ, MAP_PRIVATE|MAP_FIXED|MAP_ANONYMOUS, -1, 0) = 0x1000010000000\n'
strace_bad negative_length "line 2: expected a length between 0 and the user address space" \
  '1 1.0 mmap(NULL, 8192, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0x10000000\n1 1.1 munmap(0x10000000, -5) = 0\n'
# mprotect(PROT_NONE) imports as prot "none" and runs (it used to be refused).
printf '1 1.0 mmap(NULL, 8192, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0x10000000\n1 1.1 mprotect(0x10000000, 4096, PROT_NONE) = 0\n' > "$tmp/protnone.txt"
"$ROOT/tools/import-strace" "$tmp/protnone.txt" -o "$tmp/protnone.json" --touch > /dev/null
check "strace PROT_NONE import" test $? -eq 0
check "strace PROT_NONE is prot none" python3 -c "
import json,sys
w=json.load(open('$tmp/protnone.json'))
ops=[o for p in w['processes'] for t in p['threads'] for o in t['ops'] if o['op']=='mprotect']
sys.exit(0 if [o['prot'] for o in ops]==['none'] else 1)"
echo "{\"machine\": \"x86_small\", \"workload\": $(cat "$tmp/protnone.json")}" > "$tmp/run-protnone.json"
"$TLBSIM" run "$tmp/run-protnone.json" --out "$tmp/rpn" --quiet
check "strace PROT_NONE workload runs" test $? -eq 0
# Found by the fuzzer: a brk that jumps over existing mappings is not a real trace.
strace_bad brk_over_mapping "line 3: brk(0x7f0000001000) grows the heap over an existing mapping" \
  '1 1.0 brk(NULL) = 0x555555554000\n1 1.1 mmap(NULL, 8192, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0x7f0000000000\n1 1.2 brk(0x7f0000001000) = 0x7f0000001000\n'
# A 3,000-deep fork chain: Python used to raise RecursionError.
python3 - "$tmp/chain.txt" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    for i in range(3000):
        f.write(f"{100 + i} 1.{i:06d} clone(child_stack=NULL, flags=SIGCHLD) = {101 + i}\n")
PY
m="$("$ROOT/tools/import-strace" "$tmp/chain.txt" -o "$tmp/chain.json" --cpus 1024 2>&1)"
check "strace deep fork chain exit 2" test $? -eq 2
check "strace deep fork chain message" grep -q "forks nested 65 deep" <<<"$m"
# The output's directory is created; a file in the way is exit 2 with the reason.
"$ROOT/tools/import-strace" "$ROOT/tests/data/strace-sh-ls-wc.txt" -o "$tmp/new/dir/s.json" --cpus 5 > /dev/null
check "strace creates the output directory" test -s "$tmp/new/dir/s.json"
: > "$tmp/a-file"
m="$("$ROOT/tools/import-strace" "$ROOT/tests/data/strace-sh-ls-wc.txt" -o "$tmp/a-file/dir.json" --cpus 5 2>&1)"
check "strace output directory in the way exit 2" test $? -eq 2
check "strace output directory in the way message" grep -q "cannot create the output directory" <<<"$m"
# brk restarts at execve: no mapping from the old program's break to the new one's.
printf '%s\n' '1 1.0 brk(NULL) = 0x555555554000' '1 1.1 brk(0x555555575000) = 0x555555575000' \
  '1 1.2 execve("/usr/bin/python3", ["python3"], 0x7ffc /* 1 vars */) = 0' \
  '1 1.3 brk(NULL) = 0x55f000000000' '1 1.4 brk(0x55f000021000) = 0x55f000021000' > "$tmp/exec.txt"
"$ROOT/tools/import-strace" "$tmp/exec.txt" -o "$tmp/exec.json" > /dev/null
check "strace brk after execve" python3 -c "
import json,sys
ops=json.load(open('$tmp/exec.json'))['processes'][0]['threads'][0]['ops']
sizes=[o['size'] for o in ops if o['op']=='mmap']
sys.exit(0 if sizes==[0x21000, 0x21000] else 1)"
echo "{\"machine\": \"x86_small\", \"workload\": $(cat "$tmp/exec.json")}" > "$tmp/run-exec.json"
"$TLBSIM" run "$tmp/run-exec.json" --out "$tmp/r4" --quiet
check "strace execve workload runs" test $? -eq 0

lackey_bad() {  # NAME WANT TRACE-TEXT
  printf '%b' "$3" > "$tmp/$1.txt"
  local m
  m="$(timeout 20 "$ROOT/tools/import-lackey" "$tmp/$1.txt" -o "$tmp/$1.json" 2>&1)"
  local rc=$?
  check "lackey $1 exit 2" test "$rc" -eq 2
  check "lackey $1 message" grep -q -- "$2" <<<"$m"
}
lackey_bad huge_access "line 1: expected an access of at most 4096 bytes" ' L 1000,18446744073709551615\n'
lackey_bad beyond_2_64 "line 1: expected an address below 2^64" ' L ffffffffffffffff,8\n'
"$ROOT/tools/import-lackey" "$ROOT/tests/data/lackey-true.txt" -o "$tmp/new/l/l.json" > /dev/null
check "lackey creates the output directory" test -s "$tmp/new/l/l.json" -a -s "$tmp/new/l/l.trace"
m="$("$ROOT/tools/import-lackey" "$ROOT/tests/data/lackey-true.txt" -o "$tmp/a-file/dir.json" 2>&1)"
check "lackey output directory in the way exit 2" test $? -eq 2
check "lackey output directory in the way message" grep -q "cannot create the output directory" <<<"$m"
# Page 0 and the vsyscall page are dropped (and counted); the rest runs.
printf ' L 0,8\n L ffffffffff600000,8\n S 10000000,8\n' > "$tmp/edge.txt"
out="$("$ROOT/tools/import-lackey" "$tmp/edge.txt" -o "$tmp/root/workloads/catalog/edge.json")"
check "lackey edge pages dropped" grep -q "1 page accesses to page 0 dropped" <<<"$out"
echo '{"machine": "x86_small", "workload": "edge"}' > "$tmp/run-edge.json"
TLBSIM_ROOT="$tmp/root" "$TLBSIM" run "$tmp/run-edge.json" --out "$tmp/r5" --quiet
check "lackey edge workload runs" test $? -eq 0
echo "$pass passed, $fails failed"
[ "$fails" -eq 0 ]
