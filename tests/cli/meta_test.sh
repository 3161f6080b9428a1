#!/usr/bin/env bash
# Unix conventions of a run (issue 15 item 6): `tlbsim --version`; stats.json meta
# with the command line, the --set list, the host, the build type and a dirty-tree
# flag; stats.csv renamed into place before stats.json (the resume key, issue 16
# item 16), checked on the rename system calls; --debug categories that print what
# they name (and exit 2 for one that does not exist); --trace and --debug in sweeps.
source "$(dirname "$0")/lib.sh" "$@"
v="$("$TLBSIM" --version)"
check "--version exits 0" test $? -eq 0
check "--version names version, revision and build" \
  grep -Eq '^tlbsim [0-9]+\.[0-9]+\.[0-9]+ \(git [0-9a-f]+(-dirty)?, [A-Za-z]+ build\)$' <<<"$v"
"$TLBSIM" run "$ROOT/configs/experiments/quickstart.json" --out "$tmp/q" --quiet --set seed=3 \
  --set machine.cpus=3
check "meta has command line, sets, host, build type and dirty flag" python3 - "$tmp/q/stats.json" "$v" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))["meta"]
assert m["command_line"][1:3] == ["run", m["experiment_file"]], m["command_line"]
assert m["command_line"][-4:] == ["--set", "seed=3", "--set", "machine.cpus=3"], m["command_line"]
assert m["sets"] == ["seed=3", "machine.cpus=3"], m["sets"]
assert m["host"]["hostname"] and m["host"]["kernel"].startswith("Linux "), m["host"]
assert m["build_type"] in sys.argv[2], (m["build_type"], sys.argv[2])
assert m["git_dirty"] == m["git_revision"].endswith("-dirty"), m
PY
if command -v strace > /dev/null; then
  strace -f -qq -e trace=rename,renameat,renameat2 -o "$tmp/renames" \
    "$TLBSIM" run "$ROOT/configs/experiments/quickstart.json" --out "$tmp/r" --quiet
  order="$(grep -o 'stats\.[a-z]*"' "$tmp/renames" | tr -d '"' | tr '\n' ' ')"
  check "stats.csv is renamed before stats.json ($order)" test "$order" = "stats.csv stats.json "
else
  echo "SKIP rename order: no strace"
fi
# --debug: real categories, listed in --help; each prints its events on stderr.
"$TLBSIM" run --help > "$tmp/help"
check "--help lists the debug categories" grep -q "flush: TLB flush requests" "$tmp/help"
"$TLBSIM" run "$ROOT/configs/experiments/quickstart.json" --out "$tmp/d" --quiet \
  --debug flush,syscall > "$tmp/d.out" 2> "$tmp/d.err"
check "--debug exits 0" test $? -eq 0
check "--debug prints nothing on stdout" test ! -s "$tmp/d.out"
check "--debug flush: the munmap's shootdown" grep -q '^\[flush\] debug: cpu0 [0-9]* cycles: flush_tlb_mm_range full, IPIs to 1 CPU(s)' "$tmp/d.err"
check "--debug syscall: munmap with its pages" grep -q '^\[syscall\] debug: cpu0 [0-9]* cycles (+[0-9]*): munmap buf {"pages":16384}' "$tmp/d.err"
check "--debug flush,syscall prints no other category" test "$(grep -vc '^\[\(flush\|syscall\)\]' "$tmp/d.err")" -eq 0
"$TLBSIM" run "$ROOT/configs/experiments/quickstart.json" --out "$tmp/plain" --quiet
check "same stats with and without --debug" python3 -c "
import json
a = json.load(open('$tmp/d/stats.json'))['stats']
b = json.load(open('$tmp/plain/stats.json'))['stats']
assert a == b"
"$TLBSIM" run "$ROOT/configs/experiments/quickstart.json" --out "$tmp/bad" --debug flsh 2> "$tmp/bad.err"
check "unknown debug category is exit 2" test $? -eq 2
check "unknown debug category: did you mean, valid list" grep -q 'did you mean "flush"?); valid: syscall' "$tmp/bad.err"

# The summary leaves idle CPUs out (one line says how many) unless --all-cpus.
"$TLBSIM" run "$ROOT/configs/experiments/quickstart.json" --out "$tmp/srv" --set machine=x86_server > "$tmp/srv.txt"
check "idle CPUs summarised" grep -q '^(62 idle CPUs with all zeros not shown; --all-cpus lists them)$' "$tmp/srv.txt"
check "busy CPUs listed" grep -q '^cpu1 ' "$tmp/srv.txt"
check "idle CPU rows left out" bash -c "! grep -q '^cpu63 ' '$tmp/srv.txt'"
"$TLBSIM" run "$ROOT/configs/experiments/quickstart.json" --out "$tmp/srv" --set machine=x86_server --all-cpus > "$tmp/srv-all.txt"
check "--all-cpus lists every CPU" grep -q '^cpu63 ' "$tmp/srv-all.txt"

# A sweep with --trace NAME writes NAME into every point; --debug goes to run.log.
cat > "$tmp/sw.json" <<JSON
{"name": "sw", "machine": "x86_small", "workload": {"preset": "munmap", "params": {"size": "1MiB"}},
 "sweep": {"kernel": ["linux-6.7", "linux-6.15"]}}
JSON
"$TLBSIM" run "$tmp/sw.json" --out "$tmp/sw" -j 2 --quiet --trace t.json --debug flush
check "sweep with --trace and --debug exits 0" test $? -eq 0
for d in "$tmp/sw/"0*/; do
  check "$(basename "$d"): timeline" python3 -c "import json; assert json.load(open('$d/t.json'))['traceEvents']"
  check "$(basename "$d"): debug log" grep -q '^\[flush\] debug:' "$d/run.log"
done
finish
