// Machine description: the parameters of a preset in configs/machines/. Every
// default below is the x86_server value of shared/reference hardware-costs §4.1;
// docs/machines.md gives the source of each number (or says it is an estimate).
#pragma once

#include <string>

#include "base/params.h"
#include "mm/exec_context.h"

namespace tlbsim {

/// One TLB structure of a core. entries = 0 means the structure does not exist.
struct TlbParams : ParamSet {
  TlbParams(ParamSet* parent, const char* key, const char* doc, uint32_t entries, uint32_t ways,
            const char* sizes, uint32_t latency)
      : ParamSet(parent, key, doc) {
    this->entries.set_default(entries);
    this->ways.set_default(ways);
    this->sizes.set_default(sizes);
    this->hit_latency_cycles.set_default(latency);
  }
  Param<uint32_t> entries{this, "entries", 64, "entries", "Number of entries (0 = absent)."};
  Param<uint32_t> ways{this, "ways", 4, "ways", "Associativity; equal to entries for fully associative.",
                       {min_value<uint32_t>(1)}};
  Param<std::string> sizes{this, "sizes", "4KiB", "",
                           "Page sizes held, comma separated (4KiB, 64KiB, 2MiB, 32MiB, 1GiB)."};
  Param<std::string> replacement{this, "replacement", "lru", "", "Replacement policy; random draws a stream per TLB and CPU from the experiment seed."};
  Param<uint32_t> hit_latency_cycles{this, "hit_latency_cycles", 0, "cycles",
                                     "Extra cycles of a hit in this structure."};
  void init_choices() { replacement.one_of({"lru", "tree_plru", "random"}); }
};

struct WalkerParams : ParamSet {
  using ParamSet::ParamSet;
  Param<uint32_t> pml4_cache_entries{this, "pml4_cache_entries", 4, "entries",
                                     "PML4E paging-structure cache (fully associative, LRU)."};
  Param<uint32_t> pdpt_cache_entries{this, "pdpt_cache_entries", 8, "entries",
                                     "PDPTE paging-structure cache."};
  Param<uint32_t> pde_cache_entries{this, "pde_cache_entries", 32, "entries",
                                    "PDE paging-structure cache."};
  Param<uint32_t> pwc_hit_cycles{this, "pwc_hit_cycles", 1, "cycles",
                                 "Latency of a paging-structure-cache hit."};
};

/// One level of the data cache hierarchy (tag-only; models/mem/cache_hierarchy.h).
struct CacheLevelParams : ParamSet {
  CacheLevelParams(ParamSet* parent, const char* key, const char* doc, uint64_t bytes,
                   uint32_t ways, uint32_t cycles)
      : ParamSet(parent, key, doc) {
    this->bytes.set_default(Bytes{bytes});
    this->ways.set_default(ways);
    this->cycles.set_default(cycles);
  }
  Param<Bytes> bytes{this, "bytes", Bytes{32 << 10}, "bytes",
                     "Capacity (per core for L1D/L2, per socket for the LLC); bytes / 64 / "
                     "ways must be a power of two."};
  Param<uint32_t> ways{this, "ways", 8, "ways", "Associativity.",
                       {min_value<uint32_t>(1), max_value<uint32_t>(255)}};
  Param<uint32_t> cycles{this, "cycles", 4, "cycles", "Load-to-use latency of a hit."};
  void validate(const std::string& pointer) const override {
    const uint64_t b = bytes().value;
    if (b == 0) return;
    const uint64_t sets = b / 64 / ways();
    if (b % (64ull * ways()) || !sets || (sets & (sets - 1)))
      throw InputError(pointer + "/bytes",
                       "expected a capacity giving a power-of-two number of sets (bytes / 64 / "
                       "ways), got " + format_size(b) + " with " + std::to_string(ways()) + " ways");
  }
};

/// The memory hierarchy used by user data, page walks and kernel metadata.
struct CacheParams : ParamSet {
  using ParamSet::ParamSet;
  CacheLevelParams l1d{this, "l1d", "L1 data cache, per core.", 48 << 10, 12, 5};
  CacheLevelParams l2{this, "l2", "Private L2, per core.", 2 << 20, 16, 16};
  CacheLevelParams llc{this, "llc", "Shared last-level cache, per socket.", 64ull << 20, 16, 70};
  Param<uint32_t> dram_cycles{this, "dram_cycles", 280, "cycles", "DRAM load-to-use latency."};
  Param<uint32_t> prefetch_streams{this, "prefetch_streams", 16, "streams",
                                   "Ascending-line streams the L2 prefetcher tracks per core "
                                   "(0 = no prefetcher).", {max_value<uint32_t>(64)}};
  Param<Bytes> prefetch_boundary{this, "prefetch_boundary", Bytes{4096}, "bytes",
                                 "A stream stops at this boundary (physical page).",
                                 {power_of_two<Bytes>(), min_value(Bytes{128})}};
  Param<uint32_t> stream_line_cycles{this, "stream_line_cycles", 20, "cycles",
                                     "Cost of a demand miss that a running stream prefetched "
                                     "(the line arrives at streaming bandwidth)."};
  Param<double> mlp{this, "mlp", 1.0, "",
                    "Memory-level parallelism of independent user accesses: the latency of "
                    "an access beyond an L1 hit (translation + data) is divided by this "
                    "(a core keeps several misses in flight). 1 = fully serial."};
  void validate(const std::string& pointer) const override {
    if (!(mlp() >= 1.0 && mlp() <= 64.0))
      throw InputError(pointer + "/mlp", "expected a value in [1, 64], got " + std::to_string(mlp()));
  }
};

/// Cycles of each primitive kernel operation (mm::KOp), charged from ExecContext
/// counts: the software part only — the struct page and page-table lines a path
/// touches are priced by the cache hierarchy (machine.cache). Every preset carries its
/// own table with the source of each value ("_<key>" comments); docs/machines.md.
struct KernelCostParams : ParamSet {
  using ParamSet::ParamSet;
  Param<uint32_t> syscall_entry{this, "syscall_entry", 200, "cycles", "System call entry + exit (with the preset's mitigations)."};
  Param<uint32_t> fault_entry{this, "fault_entry", 1000, "cycles", "Exception entry/exit and handle_mm_fault dispatch."};
  Param<uint32_t> pte_read{this, "pte_read", 10, "cycles", "Reading and testing one page-table entry."};
  Param<uint32_t> pte_write{this, "pte_write", 5, "cycles", "Plain store of one entry (set_ptes, full-mm clear)."};
  Param<uint32_t> pte_xchg{this, "pte_xchg", 20, "cycles", "Atomic update of one entry (ptep_get_and_clear's xchg, ptep_set_wrprotect, test_and_clear_young)."};
  Param<uint32_t> atomic{this, "atomic", 20, "cycles", "Atomic RMW on a folio counter (line in L1)."};
  Param<uint32_t> rmap_call{this, "rmap_call", 150, "cycles", "Fixed part of one folio rmap call."};
  Param<uint32_t> lock{this, "lock", 40, "cycles", "Uncontended lock + unlock."};
  Param<uint32_t> page_alloc{this, "page_alloc", 75, "cycles", "Allocation of one folio from the per-CPU lists (orders 0-3 and the PMD order: rmqueue_pcplist, prep_new_page)."};
  Param<uint32_t> page_alloc_buddy{this, "page_alloc_buddy", 300, "cycles", "Allocation of one folio of another order from the buddy lists under the zone lock (rmqueue_buddy)."};
  Param<uint32_t> page_alloc_tail{this, "page_alloc_tail", 10, "cycles", "prep_compound_tail() per tail page of a large folio."};
  Param<uint32_t> folio_prep_large{this, "folio_prep_large", 300, "cycles", "prep_compound_page() + folio_set_large_rmappable(), once per large folio."};
  Param<uint32_t> page_free{this, "page_free", 75, "cycles", "Free of one folio to the per-CPU lists (free_pages_prepare, free_unref_page_commit)."};
  Param<uint32_t> page_free_buddy{this, "page_free_buddy", 300, "cycles", "Free of one folio of another order straight to the buddy under the zone lock (free_one_page)."};
  Param<uint32_t> page_free_tail{this, "page_free_tail", 10, "cycles", "free_tail_page_prepare() per tail page."};
  Param<uint32_t> folio_free_large{this, "folio_free_large", 300, "cycles", "folio_undo_large_rmappable() and the large-folio free path, once per large folio."};
  Param<uint32_t> lru_add{this, "lru_add", 200, "cycles", "folio_add_lru() and mem_cgroup_charge() of a new folio."};
  Param<uint32_t> lru_del{this, "lru_del", 200, "cycles", "lruvec_del_folio() and the memcg uncharge of a folio being freed (folios_put_refs)."};
  Param<uint32_t> buddy_merge{this, "buddy_merge", 20, "cycles", "One merge step with a free buddy in __free_one_page()."};
  Param<uint32_t> page_zero{this, "page_zero", 1000, "cycles", "Zeroing one 4 KiB page (clear_page) that is not cached."};
  Param<uint32_t> page_copy{this, "page_copy", 1200, "cycles", "Copying one 4 KiB page (copy_page), source and destination not cached."};
  Param<uint32_t> pt_alloc{this, "pt_alloc", 100, "cycles", "pagetable_pte_ctor() and installing a page-table page (its allocation and zeroing are page_alloc and page_zero)."};
  Param<uint32_t> pt_free{this, "pt_free", 100, "cycles", "pagetable_dtor() of a page-table page (its free is page_free)."};
  Param<uint32_t> gather_entry{this, "gather_entry", 10, "cycles", "Queueing one mmu_gather item."};
  Param<uint32_t> vma_alloc{this, "vma_alloc", 300, "cycles", "vm_area_alloc/vm_area_dup of one VMA."};
  Param<uint32_t> vma_free{this, "vma_free", 200, "cycles", "vm_area_free of one VMA."};
  Param<uint32_t> vma_modify{this, "vma_modify", 500, "cycles", "One VMA split or merge (__split_vma, vma_merge_existing_range)."};
  Param<uint32_t> maple_store{this, "maple_store", 300, "cycles", "One maple-tree store or erase of a VMA range."};
  Param<uint32_t> anon_vma_link{this, "anon_vma_link", 200, "cycles", "Linking a VMA into an anon_vma tree (anon_vma_clone/fork/prepare)."};
  Param<uint32_t> fork_fixed{this, "fork_fixed", 50000, "cycles", "copy_process() besides dup_mmap: task_struct, mm_struct, files, signals, scheduler."};
  Param<uint32_t> exit_fixed{this, "exit_fixed", 30000, "cycles", "do_exit()/release_task() and the parent's wait4() besides exit_mmap."};
  Param<uint32_t> mm_fixed{this, "mm_fixed", 5000, "cycles", "mm_alloc/mm_init or __mmdrop of one mm: pgd, context, counters."};
  Param<uint32_t> context_switch{this, "context_switch", 2000, "cycles", "schedule() on one CPU: pick next, switch stacks (switch_mm is the arch's)."};
  /// Cycles per KOp, in enum order (memory references: 0, the cache hierarchy prices them).
  std::array<uint64_t, static_cast<size_t>(mm::KOp::kCount)> table() const {
    return {syscall_entry(), fault_entry(),  pte_read(),    pte_write(),      pte_xchg(),
            atomic(),        rmap_call(),    lock(),        page_alloc(),     page_alloc_buddy(),
            page_alloc_tail(), folio_prep_large(), page_free(), page_free_buddy(), page_free_tail(),
            folio_free_large(), lru_add(),   lru_del(),
            buddy_merge(),   page_zero(),    page_copy(),   pt_alloc(),
            pt_free(),       gather_entry(), vma_alloc(),   vma_free(),       vma_modify(),
            maple_store(),   anon_vma_link(), fork_fixed(), exit_fixed(),     mm_fixed(),
            context_switch(), 0,             0};
  }
  /// The parameter of `op` (nullptr for memory-reference KOps), for calibration.
  Param<uint32_t>* param_of(mm::KOp op) {
    Param<uint32_t>* all[] = {&syscall_entry, &fault_entry,  &pte_read,    &pte_write,      &pte_xchg,
                              &atomic,        &rmap_call,    &lock,        &page_alloc,     &page_alloc_buddy,
                              &page_alloc_tail, &folio_prep_large, &page_free, &page_free_buddy, &page_free_tail,
                              &folio_free_large, &lru_add,  &lru_del,
                              &buddy_merge,   &page_zero,    &page_copy,   &pt_alloc,
                              &pt_free,       &gather_entry, &vma_alloc,   &vma_free,       &vma_modify,
                              &maple_store,   &anon_vma_link, &fork_fixed, &exit_fixed,     &mm_fixed,
                              &context_switch, nullptr,      nullptr};
    static_assert(sizeof(all) / sizeof(all[0]) == static_cast<size_t>(mm::KOp::kCount));
    return all[static_cast<size_t>(op)];
  }
};

struct X86FlushParams : ParamSet {
  using ParamSet::ParamSet;
  Param<uint32_t> invlpg_cycles{this, "invlpg_cycles", 260, "cycles", "One INVLPG (Molnar 2015)."};
  Param<uint32_t> cr3_flush_cycles{this, "cr3_flush_cycles", 100, "cycles",
                                   "CR3 write that flushes the PCID (direct cost only)."};
  Param<uint32_t> cr3_noflush_cycles{this, "cr3_noflush_cycles", 100, "cycles",
                                     "CR3 write with NOFLUSH (context switch)."};
  Param<uint32_t> ipi_send_first_cycles{this, "ipi_send_first_cycles", 150, "cycles",
                                        "Initiator cost of the first IPI (ICR write)."};
  Param<uint32_t> ipi_send_extra_cycles{this, "ipi_send_extra_cycles", 200, "cycles",
                                        "Initiator cost of each further IPI target."};
  Param<uint32_t> ipi_delivery_cycles{this, "ipi_delivery_cycles", 1150, "cycles",
                                      "Send → handler start, excluding topology link latency."};
  Param<uint32_t> irq_entry_exit_cycles{this, "irq_entry_exit_cycles", 1500, "cycles",
                                        "Interrupt entry + exit on the target (PTI on)."};
  Param<uint32_t> handler_cycles{this, "handler_cycles", 200, "cycles",
                                 "flush_tlb_func bookkeeping, excluding INVLPG/CR3 work."};
  Param<uint32_t> ack_cycles{this, "ack_cycles", 110, "cycles",
                             "Ack visibility to the polling initiator, same socket."};
  Param<uint32_t> ack_cross_socket_cycles{this, "ack_cross_socket_cycles", 350, "cycles",
                                          "Ack visibility across sockets."};
};

/// arm64 broadcast TLBI, DVM and MMU features (hardware-costs.md §2.4, §4.2).
struct Arm64Params : ParamSet {
  using ParamSet::ParamSet;
  Param<bool> range_tlbi{this, "range_tlbi", false, "",
                         "FEAT_TLBIRANGE (Armv8.4): range TLBIs; absent on Neoverse N1."};
  Param<bool> contig_as_one_entry{this, "contig_as_one_entry", true, "",
                                  "A valid PTE_CONT block of 16 x 4 KiB is cached as one 64 KiB "
                                  "entry (filled on the first access that sees PTE_CONT)."};
  Param<uint32_t> tlbi_dsb_cycles{this, "tlbi_dsb_cycles", 2400, "cycles",
                                  "One broadcast TLBI + DSB ISH, uncontended: issue to completion."};
  Param<uint32_t> tlbi_extra_op_cycles{this, "tlbi_extra_op_cycles", 120, "cycles",
                                       "Each further TLBI completed by the same DSB ISH."};
  Param<uint32_t> tlbi_local_cycles{this, "tlbi_local_cycles", 40, "cycles",
                                    "One TLBI VALE1 on this core with its DSB NSH (no DVM "
                                    "broadcast; Linux 6.19 write-fault reuse)."};
  Param<bool> dvm_serialise{this, "dvm_serialise", true, "",
                            "Broadcasts are served one at a time by the DVM node "
                            "(single-server queue): concurrent broadcasters wait."};
  Param<uint32_t> victim_stall_cycles{this, "victim_stall_cycles", 0, "cycles",
                                      "Stall of every other core per received TLBI (0 = a mesh "
                                      "that filters DVM ops by ASID)."};
  Param<uint32_t> asid_bits{this, "asid_bits", 16, "bits", "ASID width (8 or 16).",
                            {min_value<uint32_t>(2), max_value<uint32_t>(16)}};
  Param<uint32_t> walk_cache_entries{this, "walk_cache_entries", 64, "entries",
                                     "Non-leaf walk-cache entries (levels 0-2 descriptors)."};
  Param<uint32_t> walk_cache_ways{this, "walk_cache_ways", 4, "ways",
                                  "Walk-cache associativity.", {min_value<uint32_t>(1)}};
  Param<uint32_t> ttbr_switch_cycles{this, "ttbr_switch_cycles", 50, "cycles",
                                     "TTBR0/ASID write + ISB on a context switch."};
  Param<uint32_t> tlbi_delivery_cycles{this, "tlbi_delivery_cycles", 1200, "cycles",
                                       "Issue of a broadcast TLBI → the other CPUs' TLBs have "
                                       "dropped the entries (excluding link latency; at most "
                                       "the DSB completion)."};
};

struct TopologyParams : ParamSet {
  using ParamSet::ParamSet;
  Param<uint32_t> sockets{this, "sockets", 1, "", "Sockets; CPUs are split evenly, in order.",
                          {min_value<uint32_t>(1)}};
  Param<uint32_t> core_link_cycles{this, "core_link_cycles", 50, "cycles",
                                   "Core ↔ its socket's interconnect node."};
  Param<uint32_t> socket_link_cycles{this, "socket_link_cycles", 1000, "cycles",
                                     "Socket ↔ socket link (UPI/CCIX)."};
  Param<uint32_t> line_transfer_cycles{this, "line_transfer_cycles", 110, "cycles",
                                       "Moving a cache line (a lock, a counter) from another core "
                                       "of the same socket."};
  Param<uint32_t> line_transfer_cross_socket_cycles{this, "line_transfer_cross_socket_cycles", 350,
                                                    "cycles", "Moving a cache line across sockets."};
};

/// The scheduler as the machine's kernel is configured (mm/sched.h).
struct SchedParams : ParamSet {
  using ParamSet::ParamSet;
  Param<uint64_t> slice_cycles{this, "slice_cycles", 7500000, "cycles",
                               "Time slice: a task that ran this long is preempted at its next "
                               "preemption point when another task waits on its CPU (EEVDF "
                               "base slice 0.75 ms × (1 + log2 CPUs, at most 8) = 3 ms).",
                               {min_value<uint64_t>(1), max_value<uint64_t>(uint64_t{1} << 40)}};
  Param<uint32_t> wakeup_cycles{this, "wakeup_cycles", 2500, "cycles",
                                "try_to_wake_up() of a task onto an idle CPU → the task runs "
                                "there (reschedule IPI or polling-idle exit)."};
  Param<bool> newidle_balance{this, "newidle_balance", true, "",
                              "A CPU about to go idle pulls a waiting task from the busiest "
                              "run queue (sched_balance_newidle)."};
};

struct MachineParams : ParamSet {
  MachineParams() : ParamSet("Machine: cores, TLBs, walkers, caches, costs, topology.") {
    arch.one_of({"x86_64", "arm64"});
    l1d.init_choices();
    l1d_2m.init_choices();
    stlb.init_choices();
  }
  Param<std::string> name{this, "name", "x86_small", "", "Name of the machine preset."};
  Param<std::string> arch{this, "arch", "x86_64", "", "Instruction-set architecture."};
  Param<uint32_t> cpus{this, "cpus", 2, "cpus", "Number of CPUs.",
                       {min_value<uint32_t>(1), max_value<uint32_t>(1024)}};
  Param<double> freq_ghz{this, "freq_ghz", 2.5, "GHz", "Core clock."};
  Param<Bytes> memory{this, "memory", Bytes{1ull << 30}, "bytes", "Physical memory.",
                      {min_value(Bytes{16ull << 20}), max_value(Bytes{1ull << 40})}};
  Param<uint32_t> pgtable_levels{this, "pgtable_levels", 4, "levels",
                                 "Page-table levels (x86: 4, or 5 with LA57).",
                                 {min_value<uint32_t>(4), max_value<uint32_t>(5)}};
  Param<bool> pcid{this, "pcid", true, "", "x86 PCIDs: switch_mm keeps other mms' entries."};
  Param<uint32_t> access_cycles{this, "access_cycles", 1, "cycles",
                                "Core cycles per memory access besides translation."};
  TlbParams l1d{this, "l1d", "L1 data TLB for 4 KiB pages.", 96, 6, "4KiB", 0};
  TlbParams l1d_2m{this, "l1d_2m", "L1 data TLB for large pages.", 32, 4, "2MiB", 0};
  TlbParams stlb{this, "stlb", "Second-level (unified) TLB.", 2048, 16, "4KiB,2MiB", 8};
  WalkerParams walker{this, "walker", "Page-table walker and its paging-structure caches."};
  CacheParams cache{this, "cache", "Data caches and DRAM, shared by user accesses, page walks and kernel metadata."};
  KernelCostParams costs{this, "costs", "Cycles of primitive kernel operations."};
  X86FlushParams x86{this, "x86", "x86 TLB invalidation and IPI costs."};
  Arm64Params arm64{this, "arm64", "arm64 broadcast TLBI, DVM, contpte and ASID parameters."};
  TopologyParams topology{this, "topology", "Sockets and links; IPI latency = shortest path."};
  SchedParams sched{this, "sched", "The scheduler: time slice, wake-up latency, balancing."};
  Param<int64_t> quantum_cycles{this, "quantum_cycles", -1, "cycles",
                                "Temporal-decoupling quantum: how far a CPU may run ahead of "
                                "the others between synchronisations (0 = exact; -1 = the "
                                "shortest cross-CPU latency of the machine: x86 IPI delivery, "
                                "arm64 TLBI delivery, plus the shortest link).",
                                {min_value<int64_t>(-1)}};
  Param<bool> coherence_check{this, "coherence_check", true, "",
                              "Check every TLB hit against frame reuse (stale-TLB violations)."};
  Param<bool> coherence_permissions{
      this, "coherence_permissions", true, "",
      "With coherence_check: also compare every TLB hit with the current PTE (present, same "
      "frame, write and exec rights) once the kernel call that changed it has returned "
      "(permission violations)."};
  Param<bool> coherence_fail_fast{this, "coherence_fail_fast", false, "",
                                  "Stop the run at the first coherence violation of any kind (exit code 1, the "
                                  "violation on stderr, no result files)."};

  void validate(const std::string& pointer) const override {
    if (arch() == "arm64" && pgtable_levels() != 4)
      throw InputError(pointer + "/pgtable_levels",
                       "expected 4 for arm64 (4 KiB granule, 48-bit VA), got " +
                           std::to_string(pgtable_levels()));
    if (topology.sockets() > cpus())
      throw InputError(pointer + "/topology/sockets",
                       "expected at most one socket per CPU (" + std::to_string(cpus()) +
                           " CPUs), got " + std::to_string(topology.sockets()));
  }
};

}  // namespace tlbsim
