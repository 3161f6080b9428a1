#!/usr/bin/env bash
# Unix conventions of a run (issue 15 item 6): `tlbsim --version`; stats.json meta
# with the command line, the --set list, the host, the build type and a dirty-tree
# flag; stats.csv renamed into place before stats.json (the resume key, issue 16
# item 16), checked on the rename system calls.
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
finish
