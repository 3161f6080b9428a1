#!/usr/bin/env python3
"""Runs every ```sh block of docs/guide.md, in order, in a scratch directory, the way
a newcomer would type them (issue 15): each block is one bash script (set -e, so
every command must succeed; variables carry from line to line), with `tlbsim` on
PATH and configs/, tools/, workloads/ and build/ of the source tree linked into
the scratch directory, so results/ and the files the commands write land there.
Paths under /tmp/ are moved into the scratch directory. A `hosts.txt` with `:`
(this machine) is there for GNU parallel's --sshloginfile.

A block preceded by `<!-- guide-test: slurm -->` runs with a one-node Slurm that
this test starts (tests/cli/slurm_cluster.sh) and with the queue drained after
every line; without root or slurm-wlm it is skipped with a note.

  guide_test.py TLBSIM ROOT
"""
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile

tlbsim = pathlib.Path(sys.argv[1]).resolve()
root = pathlib.Path(sys.argv[2]).resolve()
guide = (root / "docs/guide.md").read_text()
blocks = []
for m in re.finditer(r"((?:<!-- guide-test: (\w+) -->\n)?)```sh\n(.*?)```", guide, re.S):
    line = guide.count("\n", 0, m.start(3)) + 1
    blocks.append((line, m.group(2) or "", m.group(3)))

scratch = pathlib.Path(tempfile.mkdtemp(prefix="guide-test."))
for d in ("configs", "tools", "workloads", "build", "docs"):
    (scratch / d).symlink_to(root / d)
(scratch / "tmp").mkdir()
(scratch / "hosts.txt").write_text(":\n")
env = dict(os.environ, PATH=f"{tlbsim.parent}:{os.environ['PATH']}", TLBSIM_ROOT=str(root))
env.pop("TLBSIM_PATH", None)
cluster = scratch / "slurm"
can_slurm = os.geteuid() == 0 and shutil.which("slurmctld") is not None
failed = passed = 0
try:
    for line, mode, body in blocks:
        text = body.replace("/tmp/", f"{scratch}/tmp/")
        script = "set -euo pipefail\n"
        if mode == "slurm":
            if not can_slurm:
                print(f"SKIP docs/guide.md:{line}: needs root and slurm-wlm for the Slurm commands")
                continue
            if not (cluster / "slurm.conf").exists():
                out = subprocess.run([str(root / "tests/cli/slurm_cluster.sh"), "start", str(cluster)],
                                     capture_output=True, text=True, check=True).stdout
                env["SLURM_CONF"] = re.search(r"SLURM_CONF='([^']*)'", out).group(1)
            script += ("drain() { for _ in $(seq 600); do [ -z \"$(squeue -h -o %i)\" ] && return; "
                       "sleep 0.2; done; echo 'the Slurm queue did not drain' >&2; return 1; }\n")
            # Logical lines (backslash continuations joined), each followed by a drain.
            logical = re.sub(r"\\\n\s*", " ", text).splitlines()
            text = "".join(f"{ln}\ndrain\n" for ln in logical if ln.strip())
        r = subprocess.run(["bash", "-c", script + text], cwd=scratch, env=env,
                           capture_output=True, text=True, timeout=900)
        if r.returncode == 0:
            passed += 1
        else:
            failed += 1
            print(f"FAIL docs/guide.md:{line} (exit {r.returncode}):\n{body}")
            print("--- stderr (last lines):\n" + "\n".join(r.stderr.splitlines()[-15:]))
finally:
    if (cluster / "slurm.conf").exists():
        subprocess.run([str(root / "tests/cli/slurm_cluster.sh"), "stop", str(cluster)])
    shutil.rmtree(scratch, ignore_errors=True)
print(f"{passed} blocks passed, {failed} failed")
sys.exit(1 if failed or not passed else 0)
