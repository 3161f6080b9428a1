// Kernel locks as Linux takes them: their state lives here (plain C++), waiting is
// the CPU model's business (ExecHooks::lock_wait). Kernel code takes them through
// ExecContext::lock / unlock so that the model sees every acquire and release.
//
// Kinds: spinlocks (the page-table locks, the PMD lock, the deferred-split queue, the
// LRU and zone locks) are waited for by spinning, with preemption off; sleeping locks
// (mmap_lock and the per-VMA locks as reader/writer semaphores, anon_vma's rwsem, the
// folio lock) put the waiter to sleep, so its CPU runs something else. Waiters are
// served first come, first served; a waiting writer holds back new readers (no
// barging), as the kernel's queued rwsem and qspinlock do.
//
// Lock order (mm/rmap.c's comment, simplified to the locks modelled):
//   mmap_lock → vma lock → anon_vma lock → folio lock → page-table lock (PMD, then PTE)
//   → deferred-split queue lock / LRU lock → zone lock
#pragma once

#include <array>
#include <cstdint>
#include <stdexcept>

namespace tlbsim::mm {

/// What a lock protects (statistics are kept per class).
enum class LockClass : uint8_t {
  kMmapLock,       // mm->mmap_lock
  kVmaLock,        // vma->vm_lock (per-VMA locks, Linux 6.4+)
  kPtl,            // split page-table lock of one PTE table
  kPmdLock,        // the PMD table's lock (pmd_lock)
  kPageTableLock,  // mm->page_table_lock (pud_lock, p4d/pgd population)
  kAnonVma,        // anon_vma->root->rwsem
  kFolio,          // PG_locked
  kDeferredSplit,  // split_queue_lock
  kLru,            // lruvec->lru_lock
  kZone,           // zone->lock
  kCount
};

inline constexpr std::array<const char*, static_cast<size_t>(LockClass::kCount)> kLockClassNames = {
    "mmap_lock", "vma_lock", "ptl", "pmd_lock", "page_table_lock", "anon_vma", "folio",
    "deferred_split", "lru", "zone"};

inline constexpr bool lock_class_sleeps(LockClass c) {
  return c == LockClass::kMmapLock || c == LockClass::kVmaLock || c == LockClass::kAnonVma ||
         c == LockClass::kFolio;
}

/// Spinlocks Linux takes with interrupts off (spin_lock_irq / spin_lock_irqsave):
/// an IPI to a CPU holding (or spinning for) one waits until it is released.
inline constexpr bool lock_class_irqsave(LockClass c) {
  return c == LockClass::kLru || c == LockClass::kZone || c == LockClass::kDeferredSplit;
}

enum class LockMode : uint8_t { kExclusive, kShared };

class KernelLock {
 public:
  explicit KernelLock(LockClass c = LockClass::kPtl) : m_class(c) {}
  KernelLock(const KernelLock&) = delete;
  KernelLock& operator=(const KernelLock&) = delete;

  LockClass lock_class() const { return m_class; }
  /// A recycled lock slot (page-table pages) takes the class of its new use.
  void reset(LockClass c) {
    if (held() || m_waiters) throw std::logic_error("reset of a lock in use");
    m_class = c;
    m_last_cpu = -1;
  }
  bool sleeps() const { return lock_class_sleeps(m_class); }
  bool irqsave() const { return lock_class_irqsave(m_class); }
  bool held() const { return m_writer || m_readers > 0; }
  bool held_exclusive() const { return m_writer; }
  int32_t readers() const { return m_readers; }
  /// Tasks waiting for it (the model keeps who they are in wait_queue).
  uint32_t waiters() const { return m_waiters; }
  /// The CPU that held it last (its cache line is there).
  int32_t last_cpu() const { return m_last_cpu; }

  /// Takes it now if that is possible without waiting and without overtaking a
  /// waiter; `queued` is set by a waiter retrying its own turn.
  bool try_acquire(LockMode m, unsigned cpu, bool queued = false) {
    if (m_waiters && !queued) return false;
    if (m == LockMode::kExclusive) {
      if (held()) return false;
      m_writer = true;
    } else {
      if (m_writer) return false;
      ++m_readers;
    }
    m_last_cpu = static_cast<int32_t>(cpu);
    return true;
  }
  void release(LockMode m) {
    if (m == LockMode::kExclusive) {
      if (!m_writer) throw std::logic_error("unlock of a lock not held exclusively");
      m_writer = false;
    } else {
      if (m_readers <= 0) throw std::logic_error("read unlock of a lock not read-held");
      --m_readers;
    }
  }
  /// rwsem downgrade_write(): the writer keeps it as a reader.
  void downgrade() {
    if (!m_writer) throw std::logic_error("downgrade of a lock not held for write");
    m_writer = false;
    ++m_readers;
  }
  void add_waiter() { ++m_waiters; }
  void remove_waiter() { --m_waiters; }

  /// The CPU model's wait queue for this lock (while it has waiters).
  void* wait_queue = nullptr;
  /// The task that holds it exclusively (for the model's owner-aware waiting).
  void* owner = nullptr;

 private:
  LockClass m_class;
  bool m_writer = false;
  int32_t m_readers = 0;
  uint32_t m_waiters = 0;
  int32_t m_last_cpu = -1;
};

}  // namespace tlbsim::mm
