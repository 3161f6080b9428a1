#!/usr/bin/env bash
# Workloads from anywhere (issue 15 item 2): `--workload FILE` relative to the
# current directory, TLBSIM_PATH searched in order before the catalog, a workload
# file named in an experiment relative to the experiment, --set workload.params.*
# on top of --workload, --workload in a sweep, and exit 2 naming --workload and the
# directories searched when nothing is found.
source "$(dirname "$0")/lib.sh" "$@"
stat_of() {  # DIR PYTHON-EXPR-ON-s
  python3 -c "import json,sys; s=json.load(open(sys.argv[1]+'/stats.json'))['stats']['system']; print($2)" "$1"
}
mkdir -p "$tmp/a" "$tmp/b" "$tmp/exp/sub" "$tmp/cwd/w"
# Two workloads called "mine" with different region names: which one ran shows.
wl() {  # FILE REGION
  cat > "$1" <<JSON
{"params": {"size": "64KiB"},
 "processes": [{"threads": [{"cpu": 0, "ops": [
   {"op": "region", "name": "$2", "ops": [
     {"op": "mmap", "name": "m", "size": "\${size}"},
     {"op": "touch", "mapping": "m", "access": "write"}]}]}]}]}
JSON
}
wl "$tmp/a/mine.json" from_a
wl "$tmp/b/mine.json" from_b
wl "$tmp/b/only_b.json" only_b
wl "$tmp/cwd/w/rel.json" rel
wl "$tmp/exp/sub/beside.json" beside
cat > "$tmp/exp/e.json" <<JSON
{"name": "e", "machine": "x86_small", "workload": "sub/beside.json"}
JSON
cat > "$tmp/exp/catalog.json" <<JSON
{"name": "c", "machine": "x86_small", "workload": {"preset": "munmap", "params": {"size": "1MiB"}}}
JSON
faults() { stat_of "$1" "s['regions']['region[$2]']['faults']['value']"; }

# A workload file named in the experiment: relative to the experiment file.
"$TLBSIM" run "$tmp/exp/e.json" --out "$tmp/o1" --quiet
check "experiment-relative workload runs" test "$(faults "$tmp/o1" beside)" = 16

# --workload FILE: relative to the current directory, not to the experiment.
(cd "$tmp/cwd" && "$TLBSIM" run "$tmp/exp/e.json" --workload w/rel.json --out "$tmp/o2" --quiet)
check "--workload relative to the cwd" test "$(faults "$tmp/o2" rel)" = 16
# --set workload.params.* applies on top of --workload.
(cd "$tmp/cwd" && "$TLBSIM" run "$tmp/exp/e.json" --workload w/rel.json \
   --set workload.params.size=128KiB --out "$tmp/o3" --quiet)
check "--set on top of --workload" test "$(faults "$tmp/o3" rel)" = 32
# --workload on a catalog experiment replaces the catalog workload; its params stay.
"$TLBSIM" run "$tmp/exp/catalog.json" --workload "$tmp/b/only_b.json" --set workload.params.size=32KiB \
  --out "$tmp/o4" --quiet
check "--workload replaces a catalog preset" test "$(faults "$tmp/o4" only_b)" = 8

# TLBSIM_PATH: directories in order, before the catalog; catalog names still work.
TLBSIM_PATH="$tmp/a:$tmp/b" "$TLBSIM" run "$tmp/exp/e.json" --workload mine --out "$tmp/o5" --quiet
check "TLBSIM_PATH first directory wins" test "$(faults "$tmp/o5" from_a)" = 16
TLBSIM_PATH="$tmp/b:$tmp/a" "$TLBSIM" run "$tmp/exp/e.json" --workload mine --out "$tmp/o6" --quiet
check "TLBSIM_PATH order" test "$(faults "$tmp/o6" from_b)" = 16
TLBSIM_PATH="::$tmp/a:" "$TLBSIM" run "$tmp/exp/e.json" --set workload=only_b --out "$tmp/o7" --quiet \
  2> "$tmp/err7"
check "a name not on the path is exit 2" test $? -eq 2
check "the message lists the directories searched" grep -q "not found in $tmp/a, $ROOT/workloads/catalog" "$tmp/err7"
TLBSIM_PATH="$tmp/b" "$TLBSIM" run "$tmp/exp/catalog.json" --out "$tmp/o8" --quiet
check "catalog names with TLBSIM_PATH set" test "$(faults "$tmp/o8" populate)" = 256
(cd "$tmp/cwd" && TLBSIM_PATH=. "$TLBSIM" validate "$tmp/exp/e.json" --workload w/rel.json > /dev/null)
check "validate --workload" test $? -eq 0

# A missing --workload file: exit 2, the option named, not --set.
"$TLBSIM" run "$tmp/exp/e.json" --workload "$tmp/none.json" --out "$tmp/o9" 2> "$tmp/err9"
check "missing --workload file is exit 2" test $? -eq 2
check "the message names --workload" grep -q "^tlbsim: --workload $tmp/none.json: /workload: .*not found" "$tmp/err9"
check "no results for a bad --workload" test ! -e "$tmp/o9/stats.json"

# A sweep with --workload: every point runs the file's workload.
cat > "$tmp/exp/sweep.json" <<JSON
{"name": "s", "machine": "x86_small", "workload": "sub/beside.json",
 "sweep": {"kernel": ["linux-6.7", "linux-6.15"]}}
JSON
(cd "$tmp/cwd" && "$TLBSIM" run "$tmp/exp/sweep.json" --workload w/rel.json --out "$tmp/s" -j 2 --quiet)
check "sweep with --workload exits 0" test $? -eq 0
for d in "$tmp/s/"0*; do
  check "sweep point $(basename "$d") ran --workload" test "$(faults "$d" rel)" = 16
done

finish
