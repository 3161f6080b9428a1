// The simulated kernel: owns the memory-management state and offers the entry
// points a CPU model calls (system calls, page faults, process lifetime). Plain,
// deterministic, single-threaded C++; time is charged by the caller from the
// ExecContext counts. Hardware is reached only through ArchMmu.
#pragma once

#include <array>
#include <cstdint>
#include <list>
#include <memory>
#include <vector>

#include "base/stats.h"
#include "mm/arch_mmu.h"
#include "mm/deferred_split.h"
#include "mm/exec_context.h"
#include "mm/kernel_profile.h"
#include "mm/mm_struct.h"
#include "mm/page_table.h"
#include "mm/phys_mem.h"
#include "mm/rmap.h"
#include "mm/vmstat.h"

namespace tlbsim::mm {

class MmuGather;

/// Flush requests the kernel made, by cause (each is one ArchMmu call).
struct FlushCauseStats : StatGroup {
  FlushCauseStats(StatGroup* parent, const std::string& name) : StatGroup(parent, name) {}
  Scalar requests{this, "requests", "count", "TLB flush requests made for this cause."};
  Scalar range{this, "range", "count", "Requests covering a bounded VA range."};
  Scalar full_mm{this, "full_mm", "count", "Requests for the whole address space."};
  Scalar pages{this, "pages", "pages", "4 KiB pages covered by range requests."};
};

struct KernelFlushStats : StatGroup {
  explicit KernelFlushStats(StatGroup* parent) : StatGroup(parent, "tlb_flush") {
    for (size_t c = 1; c < static_cast<size_t>(FlushCause::kCount); ++c)
      by_cause[c] = std::make_unique<FlushCauseStats>(this, kFlushCauseNames[c]);
  }
  Scalar requests{this, "requests", "count", "All TLB flush requests made by the kernel."};
  Scalar gather_flushes{this, "gather_flushes", "count", "tlb_flush_mmu_tlbonly calls that flushed."};
  Scalar gather_forced{this, "gather_forced", "count", "Flushes forced inside zap_pte_range (gather full or dirty file PTEs)."};
  Scalar gather_batches{this, "gather_batches", "count", "Page batches allocated by mmu_gathers."};
  Histogram gather_pages{this, "gather_pages_per_flush", "pages", "Pages freed per tlb_batch_pages_flush."};
  std::array<std::unique_ptr<FlushCauseStats>, static_cast<size_t>(FlushCause::kCount)> by_cause;
};

/// mmap() arguments (after the workload layer resolved sizes and names).
struct MmapArgs {
  uint64_t addr = 0;  // hint or fixed address; 0 = kernel chooses
  uint64_t len = 0;
  bool read = true, write = true, exec = false;
  bool shared = false;
  bool fixed = false;
  bool populate = false;
  uint64_t align = 0;  // extra alignment of the chosen address (0 = page)
  uint64_t extra_vm_flags = 0;  // VM_HUGEPAGE, VM_NOHUGEPAGE, VM_LOCKED...
};

enum class FaultResult : uint8_t { kOk, kSegv, kOom, kRetry };

/// FAULT_FLAG_* the simulator uses.
enum FaultFlags : uint32_t { kFaultWrite = 1u << 0, kFaultExec = 1u << 1, kFaultUser = 1u << 2 };

class Kernel {
 public:
  Kernel(const KernelProfile& profile, PhysMem& pm, ArchMmu& arch, StatGroup* stats_parent);
  ~Kernel();
  Kernel(const Kernel&) = delete;
  Kernel& operator=(const Kernel&) = delete;

  // --- process address spaces ---------------------------------------------------
  /// mm_alloc() + mm_init(): a new empty address space (pgd, mm_id, arch context).
  Mm& mm_create(ExecContext& ctx);
  /// exit_mmap(): tear down every mapping (full-mm gather) and free the page tables.
  void exit_mmap(ExecContext& ctx, Mm& mm);
  /// mmdrop(): free the mm once no CPU uses it.
  void mm_destroy(Mm& mm);

  // --- system calls --------------------------------------------------------------
  /// mmap(): returns the address, or −errno.
  int64_t sys_mmap(ExecContext& ctx, Mm& mm, const MmapArgs& args);
  /// munmap(): 0 or −errno.
  int sys_munmap(ExecContext& ctx, Mm& mm, VirtAddr addr, uint64_t len);

  // --- faults ----------------------------------------------------------------------
  /// handle_mm_fault(): resolve a fault at `addr` raised by the hardware walker.
  FaultResult handle_mm_fault(ExecContext& ctx, Mm& mm, VirtAddr addr, uint32_t flags);

  // --- TLB maintenance requests (counted by cause, then handed to the arch) --------
  void tlb_flush(ExecContext& ctx, Mm& mm, const TlbFlushRequest& req);
  void flush_tlb_mm(ExecContext& ctx, Mm& mm);
  void flush_tlb_range(ExecContext& ctx, Mm& mm, VirtAddr start, VirtAddr end);
  void flush_tlb_page(ExecContext& ctx, Mm& mm, VirtAddr addr);

  // --- accessors -------------------------------------------------------------------
  PhysMem& phys() { return m_pm; }
  const PhysMem& phys() const { return m_pm; }
  ArchMmu& arch() { return m_arch; }
  const PteCodec& codec() const { return m_codec; }
  PageTables& page_tables() { return m_pt; }
  Rmap& rmap() { return m_rmap; }
  const Rmap& rmap() const { return m_rmap; }
  DeferredSplit& deferred_split() { return m_deferred; }
  VmStat& vmstat() { return m_vmstat; }
  const VmStat& vmstat_const() const { return m_vmstat; }
  unsigned page_tables_levels() const { return m_arch.pgtable_levels(); }
  KernelFlushStats& flush_stats() { return m_flush_stats; }
  const KernelProfile& profile() const { return m_profile; }
  const std::list<std::unique_ptr<Mm>>& mms() const { return m_mms; }
  Pfn zero_pfn() const { return m_zero_pfn; }
  bool zap_batching() const { return m_zap_batching; }
  bool debug_free_before_flush() const { return m_debug_free_before_flush; }

  /// Drops `nr` references of a folio; frees it when the last one goes
  /// (folio_put_refs → __folio_put → free_unref_folios).
  void folio_put_refs(ExecContext& ctx, Pfn head, int32_t nr, const char* what);

 private:
  friend class MmuGather;
  // memory.cpp
  FaultResult do_anonymous_page(ExecContext& ctx, Mm& mm, Vma& vma, VirtAddr addr,
                                uint64_t* pte, uint32_t flags);
  FaultResult do_wp_page(ExecContext& ctx, Mm& mm, Vma& vma, VirtAddr addr, uint64_t* pte);
  void unmap_vmas(MmuGather& tlb, std::vector<Vma*>& vmas, VirtAddr start, VirtAddr end);
  void unmap_page_range(MmuGather& tlb, Vma& vma, VirtAddr start, VirtAddr end);
  void zap_range_level(MmuGather& tlb, Vma& vma, PageTablePage& table, unsigned level,
                       VirtAddr start, VirtAddr end);
  VirtAddr zap_pte_range(MmuGather& tlb, Vma& vma, PageTablePage& table, VirtAddr start,
                         VirtAddr end);
  unsigned folio_pte_batch(Pfn pfn, const uint64_t* ptep, uint64_t pte, unsigned max_nr) const;
  void free_pgtables(MmuGather& tlb, VirtAddr start, VirtAddr end, VirtAddr floor,
                     VirtAddr ceiling);
  bool free_tables_level(MmuGather& tlb, PageTablePage& table, unsigned level, VirtAddr base,
                         VirtAddr start, VirtAddr end, VirtAddr floor, VirtAddr ceiling);
  // mmap.cpp
  Vma* vma_create(ExecContext& ctx, Mm& mm, VirtAddr start, VirtAddr end, uint64_t flags);
  void vma_split(ExecContext& ctx, Mm& mm, Vma& vma, VirtAddr at);
  void vma_remove(Mm& mm, Vma* vma);
  AnonVma* anon_vma_prepare(Vma& vma);

  const KernelProfile& m_profile;
  PhysMem& m_pm;
  ArchMmu& m_arch;
  const PteCodec& m_codec;
  StatGroup m_stats;
  VmStat m_vmstat;
  KernelFlushStats m_flush_stats;
  PageTables m_pt;
  DeferredSplit m_deferred;
  Rmap m_rmap;
  std::list<std::unique_ptr<Mm>> m_mms;
  std::vector<std::unique_ptr<AnonVma>> m_anon_vmas;
  uint32_t m_next_mm_id = 1;
  uint64_t m_next_ctx_id = 1;
  Pfn m_zero_pfn;
  // Profile switches copied once so hot paths never consult the ParamSet.
  bool m_zap_batching;
  bool m_rmap_batching;
  bool m_debug_free_before_flush;
};

}  // namespace tlbsim::mm
