// Virtual memory areas (Linux struct vm_area_struct) and the anon_vma that an
// anonymous folio's rmap points at.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "base/addr.h"
#include "mm/lock.h"
#include "mm/pte.h"

namespace tlbsim::mm {

class Mm;
class Vma;

/// vm_flags (include/linux/mm.h), the subset the simulator acts on.
enum VmFlag : uint64_t {
  kVmRead = 1ull << 0,
  kVmWrite = 1ull << 1,
  kVmExec = 1ull << 2,
  kVmShared = 1ull << 3,
  kVmMayWrite = 1ull << 5,
  kVmLocked = 1ull << 13,
  kVmDontCopy = 1ull << 17,
  kVmAccount = 1ull << 20,
  kVmHugePage = 1ull << 29,
  kVmNoHugePage = 1ull << 30,
  kVmWipeOnFork = 1ull << 32,
  kVmPfnMap = 1ull << 10,
};

/// struct anon_vma: the rmap anchor of anonymous folios. Forks create a child
/// anon_vma whose root is the oldest ancestor (mm/rmap.c anon_vma_fork).
///
/// Linux links a forked VMA into the interval tree of every anon_vma on its parent
/// VMA's chain. Here each VMA is listed only under its own anon_vma and the
/// anon_vmas know their children: the VMAs Linux finds in anon_vma A's tree are
/// exactly those listed in A's subtree (rmap_walk.cpp walks it).
class AnonVma {
 public:
  explicit AnonVma(AnonVma* parent) : m_root(parent ? parent->m_root : this), m_parent(parent) {
    if (parent) parent->m_children.push_back(this);
  }
  AnonVma(const AnonVma&) = delete;
  AnonVma& operator=(const AnonVma&) = delete;
  AnonVma* root() const { return m_root; }
  AnonVma* parent() const { return m_parent; }
  /// VMAs whose own anon_vma this is (vma->anon_vma == this).
  std::vector<Vma*>& vmas() { return m_vmas; }
  const std::vector<Vma*>& vmas() const { return m_vmas; }
  /// anon_vmas forked from this one (their parent() is this).
  const std::vector<AnonVma*>& children() const { return m_children; }
  /// anon_vma->rwsem; Linux takes the root's (anon_vma_lock_read/write).
  KernelLock rwsem{LockClass::kAnonVma};

 private:
  AnonVma* m_root;
  AnonVma* m_parent;
  std::vector<Vma*> m_vmas;
  std::vector<AnonVma*> m_children;
};

class Vma {
 public:
  Vma(Mm* mm, VirtAddr start, VirtAddr end, uint64_t flags, uint64_t pgoff)
      : m_mm(mm), m_start(start), m_end(end), m_flags(flags), m_pgoff(pgoff) {}

  Mm* mm() const { return m_mm; }
  VirtAddr start() const { return m_start; }
  VirtAddr end() const { return m_end; }
  uint64_t flags() const { return m_flags; }
  bool test(VmFlag f) const { return m_flags & f; }
  uint64_t pgoff() const { return m_pgoff; }
  uint64_t nr_pages() const { return (m_end - m_start) >> kPageShift; }
  bool contains(VirtAddr a) const { return a >= m_start && a < m_end; }
  bool is_anonymous() const { return m_file < 0; }
  int64_t file() const { return m_file; }
  AnonVma* anon_vma() const { return m_anon_vma; }

  /// vm_page_prot, as the PTE protection of a fresh mapping.
  PgProt page_prot() const {
    return PgProt{.write = (m_flags & kVmWrite) != 0, .exec = (m_flags & kVmExec) != 0,
                  .user = true, .none = !(m_flags & (kVmRead | kVmWrite | kVmExec))};
  }
  /// linear_page_index(vma, address).
  uint64_t linear_page_index(VirtAddr a) const {
    return ((a - m_start) >> kPageShift) + m_pgoff;
  }

  void set_range(VirtAddr start, VirtAddr end, uint64_t pgoff) {
    m_start = start;
    m_end = end;
    m_pgoff = pgoff;
  }
  void set_flags(uint64_t flags) { m_flags = flags; }
  void set_anon_vma(AnonVma* av) { m_anon_vma = av; }
  void set_file(int64_t file) { m_file = file; }

  /// The per-VMA lock (Linux 6.4+): page faults hold it for read; vma_start_write()
  /// waits for them and marks the VMA write-locked until mmap_write_unlock.
  KernelLock vm_lock{LockClass::kVmaLock};
  uint64_t vm_lock_seq = ~0ull;  // == mm->mm_lock_seq: write-locked
  bool detached = false;         // vma_mark_detached(): no longer in the tree

 private:
  Mm* m_mm;
  VirtAddr m_start, m_end;
  uint64_t m_flags;
  uint64_t m_pgoff;
  int64_t m_file = -1;           // file id, or −1 for anonymous memory
  AnonVma* m_anon_vma = nullptr;
};

}  // namespace tlbsim::mm
