// Waiting for kernel locks (mm/lock.h), as the CPU model times it.
//
// Acquire: a lock whose cache line was last held on another CPU is an interaction
// with that CPU, so the task synchronises first (acquisitions happen in simulated-
// time order) and pays the line transfer (machine.topology.line_transfer_cycles,
// more across sockets). A free lock is taken at once; a held one queues the task,
// first come first served:
//   * spinlocks (PTL, PMD lock, page_table_lock, deferred split, LRU, zone): the task
//     spins on its CPU, which stays busy; interrupts taken meanwhile overlap the
//     spin, except under the irqsave classes, which spin with interrupts off;
//   * sleeping locks (mmap_lock, VMA lock, anon_vma, folio): the task sleeps and its
//     CPU runs another task or idles (lazy TLB).
// Release hands the lock to the head of the queue (all queued readers when the head
// is a reader, as rwsem_mark_wake() does): a spinner resumes one line transfer
// later, a sleeper is woken (try_to_wake_up, plus the wake-up latency of an idle
// CPU).
//
// Rules kept: no sleeping lock while a spinlock is held (might_sleep), no sleeping
// with interrupts off.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "base/stats.h"
#include "mm/lock.h"

namespace tlbsim {

class System;
class TaskThread;

/// Counters of one lock class (system.locks.<class>).
struct LockClassStats : StatGroup {
  LockClassStats(StatGroup* parent, const std::string& name) : StatGroup(parent, name) {}
  Scalar acquired{this, "acquired", "count", "Acquisitions (trylocks that succeeded included)."};
  Scalar contended{this, "contended", "count", "Acquisitions that had to wait."};
  Scalar wait_cycles{this, "wait_cycles", "cycles", "Cycles tasks waited (spinning or asleep)."};
  Scalar sleeps{this, "sleeps", "count", "Waits that slept (sleeping locks)."};
  Scalar line_transfers{this, "line_transfers", "count", "Acquisitions that pulled the lock's cache line from another CPU."};
  Scalar max_wait_cycles{this, "max_wait_cycles", "cycles", "Longest single wait."};
};

class LockModel {
 public:
  LockModel(System& sys, StatGroup* stats_parent);
  ~LockModel();

  void acquire(TaskThread& t, mm::KernelLock& l, mm::LockMode mode);
  /// A trylock: takes it only if it is free (no waiting, no irq change: callers of
  /// trylocks on irqsave classes do not exist).
  bool try_acquire(TaskThread& t, mm::KernelLock& l, mm::LockMode mode);
  void release(TaskThread& t, mm::KernelLock& l, mm::LockMode mode);
  void downgrade(TaskThread& t, mm::KernelLock& l);
  /// Cycles to move a cache line from CPU `from` to CPU `to`.
  uint64_t line_transfer(unsigned from, unsigned to) const;
  /// The tasks waiting for a lock now, one per line (for a deadlock report).
  std::string waiters_report() const;
  LockClassStats& stats(mm::LockClass c) { return *m_stats[static_cast<size_t>(c)]; }

 private:
  struct Waiter;
  struct Queue {
    std::deque<Waiter*> waiters;
  };
  Queue& queue_of(mm::KernelLock& l);
  /// An uncontended acquisition that pulls the lock's line from CPU `from`.
  void pull_line(TaskThread& t, LockClassStats& st, unsigned from);
  /// Grants `l` to the waiters at the head of its queue that can have it now.
  void grant_waiters(TaskThread& releaser, mm::KernelLock& l);

  System& m_sys;
  uint64_t m_same_socket;
  uint64_t m_cross_socket;
  StatGroup m_group;
  std::array<std::unique_ptr<LockClassStats>, static_cast<size_t>(mm::LockClass::kCount)> m_stats;
  std::deque<Queue> m_queues;
  std::vector<Queue*> m_free;
  std::vector<const Waiter*> m_all;  // every waiter now (reports)
};

}  // namespace tlbsim
