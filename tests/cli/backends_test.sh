#!/usr/bin/env bash
# Sweep backends (issue 15 item 7): configs/experiments/shootdown-scaling.json run
# on the local pool, with GNU parallel and as a Slurm job array on a real one-node
# Slurm (tests/cli/slurm_cluster.sh) gives identical sweep.csv files; sweep-collect
# lists unfinished and failed points and --resume reruns only those; the backend
# options are exit 2 where they do not apply.
source "$(dirname "$0")/lib.sh" "$@"
exp="$ROOT/configs/experiments/shootdown-scaling.json"
"$TLBSIM" run "$exp" --out "$tmp/local" --quiet
check "local sweep" test $? -eq 0
"$TLBSIM" run "$exp" --out "$tmp/par" --backend parallel -j 2 --quiet
check "parallel sweep" test $? -eq 0
check "parallel: 16 points in the job log" test "$(tail -n +2 "$tmp/par/.sweep/parallel.joblog" | wc -l)" -eq 16
check "parallel: sweep.csv identical to local" cmp -s "$tmp/local/sweep.csv" "$tmp/par/sweep.csv"

bad() {  # NAME WANT ARGS...
  local name="$1" want="$2"
  shift 2
  "$TLBSIM" "$@" > /dev/null 2> "$tmp/$name.err"
  local rc=$?
  check "$name: exit 2 (got $rc)" test "$rc" -eq 2
  check "$name: message" grep -q -- "$want" "$tmp/$name.err"
}
bad no_sweep 'runs the points of a sweep' run "$ROOT/configs/experiments/quickstart.json" --backend parallel --out "$tmp/q"
bad wait_local '--wait and --sbatch-arg are for --backend slurm' run "$exp" --wait --out "$tmp/w"
bad ssh_local '--sshloginfile is for --backend parallel' run "$exp" --sshloginfile h --out "$tmp/w"
bad unknown 'backend' run "$exp" --backend mpi --out "$tmp/w"
env PATH=/nonexistent "$TLBSIM" run "$exp" --backend slurm --out "$tmp/w" 2> "$tmp/no_sbatch.err"
check "no sbatch: exit 2" test $? -eq 2
check "no sbatch: message" grep -q 'sbatch is not on PATH: install the Debian package slurm-wlm' "$tmp/no_sbatch.err"
bad not_a_sweep 'not a sweep directory' sweep-collect "$tmp"

if [ "$(id -u)" -ne 0 ] || ! command -v slurmctld > /dev/null; then
  echo "SKIP the Slurm part: needs root and slurm-wlm + munge"
  finish
fi
cluster="$tmp/cluster"
trap '"$ROOT/tests/cli/slurm_cluster.sh" stop "$cluster"; rm -rf "$tmp"' EXIT
eval "$("$ROOT/tests/cli/slurm_cluster.sh" start "$cluster")"
check "the one-node Slurm is up" test -n "${SLURM_CONF:-}"
# Submit and return at once; collect once the array has left the queue.
"$TLBSIM" run "$exp" --out "$tmp/slurm" --backend slurm > "$tmp/submit.out"
check "slurm: submitted" grep -q 'submitted Slurm job array [0-9]* (16 points)' "$tmp/submit.out"
job="$(cat "$tmp/slurm/.sweep/slurm_job")"
for _ in $(seq 600); do
  [ -z "$(squeue -h -j "$job" -o %i 2> /dev/null)" ] && break
  sleep 0.2
done
"$TLBSIM" sweep-collect "$tmp/slurm" --quiet
check "slurm: sweep-collect" test $? -eq 0
check "slurm: sweep.csv identical to local" cmp -s "$tmp/local/sweep.csv" "$tmp/slurm/sweep.csv"
# A failed point (as a task killed half-way leaves it) is listed, and --resume
# submits only that one.
d="$tmp/slurm/005-machine=x86_server,machine.cpus=64"
rm "$d/stats.json" && echo 137 > "$d/exit_status"
"$TLBSIM" sweep-collect "$tmp/slurm" --quiet 2> "$tmp/collect.err"
check "slurm: a failed point makes sweep-collect exit 1" test $? -eq 1
check "slurm: the failed point is named" grep -q 'sweep point 5 (machine=x86_server machine.cpus=64) failed' "$tmp/collect.err"
"$TLBSIM" run "$exp" --out "$tmp/slurm" --backend slurm --resume --wait --quiet
check "slurm: --resume --wait" test $? -eq 0
check "slurm: the resumed array ran one point" test "$(wc -l < "$tmp/slurm/.sweep/commands.txt")" -eq 1
check "slurm: the other points are reused" test "$(grep -c ',skipped,' "$tmp/slurm/sweep.csv")" -eq 15
"$TLBSIM" sweep-collect "$tmp/slurm" --quiet
check "slurm: identical again after sweep-collect" cmp -s "$tmp/local/sweep.csv" "$tmp/slurm/sweep.csv"
# A queued array (held) blocks a second sweep of the directory.
"$TLBSIM" run "$exp" --out "$tmp/held" --backend slurm --sbatch-arg=--hold > /dev/null
bad active 'still queued or running' run "$exp" --out "$tmp/held" --backend slurm --resume
"$TLBSIM" sweep-collect "$tmp/held" --quiet 2> "$tmp/held.err"
check "held: sweep-collect exit 1" test $? -eq 1
check "held: 16 points not finished" grep -q '16 of 16 points have not finished' "$tmp/held.err"
scancel "$(cat "$tmp/held/.sweep/slurm_job")"
finish
