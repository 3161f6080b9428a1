#!/usr/bin/env bash
# Run-time input errors raised inside SystemC threads (issue 16 item 18): each is
# exit 2 with one line naming the file and the op's pointer — and, in the sanitizer
# build (CTest runs this with the unit label there), no AddressSanitizer report: an
# exception thrown on a coroutine stack, or rethrown on the main stack after
# sc_start, must not leave false stack-buffer-overflows (base/asan_stack.h). When two
# tasks fail in one run, ASan still warns once that it cannot see the bounds of the
# second one's coroutine stack ("ignoring requested __asan_handle_no_return ... False
# positive error reports may follow", google/sanitizers#189; SystemC 2.3.4's fiber
# annotations lose track after the first thread ended): those three lines are left
# out of the one-line check; any "ERROR: AddressSanitizer" report fails.
source "$(dirname "$0")/lib.sh" "$@"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
case_() {  # NAME WANT-REGEX OPS-JSON [more processes JSON]
  local name="$1" want="$2" ops="$3" more="${4:-}"
  printf '{"machine": "x86_small", "workload": {"processes": [{"threads": [{"cpu": 0, "ops": %s}]}%s]}}\n' \
    "$ops" "$more" > "$tmp/$name.json"
  "$TLBSIM" run "$tmp/$name.json" --out "$tmp/$name" --quiet > "$tmp/$name.out" 2> "$tmp/$name.err"
  local rc=$?
  check "$name: exit 2 (got $rc)" test "$rc" -eq 2
  check "$name: no sanitizer report" bash -c "! grep -q 'ERROR: .*Sanitizer\|runtime error:' '$tmp/$name.err'"
  grep -v -e 'ASan is ignoring requested __asan_handle_no_return' \
    -e '^False positive error reports may follow' -e 'google/sanitizers/issues/189' \
    "$tmp/$name.err" > "$tmp/$name.msg"
  check "$name: one line" test "$(wc -l < "$tmp/$name.msg")" -eq 1
  check "$name: message" grep -Eq "^tlbsim: $tmp/$name.json: .*$want" "$tmp/$name.msg"
}
case_ segv '/ops/1: segmentation fault' \
  '[{"op": "mmap", "name": "b", "size": "64KiB", "prot": "r"}, {"op": "touch", "mapping": "b", "access": "write"}]'
case_ pin_efault '/ops/1: pin failed with errno 14' \
  '[{"op": "mmap", "name": "b", "size": "64KiB", "prot": "r"}, {"op": "pin", "mapping": "b"}]'
case_ after_mprotect '/ops/3: segmentation fault' \
  '[{"op": "mmap", "name": "b", "size": "2MiB"}, {"op": "touch", "mapping": "b", "access": "write"},
    {"op": "mprotect", "mapping": "b", "prot": "r"}, {"op": "touch", "mapping": "b", "access": "write"}]'
# Two processes failing in the same run: one message, still no report.
case_ two_fail 'segmentation fault' \
  '[{"op": "mmap", "name": "b", "size": "64KiB", "prot": "r"}, {"op": "touch", "mapping": "b", "access": "write"}]' \
  ', {"threads": [{"cpu": 1, "ops": [{"op": "mmap", "name": "c", "size": "64KiB", "prot": "r"}, {"op": "touch", "mapping": "c", "access": "write"}]}]}'
# One task faults while another of the process is suspended inside reclaim: its heap
# blocks are referenced only from its coroutine stack, which LeakSanitizer scans as
# a root region (base/asan_stack.h CoroutineStackRoots): no leak report.
case_ fail_beside_reclaim '/ops/3: segmentation fault' \
  '[{"op": "await", "name": "go", "wait": "spin"}, {"op": "sleep", "cycles": 200000, "wait": "spin"},
    {"op": "mmap", "name": "none", "size": "8KiB", "prot": "none"}, {"op": "touch", "mapping": "none"}]' \
  ', {"threads": [{"cpu": 1, "ops": [{"op": "mmap", "name": "big", "size": "64MiB"}, {"op": "touch", "mapping": "big"}, {"op": "post", "name": "go"}, {"op": "reclaim", "pages": 10000}]}]}'
finish
