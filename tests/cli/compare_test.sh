#!/usr/bin/env bash
# tlbsim compare for papers (issue 15 item 5): CSV fields quoted (sweep-point labels
# hold commas), full labels through a legend when they are long, a "no differences"
# line, per-CPU rows summed into cpu[*] unless --per-cpu, --threshold, and time in
# ns next to cycles from each run's own clock (x86 and arm64 clocks differ).
source "$(dirname "$0")/lib.sh" "$@"
cat > "$tmp/s.json" <<JSON
{"name": "s", "kernel": "linux-6.15",
 "workload": {"preset": "munmap", "params": {"size": "1MiB"}},
 "sweep": {"machine": ["x86_server", "arm64_server"], "workload.params.size": ["1MiB"]}}
JSON
"$TLBSIM" run "$tmp/s.json" --out "$tmp/s" -j 2 --quiet --all-cpus
check "sweep exits 0" test $? -eq 0
a="$(ls -d "$tmp/s/000-"*)"; b="$(ls -d "$tmp/s/001-"*)"
check "the point labels hold commas" grep -q , <<<"$(basename "$a")"

"$TLBSIM" compare --csv --all "$a" "$b" > "$tmp/all.csv"
check "csv: every row has the header's fields" python3 -c "
import csv, sys
rows = list(csv.reader(open('$tmp/all.csv')))
assert len(rows) > 10, len(rows)
assert all(len(r) == len(rows[0]) == 4 for r in rows), [len(r) for r in rows[:3]]
assert rows[0][1] == '$(basename "$a")', rows[0]"
check "csv: cpu rows are summed into cpu[*]" python3 -c "
import csv
rows = {r[0]: r for r in csv.reader(open('$tmp/all.csv'))}
assert any('cpu[*]' in k for k in rows), list(rows)[:5]
assert not any('cpu[0]' in k for k in rows)"
"$TLBSIM" compare --csv --all --per-cpu "$a" "$b" > "$tmp/percpu.csv"
check "--per-cpu keeps each CPU" grep -q 'system\.cpu\[63\]\.' "$tmp/percpu.csv"
check "cpu[*] is the sum over CPUs" python3 -c "
import csv, json
each = {r[0]: r for r in csv.reader(open('$tmp/percpu.csv'))}
summed = {r[0]: r for r in csv.reader(open('$tmp/all.csv'))}
j = json.load(open('$a/stats.json'))['stats']['system']
want = sum(v['stlb']['misses']['value'] for v in j['cpu'] if v is not None)
got = float(summed['system.cpu[*].stlb.misses'][1])
assert got == want and want > 0, (got, want)"

# stats.json: per-CPU groups are one list "cpu"; a CPU that did nothing is null
# unless --all-cpus (the points above kept all 64); stats.csv has every CPU.
"$TLBSIM" run "$tmp/s.json" --out "$tmp/idle" --quiet
p="$(ls -d "$tmp/idle/000-"*)"
check "stats.json: cpu is a list of 64, idle CPUs null, CPUs 0 and 1 not" python3 -c "
import json
c = json.load(open('$p/stats.json'))['stats']['system']['cpu']
assert isinstance(c, list) and len(c) == 64, type(c)
assert c[0] is not None and c[1] is not None and all(x is None for x in c[2:]), [x is None for x in c]"
check "--all-cpus keeps every CPU" python3 -c "
import json
c = json.load(open('$a/stats.json'))['stats']['system']['cpu']
assert len(c) == 64 and all(x is not None for x in c)"
check "stats.csv keeps the flat paths" grep -q '^system.cpu\[63\].cycles,' "$p/stats.csv"

# Time from each run's clock: x86_server 2.6 GHz... whatever the preset says.
"$TLBSIM" compare --csv "$a" "$b" > "$tmp/head.csv"
check "time next to cycles, from each run's clock" python3 -c "
import csv, json
rows = {r[0]: r for r in csv.reader(open('$tmp/head.csv'))}
for i, d in ((1, '$a'), (2, '$b')):
    ghz = json.load(open(d + '/stats.json'))['config']['machine']['freq_ghz']
    cyc = float(rows['system.regions.region[munmap].cycles'][i])
    ns = float(rows['system.regions.region[munmap].time_ns'][i])
    assert abs(ns - cyc / ghz) <= 0.1 + 1e-6 * ns, (i, ns, cyc, ghz)
    assert abs(float(rows['meta.simulated_ns'][i]) - float(rows['meta.simulated_cycles'][i]) / ghz) < 1"

# Text: labels longer than 24 bytes go to a legend, in full.
"$TLBSIM" compare "$a" "$b" > "$tmp/text"
check "legend has the full labels" grep -qxF "[1] $(basename "$a")" "$tmp/text"
check "columns headed [1] [2]" grep -q '^metric  *\[1\]  *\[2\]  *\[2\]/\[1\]$' "$tmp/text"
"$TLBSIM" compare --markdown "$a" "$b" | head -1 > "$tmp/md"
check "markdown keeps full labels" grep -qF "$(basename "$b")" "$tmp/md"

# Nothing differs: a line saying so (stdout), the CSV stays a header.
"$TLBSIM" compare --all "$a" "$a" > "$tmp/same"
check "--all with no difference says so" grep -qx "no metric differs between the runs" "$tmp/same"
"$TLBSIM" compare --all --csv "$a" "$a" > "$tmp/same.csv" 2> "$tmp/same.err"
check "csv with no difference is the header" test "$(wc -l < "$tmp/same.csv")" -eq 1
check "csv with no difference says so on stderr" grep -q "no metric differs" "$tmp/same.err"

# --threshold: only metrics whose ratio to the first differs by more than PCT %.
"$TLBSIM" compare --all --csv --threshold 50 "$a" "$b" > "$tmp/t.csv"
check "threshold keeps only large differences" python3 -c "
import csv
rows = list(csv.reader(open('$tmp/t.csv')))[1:]
allr = list(csv.reader(open('$tmp/all.csv')))[1:]
assert 0 < len(rows) < len(allr), (len(rows), len(allr))
for r in rows:
    if r[3]:
        assert abs(float(r[3]) - 1) > 0.5, r"
"$TLBSIM" compare --threshold -1 "$a" "$b" > /dev/null 2> "$tmp/neg"
check "negative threshold is exit 2" test $? -eq 2
finish
