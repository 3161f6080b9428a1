// The simulated kernel: owns the memory-management state and offers the entry
// points a CPU model calls (system calls, page faults, process lifetime). Plain,
// deterministic, single-threaded C++; time is charged by the caller from the
// ExecContext counts. Hardware is reached only through ArchMmu.
#pragma once

#include <array>
#include <cstdint>
#include <list>
#include <memory>
#include <optional>
#include <unordered_map>
#include <vector>

#include "base/stats.h"
#include "mm/arch_mmu.h"
#include "mm/buddy_stats.h"
#include "mm/deferred_split.h"
#include "mm/exec_context.h"
#include "mm/filemap.h"
#include "mm/folio.h"
#include "mm/kernel_profile.h"
#include "mm/lru.h"
#include "mm/mm_struct.h"
#include "mm/page_table.h"
#include "mm/phys_mem.h"
#include "mm/rmap.h"
#include "mm/swap_device.h"
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
  Scalar tlbbatch_pending{this, "tlbbatch_pending", "pages", "PTEs whose flush was deferred to a batch (set_tlb_ubc_flush_pending)."};
  Scalar tlbbatch_skipped{this, "tlbbatch_skipped", "pages", "Deferred unmaps of entries that were not pte_accessible: no flush needed."};
  Scalar tlbbatch_flushes{this, "tlbbatch_flushes", "count", "try_to_unmap_flush calls that flushed a batch."};
  Scalar batched_pending_flushes{this, "batched_pending_flushes", "count", "flush_tlb_mm calls by flush_tlb_batched_pending."};
  std::array<std::unique_ptr<FlushCauseStats>, static_cast<size_t>(FlushCause::kCount)> by_cause;
};

/// What mremap() did (mm/mremap.c has no vmstat counters; these make its path visible).
struct MremapStats : StatGroup {
  explicit MremapStats(StatGroup* parent) : StatGroup(parent, "mremap") {}
  Scalar calls{this, "calls", "count", "mremap() calls that succeeded."};
  Scalar shrunk{this, "shrunk", "count", "Calls that only unmapped the tail."};
  Scalar grown_in_place{this, "grown_in_place", "count", "Calls that grew the VMA over the free range after it (no page table changes)."};
  Scalar moved{this, "moved", "count", "Calls that moved the mapping (move_vma)."};
  Scalar pud_tables_moved{this, "pud_tables_moved", "count", "Whole PMD tables re-pointed by move_normal_pud (1 GiB each)."};
  Scalar pmd_tables_moved{this, "pmd_tables_moved", "count", "Whole PTE tables re-pointed by move_normal_pmd (2 MiB each)."};
  Scalar huge_pmds_moved{this, "huge_pmds_moved", "count", "PMD-mapped THPs moved as a whole (move_huge_pmd)."};
  Scalar ptes_moved{this, "ptes_moved", "count", "Non-none PTEs moved one by one or in batches (move_ptes)."};
};

/// mremap() flags (include/uapi/linux/mman.h).
inline constexpr unsigned kMremapMaymove = 1, kMremapFixed = 2, kMremapDontunmap = 4;

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
  // faults (huge_memory.cpp, filemap.cpp)
  int64_t file = -1;         // file id from Kernel::create_file; −1 = anonymous memory
  uint64_t file_offset = 0;  // byte offset in the file (page aligned)
};

/// madvise() advices that change mappings (mm/madvise.c).
enum class Advice : uint8_t { kDontneed, kFree, kHugepage, kNohugepage, kCold, kPageout };

/// kRetry: nothing done (a racing CPU changed the entry, or a migration holds the
/// page): the access is retried and faults again if it must. kVmaLockRetry
/// (VM_FAULT_RETRY under the per-VMA lock) never leaves handle_mm_fault(): the
/// fault is redone under mmap_lock.
enum class FaultResult : uint8_t { kOk, kSegv, kOom, kRetry, kVmaLockRetry };

/// FAULT_FLAG_* the simulator uses.
enum FaultFlags : uint32_t {
  kFaultWrite = 1u << 0,
  kFaultExec = 1u << 1,
  kFaultUser = 1u << 2,
  kFaultVmaLock = 1u << 3,  // FAULT_FLAG_VMA_LOCK: the VMA is read-locked, not mmap_lock
};

/// enum ttu_flags (include/linux/rmap.h) the simulator uses.
enum TtuFlags : uint32_t { kTtuSplitHugePmd = 1u << 2, kTtuBatchFlush = 1u << 7 };

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
  /// mmap(): returns the address, or −errno as in Linux (IS_ERR_VALUE: the top 4095
  /// values; mmap_errno() tells them apart). The mapping always ends at or below the
  /// architecture's TASK_SIZE (base/addr.h).
  uint64_t sys_mmap(ExecContext& ctx, Mm& mm, const MmapArgs& args);
  /// TASK_SIZE of the architecture and paging mode.
  uint64_t task_size() const;
  /// vm_unmapped_area() top-down: the highest free range of `len` bytes at `align`
  /// below `high_limit`.
  std::optional<VirtAddr> unmapped_area_topdown(const Mm& mm, uint64_t len, uint64_t align,
                                                uint64_t high_limit) const;
  /// __thp_get_unmapped_area() for an anonymous mapping: a PMD-aligned range.
  std::optional<VirtAddr> thp_get_unmapped_area(const Mm& mm, uint64_t len) const;
  /// Does __get_unmapped_area() THP-align an anonymous mapping of `len` bytes?
  bool thp_align_anon(uint64_t len) const;
  /// The errno of a sys_mmap() result, 0 for an address.
  static constexpr int mmap_errno(uint64_t r) {
    return r >= static_cast<uint64_t>(-4095) ? static_cast<int>(-static_cast<int64_t>(r)) : 0;
  }
  /// munmap(): 0 or −errno.
  int sys_munmap(ExecContext& ctx, Mm& mm, VirtAddr addr, uint64_t len);
  /// mremap(addr, old_len, new_len, flags, new_addr) of private anonymous memory
  /// (mm/mremap.cpp): the new address, or −errno as a uint64_t (mmap_errno()).
  uint64_t sys_mremap(ExecContext& ctx, Mm& mm, VirtAddr addr, uint64_t old_len, uint64_t new_len,
                      unsigned flags, VirtAddr new_addr);
  /// do_vmi_munmap() with mmap_lock held for write; `downgrade` (munmap(2))
  /// downgrades it to read before the zap and sets *downgraded.
  int do_munmap(ExecContext& ctx, Mm& mm, VirtAddr addr, uint64_t len, bool downgrade,
                bool* downgraded = nullptr);

  // --- faults ----------------------------------------------------------------------
  /// The page-fault entry (do_user_addr_fault / do_page_fault): resolve a fault at
  /// `addr` raised by the hardware walker, under the per-VMA lock (Linux 6.4+) or
  /// mmap_lock for read.
  FaultResult handle_mm_fault(ExecContext& ctx, Mm& mm, VirtAddr addr, uint32_t flags);
  /// handle_mm_fault(vma, address, flags): the caller holds the VMA's lock (flags
  /// has kFaultVmaLock) or mmap_lock.
  FaultResult handle_mm_fault_locked(ExecContext& ctx, Mm& mm, Vma& vma, VirtAddr addr,
                                     uint32_t flags);
  /// handle_mm_fault_locked() without the PGFAULT accounting.
  FaultResult handle_mm_fault_body(ExecContext& ctx, Mm& mm, Vma& vma, VirtAddr addr,
                                   uint32_t flags);

  // faults (huge_memory.cpp, filemap.cpp)
  /// Creates a file of `nr_pages` pages whose contents are all in the page cache, in
  /// folios of `folio_order` (0..8; smaller at the end of the file or when memory is
  /// fragmented). Map it with MmapArgs::file. Returns the file id, or −ENOMEM.
  int64_t create_file(uint64_t nr_pages, unsigned folio_order = 0);
  const PageCache& page_cache() const { return m_page_cache; }
  /// The huge zero folio (PMD-sized), or Pfn() before the first huge-zero read fault.
  Pfn huge_zero_pfn() const { return m_huge_zero_pfn; }
  /// thp_vma_allowable_orders(vma, vm_flags, TVA_IN_PF | TVA_ENFORCE_SYSFS, orders)
  /// for an anonymous VMA: the THP orders (bit n = order n) the sysfs settings and
  /// VM_HUGEPAGE/VM_NOHUGEPAGE allow among `orders`.
  uint32_t thp_vma_allowable_orders(const Vma& vma, uint64_t vm_flags, uint32_t orders) const;
  /// flush_pmd_tlb_range(vma, start, end): counted by cause like the other flush
  /// requests, then handed to the arch (PMD-level leaf changes).
  void flush_pmd_tlb_range(ExecContext& ctx, Mm& mm, VirtAddr start, VirtAddr end);

  // --- fork (fork.cpp) -------------------------------------------------------------
  /// dup_mmap(): fork() of `oldmm`. Creates the child mm, duplicates every VMA but
  /// VM_DONTCOPY ones (VM_WIPEONFORK ones empty), links the child into the anon_vma
  /// trees (anon_vma_fork) and copies the page tables of VMAs that have an anon_vma
  /// (copy_page_range): private writable PTEs become read-only in both processes,
  /// folios gain the child's references and mappings, pinned exclusive pages are
  /// copied for the child. Ends with exactly one flush_tlb_mm(oldmm)
  /// (FlushCause::kFork). Throws std::runtime_error when memory runs out (the
  /// partial child is torn down first).
  Mm& dup_mmap(ExecContext& ctx, Mm& oldmm);
  /// dup_mmap() that returns nullptr (−ENOMEM, the partial child torn down) instead
  /// of throwing.
  Mm* try_dup_mmap(ExecContext& ctx, Mm& oldmm);
  /// fork(): system call entry, copy_process()'s fixed work (KOp::kForkFixed) and
  /// try_dup_mmap(). nullptr when memory ran out (fork returns −ENOMEM).
  Mm* sys_fork(ExecContext& ctx, Mm& oldmm);
  /// do_exit() of a thread of `mm`: the fixed work of exit and of the parent's reap
  /// (KOp::kExitFixed); when `last_thread`, exit_mm() → exit_mmap(). The mm itself
  /// is freed by mm_destroy() once no CPU has it loaded.
  void do_exit(ExecContext& ctx, Mm& mm, bool last_thread);
  /// pin_user_page(): pin_user_pages(FOLL_PIN | FOLL_WRITE | FOLL_LONGTERM) of the
  /// page at `va` (faulted in for write first if needed). Sets MMF_HAS_PINNED on
  /// `mm`; pins the folio (large: pincount +1 and refcount +1; small: refcount
  /// +GUP_PIN_COUNTING_BIAS). Returns the pinned page, or nullopt (no VMA, OOM).
  std::optional<Pfn> pin_user_page(ExecContext& ctx, Mm& mm, VirtAddr va);
  /// follow_page_mask() / gup_fast for FOLL_WRITE | FOLL_PIN: pins the page at `va`
  /// when it is mapped present and writable (not the zero page); nullopt otherwise.
  std::optional<Pfn> try_grab_mapped_page(ExecContext& ctx, Mm& mm, VirtAddr va);
  /// unpin_user_page(): drops one pin taken by pin_user_page (may free the folio).
  void unpin_user_page(ExecContext& ctx, Pfn page);
  /// pin_user_pages(FOLL_WRITE | FOLL_LONGTERM) of [start, start + len) under
  /// mmap_read_lock (gup.cpp): appends the pinned pages to `pages`; 0, or −EFAULT (no
  /// VMA, a hole, a VMA without VM_WRITE) / −ENOMEM with nothing left pinned.
  int pin_user_pages(ExecContext& ctx, Mm& mm, VirtAddr start, uint64_t len,
                     std::vector<Pfn>& pages);
  /// unpin_user_pages(): unpin_user_page() of each.
  void unpin_user_pages(ExecContext& ctx, const std::vector<Pfn>& pages);

  // --- mprotect / madvise (mprotect.cpp, madvise.cpp) -----------------------------
  /// mprotect(): 0 or −errno (EINVAL unaligned, ENOMEM for holes, EACCES).
  int sys_mprotect(ExecContext& ctx, Mm& mm, VirtAddr addr, uint64_t len, bool read, bool write,
                   bool exec);
  /// madvise(): 0 or −errno.
  int sys_madvise(ExecContext& ctx, Mm& mm, VirtAddr addr, uint64_t len, Advice advice);

  // --- PMD split, folio split, deferred split (huge_split.cpp) --------------------
  /// split_huge_pmd_address(vma, address, freeze): if a huge PMD maps `address`,
  /// split it into a PTE table (__split_huge_pmd_locked). Non-freeze: the folio
  /// stays mapped by 512 PTEs; freeze: 512 migration entries (folio split).
  void split_huge_pmd_address(ExecContext& ctx, Vma& vma, VirtAddr address, bool freeze = false);
  /// split_folio(): split an anonymous large folio to order 0 (__folio_split):
  /// unmap every mapping to migration entries with one batched flush, split the
  /// metadata, remap each page, free the pages nobody mapped. The caller holds one
  /// reference (kept on the first page). 0, or −EAGAIN (unexpected references:
  /// split_failed) / −EINVAL (not a splittable anon folio).
  int split_folio(ExecContext& ctx, Folio folio);
  /// deferred_split_scan(): the "thp-deferred_split" shrinker, scanning up to
  /// `nr_to_scan` queued folios: partially mapped ones are split, the others
  /// dropped from the queue (underused-THP detection needs page contents, which are
  /// not modelled: as with Linux's default max_ptes_none = 511, never underused).
  /// Returns the number of folios split.
  uint64_t deferred_split_scan(ExecContext& ctx, uint64_t nr_to_scan);

  // --- batched unmap flush (migrate.cpp; reference §6) -----------------------------
  /// should_defer_flush(mm, flags).
  bool should_defer_flush(ExecContext& ctx, Mm& mm, uint32_t ttu_flags);
  /// set_tlb_ubc_flush_pending(mm, pteval, start, end).
  void set_tlb_ubc_flush_pending(ExecContext& ctx, Mm& mm, uint64_t pteval, VirtAddr start,
                                 VirtAddr end);
  /// try_to_unmap_flush(): complete ctx.cpu's batch (one arch_tlbbatch_flush).
  void try_to_unmap_flush(ExecContext& ctx);
  /// try_to_unmap_flush_dirty(): only if a dirty (maybe writable) entry was batched.
  void try_to_unmap_flush_dirty(ExecContext& ctx);
  /// flush_tlb_batched_pending(mm): called under the PTL by PTE modifiers; flushes
  /// the mm if a batched flush may still be outstanding.
  void flush_tlb_batched_pending(ExecContext& ctx, Mm& mm);
  /// try_to_migrate(): replace every mapping of `folio` by migration entries
  /// (TTU_BATCH_FLUSH: flush deferred to try_to_unmap_flush; TTU_SPLIT_HUGE_PMD:
  /// PMD mappings are split with freeze first).
  /// `rmap_locked` (TTU_RMAP_LOCKED): the caller holds the anon_vma lock.
  void try_to_migrate(ExecContext& ctx, Folio folio, uint32_t ttu_flags, bool rmap_locked);
  /// remove_migration_ptes(src, dst): migration entries naming pages of `src` become
  /// PTEs mapping the same-index pages of `dst` (which carries src's mapping/index).
  void remove_migration_ptes(ExecContext& ctx, Folio src, Folio dst, bool rmap_locked);

  // --- reclaim and swap (vmscan.cpp, swapfile.cpp; reference §6) -----------------
  /// Reclaim up to `nr_pages` pages from the tail (oldest end) of the LRU
  /// (shrink_lruvec → isolate_lru_folios → shrink_folio_list, accessed bits not
  /// consulted): each folio is unmapped through the rmap walk with TTU_BATCH_FLUSH
  /// (try_to_unmap_one, one PTE at a time except lazyfree large folios), swap-backed
  /// anon folios go to the swap device (large ones are split first: no THP_SWAP),
  /// lazyfree ones are discarded, file folios leave the page cache (dirty ones are
  /// written back after try_to_unmap_flush_dirty). One try_to_unmap_flush() before
  /// any folio is freed. FlushCause::kReclaim. Returns the pages freed.
  uint64_t reclaim(ExecContext& ctx, uint64_t nr_pages);
  /// alloc_pages() of one folio with direct reclaim: on failure, reclaim a batch
  /// (SWAP_CLUSTER_MAX pages; vmstat allocstall) and try once more.
  std::optional<Pfn> alloc_folio_reclaim(ExecContext& ctx, unsigned order);
  Lru& lru() { return m_lru; }
  const Lru& lru() const { return m_lru; }
  SwapDevice& swap() { return m_swap; }
  const SwapDevice& swap() const { return m_swap; }

  // --- page migration (migrate.cpp) -----------------------------------------------
  /// move_pages(2) without NUMA nodes: migrate every folio mapped in [start,
  /// start + len) of `mm` to a newly allocated one (migrate_pages → migrate_pages_batch):
  /// order-0 folios are unmapped as one batch (TTU_BATCH_FLUSH, one try_to_unmap_flush
  /// before any copy), large folios one at a time with their own flush. Swap-cache and
  /// file folios are not migrated. FlushCause::kMigration. Returns the folios
  /// migrated, or −errno (EINVAL unaligned, EFAULT outside every VMA).
  int64_t move_pages(ExecContext& ctx, Mm& mm, VirtAddr start, uint64_t len);

  // --- TLB maintenance requests (counted by cause, then handed to the arch) --------
  void tlb_flush(ExecContext& ctx, Mm& mm, const TlbFlushRequest& req);
  void flush_tlb_mm(ExecContext& ctx, Mm& mm);
  void flush_tlb_range(ExecContext& ctx, Mm& mm, VirtAddr start, VirtAddr end);
  void flush_tlb_page(ExecContext& ctx, Mm& mm, VirtAddr addr);

  // --- folio lock (mm/filemap.c) -----------------------------------------------------
  /// folio_lock(): sleeps while another task holds PG_locked.
  void folio_lock(ExecContext& ctx, Folio folio);
  /// folio_trylock(): never sleeps.
  bool folio_trylock(ExecContext& ctx, Folio folio);
  void folio_unlock(ExecContext& ctx, Folio folio);

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
  /// Kernel paths in progress that change other mms' PTEs through the rmap (reclaim,
  /// migration, folio split) and flush them before they return: until then another
  /// mm's TLBs may legitimately grant rights its PTEs no longer do (the permission
  /// checker asks; Linux has no such counter).
  unsigned rmap_unmaps_in_flight() const { return m_rmap_unmaps_in_flight; }

  /// Drops `nr` references of a folio; frees it when the last one goes
  /// (folio_put_refs → __folio_put → free_unref_folios).
  void folio_put_refs(ExecContext& ctx, Pfn head, int32_t nr, const char* what);

 private:
  /// Marks a path counted by rmap_unmaps_in_flight() for its lifetime.
  struct RmapUnmapScope {
    explicit RmapUnmapScope(Kernel& k) : k(k) { ++k.m_rmap_unmaps_in_flight; }
    ~RmapUnmapScope() { --k.m_rmap_unmaps_in_flight; }
    RmapUnmapScope(const RmapUnmapScope&) = delete;
    RmapUnmapScope& operator=(const RmapUnmapScope&) = delete;
    Kernel& k;
  };
  friend class MmuGather;
  // fork (fork.cpp)
  friend class ForkCopier;
  void anon_vma_fork(ExecContext& ctx, Vma& vma, Vma& pvma);
  /// pgtable_trans_huge_deposit() (mm/pgtable-generic.c): keep the PTE table
  /// `pgtable` with the PMD table `pmd_table` (LIFO, linked through Page::index) for a
  /// later split of an anon PMD mapping in it; pgtable_trans_huge_withdraw() takes
  /// the newest one back. Used by copy_huge_pmd; THP faults and zap_huge_pmd pair
  /// with them.
  void pgtable_trans_huge_deposit(Pfn pmd_table, Pfn pgtable);
  Pfn pgtable_trans_huge_withdraw(Pfn pmd_table);
  // memory.cpp
  struct VmFault;  // struct vm_fault, mm/fault.h
  FaultResult do_anonymous_page(ExecContext& ctx, VmFault& vmf);
  /// Entered with vmf.ptl held; returns with it released.
  FaultResult do_wp_page(ExecContext& ctx, VmFault& vmf);
  void unmap_vmas(MmuGather& tlb, std::vector<Vma*>& vmas, VirtAddr start, VirtAddr end);
  /// zap_details.reclaim_pt: MADV_DONTNEED with CONFIG_PT_RECLAIM frees PTE tables it
  /// empties entirely.
  void unmap_page_range(MmuGather& tlb, Vma& vma, VirtAddr start, VirtAddr end,
                        bool reclaim_pt = false);
  VirtAddr zap_pte_range(MmuGather& tlb, Vma& vma, uint64_t* pmd, VirtAddr start, VirtAddr end);
  unsigned folio_pte_batch(Pfn pfn, const uint64_t* ptep, uint64_t pte, unsigned max_nr) const;
  void free_pgtables(MmuGather& tlb, VirtAddr start, VirtAddr end, VirtAddr floor,
                     VirtAddr ceiling);
  // mmap.cpp
  Vma* vma_create(ExecContext& ctx, Mm& mm, VirtAddr start, VirtAddr end, uint64_t flags);
  void vma_split(ExecContext& ctx, Mm& mm, Vma& vma, VirtAddr at);
  // mremap (mremap.cpp)
  int mremap_resize_is_valid(const Vma& vma, VirtAddr addr, uint64_t old_len) const;
  bool vma_expandable(const Mm& mm, const Vma& vma, uint64_t delta) const;
  uint64_t mremap_to(ExecContext& ctx, Mm& mm, VirtAddr addr, uint64_t old_len, uint64_t new_len,
                     VirtAddr new_addr);
  uint64_t move_vma(ExecContext& ctx, Mm& mm, Vma& vma, VirtAddr old_addr, uint64_t old_len,
                    uint64_t new_len, VirtAddr new_addr);
  uint64_t move_page_tables(ExecContext& ctx, Mm& mm, Vma& vma, VirtAddr old_addr, Vma& new_vma,
                            VirtAddr new_addr, uint64_t len);
  bool move_huge_pmd(ExecContext& ctx, Mm& mm, VirtAddr old_addr, Pfn old_pmd_table,
                     uint64_t* old_pmd, Pfn new_pmd_table, uint64_t* new_pmd);
  void move_ptes(ExecContext& ctx, Mm& mm, uint64_t* old_pmd, VirtAddr old_addr, VirtAddr old_end,
                 uint64_t* new_pmd, VirtAddr new_addr);
  /// __get_unmapped_area() of an anonymous private mapping of `len` (THP-aligned
  /// where the version does it), as mmap() without a hint and mremap's move place it.
  std::optional<VirtAddr> get_unmapped_area_anon(const Mm& mm, uint64_t len, uint64_t align) const;
  void vma_remove(ExecContext& ctx, Mm& mm, Vma* vma);
  /// Whether `next` (right after `prev`) may merge into `prev`.
  static bool vma_mergeable(const Vma& prev, const Vma& next);
  Vma* vma_merge_existing_range(ExecContext& ctx, Mm& mm, Vma* vma);
  /// __anon_vma_prepare(): the VMA's anon_vma, created under mm->page_table_lock if
  /// it has none (re-checked there: another fault may have won).
  AnonVma* anon_vma_prepare(ExecContext& ctx, Vma& vma);
  /// unlink_anon_vmas(): the VMA leaves its anon_vma (under the root's lock).
  void unlink_anon_vmas(ExecContext& ctx, Vma& vma);
  // vmscan.cpp: reclaim.
  uint64_t reclaim_pages(ExecContext& ctx, std::vector<Pfn>& folios);
  uint64_t shrink_folio_list(ExecContext& ctx, std::vector<Pfn>& folios);
  void try_to_unmap(ExecContext& ctx, Folio folio, uint32_t ttu_flags);
  bool try_to_unmap_one(ExecContext& ctx, Folio folio, Vma& vma, VirtAddr address,
                        uint32_t ttu_flags);
  void madvise_cold_or_pageout_range(MmuGather& tlb, Vma& vma, VirtAddr start, VirtAddr end,
                                     bool pageout, std::vector<Pfn>& isolated);
  // swapfile.cpp: swap entries (do_swap_page is with the fault path below).
  /// free_swap_and_cache(): a swap PTE naming `slot` was zapped.
  void free_swap_and_cache(ExecContext& ctx, uint64_t slot);
  /// free_swap_cache(): an unmapped swap-cache folio whose slot nobody names leaves
  /// the cache (zap's free_pages_and_swap_cache).
  void free_swap_cache(ExecContext& ctx, Folio folio);
  /// folio_free_swap(): drop the folio from the swap cache if no swap PTE names its
  /// slot. True if it did.
  bool folio_free_swap(ExecContext& ctx, Folio folio);
  // migrate.cpp
  bool migrate_folio_move(ExecContext& ctx, Folio src);
  // filemap.cpp: page-cache refill after reclaim dropped a page.
  Pfn page_cache_read(ExecContext& ctx, int64_t file, uint64_t index);
  // mprotect / madvise (mprotect.cpp, madvise.cpp)
  uint64_t pte_modify(uint64_t oldpte, uint64_t newflags) const;
  uint64_t change_pte_range(MmuGather& tlb, Vma& vma, uint64_t* pmd, VirtAddr start,
                            VirtAddr end, uint64_t newflags);
  uint64_t change_huge_pmd(MmuGather& tlb, Vma& vma, Pfn pmd_table, uint64_t* pmd, VirtAddr addr,
                           uint64_t newflags);
  uint64_t change_protection_range(MmuGather& tlb, Vma& vma, VirtAddr start, VirtAddr end,
                                   uint64_t newflags);
  void zap_page_range_single(ExecContext& ctx, Vma& vma, VirtAddr start, VirtAddr end);
  /// madvise_walk_vmas(): `advice` over the VMAs of [addr, end), locks held.
  int madvise_vma_range(ExecContext& ctx, Mm& mm, VirtAddr addr, VirtAddr end, Advice advice);
  /// The split step of madvise_cold_or_pageout_pte_range() and madvise_free_pte_range()
  /// for a large folio met under the PTL `*ptl` of the PTE table under `pmd`:
  /// folio_trylock() (-EAGAIN if busy, PTL kept), then with a reference and the PTL
  /// dropped split_folio(), folio_unlock/folio_put, and pte_offset_map_lock() again
  /// (*ptl = nullptr when the PMD holds no PTE table any more). Returns split_folio()'s
  /// result.
  int madvise_split_folio(ExecContext& ctx, Mm& mm, Folio folio, uint64_t* pmd,
                          KernelLock*& ptl, Pfn& table);
  uint64_t madvise_free_pte_range(MmuGather& tlb, Vma& vma, uint64_t* pmd, VirtAddr start,
                                  VirtAddr end);
  uint64_t madvise_free_range(MmuGather& tlb, Vma& vma, VirtAddr start, VirtAddr end);
  // faults (huge_memory.cpp, filemap.cpp)
  FaultResult do_swap_page(ExecContext& ctx, VmFault& vmf);  // swapfile.cpp
  // memory.cpp: the PTE-level fault path.
  bool pmd_alloc(ExecContext& ctx, VmFault& vmf, bool* oom);
  enum class PteAlloc : uint8_t { kOk, kOom, kChanged };
  PteAlloc pte_alloc(ExecContext& ctx, VmFault& vmf);
  FaultResult handle_pte_fault(ExecContext& ctx, VmFault& vmf);
  /// vmf_anon_prepare(): kOk, kOom, or kVmaLockRetry (mmap_lock contended).
  FaultResult vmf_anon_prepare(ExecContext& ctx, VmFault& vmf);
  /// migration_entry_wait(): sleep until the migration holding the folio is done.
  void migration_entry_wait(ExecContext& ctx, VmFault& vmf);
  Folio alloc_anon_folio(ExecContext& ctx, Vma& vma, VirtAddr addr, const uint64_t* pte_table);
  bool wp_can_reuse_anon_folio(ExecContext& ctx, Folio folio, Vma& vma);
  bool wp_can_reuse_large_anon_folio(ExecContext& ctx, Folio folio, Vma& vma);
  void wp_page_reuse(ExecContext& ctx, Mm& mm, Vma& vma, VirtAddr addr, uint64_t* pte);
  FaultResult wp_page_copy(ExecContext& ctx, VmFault& vmf, Folio old_folio, Pfn old_page);
  FaultResult wp_page_shared(ExecContext& ctx, VmFault& vmf, Folio folio);
  /// populate_vma_page_range() for one page (mm/gup.c), mmap_lock held for read:
  /// fault it in unless already mapped (and writable when `write`). kOk, or the
  /// fault's failure.
  FaultResult populate_page(ExecContext& ctx, Mm& mm, VirtAddr addr, bool write);
  // huge_memory.cpp: PMD-mapped THPs.
  uint32_t thp_vma_suitable_orders(const Vma& vma, VirtAddr addr, uint32_t orders) const;
  std::optional<FaultResult> do_huge_pmd_anonymous_page(ExecContext& ctx, VmFault& vmf);
  void map_anon_folio_pmd(ExecContext& ctx, Folio folio, VmFault& vmf);
  std::optional<Pfn> get_huge_zero_folio(ExecContext& ctx);
  /// nullopt: VM_FAULT_FALLBACK (the PMD was split; continue at PTE level).
  std::optional<FaultResult> do_huge_pmd_wp_page(ExecContext& ctx, VmFault& vmf);
  std::optional<FaultResult> do_huge_zero_wp_pmd(ExecContext& ctx, VmFault& vmf);
  void huge_pmd_set_accessed(ExecContext& ctx, VmFault& vmf);
  void zap_huge_pmd(MmuGather& tlb, Vma& vma, Pfn pmd_table, uint64_t* pmd, VirtAddr addr);
  void zap_deposited_table(ExecContext& ctx, Mm& mm, Pfn pmd_table);
  // huge_split.cpp
  void split_huge_pmd_locked(ExecContext& ctx, Vma& vma, Pfn pmd_table, uint64_t* pmd,
                             VirtAddr haddr, bool freeze);
  void split_huge_zero_page_pmd(ExecContext& ctx, Vma& vma, Pfn pmd_table, uint64_t* pmd,
                                VirtAddr haddr);
  bool try_to_migrate_one(ExecContext& ctx, Folio folio, Vma& vma, VirtAddr address,
                          uint32_t ttu_flags);
  /// Per CPU: current->tlb_ubc (flush_required, writable).
  struct TlbUbc {
    bool flush_required = false;
    bool writable = false;
  };
  std::vector<TlbUbc> m_tlb_ubc;
  // filemap.cpp: file mappings (do_fault and the page cache).
  Vma* mmap_file_vma(ExecContext& ctx, Mm& mm, VirtAddr start, VirtAddr end, uint64_t flags,
                     int64_t file, uint64_t pgoff);
  FaultResult do_fault(ExecContext& ctx, VmFault& vmf);
  FaultResult do_read_fault(ExecContext& ctx, VmFault& vmf);
  FaultResult do_cow_fault(ExecContext& ctx, VmFault& vmf);
  FaultResult do_shared_fault(ExecContext& ctx, VmFault& vmf);
  bool do_fault_around(ExecContext& ctx, VmFault& vmf);
  bool filemap_map_pages(ExecContext& ctx, VmFault& vmf, uint64_t start_pgoff,
                         uint64_t end_pgoff);
  Pfn filemap_fault(ExecContext& ctx, VmFault& vmf);
  FaultResult finish_fault(ExecContext& ctx, VmFault& vmf, Folio folio, Pfn page);
  void set_pte_range(ExecContext& ctx, VmFault& vmf, Folio folio, Pfn page, unsigned nr,
                     VirtAddr addr, uint64_t* ptep);

  const KernelProfile& m_profile;
  PhysMem& m_pm;
  ArchMmu& m_arch;
  const PteCodec& m_codec;
  StatGroup m_stats;
  VmStat m_vmstat;
  BuddyStats m_buddy_stats{&m_stats, m_pm};
  KernelFlushStats m_flush_stats;
  MremapStats m_mremap_stats{&m_stats};
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
  unsigned m_rmap_unmaps_in_flight = 0;
  bool m_batched_reclaim_flush = m_profile.batched_reclaim_flush();
  bool m_pte_accessible_skip = m_profile.pte_accessible_skip();
  bool m_pt_reclaim = m_profile.pt_reclaim() && m_arch.arch() == Arch::kX86_64;
  bool m_madvise_split_partial_only = m_profile.madvise_split_partial_only();
  bool m_unmap_lazyfree_batch = m_profile.unmap_lazyfree_batch();
  bool m_arm64_pte_needs_flush = m_profile.arm64_pte_needs_flush();
  bool m_debug_fork_skip_flush = m_profile.debug_fork_skip_flush();
  bool m_debug_mprotect_skip_flush = m_profile.debug_mprotect_skip_flush();
  bool m_debug_cow_skip_flush = m_profile.debug_cow_skip_flush();
  bool m_mremap_pte_batch = m_profile.mremap_pte_batch();
  // faults (huge_memory.cpp, filemap.cpp)
  ThpSysfs m_thp = ThpSysfs::from(m_profile);
  // madvise's "is this folio shared?" test per release (sharers_estimate); without
  // MM-ID the 6.15 test cannot exist, and a kernel without it used the 6.10 one.
  enum class SharersEstimate : uint8_t { kEstimatedSharers, kLikelyMappedShared, kMaybeMappedShared };
  SharersEstimate m_sharers =
      m_profile.sharers_estimate() == "estimated_sharers" ? SharersEstimate::kEstimatedSharers
      : m_profile.sharers_estimate() == "maybe_mapped_shared" && m_profile.mm_id()
          ? SharersEstimate::kMaybeMappedShared
          : SharersEstimate::kLikelyMappedShared;
  /// The shared-folio test of madvise_cold_or_pageout_pte_range() and
  /// madvise_free_pte_range(): folio_estimated_sharers() != 1 (6.7-6.9),
  /// folio_likely_mapped_shared() (6.10-6.14), folio_maybe_mapped_shared() (6.15+).
  bool madvise_folio_shared(Folio folio) const {
    switch (m_sharers) {
      case SharersEstimate::kEstimatedSharers: return folio.estimated_sharers() != 1;
      case SharersEstimate::kLikelyMappedShared: return folio.likely_mapped_shared();
      default: return folio.maybe_mapped_shared(true);
    }
  }
  // THP alignment of anonymous mmaps (__get_unmapped_area, profile thp_anon_align).
  enum class ThpAnonAlign : uint8_t { kNone, kLenGePmd, kPmdMultiple };
  ThpAnonAlign m_thp_anon_align = m_profile.thp_anon_align() == "none" ? ThpAnonAlign::kNone
                                  : m_profile.thp_anon_align() == "len_ge_pmd"
                                      ? ThpAnonAlign::kLenGePmd
                                      : ThpAnonAlign::kPmdMultiple;
  // arm64 arch_flush_tlb_batched_pending() = flush_tlb_mm (Linux 6.16+).
  bool m_arm64_batched_pending_flush_mm = m_profile.arm64_batched_pending_flush_mm();
  // do_huge_zero_wp_pmd() on a write fault to the huge zero page (Linux 6.13+).
  bool m_huge_zero_wp_thp = m_profile.huge_zero_wp_thp();
  // __wp_can_reuse_large_anon_folio() needs the MM-ID shared bit (Linux 6.15).
  bool m_cow_reuse_large = m_profile.cow_reuse_large() && m_profile.mm_id();
  // deferred_split_folio(folio, false) at PMD THP faults (Linux 6.12+, shrink_underused).
  bool m_thp_queue_underused =
      m_profile.deferred_split_partial_only() && m_profile.thp.shrink_underused();
  unsigned m_fault_around_pages = fault_around_pages_of(m_profile.fault_around_bytes().value);
  PageCache m_page_cache{m_pm};
  Lru m_lru{m_pm};
  SwapDevice m_swap{&m_stats};
  Pfn m_huge_zero_pfn;
  /// PG_locked waiters: the lock of each folio ever locked, by head frame (Linux
  /// hashes folio wait queues; entries are never erased: a CPU in folio_trylock()
  /// may still hold a reference to one while it synchronises).
  std::unordered_map<uint64_t, KernelLock> m_folio_locks;
  static unsigned fault_around_pages_of(uint64_t bytes);
};

}  // namespace tlbsim::mm
