// mmap_lock and the per-VMA locks (include/linux/mmap_lock.h, mm/mmap_lock.c) as
// kernel code takes them through ExecContext.
//
// mmap_lock is a reader/writer semaphore. The per-VMA lock (Linux 6.4+) lets a page
// fault run without it: lock_vma_under_rcu() finds the VMA and read-locks it unless
// a writer marked it. A writer (holding mmap_lock for write) marks each VMA it
// changes with vma_start_write(), which waits for the faults in flight on that VMA;
// the marks are all released together by mmap_write_unlock() or
// mmap_write_downgrade() (vma_end_write_all: mm_lock_seq moves on). A fault that
// finds its VMA marked falls back to mmap_lock for read and so waits for the writer.
#pragma once

#include "mm/exec_context.h"
#include "mm/mm_struct.h"
#include "mm/vma.h"

namespace tlbsim::mm {

inline void mmap_read_lock(ExecContext& ctx, Mm& mm) { ctx.lock(mm.mmap_lock, LockMode::kShared); }
inline bool mmap_read_trylock(ExecContext& ctx, Mm& mm) {
  return ctx.trylock(mm.mmap_lock, LockMode::kShared);
}
inline void mmap_read_unlock(ExecContext& ctx, Mm& mm) { ctx.unlock(mm.mmap_lock, LockMode::kShared); }
inline void mmap_write_lock(ExecContext& ctx, Mm& mm) { ctx.lock(mm.mmap_lock, LockMode::kExclusive); }
/// mmap_write_unlock(): vma_end_write_all(), then up_write().
inline void mmap_write_unlock(ExecContext& ctx, Mm& mm) {
  ++mm.mm_lock_seq;
  ctx.unlock(mm.mmap_lock, LockMode::kExclusive);
}
/// mmap_write_downgrade(): vma_end_write_all(), then downgrade_write(); the caller
/// now holds it for read.
inline void mmap_write_downgrade(ExecContext& ctx, Mm& mm) {
  ++mm.mm_lock_seq;
  ctx.downgrade(mm.mmap_lock);
}

/// vma_start_write(): the caller holds mmap_lock for write. Waits until no fault
/// holds `vma` for read, then marks it write-locked for this write cycle.
inline void vma_start_write(ExecContext& ctx, Vma& vma) {
  Mm& mm = *vma.mm();
  if (vma.vm_lock_seq == mm.mm_lock_seq) return;  // already, in this cycle
  ctx.lock(vma.vm_lock, LockMode::kExclusive);
  vma.vm_lock_seq = mm.mm_lock_seq;
  ctx.unlock(vma.vm_lock, LockMode::kExclusive);
}

/// vma_start_read(): a fault read-locks `vma` unless a writer marked it.
inline bool vma_start_read(ExecContext& ctx, Vma& vma) {
  if (vma.vm_lock_seq == vma.mm()->mm_lock_seq || vma.detached) return false;
  if (!ctx.trylock(vma.vm_lock, LockMode::kShared)) return false;
  if (vma.vm_lock_seq == vma.mm()->mm_lock_seq) {
    ctx.unlock(vma.vm_lock, LockMode::kShared);
    return false;
  }
  return true;
}
inline void vma_end_read(ExecContext& ctx, Vma& vma) { ctx.unlock(vma.vm_lock, LockMode::kShared); }

/// lock_vma_under_rcu(): the VMA containing `addr`, read-locked, or nullptr (none,
/// or marked by a writer: the caller falls back to mmap_lock).
inline Vma* lock_vma_under_rcu(ExecContext& ctx, Mm& mm, VirtAddr addr) {
  Vma* vma = mm.find_vma(addr);
  if (!vma || !vma_start_read(ctx, *vma)) return nullptr;
  return vma;
}

/// mmap_lock held for a scope, in the mode it is in at the end (downgrade()).
class MmapLockGuard {
 public:
  MmapLockGuard(ExecContext& ctx, Mm& mm, LockMode mode) : m_ctx(ctx), m_mm(mm), m_mode(mode) {
    if (mode == LockMode::kExclusive) {
      mmap_write_lock(ctx, mm);
    } else {
      mmap_read_lock(ctx, mm);
    }
  }
  ~MmapLockGuard() { unlock(); }
  void downgrade() {
    if (m_held && m_mode == LockMode::kExclusive) {
      mmap_write_downgrade(m_ctx, m_mm);
      m_mode = LockMode::kShared;
    }
  }
  void unlock() {
    if (!m_held) return;
    m_held = false;
    if (m_mode == LockMode::kExclusive) {
      mmap_write_unlock(m_ctx, m_mm);
    } else {
      mmap_read_unlock(m_ctx, m_mm);
    }
  }
  MmapLockGuard(const MmapLockGuard&) = delete;
  MmapLockGuard& operator=(const MmapLockGuard&) = delete;

 private:
  ExecContext& m_ctx;
  Mm& m_mm;
  LockMode m_mode;
  bool m_held = true;
};

}  // namespace tlbsim::mm
