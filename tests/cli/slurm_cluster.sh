#!/usr/bin/env bash
# A real one-node Slurm for the sweep backend test: munged + slurmctld + slurmd on
# this host, every file under a scratch directory, torn down by PID.
#   eval "$(tests/cli/slurm_cluster.sh start DIR)"   # exports SLURM_CONF
#   tests/cli/slurm_cluster.sh stop DIR
# Needs root (the daemons run as root; no cgroups: proctrack/linuxproc) and the
# Debian packages slurm-wlm and munge (tools/bootstrap installs them).
set -euo pipefail
cmd="$1"
dir="$(mkdir -p "$2" && cd "$2" && pwd)"
host="$(hostname -s)"
stop() {
  for f in "$dir/slurmd.pid" "$dir/slurmctld.pid" "$dir/munged.pid"; do
    [ -s "$f" ] || continue
    pid="$(cat "$f")"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$f"
  done
}
if [ "$cmd" = stop ]; then
  stop
  exit 0
fi
[ "$(id -u)" -eq 0 ] || { echo "slurm_cluster.sh: needs root" >&2; exit 77; }
for t in munged slurmctld slurmd sbatch; do
  command -v "$t" > /dev/null || { echo "slurm_cluster.sh: $t not installed (slurm-wlm, munge)" >&2; exit 77; }
done
mkdir -p "$dir/state" "$dir/spool" "$dir/munge"
# munged: its own socket, key, pid and log in the scratch directory (as root it
# wants --force: the log directory is not the munge user's).
[ -s "$dir/munge/munge.key" ] || dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 2> /dev/null
chmod 600 "$dir/munge/munge.key"
munged --force --socket="$dir/munge/socket" --key-file="$dir/munge/munge.key" \
  --pid-file="$dir/munged.pid" --log-file="$dir/munge/munged.log" --seed-file="$dir/munge/seed"
cat > "$dir/slurm.conf" <<CONF
ClusterName=tlbsim-test
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$((16817 + RANDOM % 1000))
SlurmdPort=$((17818 + RANDOM % 1000))
AuthType=auth/munge
AuthInfo=socket=$dir/munge/socket
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
ReturnToService=2
MpiDefault=none
NodeName=$host CPUs=$(nproc) State=UNKNOWN
PartitionName=test Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF="$dir/slurm.conf"
slurmctld -f "$SLURM_CONF"
slurmd -f "$SLURM_CONF"
for _ in $(seq 100); do
  if sinfo -h -o '%T' 2> /dev/null | grep -q idle; then
    echo "export SLURM_CONF='$SLURM_CONF'"
    exit 0
  fi
  sleep 0.2
done
echo "slurm_cluster.sh: the node did not become idle in 20 s; logs in $dir" >&2
stop
exit 1
