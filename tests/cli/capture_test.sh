#!/usr/bin/env bash
# tools/capture (issue 15 item 4): a two-thread C program (tests/data/capture/
# two_threads.c) captured under valgrind replays on x86_server with the munmap's
# shootdown IPI to the worker's CPU, and on arm64_server with broadcast TLBIs; a
# forking program (sh -c 'ls / > /dev/null': fork, exec) imports and replays; the
# import is deterministic; bad use is exit 2.
source "$(dirname "$0")/lib.sh" "$@"
importer="$(dirname "$TLBSIM")/../capture_import/capture-import"
if ! command -v valgrind > /dev/null || ! command -v gcc > /dev/null; then
  echo "FAIL valgrind and gcc are needed (tools/bootstrap installs them)"
  exit 1
fi
gcc -O1 -pthread "$ROOT/tests/data/capture/two_threads.c" -o "$tmp/tt"
"$ROOT/tools/capture" -o "$tmp/tt.json" --keep-logs "$tmp/tt-logs" -- "$tmp/tt" 2> "$tmp/tt.err"
check "capture of two threads" test $? -eq 0
check "two threads, ordering edges" grep -q '2 threads, 0 forks, 0 execs, [1-9][0-9]* ordering edges' "$tmp/tt.err"
stat() {  # DIR PYTHON-EXPR on s (stats.system)
  python3 -c "import json,sys; s=json.load(open(sys.argv[1]+'/stats.json'))['stats']['system']; print($2)" "$1"
}
for m in x86_server arm64_server; do
  "$TLBSIM" run "$ROOT/configs/experiments/quickstart.json" --workload "$tmp/tt.json" --set machine=$m \
    --out "$tmp/run-$m" --quiet
  check "$m: replay runs" test $? -eq 0
  check "$m: no stale-TLB violation" test "$(stat "$tmp/run-$m" "s['coherence']['stale_tlb_violations']['value']")" = 0
done
# The munmap of the 16 pages while the worker computes on CPU 1: an IPI there.
check "x86: the munmap IPIs the worker's CPU" test "$(stat "$tmp/run-x86_server" "s['cpu'][1]['ipis_received']['value'] >= 1")" = True
check "arm64: broadcast TLBIs instead of IPIs" test "$(stat "$tmp/run-arm64_server" "(s['regions']['region[capture]']['ipis_sent']['value'], s['regions']['region[capture]']['tlbis']['value'] > 0)")" = "(0, True)"
# The import is a function of the logs.
"$importer" "$tmp/tt-logs" -o "$tmp/tt2.json" --quiet
check "import deterministic: same workload" cmp -s "$tmp/tt.json" <(sed -e 's|"tt2\.d/|"tt.d/|g' -e 's|"name": "tt2"|"name": "tt"|' "$tmp/tt2.json")
check "import deterministic: same traces" diff -rq "$tmp/tt.d" "$tmp/tt2.d"
# A forking program: the shell forks, the child execs ls.
"$ROOT/tools/capture" -o "$tmp/sh.json" -- sh -c 'ls / > /dev/null' 2> "$tmp/sh.err"
check "capture of sh -c ls" test $? -eq 0
check "one fork, one exec" grep -q '1 forks, 1 execs' "$tmp/sh.err"
"$TLBSIM" run "$ROOT/configs/experiments/quickstart.json" --workload "$tmp/sh.json" --set machine=x86_server \
  --out "$tmp/run-sh" --quiet
check "sh -c ls replays" test $? -eq 0
check "the child's faults count too" test "$(stat "$tmp/run-sh" "s['kernel']['vmstat']['pgfault']['value'] > 100")" = True
# Bad use.
mkdir "$tmp/empty"
"$importer" "$tmp/empty" -o "$tmp/x.json" 2> "$tmp/empty.err"
check "no logs: exit 2" test $? -eq 2
check "no logs: message" grep -q 'no valgrind logs' "$tmp/empty.err"
"$ROOT/tools/capture" 2> "$tmp/noprog.err"
check "no program: exit 2" test $? -eq 2
finish
