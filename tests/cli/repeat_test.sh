#!/usr/bin/env bash
# The repeat op (issue 15 item 3): the body count times with ${i} the iteration
# (0-based), nested repeats with their own index, a count from a parameter, a fork
# per iteration on CPU ${i}; bad repeats are exit 2 at the right pointer, and an
# expansion beyond 1,000,000 ops per process is refused before anything runs.
source "$(dirname "$0")/lib.sh" "$@"
val() {  # DIR PYTHON-EXPR on s (stats.system)
  python3 -c "import json,sys; s=json.load(open(sys.argv[1]+'/stats.json'))['stats']['system']; print($2)" "$1"
}
wl() {  # FILE OPS-JSON [MACHINE]
  printf '{"machine": "%s", "kernel": "linux-6.15", "workload": {"params": {"n": 3, "size": "64KiB"}, "processes": [{"threads": [{"cpu": 0, "ops": %s}]}]}}\n' \
    "${3:-x86_small}" "$2" > "$1"
}
wl "$tmp/a.json" '[{"op": "repeat", "count": "${n}", "ops": [
    {"op": "mmap", "name": "b${i}", "size": "${size}"},
    {"op": "region", "name": "touch", "ops": [{"op": "touch", "mapping": "b${i}", "access": "write"}]},
    {"op": "repeat", "count": 2, "index": "j", "ops": [
      {"op": "region", "name": "mprotect${j}", "ops": [{"op": "mprotect", "mapping": "b${i}", "prot": "r", "length": "4KiB"}]}]},
    {"op": "munmap", "mapping": "b${i}"}]}]'
"$TLBSIM" run "$tmp/a.json" --out "$tmp/a" --quiet
check "repeat runs" test $? -eq 0
check "3 iterations x 16 faults, one mapping each" test "$(val "$tmp/a" "s['regions']['region[touch]']['faults']['value']")" = 48
check "the nested index names regions mprotect0 and mprotect1, 3 entries each" \
  test "$(val "$tmp/a" "[s['regions']['region[mprotect%d]' % j]['entries']['value'] for j in (0, 1)]")" = "[3, 3]"
# A fork per iteration on CPU i: three children, each on its own CPU.
wl "$tmp/f.json" '[{"op": "mmap", "name": "b", "size": "64KiB"}, {"op": "touch", "mapping": "b", "access": "write"},
  {"op": "repeat", "count": 3, "ops": [{"op": "fork", "cpu": "${i}", "ops": [{"op": "touch", "mapping": "b", "access": "write"}]}]},
  {"op": "repeat", "count": 3, "ops": [{"op": "wait"}]}]' x86_server
"$TLBSIM" run "$tmp/f.json" --out "$tmp/f" --quiet
check "fork per iteration runs" test $? -eq 0
check "each child COWs the 16 pages" test "$(val "$tmp/f" "s['kernel']['vmstat']['cow_copy']['value']")" = 48
bad() {  # NAME WANT OPS-JSON
  wl "$tmp/$1.json" "$3"
  "$TLBSIM" validate "$tmp/$1.json" > /dev/null 2> "$tmp/$1.err"
  local rc=$?
  check "$1: exit 2 (got $rc)" test "$rc" -eq 2
  check "$1: message" grep -q -- "$2" "$tmp/$1.err"
}
bad zero '/ops/0/count: expected an integer >= 1' '[{"op": "repeat", "count": 0, "ops": []}]'
bad no_ops '/ops/0: missing required key "ops"' '[{"op": "repeat", "count": 2}]'
bad no_count '/ops/0: missing required key "count"' '[{"op": "repeat", "ops": []}]'
bad unknown_key '/ops/0/cuont' '[{"op": "repeat", "count": 1, "cuont": 2, "ops": []}]'
bad unknown_index '/ops/0/ops/0/name: unknown workload parameter "k"' \
  '[{"op": "repeat", "count": 2, "ops": [{"op": "mmap", "name": "b${k}", "size": "4KiB"}]}]'
bad too_many 'more than 1000000 ops' \
  '[{"op": "repeat", "count": 1000, "ops": [{"op": "repeat", "count": 1001, "ops": [{"op": "sleep", "cycles": 1}]}]}]'
finish
