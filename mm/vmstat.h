// Kernel event counters and levels: /proc/vmstat items and the per-size mTHP
// statistics of /sys/kernel/mm/transparent_hugepage/hugepages-<size>kB/stats/.
#pragma once

#include <array>
#include <memory>
#include <string>

#include "base/stats.h"
#include "mm/kernel_profile.h"

namespace tlbsim::mm {

/// hugepages-<size>kB/stats/ for one order (enum mthp_stat_item).
struct MthpStats : StatGroup {
  MthpStats(StatGroup* parent, const std::string& name) : StatGroup(parent, name) {}
  Scalar anon_fault_alloc{this, "anon_fault_alloc", "count", "Anonymous faults that allocated a folio of this size."};
  Scalar anon_fault_fallback{this, "anon_fault_fallback", "count", "Faults that tried this size and fell back to a smaller one."};
  Scalar anon_fault_fallback_charge{this, "anon_fault_fallback_charge", "count", "Fallbacks caused by a memcg charge failure (not modelled: stays 0)."};
  Scalar split{this, "split", "count", "Folios of this size split successfully."};
  Scalar split_failed{this, "split_failed", "count", "Split attempts that failed."};
  Scalar split_deferred{this, "split_deferred", "count", "Folios queued for deferred split."};
  Gauge nr_anon{this, "nr_anon", "folios", "Anonymous folios of this size currently allocated."};
  Gauge nr_anon_partially_mapped{this, "nr_anon_partially_mapped", "folios", "Anonymous folios of this size that are partially mapped."};
};

struct VmStat : StatGroup {
  explicit VmStat(StatGroup* parent) : StatGroup(parent, "vmstat") {
    for (unsigned o = kMinAnonThpOrder; o <= kPmdOrder; ++o)
      mthp[o] = std::make_unique<MthpStats>(
          this, "hugepages_" + std::to_string((4u << o)) + "kB");
  }
  /// Folios of every size queued for deferred split (Σ hugepages-*/stats/split_deferred).
  uint64_t split_deferred_total() const {
    uint64_t n = 0;
    for (unsigned o = kMinAnonThpOrder; o <= kPmdOrder; ++o) n += mthp[o]->split_deferred;
    return n;
  }
  Gauge nr_anon_mapped{this, "nr_anon_mapped", "pages", "NR_ANON_MAPPED: anonymous pages mapped into user page tables."};
  Gauge nr_anon_thps{this, "nr_anon_thps", "pages", "NR_ANON_THPS: anonymous pages mapped by PMDs."};
  Gauge nr_file_mapped{this, "nr_file_mapped", "pages", "NR_FILE_MAPPED: file pages mapped into user page tables."};
  Gauge nr_file_pmdmapped{this, "nr_file_pmdmapped", "pages", "NR_FILE_PMDMAPPED."};
  Scalar pgfault{this, "pgfault", "count", "Page faults handled (PGFAULT)."};
  Scalar pgfault_anon{this, "pgfault_anon", "count", "Faults that populated anonymous memory."};
  Scalar pgfault_zero_page{this, "pgfault_zero_page", "count", "Read faults that mapped the shared zero page."};
  Scalar vma_lock_success{this, "vma_lock_success", "count", "Faults handled under the per-VMA lock (VMA_LOCK_SUCCESS)."};
  Scalar vma_lock_abort{this, "vma_lock_abort", "count", "Faults whose VMA was write-locked: mmap_lock instead (VMA_LOCK_ABORT)."};
  Scalar vma_lock_retry{this, "vma_lock_retry", "count", "Faults retried under mmap_lock after VM_FAULT_RETRY under the VMA lock (VMA_LOCK_RETRY)."};
  Scalar vma_lock_miss{this, "vma_lock_miss", "count", "Faults that found no VMA under RCU (VMA_LOCK_MISS)."};
  Scalar pgfault_wp{this, "pgfault_wp", "count", "Write-protect faults (do_wp_page)."};
  Scalar cow_copy{this, "cow_copy", "count", "Write faults that copied a page (wp_page_copy)."};
  Scalar cow_reuse{this, "cow_reuse", "count", "Write faults that reused the page (wp_page_reuse)."};
  Scalar pgfree{this, "pgfree", "pages", "Pages freed to the buddy allocator (PGFREE)."};
  Scalar pgalloc{this, "pgalloc", "pages", "Pages allocated for folios."};
  Scalar thp_fault_alloc{this, "thp_fault_alloc", "count", "PMD THPs allocated at fault (THP_FAULT_ALLOC)."};
  Scalar thp_fault_fallback{this, "thp_fault_fallback", "count", "PMD THP faults that fell back (THP_FAULT_FALLBACK)."};
  Scalar thp_split_pmd{this, "thp_split_pmd", "count", "PMD mappings split (THP_SPLIT_PMD)."};
  Scalar thp_deferred_split_page{this, "thp_deferred_split_page", "count", "Folios queued for deferred split."};
  Scalar rmap_calls{this, "rmap_calls", "count", "Calls into the folio rmap family (add, dup, remove)."};
  Scalar tlb_flush_nested{this, "tlb_flush_nested", "count", "tlb_finish_mmu() that found another gather of the mm in flight (mm_tlb_flush_nested) and flushed the whole mm."};
  Scalar pt_reclaimed{this, "pt_reclaimed", "count", "Empty PTE tables freed by MADV_DONTNEED (CONFIG_PT_RECLAIM)."};
  Scalar lazyfree_folios{this, "lazyfree_folios", "count", "Folios MADV_FREE marked lazy-free."};
  Scalar oom{this, "oom", "count", "Faults that failed for lack of memory (VM_FAULT_OOM)."};
  // faults (huge_memory.cpp, filemap.cpp)
  Scalar thp_zero_page_alloc{this, "thp_zero_page_alloc", "count", "Huge zero pages allocated (THP_ZERO_PAGE_ALLOC)."};
  Scalar thp_zero_page_alloc_failed{this, "thp_zero_page_alloc_failed", "count", "Huge zero page allocations that failed (THP_ZERO_PAGE_ALLOC_FAILED)."};
  Scalar pgfault_file{this, "pgfault_file", "count", "Faults on none PTEs of file mappings (do_fault)."};
  Scalar fault_around_pages{this, "fault_around_pages", "pages", "Page-cache pages mapped by fault-around (filemap_map_pages)."};
  Scalar thp_split_page{this, "thp_split_page", "count", "PMD-sized folios split (THP_SPLIT_PAGE)."};
  Scalar thp_split_page_failed{this, "thp_split_page_failed", "count", "PMD-sized folio splits that failed."};
  Scalar deferred_split_scanned{this, "deferred_split_scanned", "count", "Folios the deferred-split shrinker looked at."};
  Scalar pgmigrate_entries{this, "pgmigrate_entries", "count", "PTEs replaced by migration entries (try_to_migrate_one)."};
  Scalar pgmigrate_remapped{this, "pgmigrate_remapped", "count", "Migration entries turned back into PTEs (remove_migration_pte)."};
  // reclaim (vmscan.cpp), swap-in (swapfile.cpp), migration (migrate.cpp)
  Scalar pgscan{this, "pgscan", "pages", "Pages isolated from the LRU by reclaim (PGSCAN_*)."};
  Scalar pgsteal{this, "pgsteal", "pages", "Pages reclaimed (PGSTEAL_*)."};
  Scalar pgsteal_anon{this, "pgsteal_anon", "pages", "Anonymous pages reclaimed (swapped out or discarded)."};
  Scalar pgsteal_file{this, "pgsteal_file", "pages", "Page-cache pages reclaimed."};
  Scalar pglazyfreed{this, "pglazyfreed", "pages", "MADV_FREE'd pages discarded by reclaim (PGLAZYFREED)."};
  Scalar pgpageout_file{this, "pgpageout_file", "pages", "Dirty page-cache pages written back by reclaim."};
  Scalar reclaim_unmapped{this, "reclaim_unmapped", "pages", "PTEs cleared by try_to_unmap_one."};
  Scalar reclaim_kept{this, "reclaim_kept", "count", "Isolated folios reclaim put back (mlocked, pinned, redirtied, referenced)."};
  Scalar allocstall{this, "allocstall", "count", "Allocations that entered direct reclaim (ALLOCSTALL)."};
  Scalar pgmajfault{this, "pgmajfault", "count", "Faults that read a page from the swap device or a file (PGMAJFAULT)."};
  Scalar pgdeactivate{this, "pgdeactivate", "count", "Folios MADV_COLD moved to the reclaim end of the LRU."};
  Scalar nr_foll_pin_acquired{this, "nr_foll_pin_acquired", "pages", "Pages pinned with FOLL_PIN (NR_FOLL_PIN_ACQUIRED)."};
  Scalar nr_foll_pin_released{this, "nr_foll_pin_released", "pages", "FOLL_PIN pins released (NR_FOLL_PIN_RELEASED)."};
  Scalar pgmigrate_success{this, "pgmigrate_success", "pages", "Pages migrated (PGMIGRATE_SUCCESS)."};
  Scalar pgmigrate_fail{this, "pgmigrate_fail", "pages", "Pages that could not be migrated (PGMIGRATE_FAIL)."};
  std::array<std::unique_ptr<MthpStats>, kPmdOrder + 1> mthp;
};

}  // namespace tlbsim::mm
