#!/usr/bin/env bash
# pin / unpin ops (FOLL_PIN | FOLL_LONGTERM, issue 12 item 2): pinned frames outlive
# munmap until unpin; pins still held at exit are released after exit_mmap; the
# errors Linux returns (EFAULT for a read-only VMA, ENXIO for an unpin with nothing
# pinned) are exit 2 naming the op; a pin write-faults missing pages first.
source "$(dirname "$0")/lib.sh" "$@"
exp() {  # FILE MACHINE OPS-JSON
  printf '{"machine": "%s", "kernel": "linux-6.15", "workload": {"processes": [{"threads": [{"cpu": 0, "ops": %s}]}]}}\n' \
    "$2" "$3" > "$1"
}
val() {  # DIR PATH (slash separated, under stats.system)
  python3 -c "
import json, sys
n = json.load(open(sys.argv[1] + '/stats.json'))['stats']['system']
for p in sys.argv[2].split('/'):
    n = n[p]
print(n['value'])" "$1" "$2"
}
for m in x86_small arm64_small; do
  # Pin 64 pages that were never touched: the pin write-faults each; munmap leaves
  # them allocated; unpin frees them.
  exp "$tmp/a.$m.json" $m '[
    {"op": "mmap", "name": "b", "size": "256KiB"},
    {"op": "region", "name": "pin", "ops": [{"op": "pin", "mapping": "b"}]},
    {"op": "region", "name": "munmap", "ops": [{"op": "munmap", "mapping": "b"}]},
    {"op": "region", "name": "unpin", "ops": [{"op": "unpin", "mapping": "b"}]}]'
  "$TLBSIM" run "$tmp/a.$m.json" --out "$tmp/a.$m" --quiet
  check "$m: pin after munmap runs" test $? -eq 0
  # handle_mm_fault() counts PGFAULT for a GUP fault; no user fault is taken.
  check "$m: the pin write-faults the 64 missing pages" test "$(val "$tmp/a.$m" kernel/vmstat/pgfault)" = 64
  check "$m: no user fault" test "$(val "$tmp/a.$m" 'regions/region[pin]/faults')" = 0
  check "$m: munmap frees no pinned page" python3 -c "
import json, sys
r = json.load(open('$tmp/a.$m/stats.json'))['stats']['system']['regions']
m, u = r['region[munmap]'], r['region[unpin]']
freed_m = m['free_pages_at_exit']['value'] - m['free_pages_at_entry']['value']
freed_u = u['free_pages_at_exit']['value'] - u['free_pages_at_entry']['value']
assert freed_m < 64 and freed_u == 64, (freed_m, freed_u)"
  check "$m: 64 pins acquired and released" test "$(val "$tmp/a.$m" kernel/vmstat/nr_foll_pin_released)" = 64
  # Pins still held at exit are released after exit_mmap: nothing leaks.
  exp "$tmp/b.$m.json" $m '[
    {"op": "mmap", "name": "b", "size": "128KiB"},
    {"op": "pin", "mapping": "b", "offset": "64KiB"}]'
  "$TLBSIM" run "$tmp/b.$m.json" --out "$tmp/b.$m" --quiet
  check "$m: exit with pins held" test $? -eq 0
  check "$m: exit releases the 16 pins" test "$(val "$tmp/b.$m" kernel/vmstat/nr_foll_pin_released)" = 16
  check "$m: every frame freed" test "$(val "$tmp/b.$m" kernel/vmstat/pgfree)" = "$(val "$tmp/b.$m" kernel/vmstat/pgalloc)"
done
# pin_user_pages_fast: pages already mapped writable are pinned without mmap_lock;
# missing ones take it once (for the slow path) and fault under it, not through the
# per-VMA lock of a user fault.
locks() {  # NAME OPS-JSON -> "mmap_lock vma_lock" acquisitions
  exp "$tmp/$1.json" x86_small "$2"
  "$TLBSIM" run "$tmp/$1.json" --out "$tmp/$1" --quiet
  echo "$(val "$tmp/$1" locks/mmap_lock/acquired) $(val "$tmp/$1" locks/vma_lock/acquired)"
}
base="$(locks nopin '[{"op": "mmap", "name": "b", "size": "256KiB"}, {"op": "touch", "mapping": "b", "access": "write"}]')"
fast="$(locks fast '[{"op": "mmap", "name": "b", "size": "256KiB"}, {"op": "touch", "mapping": "b", "access": "write"}, {"op": "pin", "mapping": "b"}]')"
check "a pin of mapped pages takes no lock ($base vs $fast)" test "$base" = "$fast"
empty="$(locks empty '[{"op": "mmap", "name": "b", "size": "256KiB"}]')"
slow="$(locks slow '[{"op": "mmap", "name": "b", "size": "256KiB"}, {"op": "pin", "mapping": "b"}]')"
check "a pin of missing pages takes mmap_lock once, no VMA lock ($empty vs $slow)" \
  test "$slow" = "$(( ${empty% *} + 1 )) ${empty#* }"

# A read-only VMA: EFAULT (check_vma_flags with FOLL_WRITE), exit 2 naming the op.
exp "$tmp/ro.json" x86_small '[{"op": "mmap", "name": "b", "size": "64KiB", "prot": "r"},
  {"op": "pin", "mapping": "b"}]'
"$TLBSIM" run "$tmp/ro.json" --out "$tmp/ro" --quiet 2> "$tmp/ro.err"
check "pin of a read-only mapping is exit 2" test $? -eq 2
check "pin of a read-only mapping: EFAULT at the op" grep -q '/workload/processes/0/threads/0/ops/1: pin failed with errno 14' "$tmp/ro.err"
# unpin with nothing pinned there: ENXIO.
exp "$tmp/nx.json" x86_small '[{"op": "mmap", "name": "b", "size": "64KiB"},
  {"op": "pin", "mapping": "b", "length": "16KiB"},
  {"op": "unpin", "mapping": "b", "offset": "32KiB"}]'
"$TLBSIM" run "$tmp/nx.json" --out "$tmp/nx" --quiet 2> "$tmp/nx.err"
check "unpin of nothing is exit 2" test $? -eq 2
check "unpin of nothing: ENXIO at the op" grep -q 'ops/2: unpin failed with errno 6 (ENXIO)' "$tmp/nx.err"
finish
