#!/usr/bin/env python3
"""Scheduling, locks and concurrent flushes (issue 10) and kernel-version behaviours
(issue 11) through the command line.

  sched_test.py TLBSIM ROOT [CASE...]

Each case runs tlbsim on a workload (tests/data/sched/ or tools/gen-workload) and
asserts counts from stats.json; the oracle of each is in its comment. Simulated
cycles are deterministic, so cycle relations are asserted too; nothing here
depends on host time.
"""
import json
import os
import subprocess
import sys
import tempfile

TLBSIM, ROOT = sys.argv[1], sys.argv[2]
ONLY = set(sys.argv[3:])
TMP = tempfile.mkdtemp(prefix="tlbsim-sched-")
failures = []
checks = 0


def check(ok, case, what):
    global checks
    checks += 1
    if not ok:
        failures.append(f"{case}: {what}")
        print(f"FAIL {case}: {what}")


def gen(name, *args):
    path = os.path.join(TMP, name + ".json")
    subprocess.run([os.path.join(ROOT, "tools/gen-workload"), *args, "-o", path], check=True)
    return path


def run(case, machine, workload, kernel="linux-6.15", sets=(), trace=None):
    """Runs one experiment; returns {stat path: value}."""
    exp = os.path.join(TMP, case + ".exp.json")
    with open(workload) as f:
        w = json.load(f)
    with open(exp, "w") as f:
        json.dump({"machine": machine, "kernel": kernel, "workload": w}, f)
    out = os.path.join(TMP, case)
    cmd = [TLBSIM, "run", exp, "--out", out, "--quiet"]
    for s in sets:
        cmd += ["--set", s]
    if trace:
        cmd += ["--trace", trace]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"{case}: tlbsim failed ({p.returncode}): {p.stderr.strip()}")
    with open(os.path.join(out, "stats.json")) as f:
        doc = json.load(f)
    flat = {}

    def walk(node, path):
        if isinstance(node, dict) and "value" in node and not isinstance(node["value"], dict):
            flat[path] = node["value"]
            return
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, f"{path}.{k}" if path else k)
        elif isinstance(node, list):  # NAME[i] lists (idle CPUs are null)
            for i, v in enumerate(node):
                if v is not None:
                    walk(v, f"{path}[{i}]")

    walk(doc.get("stats", doc), "")
    return flat


def get(stats, path):
    if path not in stats:
        raise KeyError(f"no statistic {path}")
    return stats[path]


def total(stats, suffix):
    """Sum of a per-CPU counter (system.cpu[N].<suffix>)."""
    return sum(v for k, v in stats.items() if k.startswith("system.cpu[") and k.endswith("]." + suffix))


def case(fn):
    if not ONLY or fn.__name__ in ONLY:
        try:
            fn()
        except Exception as e:  # a failed run is a failed case, the others still run
            failures.append(f"{fn.__name__}: {e}")
            print(f"FAIL {fn.__name__}: {e}")
    return fn


@case
def lazy_futex():
    # A thread asleep in a futex leaves its CPU lazy (enter_lazy_tlb): a flush
    # without freed page tables skips it, one with freed tables reaches it
    # (should_flush_tlb(), v6.15). CPU2 runs the mm and gets both.
    w = os.path.join(ROOT, "tests/data/sched/lazy_futex.json")
    s = run("lazy_futex", "x86_small", w, sets=["machine.cpus=3"])
    nf = get(s, "system.regions.region[no-freed].ipis_sent")
    fr = get(s, "system.regions.region[freed].ipis_sent")
    print(f"lazy_futex: IPIs no-freed {nf}, freed {fr}, skipped lazy {get(s, 'system.x86_tlbflush.ipis_skipped_lazy')}")
    check(nf == 1, "lazy_futex", f"munmap of one page (tables kept) sends 1 IPI (CPU2 only), got {nf}")
    check(fr == 2, "lazy_futex", f"munmap that frees a PTE table sends 2 IPIs (CPU2 and lazy CPU1), got {fr}")
    check(get(s, "system.x86_tlbflush.ipis_skipped_lazy") >= 1, "lazy_futex", "the lazy CPU was skipped")
    check(get(s, "system.coherence.stale_tlb_violations") == 0, "lazy_futex", "no stale TLB entry")


# --- kernel versions (issue 11) --------------------------------------------------


@case
def dontneed_pt_reclaim():
    # MADV_DONTNEED of a whole 2 MiB-aligned PTE table on x86: CONFIG_PT_RECLAIM
    # (Qi Zheng, v6.14) frees the table and flushes with freed_tables, so the lazy
    # CPU1 is IPI'd (2 IPIs) on linux-6.15 and 6.18; linux-6.12 has no PT_RECLAIM
    # (1 IPI, the lazy CPU skipped).
    w = os.path.join(ROOT, "tests/data/versions/dontneed_pt_reclaim.json")
    for kernel, want in (("linux-6.12", 1), ("linux-6.15", 2), ("linux-6.18", 2)):
        s = run("dontneed_pt_reclaim." + kernel, "x86_small", w, kernel=kernel, sets=["machine.cpus=3"])
        ipis = get(s, "system.regions.region[dontneed].ipis_sent")
        print(f"dontneed_pt_reclaim {kernel}: IPIs {ipis}")
        check(ipis == want, "dontneed_pt_reclaim", f"{kernel}: {want} IPIs, got {ipis}")
        check(get(s, "system.coherence.stale_tlb_violations") == 0, "dontneed_pt_reclaim", "no stale TLB entry")


@case
def pageout_exclusive_mthp():
    # MADV_PAGEOUT of 1 MiB of exclusive 64 KiB folios: every release reclaims all
    # 256 pages (6.9 folio_estimated_sharers(): page 0 mapcount 1; 6.10-6.14
    # folio_likely_mapped_shared(); 6.15+ folio_maybe_mapped_shared()). Before the
    # per-release test, 6.9 called the MM-ID one without MM-ID and reclaimed 0.
    w = {"processes": [{"threads": [{"cpu": 0, "ops": [
        {"op": "mmap", "name": "m", "size": "1MiB"},
        {"op": "touch", "mapping": "m", "access": "write"},
        {"op": "madvise", "mapping": "m", "advice": "pageout"}]}]}]}
    path = os.path.join(TMP, "pageout.workload.json")
    with open(path, "w") as f:
        json.dump(w, f)
    for kernel in ("linux-6.8", "linux-6.9", "linux-6.12", "linux-6.15"):
        s = run("pageout." + kernel, "x86_small", path, kernel=kernel, sets=["folio_size=64KiB"])
        steal = get(s, "system.kernel.vmstat.pgsteal")
        print(f"pageout_exclusive_mthp {kernel}: pgsteal {steal}")
        check(steal == 256, "pageout_exclusive_mthp", f"{kernel}: 256 pages reclaimed, got {steal}")


@case
def madvise_split_per_release():
    # MADV_COLD and MADV_FREE of 1 MiB of exclusive 64 KiB folios: 6.7-6.9 split every
    # PTE-mapped large folio first (madvise_cold_or_pageout_pte_range /
    # madvise_free_pte_range, before Ryan Roberts' and Lance Yang's v6.10 series):
    # 16 splits; 6.10+ handle a wholly covered folio whole: no split. A range that
    # covers half of one folio splits it on every release, and only its covered
    # half is marked lazyfree (8 pages; 15 whole folios + 8 small ones marked).
    for advice in ("cold", "free"):
        for length, want6x in (("1MiB", (16, 0)), ("992KiB", (16, 1))):
            w = {"processes": [{"threads": [{"cpu": 0, "ops": [
                {"op": "mmap", "name": "m", "size": "1MiB", "align": "64KiB"},
                {"op": "touch", "mapping": "m", "access": "write"},
                {"op": "madvise", "mapping": "m", "advice": advice, "length": length}]}]}]}
            path = os.path.join(TMP, f"madv_split.{advice}.{length}.json")
            with open(path, "w") as f:
                json.dump(w, f)
            for kernel, want in (("linux-6.9", want6x[0]), ("linux-6.12", want6x[1]), ("linux-6.18", want6x[1])):
                s = run(f"madv_split.{advice}.{length}.{kernel}", "x86_small", path, kernel=kernel,
                        sets=["folio_size=64KiB"])
                splits = get(s, "system.kernel.vmstat.hugepages_64kB.split")
                print(f"madvise_split_per_release {advice} {length} {kernel}: 64 KiB splits {splits}")
                check(splits == want, "madvise_split_per_release",
                      f"MADV_{advice.upper()} of {length} on {kernel}: {want} splits, got {splits}")
                if advice == "free" and kernel != "linux-6.9":
                    marked = get(s, "system.kernel.vmstat.lazyfree_folios")
                    want_marked = 16 if length == "1MiB" else 15 + 8
                    check(marked == want_marked, "madvise_split_per_release",
                          f"MADV_FREE of {length} on {kernel}: {want_marked} folios lazyfree, got {marked}")


@case
def arm64_local_reuse_flush_619():
    # COW reuse on arm64 (catalog cow-reuse, 512 pages): up to 6.18 each reused page's
    # stale read-only entry is invalidated with a broadcast TLBI VALE1IS + DSB ISH
    # (flush_tlb_page); 6.19 (Huang Ying's series) with a local TLBI VALE1: 512 local
    # TLBIs and no broadcast in the reuse region, which gets cheaper.
    w = {"preset": "cow-reuse", "params": {"size": "2MiB"}}
    path = os.path.join(TMP, "cow_reuse.workload.json")
    with open(path, "w") as f:
        json.dump(w, f)
    res = {}
    for kernel in ("linux-6.18", "linux-6.19"):
        s = run("reuse." + kernel, "arm64_small", path, kernel=kernel)
        res[kernel] = (get(s, "system.regions.region[reuse].tlbis"),
                       get(s, "system.arm64_tlbflush.tlbi_local"),
                       get(s, "system.regions.region[reuse].cycles"))
        check(get(s, "system.coherence.stale_tlb_violations") == 0, "arm64_local_reuse_flush_619",
              f"{kernel}: no coherence violation")
        print(f"arm64_local_reuse_flush_619 {kernel}: reuse broadcast TLBIs {res[kernel][0]}, "
              f"local TLBIs {res[kernel][1]}, reuse cycles {res[kernel][2]}")
    check(res["linux-6.18"][0] == 512 and res["linux-6.18"][1] == 0, "arm64_local_reuse_flush_619",
          f"6.18: 512 broadcast TLBIs, 0 local, got {res['linux-6.18'][:2]}")
    check(res["linux-6.19"][0] == 0 and res["linux-6.19"][1] == 512, "arm64_local_reuse_flush_619",
          f"6.19: 0 broadcast TLBIs, 512 local, got {res['linux-6.19'][:2]}")
    check(res["linux-6.19"][2] < res["linux-6.18"][2], "arm64_local_reuse_flush_619",
          "6.19's reuse region is cheaper")


@case
def mthp_needs_68():
    # Anonymous mTHP arrived in 6.8: a 64 KiB folio size on linux-6.7 is refused
    # (exit 2, naming the rule); on linux-6.8 it runs.
    exp = os.path.join(TMP, "mthp67.json")
    with open(exp, "w") as f:
        json.dump({"machine": "x86_small", "kernel": "linux-6.7", "folio_size": "64KiB",
                   "workload": "munmap"}, f)
    p = subprocess.run([TLBSIM, "run", exp, "--out", os.path.join(TMP, "mthp67"), "--quiet"],
                       capture_output=True, text=True)
    print(f"mthp_needs_68: linux-6.7 exit {p.returncode}: {p.stderr.strip()}")
    check(p.returncode == 2 and "needs Linux 6.8+" in p.stderr and "/folio_size" in p.stderr,
          "mthp_needs_68", f"linux-6.7 + 64KiB: exit 2 naming the rule, got {p.returncode} {p.stderr!r}")
    p = subprocess.run([TLBSIM, "run", exp, "--out", os.path.join(TMP, "mthp68"), "--quiet",
                        "--set", "kernel=linux-6.8"], capture_output=True, text=True)
    check(p.returncode == 0, "mthp_needs_68", f"linux-6.8 + 64KiB runs, got {p.returncode} {p.stderr!r}")


@case
def nested_gather():
    # munmap's tlb_finish_mmu() while another gather of the mm is live: the whole
    # mm is flushed (mm_tlb_flush_nested, mm/mmu_gather.c). linux-6.18: the
    # MADV_DONTNEED holds only its VMA's lock, so it overlaps the munmap.
    w = os.path.join(ROOT, "tests/data/sched/nested.json")
    for m in ("x86_small", "arm64_small"):
        s = run("nested." + m, m, w, kernel="linux-6.18", sets=["machine.cpus=3"])
        n = get(s, "system.kernel.vmstat.tlb_flush_nested")
        print(f"nested.{m}: tlb_flush_nested {n}, munmap region full flushes "
              f"{s.get('system.regions.region[munmap].full_flushes')}, TLBIs {s.get('system.regions.region[munmap].tlbis')}")
        check(n >= 1, "nested." + m, f"tlb_flush_nested >= 1, got {n}")
        if m == "x86_small":
            # 8 pages would be 8 INVLPGs on each CPU (below the 33-page ceiling); the
            # nested finish makes it a full flush on the initiator.
            full = get(s, "system.regions.region[munmap].full_flushes")
            check(full >= 1, "nested." + m, f"munmap's flush is full (full_flushes >= 1), got {full}")
        check(get(s, "system.coherence.stale_tlb_violations") == 0, "nested." + m, "no stale TLB entry")


@case
def tlb_gen_coalescing():
    # Concurrent COW faults of one mm flush one page each (ptep_clear_flush); a
    # handler that runs after a later flush raised tlb_gen flushes everything and
    # the later handler finds its generation done (flush_tlb_func(), v6.15).
    w = gen("cow4", "anon-cow", "--threads", "4", "--pattern", "rand", "--size-per-thread", "1MiB",
            "--pin", "--child-cpu", "4")
    s = run("coalescing", "x86_small", w, sets=["machine.cpus=5"])
    full = get(s, "system.x86_tlbflush.flush_coalesced_full")
    done = get(s, "system.x86_tlbflush.flush_up_to_date")
    print(f"coalescing: remote flushes {get(s, 'system.x86_tlbflush.nr_tlb_remote_flush')}, handlers "
          f"{get(s, 'system.x86_tlbflush.nr_tlb_remote_flush_received')}, coalesced full {full}, up to date {done}")
    check(full > 0, "coalescing", f"range flushes turned full by a newer tlb_gen > 0, got {full}")
    check(done > 0, "coalescing", f"handlers that found their generation flushed > 0, got {done}")
    check(get(s, "system.locks.mmap_lock.contended") == 0, "coalescing",
          "COW faults under per-VMA locks never wait for mmap_lock")
    check(get(s, "system.coherence.stale_tlb_violations") == 0, "coalescing", "no stale TLB entry")


@case
def round_robin():
    # 8 processes pinned to CPU 0 take turns by time slice: every switch between
    # them is switch_mm. x86: 8 mms > TLB_NR_DYN_ASIDS (6) PCID slots, so slots are
    # reused and the evicted mm's entries flushed; arm64: ASIDs are global, one per
    # mm. The coherence checker sees every access: no cross-process stale entry.
    w = gen("rr8", "round-robin", "--processes", "8", "--size", "256KiB", "--repeat", "64")
    for m in ("x86_small", "arm64_small"):
        s = run("rr." + m, m, w, sets=["machine.sched.slice_cycles=100000"])
        cs = get(s, "system.cpu[0].context_switches")
        print(f"rr.{m}: CPU0 context switches {cs}, " + ", ".join(
            f"{k.split('.')[-1]} {v}" for k, v in sorted(s.items())
            if k.split('.')[-1] in ("pcid_new_asid", "pcid_slot_reuse", "context_switch_flushes",
                                    "asid_allocations", "ttbr_switches", "switch_mm", "preemptions")))
        check(cs >= 16, "rr." + m, f"CPU0 switched at least twice per process, got {cs}")
        # CPU1 never ran them (a CPU whose statistics are all zero is null in stats.json).
        check(s.get("system.cpu[1].context_switches", 0) == 0, "rr." + m, "CPU1 never ran them")
        invol = sum(v for k, v in s.items() if k.endswith(".involuntary_switches"))
        check(invol > 0, "rr." + m, f"time-slice preemptions > 0, got {invol}")
        if m == "x86_small":
            new = get(s, "system.x86_tlbflush.pcid_new_asid")
            reuse = get(s, "system.x86_tlbflush.pcid_slot_reuse")
            check(new > 8, "rr." + m, f"8 mms on 6 PCID slots need more than 8 slot assignments, got {new}")
            check(reuse == new - 6, "rr." + m, f"every assignment after the 6th evicts a live mm: "
                  f"reuse {reuse} == new {new} - 6")
        else:
            check(get(s, "system.arm64_tlbflush.asid_allocations") == 8, "rr." + m, "one ASID per mm")
            check(get(s, "system.arm64_tlbflush.ttbr_switches") >= 16, "rr." + m, "TTBR0 written per switch")
        check(get(s, "system.coherence.stale_tlb_violations") == 0, "rr." + m, "no stale TLB entry")


@case
def oversubscribed():
    # 128 threads of one process on 64 CPUs (x86_server): they share CPUs, switch
    # within one mm (no CR3 write), and one PCID slot per CPU that ran the mm.
    w = gen("cow128", "anon-cow", "--threads", "128", "--pattern", "seq", "--size-per-thread", "64KiB")
    s = run("oversubscribed", "x86_server", w)
    cs = total(s, "context_switches")
    print(f"oversubscribed: context switches {cs}, pcid_new_asid {get(s, 'system.x86_tlbflush.pcid_new_asid')}, "
          f"preemptions {get(s, 'system.sched.preemptions')}, migrations "
          f"{sum(v for k, v in s.items() if k.endswith('.migrations'))}")
    check(cs >= 128, "oversubscribed", f"context switches >= 128, got {cs}")
    new = get(s, "system.x86_tlbflush.pcid_new_asid")
    check(0 < new <= 64 + 64, "oversubscribed", f"PCID slots: one per CPU per mm (parent, child), got {new}")
    check(get(s, "system.x86_tlbflush.pcid_slot_reuse") == 0, "oversubscribed", "two mms never evict a slot")
    exits = sum(1 for k, v in s.items() if k.endswith(".exit_cycles") and v > 0)
    check(exits == 129, "oversubscribed", f"128 threads and the child exited, got {exits}")
    check(get(s, "system.coherence.stale_tlb_violations") == 0, "oversubscribed", "no stale TLB entry")


@case
def quantum_storm():
    # The derived quantum against quantum 0 on a 16-thread shootdown storm: the
    # same counts, cycles within 1 %.
    w = gen("storm16", "storm", "--threads", "16", "--pin")
    for m in ("x86_server", "arm64_server"):
        a = run("q0." + m, m, w, sets=["machine.quantum_cycles=0"])
        b = run("qd." + m, m, w)
        counts = [k for k in a if k.endswith(("ipis_sent", "ipis_received", "tlbi_sent", "faults",
                                              "invlpg", "full_flushes", "inval_by_va", "inval_full", "pgfault", "nr_tlb_remote_flush"))]
        diff = [k for k in counts if a[k] != b.get(k)]
        check(not diff, "quantum." + m, f"counts identical, differ: {diff[:5]}")
        ca = get(a, "system.regions.region[storm].cycles")
        cb = get(b, "system.regions.region[storm].cycles")
        check(abs(cb - ca) <= 0.01 * ca, "quantum." + m, f"storm cycles within 1%: {ca} vs {cb}")
        print(f"quantum.{m}: storm cycles quantum 0 {ca}, default {cb} ({100.0 * (cb - ca) / ca:+.3f}%)")


@case
def ipi_serial():
    # Four flush IPIs reach CPU0 at the same instant: one interrupt (one entry and
    # exit), the four flush_tlb_func() calls back to back; the first pays the entry.
    w = os.path.join(ROOT, "tests/data/sched/ipi_serial.json")
    trace = os.path.join(TMP, "ipi_serial.trace.json")
    s = run("ipi_serial", "x86_small", w, kernel="linux-6.18", sets=["machine.cpus=5"], trace=trace)
    # 4 from the madvise calls in one interrupt, then one more when the last thread's
    # exit_mmap() frees the page tables and reaches CPU0, lazy by then.
    check(get(s, "system.cpu[0].ipis_received") == 5, "ipi_serial",
          f"CPU0 handled 4 + 1 IPIs, got {get(s, 'system.cpu[0].ipis_received')}")
    check(get(s, "system.cpu[0].interrupts") == 2, "ipi_serial",
          f"in 1 + 1 interrupts, got {get(s, 'system.cpu[0].interrupts')}")
    with open(trace) as f:
        t = json.load(f)
    events = t["traceEvents"] if isinstance(t, dict) else t
    ghz = 2.5  # x86_small
    cyc = lambda us: round(float(us) * ghz * 1000)
    h = sorted(((cyc(e["ts"]), cyc(e["dur"])) for e in events
                if e.get("cat") == "ipi" and e.get("ph") == "X" and e.get("tid") == 0))[:4]
    sends = sorted(cyc(e["ts"]) for e in events if e.get("ph") == "s")
    check(sends[:4] == [sends[0]] * 4, "ipi_serial", f"the first 4 IPIs were sent at once: {sends[:4]}")
    check(len(h) == 4, "ipi_serial", f"4 handler spans on CPU0, got {len(h)}")
    if len(h) == 4:
        gaps = [h[i + 1][0] - (h[i][0] + h[i][1]) for i in range(3)]
        check(all(abs(g) <= 1 for g in gaps), "ipi_serial", f"handlers back to back, gaps {gaps}")
        irq, handler = 1500, 200  # x86.irq_entry_exit_cycles, x86.handler_cycles (defaults)
        check(h[0][1] >= irq + handler, "ipi_serial", f"the first pays the interrupt entry: {h[0][1]}")
        check(all(handler <= d < irq for _, d in h[1:]), "ipi_serial",
              f"the others only their handler: {[d for _, d in h[1:]]}")
        end = h[3][0] + h[3][1] - h[0][0]
        work = sum(d for _, d in h) - irq - 4 * handler
        check(end == irq + 4 * handler + work, "ipi_serial",
              f"last ends {end} = entry {irq} + 4 x {handler} + flush work {work} after delivery")
        print(f"ipi_serial: spans {h}; last ends {end} cycles after delivery")


@case
def child_stolen():
    # arm64: CPU1 snoops 8 broadcast TLBIs while idle; a child forked onto it later
    # does not pay for them (same region cycles as without any bystander stall).
    w = os.path.join(ROOT, "tests/data/sched/child_stolen.json")
    a = run("child_stolen", "arm64_small", w)
    b = run("child_stolen.nostall", "arm64_small", w, sets=["machine.arm64.victim_stall_cycles=0"])
    idle = get(a, "system.cpu[1].irq_idle_cycles")
    check(idle >= 8 * 1000, "child_stolen", f"CPU1 paid >= 8 snoops in idle time, got {idle}")
    ca, cb = get(a, "system.regions.region[child].cycles"), get(b, "system.regions.region[child].cycles")
    print(f"child_stolen: CPU1 idle handler cycles {idle}; child region {ca} vs {cb} without stalls")
    check(ca == cb, "child_stolen", f"the child's region is the same with and without the idle snoops: {ca} vs {cb}")


print(f"{checks - len(failures)} passed, {len(failures)} failed")
sys.exit(1 if failures else 0)
