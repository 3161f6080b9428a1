#!/usr/bin/env bash
# The reproducers of issue 16 ("never crash, never alias, never wrap"), one named
# case each: every one exits 2 with one line naming the file and the JSON pointer (or
# line), never a signal or an internal error; `validate` says the same as `run` for
# what can be known before running; resources are checked before the simulation.
set -u
TLBSIM="$1"
ROOT="$2"
export TLBSIM_ROOT="$ROOT"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
fails=0
pass=0
ulimit -c 0

fail() {
  echo "FAIL $*"
  fails=$((fails + 1))
}

# check_bad NAME WANT FILE [run args...]: `run` exits 2 with exactly one line that
# contains WANT and starts with a file and a pointer or line.
check_bad() {
  local name="$1" want="$2" file="$3"
  shift 3
  local out rc
  out="$(timeout 120 "$TLBSIM" run "$file" --out "$tmp/out-$name" --quiet "$@" 2>&1)"
  rc=$?
  if [ "$rc" -ne 2 ] || ! grep -qF -- "$want" <<<"$out"; then
    fail "$name: rc=$rc, want 2 and a message containing: $want"
    echo "     got: ${out:0:400}"
  elif [ "$(wc -l <<<"$out")" -ne 1 ]; then
    fail "$name: expected exactly one line, got: ${out:0:400}"
  elif ! grep -qE '^tlbsim: .+: (/[^ ]*|line [0-9]+(, column [0-9]+)?): ' <<<"$out"; then
    fail "$name: no file and pointer or line: ${out:0:400}"
  else
    pass=$((pass + 1))
  fi
}

# expect_bad NAME WANT JSON [args...]: as check_bad, and `validate` gives the same
# message (what is known before running is refused before running).
expect_bad() {
  local name="$1" want="$2" json="$3"
  shift 3
  printf '%s' "$json" > "$tmp/$name.json"
  check_bad "$name" "$want" "$tmp/$name.json" "$@"
  local v vrc
  v="$(timeout 120 "$TLBSIM" validate "$tmp/$name.json" "$@" 2>&1)"
  vrc=$?
  if [ "$vrc" -ne 2 ] || ! grep -qF -- "$want" <<<"$v"; then
    fail "$name (validate): rc=$vrc, want 2 and: $want; got: ${v:0:300}"
  else
    pass=$((pass + 1))
  fi
}

# expect_run_bad NAME WANT JSON [args...]: valid input whose run fails with exit 2.
expect_run_bad() {
  local name="$1" want="$2" json="$3"
  shift 3
  printf '%s' "$json" > "$tmp/$name.json"
  check_bad "$name" "$want" "$tmp/$name.json" "$@"
}

# expect_ok NAME JSON [args...]
expect_ok() {
  local name="$1" json="$2"
  shift 2
  printf '%s' "$json" > "$tmp/$name.json"
  local out rc
  out="$(timeout 120 "$TLBSIM" run "$tmp/$name.json" --out "$tmp/out-$name" --quiet "$@" 2>&1)"
  rc=$?
  if [ "$rc" -ne 0 ]; then fail "$name: rc=$rc: ${out:0:300}"; else pass=$((pass + 1)); fi
}

ops() {  # a one-thread workload with these ops (JSON text of the list's items)
  printf '{"machine": "x86_small", "workload": {"processes": [{"threads": [{"cpu": 0, "ops": [%s]}]}]}}' "$1"
}
MMAP='{"op": "mmap", "name": "b", "size": "1MiB"}'
printf '%s' "$(ops "$MMAP, {\"op\": \"touch\", \"mapping\": \"b\"}")" > "$tmp/small.json"

# --- 1: deep nesting is bad input at parse time, with its line and column -----------
python3 - "$tmp" <<'PY'
import json, sys
t = sys.argv[1]
# A 10,000-level fork chain (json.dumps would recurse: the text is built by hand).
head = '{"op": "fork", "cpu": 1, "ops": [' * 10000
text = '{"machine": "x86_small", "workload": {"processes": [{"threads": [{"cpu": 0, "ops": [' + \
       head + '{"op": "exit"}' + ']}' * 10000 + ']}]}]}}'
open(f"{t}/fork_chain.json", "w").write(text)
open(f"{t}/comment_key.json", "w").write(
    '{"workload": {"_c": ' + '[' * 100000 + ']' * 100000 +
    ', "processes": [{"threads": [{"cpu": 0, "ops": []}]}]}}')
open(f"{t}/deep_seed.json", "w").write(
    '{"seed": ' + '{"a": ' * 100000 + '1' + '}' * 100000 + ', "workload": "munmap"}')
open(f"{t}/deep_axis.json", "w").write(
    '{"workload": "munmap", "sweep": {"seed": [1, ' + '[' * 100000 + ']' * 100000 + ']}}')
PY
check_bad deep_fork_chain "nested deeper than 200 levels" "$tmp/fork_chain.json"
check_bad deep_comment_key "nested deeper than 200 levels" "$tmp/comment_key.json"
check_bad deep_seed "nested deeper than 200 levels" "$tmp/deep_seed.json"
check_bad deep_sweep_axis "nested deeper than 200 levels" "$tmp/deep_axis.json"
check_bad deep_set_value "nested deeper than 200 levels" "$tmp/small.json" \
  --set "seed=$(printf '[%.0s' {1..300})"
long="$(printf 'x%.0s' {1..5000})"
expect_bad long_value_excerpt '/ops/0/mapping: expected a string, got ["xxxxxxxx' \
  "$(ops "{\"op\": \"touch\", \"mapping\": [\"$long\", \"$long\"]}")"
if [ "$(wc -c < <("$TLBSIM" validate "$tmp/long_value_excerpt.json" 2>&1))" -gt 200 ]; then
  fail "long_value_excerpt: the message quotes more than a short excerpt"
fi

# --- 2: MAP_FIXED beyond the user address space never aliases -----------------------
HI="$(ops '{"op": "mmap", "name": "hi", "size": "8KiB", "addr": 281475245146112, "fixed": true},
  {"op": "mmap", "name": "lo", "size": "8KiB", "addr": 268435456, "fixed": true},
  {"op": "region", "name": "hi", "ops": [{"op": "touch", "mapping": "hi", "access": "write"}]},
  {"op": "region", "name": "lo", "ops": [{"op": "touch", "mapping": "lo", "access": "write"}]},
  {"op": "munmap", "mapping": "lo"},
  {"op": "region", "name": "hi2", "ops": [{"op": "touch", "mapping": "hi", "access": "read"}]}')"
expect_bad fixed_above_task_size_x86 "/ops/0/addr: expected addr + size at most TASK_SIZE" "$HI"
expect_bad fixed_above_task_size_arm64 "(0x1000000000000), got 0x1000010000000 + 0x2000" "$HI" \
  --set machine=arm64_small
expect_bad mmap_size_2_63 "/ops/0/size: expected a size below TASK_SIZE" \
  "$(ops '{"op": "mmap", "name": "b", "size": 9223372036854775808}')"
expect_bad mmap_size_128t "/ops/0/size: expected a size below TASK_SIZE" \
  "$(ops '{"op": "mmap", "name": "b", "size": "128TiB"}')"
expect_bad mmap_kernel_addr "/ops/0/addr: expected addr + size at most TASK_SIZE" \
  "$(ops '{"op": "mmap", "name": "b", "size": "4KiB", "addr": 18446603336221196288, "fixed": true}')"
expect_bad mmap_align_2_63 "/ops/0/align: expected an alignment of at most 1GiB" \
  "$(ops '{"op": "mmap", "name": "b", "size": "4KiB", "align": 9223372036854775808}')"
# The same address below 2^48 is fine on a 5-level x86 machine.
expect_ok fixed_below_la57_task_size \
  "$(ops '{"op": "mmap", "name": "hi", "size": "8KiB", "addr": 281475245146112, "fixed": true},
          {"op": "touch", "mapping": "hi"}')" --set machine.pgtable_levels=5

# --- 3: numbers out of double range -------------------------------------------------
expect_bad seed_1e400 'line 1, column 10: number "1e400" is out of range' \
  '{"seed": 1e400, "workload": "munmap"}'
expect_bad set_1e400 'number "1e400" is out of range' '{"workload": "munmap"}' --set seed=1e400
expect_bad cpus_1e30 "/machine/cpus: expected a non-negative integer that fits in 32 bits" \
  '{"machine": {"preset": "x86_small", "cpus": 1e30}, "workload": "munmap"}'

# --- 4: validate and run agree on the machine's TLBs --------------------------------
W="\"workload\": {\"processes\": [{\"threads\": [{\"cpu\": 0, \"ops\": [$MMAP, {\"op\": \"touch\", \"mapping\": \"b\"}]}]}]}"
expect_bad l1d_entries_0 "/machine/l1d/entries: expected at least 1 entry" \
  "{\"machine\": {\"preset\": \"x86_small\", \"l1d\": {\"entries\": 0}}, $W}"
expect_bad l1d_sizes_empty "/machine/l1d/sizes: expected at least one page size" \
  "{\"machine\": {\"preset\": \"x86_small\", \"l1d\": {\"sizes\": \"\"}}, $W}"
expect_bad stlb_sizes_twice "/machine/stlb/sizes: expected a buildable TLB" \
  "{\"machine\": {\"preset\": \"x86_small\", \"stlb\": {\"sizes\": \"4KiB,4KiB\"}}, $W}"
expect_bad arm64_walk_cache_ways "/machine/arm64/walk_cache_ways: expected ways dividing" \
  "{\"machine\": {\"preset\": \"arm64_small\", \"arm64\": {\"walk_cache_entries\": 10}}, $W}"
expect_ok stlb_entries_0_is_absent "{\"machine\": {\"preset\": \"x86_small\", \"stlb\": {\"entries\": 0}}, $W}"

# --- 5: long names never reach the filesystem ---------------------------------------
name300="$(printf 'y%.0s' {1..300})"
expect_bad long_machine_name "/machine: expected a machine preset name of 1 to 255 bytes" \
  "{\"machine\": \"$name300\", $W}"
expect_bad long_kernel_name "/kernel: expected a kernel profile name of 1 to 255 bytes" \
  "{\"kernel\": \"$name300\", $W}"
expect_bad long_catalog_name "/workload: expected a catalog workload name of 1 to 255 bytes" \
  "{\"workload\": \"$name300\"}"
expect_bad long_experiment_name "/name: expected a name of 1 to 255 bytes" \
  "{\"name\": \"$name300\", $W}"
# A sweep value that is a long string: the point directory is cut and hashed.
pad="$(printf ' %.0s' {1..400})"
cat > "$tmp/long_axis.json" <<JSON
{"name": "la", "workload": {"preset": "munmap", "params": {"size": "1MiB"}},
 "sweep": {"workload.params.size": ["1MiB", "2MiB$pad"]}}
JSON
out="$("$TLBSIM" run "$tmp/long_axis.json" --out "$tmp/la" -j 2 --quiet 2>&1)"
rc=$?
if [ "$rc" -ne 0 ]; then
  fail "long_sweep_value: rc=$rc: ${out:0:300}"
elif [ "$(find "$tmp/la" -mindepth 1 -maxdepth 1 -type d | awk -F/ '{print length($NF)}' | sort -n | tail -1)" -gt 255 ]; then
  fail "long_sweep_value: a point directory name is longer than 255 bytes"
else
  pass=$((pass + 1))
fi

# --- 6: simulated OOM at fork is the workload's result (exit 2), not internal -------
expect_run_bad fork_oom "/ops/2: fork failed with errno 12 (ENOMEM)" \
  "$(ops '{"op": "mmap", "name": "b", "size": "1GiB"}, {"op": "touch", "mapping": "b", "access": "write"},
          {"op": "fork", "cpu": 1}')"

# --- 7: unusable --out is refused before running; catalog files of the wrong shape ---
touch "$tmp/a_file"
out="$("$TLBSIM" run "$tmp/small.json" --out "$tmp/a_file" --quiet 2>&1)"
rc=$?
if [ "$rc" -ne 2 ] || ! grep -qF -- "--out $tmp/a_file: cannot create the output directory" <<<"$out"; then
  fail "out_is_a_file: rc=$rc: $out"
else
  pass=$((pass + 1))
fi
out="$("$TLBSIM" run "$tmp/small.json" --out "$tmp/o" --trace "$tmp/nodir/t.json" --quiet 2>&1)"
rc=$?
if [ "$rc" -ne 2 ] || ! grep -qF -- "--trace $tmp/nodir/t.json: cannot write the timeline" <<<"$out" ||
   [ -e "$tmp/o/stats.json" ]; then
  fail "trace_unwritable: rc=$rc (want 2 before any result is written): $out"
else
  pass=$((pass + 1))
fi
mkdir -p "$tmp/root/configs" "$tmp/root/workloads/catalog"
cp -r "$ROOT/configs/machines" "$ROOT/configs/kernels" "$tmp/root/configs/"
echo '[]' > "$tmp/root/workloads/catalog/array.json"
echo '{"params": 0, "processes": []}' > "$tmp/root/workloads/catalog/params0.json"
TLBSIM_ROOT="$tmp/root" expect_bad catalog_is_an_array "array.json: /: expected a workload object" \
  '{"workload": "array"}'
TLBSIM_ROOT="$tmp/root" expect_bad catalog_params_0 "params0.json: /params: expected an object" \
  '{"workload": "params0"}'
TLBSIM_ROOT="$tmp/root" expect_bad catalog_params_0_with_values "params0.json: /params: expected an object" \
  '{"workload": {"preset": "params0", "params": {"size": 1}}}'

# --- 8: host memory is estimated and refused up front -------------------------------
expect_bad memory_1tib_over_limit "/machine/memory: this run needs about 20.0GiB of host memory" \
  '{"machine": {"preset": "x86_small", "memory": "1TiB"}, "workload": "munmap"}' --max-host-memory 8GiB
expect_bad tlb_entries_times_cpus "/machine/cpus: this run needs about" \
  '{"machine": {"preset": "x86_small", "cpus": 1024, "stlb": {"entries": 1048576, "ways": 16}}, "workload": "munmap"}' \
  --max-host-memory 16GiB
printf '#!/bin/sh\nulimit -v 8000000\nexec "%s" "$@"\n' "$TLBSIM" > "$tmp/limited"
chmod +x "$tmp/limited"
TLBSIM="$tmp/limited" expect_bad memory_under_ulimit "but the address-space limit (ulimit -v)" \
  '{"machine": {"preset": "x86_small", "memory": "1TiB"}, "workload": "munmap"}' --max-host-memory 1TiB
# Fuzz finding (mutant 3734 of the 2026-12-04 campaign): walk-cache entries cost 33
# bytes, not 24; 128 CPUs with 2^20 each under a 4 GiB ulimit was a bad_alloc (exit 1).
printf '#!/bin/sh\nulimit -v 4194304\nexec "%s" "$@"\n' "$TLBSIM" > "$tmp/limited4"
chmod +x "$tmp/limited4"
TLBSIM="$tmp/limited4" expect_bad walk_cache_times_cpus "/machine/cpus: this run needs about 4.5GiB" \
  '{"machine": {"preset": "arm64_server", "cpus": 128, "arm64": {"walk_cache_entries": 1048576}}, "workload": "munmap"}'
out="$("$TLBSIM" validate "$tmp/small.json" 2>&1)"
grep -q "of host memory)" <<<"$out" && pass=$((pass + 1)) || fail "validate prints the estimate: $out"

# --- 9: every parameter's range is enforced -----------------------------------------
expect_bad freq_0 "/machine/freq_ghz: expected a value >= 0.01, got 0" \
  "{\"machine\": {\"preset\": \"x86_small\", \"freq_ghz\": 0}, $W}"
expect_bad freq_negative "/machine/freq_ghz: expected a value >= 0.01, got -2.5" \
  "{\"machine\": {\"preset\": \"x86_small\", \"freq_ghz\": -2.5}, $W}"
expect_bad latency_huge "/machine/stlb/hit_latency_cycles: expected a value <= 16777216" \
  "{\"machine\": {\"preset\": \"x86_small\", \"stlb\": {\"hit_latency_cycles\": 4000000000}}, $W}"
expect_bad quantum_huge "/machine/quantum_cycles: expected a value <= 16777216" \
  "{\"machine\": {\"preset\": \"x86_small\", \"quantum_cycles\": 4000000000}, $W}"
"$TLBSIM" params | awk '/ = / && /\[(cycles|bytes|GHz)\]/ && !/\.\.[0-9]/ {print; bad=1} END {exit bad}' \
  && pass=$((pass + 1)) || fail "every cycles/bytes/GHz parameter declares a range in tlbsim params"

# --- 11: CPU numbers are checked as 64-bit values -----------------------------------
expect_bad thread_cpu_2_32 "/threads/0/cpu: expected a CPU number below 2" \
  '{"workload": {"processes": [{"threads": [{"cpu": 4294967296, "ops": []}]}]}}'
expect_bad fork_cpu_2_32 "/ops/0/cpu: expected a CPU number below 2" \
  "$(ops '{"op": "fork", "cpu": 4294967297}')"

# --- 13: one line, file and pointer --------------------------------------------------
expect_bad newline_in_name '/ops/0/mapping: no mapping named "a\nb"' \
  "$(ops '{"op": "touch", "mapping": "a\nb"}')"
expect_bad newline_in_region_name '/ops/0/name: expected a name of 1 to 255 bytes' \
  "$(ops '{"op": "region", "name": "a\nb", "ops": []}')"
expect_bad param_error_names_set "--set machine.l1d.ways=7: /machine/l1d/ways: expected ways dividing entries" \
  "{$W}" --set machine.l1d.ways=7
expect_bad barrier_deadlock '/threads/0/ops/0/name: barrier "x" is reached 2 times by this thread but once' \
  '{"workload": {"processes": [{"threads": [
     {"cpu": 0, "ops": [{"op": "barrier", "name": "x"}, {"op": "barrier", "name": "x"}]},
     {"cpu": 1, "ops": [{"op": "barrier", "name": "x"}]}]}]}}'
expect_bad barrier_after_exit '/threads/0/ops/0/name: barrier "x" is reached once by this thread but never' \
  '{"workload": {"processes": [{"threads": [
     {"cpu": 0, "ops": [{"op": "barrier", "name": "x"}]},
     {"cpu": 1, "ops": [{"op": "exit"}, {"op": "barrier", "name": "x"}]}]}]}}'
# Two CPUs fail at the same time: no SystemC "W545 sc_stop has already been called".
P='{"threads": [{"cpu": CPU, "ops": [{"op": "mmap", "name": "b", "size": "4KiB", "prot": "r"},
   {"op": "touch", "mapping": "b", "access": "write"}]}]}'
expect_run_bad two_threads_fail "/processes/0/threads/0/ops/1: segmentation fault" \
  "{\"workload\": {\"processes\": [${P/CPU/0}, ${P/CPU/1}]}}"

# Found by the fuzzer: a --set of a swept key names the axis in the file.
printf '%s' '{"workload": "munmap", "sweep": {"folio_size": ["4KiB", "64KiB"]}}' > "$tmp/swept.json"
check_bad set_of_swept_key '/sweep/folio_size: the sweep axis "folio_size" conflicts with --set' \
  "$tmp/swept.json" --set 'folio_size="x"'

check_bad set_unknown_top_key '--set sweep=1.5: /sweep: unknown top-level key "sweep"' \
  "$tmp/small.json" --set sweep=1.5

# --- 14: a protection that is not one -------------------------------------------------
expect_bad mprotect_prot_bogus "/ops/1/prot: expected a protection like \"none\", \"r\", \"rw\" or \"rwx\", got \"rz\"" \
  "$(ops "$MMAP, {\"op\": \"mprotect\", \"mapping\": \"b\", \"prot\": \"rz\"}")"

# --- 15: no 64-bit arithmetic wraps -------------------------------------------------
expect_bad sleep_2_64 "/ops/0/cycles: expected an integer <= 17592186044416" \
  "$(ops '{"op": "sleep", "cycles": 18446744073709551615}')"
expect_bad think_2_64 "/ops/1/think_cycles: expected an integer <= 17592186044416" \
  "$(ops "$MMAP, {\"op\": \"touch\", \"mapping\": \"b\", \"think_cycles\": 18446744073709551615}")"
expect_bad think_times_accesses "/ops/1/think_cycles: expected at most 2^44 cycles of think time per op" \
  "$(ops "$MMAP, {\"op\": \"touch\", \"mapping\": \"b\", \"think_cycles\": 17592186044416, \"repeat\": 2}")"
expect_bad munmap_offset_wraps "/ops/1/offset: expected an offset inside mapping \"b\" (1MiB)" \
  "$(ops "$MMAP, {\"op\": \"munmap\", \"mapping\": \"b\", \"offset\": 18446744073709547520}")"
expect_bad madvise_offset_beyond "/ops/1/offset: expected an offset inside mapping \"b\" (1MiB)" \
  "$(ops "$MMAP, {\"op\": \"madvise\", \"mapping\": \"b\", \"advice\": \"dontneed\", \"offset\": \"2MiB\"}")"
expect_bad munmap_length_beyond "/ops/1/length: expected offset + length within mapping" \
  "$(ops "$MMAP, {\"op\": \"munmap\", \"mapping\": \"b\", \"offset\": \"512KiB\", \"length\": \"1MiB\"}")"
mkdir -p "$tmp/tr"
printf '0 10000000000000 r\n' > "$tmp/tr/big.trace"
printf '0 0 r 99999999999999999999999\n' > "$tmp/tr/count.trace"
printf '%s' "$(ops "$MMAP, {\"op\": \"replay\", \"trace\": \"big.trace\", \"mappings\": [\"b\"]}")" > "$tmp/tr/big.json"
printf '%s' "$(ops "$MMAP, {\"op\": \"replay\", \"trace\": \"count.trace\", \"mappings\": [\"b\"]}")" > "$tmp/tr/count.json"
check_bad trace_page_2_52 "big.trace: line 1: page 0x10000000000000 lies beyond mapping 0 (256 pages)" \
  "$tmp/tr/big.json"
check_bad trace_count_overflow "count.trace: line 1: expected a count (too large), in" "$tmp/tr/count.json"

echo "$pass passed, $fails failed"
[ "$fails" -eq 0 ]
