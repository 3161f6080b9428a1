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
  Param<std::string> replacement{this, "replacement", "lru", "", "Replacement policy."};
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
  Param<Bytes> l1_bytes{this, "l1_bytes", Bytes{48 << 10}, "bytes",
                        "L1 data cache capacity seen by page-walk reads (PTE-line cache)."};
  Param<Bytes> l2_bytes{this, "l2_bytes", Bytes{2 << 20}, "bytes", "Private L2 capacity."};
  Param<Bytes> llc_bytes{this, "llc_bytes", Bytes{64ull << 20}, "bytes", "Shared LLC capacity."};
  Param<uint32_t> l1_cycles{this, "l1_cycles", 5, "cycles", "L1 hit latency of a walk read."};
  Param<uint32_t> l2_cycles{this, "l2_cycles", 16, "cycles", "L2 hit latency."};
  Param<uint32_t> llc_cycles{this, "llc_cycles", 70, "cycles", "LLC hit latency."};
  Param<uint32_t> dram_cycles{this, "dram_cycles", 280, "cycles", "DRAM latency."};
};

/// Cycles of each primitive kernel operation (mm::KOp), charged from ExecContext counts.
struct KernelCostParams : ParamSet {
  using ParamSet::ParamSet;
  Param<uint32_t> syscall_entry{this, "syscall_entry", 200, "cycles", "System call entry + exit."};
  Param<uint32_t> fault_entry{this, "fault_entry", 1000, "cycles", "Exception entry/exit and fault dispatch."};
  Param<uint32_t> pte_read{this, "pte_read", 10, "cycles", "Reading one page-table entry."};
  Param<uint32_t> pte_write{this, "pte_write", 20, "cycles", "Writing or clearing one entry."};
  Param<uint32_t> atomic{this, "atomic", 20, "cycles", "Atomic RMW on a folio counter (line owned)."};
  Param<uint32_t> rmap_call{this, "rmap_call", 150, "cycles", "Fixed part of one rmap call."};
  Param<uint32_t> lock{this, "lock", 40, "cycles", "Lock/unlock round trip, uncontended."};
  Param<uint32_t> page_alloc{this, "page_alloc", 150, "cycles", "Buddy allocation (fast path)."};
  Param<uint32_t> page_free{this, "page_free", 150, "cycles", "Buddy free (fast path)."};
  Param<uint32_t> page_zero{this, "page_zero", 1000, "cycles", "Zeroing a 4 KiB page."};
  Param<uint32_t> page_copy{this, "page_copy", 1200, "cycles", "Copying a 4 KiB page."};
  Param<uint32_t> pt_alloc{this, "pt_alloc", 400, "cycles", "Allocating, zeroing and installing a page table."};
  Param<uint32_t> pt_free{this, "pt_free", 150, "cycles", "Freeing a page-table page."};
  Param<uint32_t> gather_entry{this, "gather_entry", 10, "cycles", "Queueing one mmu_gather item."};
  Param<uint32_t> vma_op{this, "vma_op", 300, "cycles", "VMA tree insert/remove/split."};
  /// Cycles per KOp, in enum order.
  std::array<uint64_t, static_cast<size_t>(mm::KOp::kCount)> table() const {
    return {syscall_entry(), fault_entry(), pte_read(), pte_write(), atomic(),
            rmap_call(),     lock(),        page_alloc(), page_free(), page_zero(),
            page_copy(),     pt_alloc(),    pt_free(),  gather_entry(), vma_op()};
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
};

struct TopologyParams : ParamSet {
  using ParamSet::ParamSet;
  Param<uint32_t> sockets{this, "sockets", 1, "", "Sockets; CPUs are split evenly, in order.",
                          {min_value<uint32_t>(1)}};
  Param<uint32_t> core_link_cycles{this, "core_link_cycles", 50, "cycles",
                                   "Core ↔ its socket's interconnect node."};
  Param<uint32_t> socket_link_cycles{this, "socket_link_cycles", 1000, "cycles",
                                     "Socket ↔ socket link (UPI/CCIX)."};
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
  WalkerParams walker{this, "walker", "Page-table walker, paging-structure caches, walk reads."};
  KernelCostParams costs{this, "costs", "Cycles of primitive kernel operations."};
  X86FlushParams x86{this, "x86", "x86 TLB invalidation and IPI costs."};
  Arm64Params arm64{this, "arm64", "arm64 broadcast TLBI, DVM, contpte and ASID parameters."};
  TopologyParams topology{this, "topology", "Sockets and links; IPI latency = shortest path."};
  Param<uint64_t> quantum_cycles{this, "quantum_cycles", 2500, "cycles",
                                 "Temporal-decoupling quantum (0 = exact, sync on every op)."};
  Param<bool> coherence_check{this, "coherence_check", true, "",
                              "Check every TLB hit against frame reuse (stale-TLB violations)."};
  Param<bool> coherence_fail_fast{this, "coherence_fail_fast", false, "",
                                  "Stop the run at the first stale-TLB violation."};

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
