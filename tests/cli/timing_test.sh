#!/usr/bin/env bash
# Time that must be where Linux spends it, and VMAs that must be what Linux leaves:
#  - after fork + child exit + parent wait, the wait region covers the child's
#    exit_mmap (the child starts only once dup_mmap returned): it grows with the
#    size of the child's address space;
#  - a 512 x (mprotect RO, mprotect RW) round trip over 1 GiB leaves one VMA
#    (vma_merge_existing_range); a munmap afterwards queues no deferred split on x86
#    (one per folio on arm64, where Linux's zap batch stops at the unfolded contpte
#    block), and on arm64 issues no more TLBIs than the munmap without the round trip.
source "$(dirname "$0")/lib.sh" "$@"
stat() {  # DIR PATH
  python3 -c "import json,sys; print(json.load(open('$1/stats.json'))['stats']['system']['regions']['region[$2]']['$3']['value'])"
}

# --- fork, child exit, wait -----------------------------------------------------------
forkexp() {  # SIZE FILE
  cat > "$2" <<JSON
{"machine": "x86_small", "kernel": "linux-6.15",
 "workload": {"processes": [{"threads": [{"cpu": 0, "ops": [
   {"op": "mmap", "name": "buf", "size": "$1", "prot": "rw"},
   {"op": "touch", "mapping": "buf", "access": "write"},
   {"op": "fork", "cpu": 1, "ops": [{"op": "exit"}]},
   {"op": "region", "name": "wait", "ops": [{"op": "wait"}]}]}]}]}}
JSON
}
forkexp 8MiB "$tmp/f8.json"
forkexp 64MiB "$tmp/f64.json"
"$TLBSIM" run "$tmp/f8.json" --out "$tmp/f8" --quiet && "$TLBSIM" run "$tmp/f64.json" --out "$tmp/f64" --quiet
check "fork runs" test $? -eq 0
w8=$(stat "$tmp/f8" wait cycles)
w64=$(stat "$tmp/f64" wait cycles)
echo "wait region: 8 MiB $w8 cycles, 64 MiB $w64 cycles"
check "the wait covers the child's exit_mmap (more than 2000 cycles per page at 8 MiB)" \
  python3 -c "assert $w8 > 2048 * 100, $w8"
check "the wait grows with the address space (64 MiB vs 8 MiB: > 6x)" \
  python3 -c "assert $w64 > 6 * $w8, ($w8, $w64)"

# --- mprotect round trip: VMAs merge back -------------------------------------------
roundtrip() {  # MACHINE FILE ROUNDTRIP(0/1)
  python3 - "$1" "$2" "$3" <<'PY'
import json, sys
machine, path, rt = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
ops = [{"op": "mmap", "name": "buf", "size": "1GiB", "prot": "rw", "align": "2MiB"},
       {"op": "touch", "mapping": "buf", "access": "write"}]
trip = []
if rt:
    for i in range(512):
        trip.append({"op": "mprotect", "mapping": "buf", "offset": i * 2 * 1024 * 1024,
                     "length": 4096, "prot": "r"})
    for i in range(512):
        trip.append({"op": "mprotect", "mapping": "buf", "offset": i * 2 * 1024 * 1024,
                     "length": 4096, "prot": "rw"})
ops.append({"op": "region", "name": "trip", "ops": trip or [{"op": "sleep", "cycles": 1}]})
ops.append({"op": "region", "name": "munmap", "ops": [{"op": "munmap", "mapping": "buf"}]})
exp = {"machine": {"preset": machine, "memory": "2GiB"}, "kernel": "linux-6.15",
       "folio_size": "2MiB",
       "workload": {"processes": [{"threads": [{"cpu": 0, "ops": ops}]}]}}
json.dump(exp, open(path, "w"))
PY
}
for m in x86_small arm64_small; do
  roundtrip $m "$tmp/rt.$m.json" 1
  roundtrip $m "$tmp/plain.$m.json" 0
  "$TLBSIM" run "$tmp/rt.$m.json" --out "$tmp/rt.$m" --quiet
  check "$m round trip runs" test $? -eq 0
  "$TLBSIM" run "$tmp/plain.$m.json" --out "$tmp/plain.$m" --quiet
  check "$m plain munmap runs" test $? -eq 0
  check "$m: one VMA after the round trip" test "$(stat "$tmp/rt.$m" trip vmas_at_exit)" -eq 1
  check "$m: the round trip split every PMD" test "$(stat "$tmp/rt.$m" trip thp_split_pmd)" -eq 512
  if [ $m = x86_small ]; then
    check "$m: munmap afterwards queues no deferred split (one zap batch of 512 per folio)" \
      test "$(stat "$tmp/rt.$m" munmap thp_deferred_split_page)" -eq 0
  else
    # arm64 as Linux 6.9+: the round trip unfolded the first contpte block of each
    # folio and nothing refolds it (contpte_try_fold only on a block's last PTE), and
    # folio_pte_batch() compares PTE_CONT (mm/internal.h __pte_batch_clear_ignored
    # keeps it), so zap removes 16 + 496 pages in two rmap calls and the first one
    # leaves the folio partially mapped: deferred_split_folio(folio, true) per folio.
    check "$m: munmap afterwards queues one deferred split per folio (contpte boundary)" \
      test "$(stat "$tmp/rt.$m" munmap thp_deferred_split_page)" -eq 512
  fi
  if [ $m = arm64_small ]; then
    a=$(stat "$tmp/rt.$m" munmap tlbis)
    b=$(stat "$tmp/plain.$m" munmap tlbis)
    echo "arm64 munmap TLBIs: after the round trip $a, without it $b"
    check "arm64: no more TLBIs than the munmap without the round trip" test "$a" -le "$b"
  fi
done
finish
