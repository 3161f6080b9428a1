// struct mm_struct: one address space.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>

#include "base/addr.h"
#include "base/cpu_mask.h"
#include "mm/lock.h"
#include "mm/vma.h"

namespace tlbsim::mm {

/// rss counters (include/linux/mm_types_task.h).
enum RssCounter : uint8_t { kMmFilePages, kMmAnonPages, kMmSwapEnts, kMmShmemPages, kNrRss };

class Mm {
 public:
  Mm(uint32_t mm_id, uint64_t ctx_id, unsigned nr_cpus)
      : m_mm_id(mm_id), m_ctx_id(ctx_id), m_cpumask(nr_cpus) {}

  uint32_t mm_id() const { return m_mm_id; }
  /// x86 context.ctx_id: never reused, identifies the mm in per-CPU ASID slots.
  uint64_t ctx_id() const { return m_ctx_id; }
  /// arm64 ASID (global allocator); x86 uses per-CPU dynamic ASIDs instead.
  uint16_t asid() const { return m_asid; }
  void set_asid(uint16_t a) { m_asid = a; }

  Pfn pgd() const { return m_pgd; }
  void set_pgd(Pfn p) { m_pgd = p; }

  /// mm_cpumask: CPUs that have run this mm since they last flushed it away.
  CpuMask& cpumask() { return m_cpumask; }
  const CpuMask& cpumask() const { return m_cpumask; }

  /// context.tlb_gen (x86): bumped by every flush request (inc_mm_tlb_gen).
  uint64_t tlb_gen() const { return m_tlb_gen; }
  uint64_t inc_tlb_gen() { return ++m_tlb_gen; }

  int64_t rss(RssCounter c) const { return m_rss[c]; }
  void add_rss(RssCounter c, int64_t d) { m_rss[c] += d; }

  /// Page-table pages below the pgd (mm->pgtables_bytes / PAGE_SIZE).
  int64_t nr_pgtables() const { return m_nr_pgtables; }
  void add_pgtables(int64_t d) { m_nr_pgtables += d; }

  /// mm->tlb_flush_batched: bits 0..14 the pending generation of batched unmap
  /// flushes, bits 16..30 the generation flush_tlb_batched_pending last flushed.
  uint32_t tlb_flush_batched = 0;
  /// mm->tlb_flush_pending: gathers active on this mm (mm_tlb_flush_nested).
  int tlb_flush_pending = 0;

  // --- locks (mm/mmap_lock.h) ---------------------------------------------------
  /// mm->mmap_lock: the VMA tree and VMA contents (a reader/writer semaphore).
  KernelLock mmap_lock{LockClass::kMmapLock};
  /// mm->mm_lock_seq: bumped by mmap_write_unlock/downgrade (vma_end_write_all);
  /// a VMA whose vm_lock_seq equals it is write-locked.
  uint64_t mm_lock_seq = 0;
  /// mm->page_table_lock: populating the upper page-table levels, anon_vma_prepare.
  KernelLock page_table_lock{LockClass::kPageTableLock};

  // --- VMAs ---------------------------------------------------------------------
  using VmaMap = std::map<uint64_t, std::unique_ptr<Vma>>;  // keyed by start
  VmaMap& vmas() { return m_vmas; }
  const VmaMap& vmas() const { return m_vmas; }
  /// find_vma: the VMA containing `a`, or nullptr.
  Vma* find_vma(VirtAddr a) const {
    auto it = m_vmas.upper_bound(a.value());
    if (it == m_vmas.begin()) return nullptr;
    --it;
    return it->second->contains(a) ? it->second.get() : nullptr;
  }
  /// mm->mmap_base: mmap without a hint places mappings top-down below it
  /// (vm_unmapped_area(), VM_UNMAPPED_AREA_TOPDOWN). Set by Kernel::mm_create().
  VirtAddr mmap_base = VirtAddr(0x7ffff7fff000ull);

  bool dead = false;  // exit_mmap ran
  /// exit_mmap began: the last user is gone (mm_users == 0), no CPU runs the mm in
  /// user mode again. arm64 relies on it to leave the leaves of the dying ASID in the
  /// TLBs (tlb_flush() with fullmm).
  bool exiting = false;
  /// MMF_HAS_PINNED: some page of this mm was ever pinned with FOLL_PIN (sticky;
  /// not inherited by fork). Makes fork check folio_maybe_dma_pinned().
  bool has_pinned = false;

 private:
  uint32_t m_mm_id;
  uint64_t m_ctx_id;
  uint16_t m_asid = 0;
  Pfn m_pgd;
  CpuMask m_cpumask;
  uint64_t m_tlb_gen = 0;
  std::array<int64_t, kNrRss> m_rss{};
  int64_t m_nr_pgtables = 0;
  VmaMap m_vmas;
};

}  // namespace tlbsim::mm
