// Cost accounting and the kernel's view of the CPU it runs on. Kernel code never
// measures time: it counts primitive operations on the ExecContext of its CPU, names
// the memory it touches (struct page lines, page-table lines) and reports progress
// points and lock operations. The CPU model (models/) turns all of it into cycles
// with the machine's cost table and cache hierarchy, as the kernel runs; the counts
// themselves are reported, so a result can be explained term by term.
//
// Kernel unit tests run without hooks (ExecHooks == nullptr): counts only, locks
// never contend (one thread), memory references are only counted.
#pragma once

#include <array>
#include <cstdint>
#include <stdexcept>

#include "base/addr.h"
#include "mm/lock.h"

namespace tlbsim::mm {

/// Primitive kernel operations whose cost the machine's cost table defines. Each is
/// the *software* cost of one operation; the memory it touches is priced separately
/// by the cache hierarchy (struct_page_line, pte_line references).
enum class KOp : uint8_t {
  kSyscallEntry,    // user->kernel->user transition of a system call
  kFaultEntry,      // exception entry/exit + handle_mm_fault dispatch
  kPteRead,         // read and test of one page-table entry
  kPteWrite,        // plain store of one page-table entry (set_ptes, full-mm clear)
  kPteXchg,         // atomic update of one entry: ptep_get_and_clear (xchg),
                    // ptep_set_wrprotect, ptep_test_and_clear_young
  kAtomic,          // atomic RMW on a folio counter (refcount, mapcount)
  kRmapCall,        // one folio rmap family call (fixed part)
  kLock,            // one uncontended lock + unlock
  kPageAlloc,       // one allocation from the per-CPU lists (rmqueue_pcplist + prep_new_page)
  kPageAllocBuddy,  // one allocation from the buddy lists under the zone lock (rmqueue_buddy)
  kPageAllocTail,   // prep_compound_tail() of one tail page of a large folio
  kFolioPrepLarge,  // prep_compound_page() + folio_set_large_rmappable(): once per large folio
  kPageFree,        // one free to the per-CPU lists (free_pages_prepare + free_unref_page_commit)
  kPageFreeBuddy,   // one free straight to the buddy under the zone lock (free_one_page)
  kPageFreeTail,    // free_tail_page_prepare() of one tail page
  kFolioFreeLarge,  // folio_undo_large_rmappable() + the large-folio free path: once per large folio
  kLruAdd,          // folio_add_lru() + mem_cgroup_charge(): a new folio joins the LRU and its memcg
  kLruDel,          // lruvec_del_folio() + memcg uncharge in folios_put_refs(): a folio leaves them
  kBuddyMerge,      // one buddy merge step of __free_one_page()
  kPageZero,        // zeroing one 4 KiB page (software part; the lines are priced)
  kPageCopy,        // copying one 4 KiB page (software part)
  kPtAlloc,         // pagetable_pte_ctor() and install of a page-table page (its page
                    // allocation and zeroing are counted as such)
  kPtFree,          // pagetable_dtor() of a page-table page (its free is counted as such)
  kGatherEntry,     // queueing one item in the mmu_gather
  kVmaAlloc,        // vm_area_alloc / vm_area_dup of one VMA
  kVmaFree,         // vm_area_free of one VMA
  kVmaModify,       // one VMA split or merge (vma_modify / vma_merge, incl. anon_vma adjust)
  kMapleStore,      // one maple-tree store/erase of a range (vma_iter_store)
  kAnonVmaLink,     // linking a VMA into an anon_vma tree (anon_vma_clone/fork/prepare)
  kForkFixed,       // copy_process() without dup_mmap: task, mm_struct, files, signals
  kExitFixed,       // do_exit()/release_task()/wait4 without exit_mmap
  kMmFixed,         // mm_alloc + mm_init / __mmdrop: pgd, context, counters
  kContextSwitch,   // schedule(): pick next, switch stacks and state (not switch_mm)
  kStructPageLine,  // struct page cache lines touched (priced by the cache hierarchy)
  kPteLine,         // page-table cache lines touched (priced by the cache hierarchy)
  kCount
};

inline constexpr std::array<const char*, static_cast<size_t>(KOp::kCount)> kKOpNames = {
    "syscall_entry", "fault_entry",     "pte_read",       "pte_write",     "pte_xchg",
    "atomic",        "rmap_call",       "lock",           "page_alloc",    "page_alloc_buddy",
    "page_alloc_tail", "folio_prep_large", "page_free",   "page_free_buddy", "page_free_tail",
    "folio_free_large", "lru_add",      "lru_del",
    "buddy_merge",   "page_zero",       "page_copy",      "pt_alloc",
    "pt_free",       "gather_entry",    "vma_alloc",      "vma_free",      "vma_modify",
    "maple_store",   "anon_vma_link",   "fork_fixed",     "exit_fixed",    "mm_fixed",
    "context_switch", "struct_page_line", "pte_line"};

/// KOps that are memory references rather than software work (no cost-table entry).
inline constexpr bool kop_is_memory(KOp op) {
  return op == KOp::kStructPageLine || op == KOp::kPteLine;
}

/// Why a TLB flush was requested (attribution in statistics).
enum class FlushCause : uint8_t {
  kNone,
  kMunmap,
  kDontneed,
  kExit,
  kMprotect,
  kFork,
  kCow,
  kPmdSplit,
  kReclaim,
  kMigration,
  kContpteUnfold,
  kMremap,
  kOther,
  kCount
};

inline constexpr std::array<const char*, static_cast<size_t>(FlushCause::kCount)>
    kFlushCauseNames = {"none",     "munmap",    "dontneed",  "exit",
                        "mprotect", "fork",      "cow",       "pmd_split",
                        "reclaim",  "migration", "contpte_unfold", "mremap",
                        "other"};

/// What the kernel touched: the struct page array (vmemmap) or page-table frames.
enum class MemRefKind : uint8_t { kStructPage, kPteLine, kPageData };

/// struct page is 64 bytes: one cache line per frame (include/linux/mm_types.h).
inline constexpr uint64_t kStructPageBytes = 64;

struct ExecContext;

/// What kernel code reports to the CPU it runs on; implemented by the CPU model.
class ExecHooks {
 public:
  virtual ~ExecHooks() = default;
  /// `nr` consecutive cache lines starting with the line that holds byte `first` of
  /// the kind's address space (frame number × 64 + offset for struct pages, physical
  /// addresses otherwise) were read or written by kernel code.
  virtual void mem_lines(ExecContext& ctx, MemRefKind kind, uint64_t first, uint64_t nr,
                         bool write) = 0;
  /// A natural point to let simulated time pass (end of a page-table page, of a folio
  /// batch): charge the work counted so far and synchronise if due. With no
  /// spinlock held it is also a preemption point (cond_resched()).
  virtual void progress(ExecContext& ctx) = 0;
  /// Kernel code is about to read state that other CPUs change without a lock it
  /// holds (mm_cpumask, another CPU's loaded mm or lazy state): charge the work
  /// so far and bring this CPU's clock to the others', so it reads that state as
  /// of now, not as of a time it ran ahead to.
  virtual void sync_with_cpus(ExecContext& ctx) = 0;
  /// Takes `lock` for kernel code on ctx: now if it is free, else after waiting
  /// (spinning or sleeping as its class says). Returns with it held.
  virtual void lock_acquire(ExecContext& ctx, KernelLock& lock, LockMode mode) = 0;
  /// Takes `lock` only if that needs no waiting; true when it is now held.
  virtual bool lock_try(ExecContext& ctx, KernelLock& lock, LockMode mode) = 0;
  /// Releases `lock` and hands it to its first waiter(s).
  virtual void lock_release(ExecContext& ctx, KernelLock& lock, LockMode mode) = 0;
  /// downgrade_write(): the writer keeps `lock` for read; waiting readers join it.
  virtual void lock_downgrade(ExecContext& ctx, KernelLock& lock) = 0;
};

/// The per-CPU execution context of kernel code.
struct ExecContext {
  explicit ExecContext(unsigned cpu_id = 0) : cpu(cpu_id) {}

  void count(KOp op, uint64_t n = 1) { ops[static_cast<size_t>(op)] += n; }
  uint64_t get(KOp op) const { return ops[static_cast<size_t>(op)]; }

  /// The struct pages of frames [pfn, pfn + nr) were touched (flags, mapcount,
  /// refcount, compound_head...). One line per frame.
  void struct_pages(Pfn pfn, uint64_t nr = 1, bool write = true) {
    count(KOp::kStructPageLine, nr);
    if (hooks) hooks->mem_lines(*this, MemRefKind::kStructPage, pfn.value() * kStructPageBytes, nr, write);
  }
  /// Entries [first, first + nr) of the page table in frame `table` were read or
  /// written: the lines they occupy (8 entries per line).
  void pte_lines(Pfn table, unsigned first, unsigned nr, bool write) {
    if (!nr) return;
    const uint64_t lines = ((first + nr - 1) >> 3) - (first >> 3) + 1;
    count(KOp::kPteLine, lines);
    if (hooks)
      hooks->mem_lines(*this, MemRefKind::kPteLine, (table.value() << 12) + uint64_t{first} * 8,
                       lines, write);
  }
  /// The kernel wrote (zeroed, copied into) the whole 4 KiB frame `pfn`.
  void page_data(Pfn pfn, bool write) {
    if (hooks) hooks->mem_lines(*this, MemRefKind::kPageData, pfn.value() << 12, 64, write);
  }
  /// clear_page() of `nr` frames from `pfn` (folio_zero_user, clear_highpage).
  void zero_pages(Pfn pfn, uint64_t nr = 1) {
    count(KOp::kPageZero, nr);
    for (uint64_t i = 0; i < nr; ++i) page_data(pfn + i, true);
  }
  /// copy_page() of `nr` frames from `src` to `dst` (COW, migration, swap I/O
  /// stands in for the device transfer).
  void copy_pages(Pfn dst, Pfn src, uint64_t nr = 1) {
    count(KOp::kPageCopy, nr);
    for (uint64_t i = 0; i < nr; ++i) {
      page_data(src + i, false);
      page_data(dst + i, true);
    }
  }
  /// A natural synchronisation point (see ExecHooks::progress).
  void progress() {
    if (hooks) hooks->progress(*this);
  }
  /// See ExecHooks::sync_with_cpus.
  void sync_with_cpus() {
    if (hooks) hooks->sync_with_cpus(*this);
  }

  // --- locks (mm/lock.h) ---------------------------------------------------------
  /// spin_lock / down_read / down_write / folio_lock...: returns with `l` held.
  void lock(KernelLock& l, LockMode m = LockMode::kExclusive) {
    count(KOp::kLock);
    if (hooks) {
      hooks->lock_acquire(*this, l, m);
    } else if (!l.try_acquire(m, cpu)) {
      throw std::logic_error(std::string("lock contended with no CPU model (self-deadlock?): ") +
                             kLockClassNames[static_cast<size_t>(l.lock_class())]);
    }
    held_locks += 1;
    if (!l.sleeps()) ++spin_depth;
  }
  /// spin_trylock / down_read_trylock / folio_trylock: true when it is now held.
  bool trylock(KernelLock& l, LockMode m = LockMode::kExclusive) {
    count(KOp::kLock);
    if (!(hooks ? hooks->lock_try(*this, l, m) : l.try_acquire(m, cpu))) return false;
    held_locks += 1;
    if (!l.sleeps()) ++spin_depth;
    return true;
  }
  void unlock(KernelLock& l, LockMode m = LockMode::kExclusive) {
    if (!l.sleeps()) --spin_depth;
    held_locks -= 1;
    if (hooks) {
      hooks->lock_release(*this, l, m);
    } else {
      l.release(m);
    }
  }
  /// mmap_write_downgrade() and friends.
  void downgrade(KernelLock& l) {
    if (hooks) {
      hooks->lock_downgrade(*this, l);
    } else {
      l.downgrade();
    }
  }

  unsigned cpu;                          // the CPU this kernel code runs on
  FlushCause cause = FlushCause::kNone;  // set by the syscall/fault entry point
  ExecHooks* hooks = nullptr;            // the CPU model (nullptr in kernel unit tests)
  unsigned held_locks = 0;               // locks held now (any kind)
  unsigned spin_depth = 0;               // spinlocks held now: no sleeping, no preemption
  std::array<uint64_t, static_cast<size_t>(KOp::kCount)> ops{};
};

/// Holds a lock for a scope (guard(spinlock) / scoped_guard in Linux).
class ScopedLock {
 public:
  ScopedLock(ExecContext& ctx, KernelLock& l, LockMode m = LockMode::kExclusive)
      : m_ctx(ctx), m_lock(&l), m_mode(m) {
    ctx.lock(l, m);
  }
  ~ScopedLock() { unlock(); }
  /// Releases it before the end of the scope.
  void unlock() {
    if (m_lock) m_ctx.unlock(*m_lock, m_mode);
    m_lock = nullptr;
  }
  ScopedLock(const ScopedLock&) = delete;
  ScopedLock& operator=(const ScopedLock&) = delete;

 private:
  ExecContext& m_ctx;
  KernelLock* m_lock;
  LockMode m_mode;
};

/// Sets ctx.cause for a scope and restores the previous one.
class CauseScope {
 public:
  CauseScope(ExecContext& ctx, FlushCause c) : m_ctx(ctx), m_prev(ctx.cause) { ctx.cause = c; }
  ~CauseScope() { m_ctx.cause = m_prev; }
  CauseScope(const CauseScope&) = delete;
  CauseScope& operator=(const CauseScope&) = delete;

 private:
  ExecContext& m_ctx;
  FlushCause m_prev;
};

}  // namespace tlbsim::mm
