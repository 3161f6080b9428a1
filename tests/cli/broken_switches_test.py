#!/usr/bin/env python3
"""The coherence checker against every broken-on-purpose kernel switch, on random
multi-threaded workloads run through the command line (issue 16, item 19).

  broken_switches_test.py TLBSIM [FAMILY...]

Each family generates five seeded random workloads that exercise the path its
switch breaks, runs each on x86_server and arm64_server (where the path exists)
with the default quantum and with quantum 0, once with the switch on — the checker
must report the violation of that family's kind — and once on the shipped profile,
which must report no violation of any kind. The workloads differ in thread count,
CPUs, sizes, alignment, which thread touches what, how the others wait (blocking:
the CPU idles with the mm loaded lazily; spinning: it keeps running the mm) and in
unrelated ops mixed in; the structure each family needs is kept:

  free     debug_free_before_flush: a thread frees memory (munmap, MADV_DONTNEED)
           that it and others just touched, one mapping alone in its 2 MiB so its
           page table is freed too. Caught at the free (freed_while_cached): on
           x86 the TLBs still hold the pages; on arm64 the leaves were flushed
           per VMA (tlb_end_vma) but the walk caches still point at the table.
  lazy     debug_skip_lazy_freed_tables (x86): readers touch a mapping alone in
           its 2 MiB and block; the owner unmaps it and frees its page table
           without IPIing the lazy readers, whose paging-structure caches still
           point at it (freed_while_cached at the free).
  contpte  debug_no_contpte_unfold_flush (arm64, 64 KiB folios): a contpte block
           cached as one 64 KiB entry is unfolded (mprotect, MADV_DONTNEED or
           munmap of part of it) without the TLBI between break and make
           (break_before_make).
  fork     debug_fork_skip_flush: threads dirty a mapping, one forks (dup_mmap
           write-protects it), the threads store to it again through their stale
           writable entries (permission).
  cow      debug_cow_skip_flush: after a fork, a reader caches pages; a writer's
           COW replaces them without the flush of ptep_clear_flush; the reader
           reads again through entries naming the old frames (permission).

debug_mprotect_skip_flush has no family here: the only access that can reveal it
(a store after mprotect(PROT_READ)) faults on a correct kernel, so no valid
workload reaches it; tests/models/coherence_test.cpp probes it instead.
"""
import concurrent.futures
import json
import os
import random
import subprocess
import sys
import tempfile

TLBSIM = sys.argv[1]
ONLY = set(sys.argv[2:])
TMP = tempfile.mkdtemp(prefix="tlbsim-broken-")
SEEDS = range(1, 1 + int(os.environ.get("TLBSIM_BROKEN_SEEDS", "5")))
QUANTA = ("default", "0")
KiB = 1024


def op(kind, **kw):
    d = {"op": kind}
    d.update(kw)
    return d


class Gen:
    """A random multi-threaded process: thread 0 owns the mappings."""

    def __init__(self, seed, min_threads=2):
        self.r = random.Random(seed)
        self.n = self.r.randint(min_threads, 4)
        self.cpus = self.r.sample(range(0, 16), self.n)
        self.ops = [[] for _ in range(self.n)]
        self.barriers = 0
        self.noise_maps = 0

    def all(self, *ops_per_thread):
        for t, o in enumerate(ops_per_thread):
            self.ops[t].append(o)

    def barrier(self, waits=None):
        """All threads meet; `waits[t]` is block or spin (random if not given)."""
        self.barriers += 1
        name = f"b{self.barriers}"
        for t in range(self.n):
            w = waits[t] if waits else self.r.choice(["block", "spin"])
            self.ops[t].append(op("barrier", name=name, wait=w))

    def size(self, lo, hi):
        return f"{self.r.randint(lo, hi) * 4}KiB"

    def noise(self, t):
        """Unrelated work on a private mapping of thread t (no effect on the path: 2 MiB
        aligned, so it never shares a page table with a mapping the path frees)."""
        self.noise_maps += 1
        name = f"noise{self.noise_maps}"
        ops = [op("mmap", name=name, size=self.size(1, 32), align="2MiB"),
               op("touch", mapping=name, access="write")]
        k = self.r.randint(0, 3)
        if k == 1:
            ops.append(op("mprotect", mapping=name, prot="r"))
        elif k == 2:
            ops.append(op("madvise", mapping=name, advice="cold"))
        elif k == 3:
            ops.append(op("touch", mapping=name, access="read", pattern="random",
                          count=self.r.randint(1, 64), seed=self.r.randint(1, 99)))
        self.ops[t].extend(ops)

    def maybe_noise(self):
        for t in range(self.n):
            if self.r.random() < 0.4:
                self.noise(t)

    def owner_maps(self, size, align):
        """Thread 0 maps and writes mapping "m"; unrelated work; all meet."""
        self.ops[0] += [op("mmap", name="m", size=size, align=align),
                        op("touch", mapping="m", access="write")]
        self.maybe_noise()
        self.barrier()

    def tail(self):
        """Unrelated work once the path is done (a flush it caused, say a nested-flush
        full flush of a concurrent madvise, would hide the path if it overlapped)."""
        self.barrier()
        self.maybe_noise()
        self.barrier()

    def workload(self):
        threads = [{"name": f"t{t}", "cpu": self.cpus[t], "ops": self.ops[t]} for t in range(self.n)]
        return {"name": "random", "processes": [{"name": "p", "threads": threads}]}


def window(g, pages):
    off = g.r.randrange(pages)
    length = g.r.randint(1, pages - off)
    return {"offset": f"{off * 4}KiB", "length": f"{length * 4}KiB"}


def gen_free(seed):
    g = Gen(seed)
    maps = {"alone": g.r.randint(1, 511)}  # alone in its 2 MiB: munmap frees its PTE table
    for i in range(g.r.randint(0, 2)):
        maps[f"m{i}"] = g.r.randint(1, 64)
    for name, pages in maps.items():
        # Each mapping starts a 2 MiB region, so none shares a page table with another.
        g.ops[0] += [op("mmap", name=name, size=f"{pages * 4}KiB", align="2MiB"),
                     op("touch", mapping=name, access="write")]
    g.maybe_noise()
    g.barrier()
    for t in range(1, g.n):
        for name in g.r.sample(sorted(maps), g.r.randint(1, len(maps))):
            g.ops[t].append(op("touch", mapping=name, access=g.r.choice(["read", "write"]),
                               **window(g, maps[name])))
    g.barrier()
    frees = [op("munmap", mapping="alone")]
    for name in maps:
        if name != "alone":
            frees.append(g.r.choice([op("munmap", mapping=name),
                                     op("madvise", mapping=name, advice="dontneed",
                                        **window(g, maps[name]))]))
    g.r.shuffle(frees)
    g.ops[0] += [op("touch", mapping="alone", access="write")] + frees
    g.tail()
    return g.workload(), {}


def gen_lazy(seed):
    g = Gen(seed)
    pages = g.r.randint(1, 511)
    g.owner_maps(f"{pages * 4}KiB", "2MiB")
    # Readers touch the mapping; at least one then sleeps (futex: its CPU idles with
    # the mm loaded lazily) until the owner has unmapped it, the others spin.
    sleepers = [t for t in range(1, g.n) if g.r.random() < 0.6] or [g.r.randrange(1, g.n)]
    for t in range(1, g.n):
        g.ops[t].append(op("touch", mapping="m", access=g.r.choice(["read", "write"]),
                           **window(g, pages)))
        g.ops[t].append(op("post", name="touched"))
        if t in sleepers:
            g.ops[t].append(op("await", name="unmapped"))
    g.ops[0] += [op("await", name="touched", wait=g.r.choice(["block", "spin"]))
                 for _ in range(1, g.n)]
    g.ops[0] += [op("sleep", cycles=g.r.randint(20000, 200000), wait="spin"),  # they fall asleep
                 op("munmap", mapping="m"),
                 op("post", name="unmapped", count=len(sleepers))]
    g.tail()
    return g.workload(), {}


def gen_contpte(seed):
    g = Gen(seed)
    blocks = g.r.randint(1, 16)
    g.owner_maps(f"{blocks * 64}KiB", "64KiB")
    for t in range(1, g.n):
        g.ops[t].append(op("touch", mapping="m", access="read", **window(g, blocks * 16)))
    g.barrier()
    b = g.r.randrange(blocks)
    page = b * 16 + g.r.randrange(16)
    part = {"offset": f"{page * 4}KiB", "length": f"{g.r.randint(1, 15 - page % 16 + 1) * 4}KiB"}
    if part["length"] == "64KiB":
        part["length"] = "60KiB"
    g.ops[0].append(g.r.choice([op("mprotect", mapping="m", prot="r", **part),
                                op("madvise", mapping="m", advice="dontneed", **part),
                                op("munmap", mapping="m", **part)]))
    g.tail()
    return g.workload(), {"folio_size": "64KiB"}


def gen_fork(seed):
    g = Gen(seed)
    pages = g.r.randint(1, 64)
    g.ops[0] += [op("mmap", name="m", size=f"{pages * 4}KiB"),
                 op("touch", mapping="m", access="write")]
    g.barrier()
    writers = [0] + [t for t in range(1, g.n) if g.r.random() < 0.5]
    for t in writers[1:]:
        g.ops[t].append(op("touch", mapping="m", access="write", **window(g, pages)))
    g.maybe_noise()
    g.barrier(["spin"] * g.n)  # the writers keep running the mm: their entries stay
    child = [op("touch", mapping="m", access="read", **window(g, pages))] if g.r.random() < 0.5 else []
    g.ops[0].append(op("fork", ops=child))
    g.barrier(["spin"] * g.n)
    for t in writers:
        g.ops[t].append(op("touch", mapping="m", access="write"))
    g.ops[0].append(op("wait"))
    g.barrier()
    return g.workload(), {}


def gen_cow(seed):
    g = Gen(seed)
    pages = g.r.randint(1, 64)
    g.ops[0] += [op("mmap", name="m", size=f"{pages * 4}KiB"),
                 op("touch", mapping="m", access="write"),
                 op("fork", ops=[op("await", name="done")])]  # the child keeps the pages shared
    g.maybe_noise()
    g.barrier()
    readers = list(range(1, g.n))
    for t in readers:
        g.ops[t].append(op("touch", mapping="m", access="read"))
    g.barrier(["spin"] * g.n)  # readers keep running the mm
    g.ops[0].append(op("touch", mapping="m", access="write", **window(g, pages)))
    g.barrier(["spin"] * g.n)
    for t in readers:
        g.ops[t].append(op("touch", mapping="m", access="read"))
    g.barrier()
    g.ops[0] += [op("post", name="done"), op("wait")]
    return g.workload(), {}


# family → (generator, switch, machines, statistic that must be >= 1)
FAMILIES = {
    "free": (gen_free, "debug_free_before_flush", ("x86_server", "arm64_server"),
             "freed_while_cached_violations"),
    "lazy": (gen_lazy, "debug_skip_lazy_freed_tables", ("x86_server",),
             "freed_while_cached_violations"),
    "contpte": (gen_contpte, "debug_no_contpte_unfold_flush", ("arm64_server",),
                "break_before_make_violations"),
    "fork": (gen_fork, "debug_fork_skip_flush", ("x86_server", "arm64_server"),
             "permission_violations"),
    "cow": (gen_cow, "debug_cow_skip_flush", ("x86_server", "arm64_server"),
            "permission_violations"),
}


def run(label, exp, sets):
    out = os.path.join(TMP, label)
    cmd = [TLBSIM, "run", exp, "--out", out, "--quiet"]
    for s in sets:
        cmd += ["--set", s]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        return None, f"tlbsim failed ({p.returncode}): {p.stderr.strip()[-400:]}"
    with open(os.path.join(out, "stats.json")) as f:
        coh = json.load(f)["stats"]["system"]["coherence"]
    return {k: v["value"] for k, v in coh.items()}, None


def main():
    jobs = []
    for fam, (gen, switch, machines, stat) in FAMILIES.items():
        if ONLY and fam not in ONLY:
            continue
        for seed in SEEDS:
            w, extra = gen(seed)
            for machine in machines:
                exp = os.path.join(TMP, f"{fam}-{seed}-{machine}.json")
                with open(exp, "w") as f:
                    json.dump(dict({"machine": machine, "kernel": "linux-6.18", "seed": seed,
                                    "workload": w}, **extra), f, indent=1)
                for q in QUANTA:
                    qs = [] if q == "default" else [f"machine.quantum_cycles={q}"]
                    for broken in (True, False):
                        sets = qs + ([f"kernel.{switch}=true"] if broken else [])
                        label = f"{fam}-{seed}-{machine}-q{q}-{'broken' if broken else 'shipped'}"
                        jobs.append((label, fam, stat, broken, exp, sets))
    failures = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        results = pool.map(lambda j: (j, run(j[0], j[4], j[5])), jobs)
        for (label, fam, stat, broken, exp, _), (coh, err) in results:
            if err:
                failures.append(f"{label}: {err}")
                continue
            caught, total = coh[stat], coh["stale_tlb_violations"]
            ok = caught >= 1 if broken else total == 0
            print(f"{'ok  ' if ok else 'FAIL'} {label}: {stat} {caught}, all kinds {total}")
            if not ok:
                failures.append(f"{label} ({exp}): {stat} {caught}, all kinds {total}")
    # machine.coherence_fail_fast: the first violation stops the run (exit 1, the
    # violation named on stderr, no result files) — a result, not an internal error.
    if not ONLY or "free" in ONLY:
        exp = os.path.join(TMP, "free-1-x86_server.json")
        out = os.path.join(TMP, "fail-fast")
        p = subprocess.run([TLBSIM, "run", exp, "--out", out, "--quiet", "--set",
                            "kernel.debug_free_before_flush=true", "--set",
                            "machine.coherence_fail_fast=true"], capture_output=True, text=True)
        want = "tlbsim: stopped at the first TLB coherence violation (machine.coherence_fail_fast): " \
               "frame freed while a TLB still held a live translation to it: cpu "
        if p.returncode != 1 or not p.stderr.strip().splitlines()[-1].startswith(want) or \
                os.path.exists(os.path.join(out, "stats.json")):
            failures.append(f"fail-fast: rc {p.returncode}, stderr {p.stderr.strip()[-300:]!r}")
        jobs.append(None)
    print(f"{len(jobs) - len(failures)} of {len(jobs)} runs as expected")
    for f in failures:
        print("FAIL", f)
    sys.exit(1 if failures else 0)


main()
