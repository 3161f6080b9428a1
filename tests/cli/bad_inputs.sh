#!/usr/bin/env bash
# Every malformed experiment exits 2 with one message naming the file and the JSON
# pointer; a failed run leaves a previous good stats.json untouched.
set -u
TLBSIM="$1"
ROOT="$2"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
fails=0
pass=0

expect_bad() {  # NAME EXPECTED_SUBSTRING JSON [extra args...]
  local name="$1" want="$2" json="$3"
  shift 3
  printf '%s' "$json" > "$tmp/$name.json"
  local out rc
  out="$("$TLBSIM" run "$tmp/$name.json" --out "$tmp/out-$name" --quiet "$@" 2>&1)"
  rc=$?
  if [ "$rc" -ne 2 ] || ! grep -qF -- "$want" <<<"$out"; then
    echo "FAIL $name: rc=$rc, want 2 and a message containing: $want"
    echo "     got: $out"
    fails=$((fails + 1))
  else
    pass=$((pass + 1))
  fi
  if [ "$(wc -l <<<"$out")" -ne 1 ]; then
    echo "FAIL $name: expected exactly one line, got: $out"
    fails=$((fails + 1))
  fi
}

W='"workload": {"processes": [{"threads": [{"cpu": 0, "ops": [{"op": "mmap", "name": "b", "size": "1MiB"}, {"op": "touch", "mapping": "b"}]}]}]}'

expect_bad negative_cpus "/machine/cpus: expected a positive integer, got -2" \
  "{\"machine\": {\"preset\": \"x86_small\", \"cpus\": -2}, $W}"
expect_bad zero_cpus "/machine/cpus: expected a positive integer, got 0" \
  "{\"machine\": {\"preset\": \"x86_small\", \"cpus\": 0}, $W}"
expect_bad unknown_key "/machine/cpuz: unknown key \"cpuz\" (did you mean \"cpus\"?)" \
  "{\"machine\": {\"preset\": \"x86_small\", \"cpuz\": 4}, $W}"
expect_bad wrong_type "/kernel/zap_batching: expected true or false, got the string \"yes\"" \
  "{\"kernel\": {\"preset\": \"linux-6.15\", \"zap_batching\": \"yes\"}, $W}"
expect_bad bad_size "/machine/memory: expected a size such as" \
  "{\"machine\": {\"preset\": \"x86_small\", \"memory\": \"lots\"}, $W}"
expect_bad missing_preset "/machine: machine preset \"x86_smal\" not found" \
  "{\"machine\": \"x86_smal\", $W}"
expect_bad missing_workload "/workload: catalog workload \"nope\" not found" \
  "{\"machine\": \"x86_small\", \"workload\": \"nope\"}"
expect_bad invalid_json "line 1, column" "{\"machine\": \"x86_small\",, $W}"
expect_bad unknown_op "/workload/processes/0/threads/0/ops/0/op: unknown op \"mmapp\"" \
  '{"workload": {"processes": [{"threads": [{"ops": [{"op": "mmapp"}]}]}]}}'
expect_bad unknown_top "/machin: unknown key \"machin\" (did you mean \"machine\"?)" \
  "{\"machin\": \"x86_small\", $W}"
expect_bad out_of_range_set "--set machine.cpus=5000: /machine/cpus: expected a value <= 1024" \
  "{$W}" --set machine.cpus=5000
expect_bad segv "segmentation fault" \
  '{"workload": {"processes": [{"threads": [{"ops": [{"op": "mmap", "name": "b", "size": "4KiB", "prot": "r"}, {"op": "touch", "mapping": "b", "access": "write"}]}]}]}}'

# mremap: a grow that cannot happen in place without MREMAP_MAYMOVE is ENOMEM, an
# old range past its mapping's VMA (after munmap of its tail) EFAULT — run-time
# errnos of the workload, exit 2 with the op's pointer.
expect_bad mremap_enomem "/workload/processes/0/threads/0/ops/2: mremap of mapping b to 2097152 bytes failed with errno 12" \
  '{"workload": {"processes": [{"threads": [{"ops": [{"op": "mmap", "name": "guard", "size": "4KiB", "prot": "none"}, {"op": "mmap", "name": "b", "size": "1MiB"}, {"op": "mremap", "mapping": "b", "size": "2MiB", "maymove": false}]}]}]}}'
expect_bad mremap_dontunmap "/workload/processes/0/threads/0/ops/1/dontunmap: not supported yet: MREMAP_DONTUNMAP" \
  '{"workload": {"processes": [{"threads": [{"ops": [{"op": "mmap", "name": "b", "size": "1MiB"}, {"op": "mremap", "mapping": "b", "size": "1MiB", "dontunmap": true}]}]}]}}'
expect_bad mremap_overlap "mremap of mapping b to 1048576 bytes failed with errno 22" \
  '{"workload": {"processes": [{"threads": [{"ops": [{"op": "mmap", "name": "b", "size": "1MiB", "addr": "1GiB", "fixed": true}, {"op": "mremap", "mapping": "b", "size": "1MiB", "fixed": true, "addr": 1074266112}]}]}]}}'

# A failing run must not replace a previous good result.
printf '%s' "{$W}" > "$tmp/good.json"
"$TLBSIM" run "$tmp/good.json" --out "$tmp/keep" --quiet || { echo "FAIL good run"; fails=$((fails + 1)); }
before="$(md5sum < "$tmp/keep/stats.json")"
printf '%s' "{\"machine\": {\"preset\": \"x86_small\", \"cpus\": -2}, $W}" > "$tmp/bad.json"
"$TLBSIM" run "$tmp/bad.json" --out "$tmp/keep" --quiet 2>/dev/null
after="$(md5sum < "$tmp/keep/stats.json")"
if [ "$before" != "$after" ]; then
  echo "FAIL: a failed run changed the previous stats.json"
  fails=$((fails + 1))
else
  pass=$((pass + 1))
fi

# tlbsim params lists every key with unit and doc.
n="$("$TLBSIM" params | grep -c '^[a-z].* = ')"
if [ "$n" -lt 50 ]; then
  echo "FAIL: tlbsim params lists only $n keys"
  fails=$((fails + 1))
else
  pass=$((pass + 1))
fi

echo "$pass passed, $fails failed"
[ "$fails" -eq 0 ]
