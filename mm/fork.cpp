// fork() of an address space: dup_mmap (mm/mmap.c, formerly kernel/fork.c),
// anon_vma_fork (mm/rmap.c), copy_page_range → copy_pte_range → copy_present_ptes
// (mm/memory.c) and copy_huge_pmd (mm/huge_memory.c). The FOLL_PIN pinning that
// makes fork copy pages eagerly is in gup.cpp (mm/gup.c).
//
// ORDERING CONTRACT: page tables are copied under the parent's mmap write lock;
// every private writable parent PTE that gets shared is write-protected in place
// (wrprotect_ptes) *without* any TLB maintenance while copying. Exactly one
// flush_tlb_mm(parent) follows once every VMA is copied — even when nothing was
// write-protected — and dup_mmap returns only after it completed. The child cannot
// run before that, and no parent fault can be handled before it (mmap lock), so
// the only window is parent writes through stale writable TLB entries into pages
// the child will see: the same window Linux has. Nothing is freed during a fork
// except unused preallocated folios, which were never mapped.
//
// Folio references are taken before mapcounts are added (folio_ref_add, then the
// rmap dup), and a failed dup drops the references again (§1.4).
#include <algorithm>
#include <cerrno>
#include <optional>
#include <stdexcept>

#include "base/error.h"
#include "mm/folio.h"
#include "mm/kernel.h"
#include "mm/mmap_lock.h"

namespace tlbsim::mm {

namespace {

[[noreturn]] void fork_not_supported(const std::string& what) {
  throw InputError("", "not supported yet: " + what);
}

/// is_cow_mapping(): private and may be written.
bool is_cow_mapping(uint64_t vm_flags) {
  return (vm_flags & (kVmShared | kVmMayWrite)) == kVmMayWrite;
}

}  // namespace

/// The page-table copy of one fork: per-fork switches copied once, the child's rss
/// deltas of the current PTE-table pass, and the folio preallocated for the
/// pinned-page fallback. Kernel befriends it so the copy reaches the page tables,
/// the rmap and the allocator directly.
class ForkCopier {
 public:
  ForkCopier(Kernel& k, ExecContext& ctx)
      : m_k(k),
        m_ctx(ctx),
        m_pm(k.m_pm),
        m_codec(k.m_codec),
        m_arch(k.m_arch),
        m_rmap(k.m_rmap),
        m_zero_pfn(k.m_zero_pfn),
        m_fork_batching(k.m_profile.fork_batching()),
        m_rmap_batching(k.m_rmap_batching) {}

  int copy_page_range(Vma& dst_vma, Vma& src_vma);

 private:
  int copy_range_level(Pfn dst_table, Pfn src_table, unsigned level, VirtAddr addr, VirtAddr end);
  int copy_huge_pmd(Pfn dst_pmd_table, uint64_t& dst_pmd, Pfn src_pmd_table, uint64_t& src_pmd,
                    VirtAddr addr);
  bool copy_huge_pmd_folio(Folio folio, Pfn pfn, Pfn pgtable, Pfn src_pmd_table,
                           uint64_t& src_pmd, VirtAddr addr);
  int copy_pte_range(Pfn dst_table, Pfn src_table, VirtAddr addr, VirtAddr end);
  int copy_present_ptes(uint64_t* dst_pte, uint64_t* src_pte, uint64_t pte, VirtAddr addr,
                        unsigned max_nr);
  int copy_present_page(uint64_t* dst_pte, VirtAddr addr, Pfn src_page);
  void copy_nonpresent_pte(uint64_t* dst_pte, uint64_t* src_pte, uint64_t pte);
  void copy_ptes(uint64_t* dst_pte, uint64_t* src_pte, uint64_t pte, VirtAddr addr, unsigned nr);
  unsigned folio_pte_batch(Folio folio, Pfn pfn, const uint64_t* ptep, uint64_t* ptentp,
                           unsigned max_nr) const;
  uint64_t batch_normalise(uint64_t e) const;
  unsigned dup_anon_ptes(Folio folio, Pfn page, unsigned nr);
  bool alloc_table(uint64_t& entry, unsigned level);

  Kernel& m_k;
  ExecContext& m_ctx;
  PhysMem& m_pm;
  const PteCodec& m_codec;
  ArchMmu& m_arch;
  Rmap& m_rmap;
  const Pfn m_zero_pfn;
  const bool m_fork_batching;
  const bool m_rmap_batching;

  // Per VMA.
  Vma* m_dst_vma = nullptr;
  Vma* m_src_vma = nullptr;
  Mm* m_dst_mm = nullptr;
  Mm* m_src_mm = nullptr;
  bool m_cow = false;            // is_cow_mapping(src_vma)
  bool m_respect_dirty = false;  // FPB_RESPECT_DIRTY: the source is not VM_SHARED
  // Per copy_pte_range pass.
  int64_t m_rss_anon = 0, m_rss_file = 0;
  std::optional<Pfn> m_prealloc;
};

// --- dup_mmap ----------------------------------------------------------------------------

Mm& Kernel::dup_mmap(ExecContext& ctx, Mm& oldmm) {
  Mm* mm = try_dup_mmap(ctx, oldmm);
  if (!mm) throw std::runtime_error("out of memory duplicating an address space (dup_mmap)");
  return *mm;
}

Mm* Kernel::sys_fork(ExecContext& ctx, Mm& oldmm) {
  // kernel_clone() → copy_process(): the fixed work (task_struct, credentials,
  // files, signal handlers, scheduler state) around copy_mm() → dup_mmap().
  ctx.count(KOp::kSyscallEntry);
  ctx.count(KOp::kForkFixed);
  return try_dup_mmap(ctx, oldmm);
}

Mm* Kernel::try_dup_mmap(ExecContext& ctx, Mm& oldmm) {
  // Mirrors mm/mmap.c:dup_mmap(): both mms locked for write, every parent VMA
  // write-locked (vma_start_write: faults on it wait until the fork is done).
  CauseScope cause(ctx, FlushCause::kFork);
  mmap_write_lock(ctx, oldmm);  // mmap_write_lock_killable(oldmm)
  Mm& mm = mm_create(ctx);
  mmap_write_lock(ctx, mm);  // mmap_write_lock_nested(mm): nobody else sees it yet
  mm.mmap_base = oldmm.mmap_base;
  ForkCopier copier(*this, ctx);
  int err = 0;
  for (auto& [start, mpnt] : oldmm.vmas()) {
    Vma& src = *mpnt;
    vma_start_write(ctx, src);
    if (src.test(kVmDontCopy)) continue;
    // vm_area_dup() + the child's maple-tree store; mlock is not inherited
    // (VM_LOCKED_MASK cleared).
    ctx.count(KOp::kVmaAlloc);
    ctx.count(KOp::kMapleStore);
    auto tmp =
        std::make_unique<Vma>(&mm, src.start(), src.end(), src.flags() & ~kVmLocked, src.pgoff());
    tmp->set_file(src.file());
    Vma& dst = *tmp;
    mm.vmas().emplace(start, std::move(tmp));
    // VM_WIPEONFORK: the child gets an empty anonymous mapping (anon_vma = NULL).
    if (src.test(kVmWipeOnFork)) continue;
    anon_vma_fork(ctx, dst, src);
    err = copier.copy_page_range(dst, src);
    if (err) break;
  }
  mmap_write_unlock(ctx, mm);
  // The single end-of-fork flush: makes the parent's write protection visible,
  // still under the parent's mmap_lock (its VMAs write-locked).
  if (!m_debug_fork_skip_flush) flush_tlb_mm(ctx, oldmm);  // BROKEN ON PURPOSE if set
  mmap_write_unlock(ctx, oldmm);
  if (err) {
    // fork() fails with −ENOMEM; mmput() tears down what was copied so far.
    exit_mmap(ctx, mm);
    mm_destroy(mm);
    return nullptr;
  }
  return &mm;
}

void Kernel::anon_vma_fork(ExecContext& ctx, Vma& vma, Vma& pvma) {
  // Mirrors mm/rmap.c:anon_vma_fork(): the child VMA becomes visible to rmap walks
  // from the parent's anon_vmas (anon_vma_clone), then gets its own anon_vma whose
  // root is the parent's root, for the folios it will COW. The reuse of an anon_vma
  // without active VMAs is not modelled: a new one is always created.
  if (!pvma.anon_vma()) return;
  ScopedLock lock(ctx, pvma.anon_vma()->root()->rwsem);  // anon_vma_lock_write(root)
  ctx.count(KOp::kAnonVmaLink, 2);  // anon_vma_clone + the child's own anon_vma
  m_anon_vmas.push_back(std::make_unique<AnonVma>(pvma.anon_vma()));
  AnonVma* av = m_anon_vmas.back().get();
  av->vmas().push_back(&vma);
  vma.set_anon_vma(av);
}

// --- copy_page_range -------------------------------------------------------------------

int ForkCopier::copy_page_range(Vma& dst_vma, Vma& src_vma) {
  // Mirrors mm/memory.c:copy_page_range(). vma_needs_copy(): without an anon_vma
  // (and without PFN maps or uffd-wp) the child simply faults later: no work now.
  if (!src_vma.anon_vma() && !src_vma.test(kVmPfnMap)) return 0;
  if (src_vma.test(kVmPfnMap)) fork_not_supported("fork of VM_PFNMAP mappings");
  m_dst_vma = &dst_vma;
  m_src_vma = &src_vma;
  m_dst_mm = dst_vma.mm();
  m_src_mm = src_vma.mm();
  m_cow = is_cow_mapping(src_vma.flags());
  m_respect_dirty = !src_vma.test(kVmShared);
  return copy_range_level(m_dst_mm->pgd(), m_src_mm->pgd(), m_k.m_pt.levels(), src_vma.start(),
                          src_vma.end());
}

bool ForkCopier::alloc_table(uint64_t& entry, unsigned level) {
  // p4d_alloc / pud_alloc / pmd_alloc / pte_alloc for the child (its mm is locked
  // for write and not visible to anyone: no table lock needed).
  auto pfn = m_pm.alloc_page_table(m_ctx);
  if (!pfn) return false;
  if (level == 3) m_pm.ptl(*pfn).reset(LockClass::kPmdLock);
  m_ctx.count(KOp::kPteWrite);
  m_dst_mm->add_pgtables(1);
  entry = m_codec.mk_table(*pfn);
  return true;
}

int ForkCopier::copy_range_level(Pfn dst_table, Pfn src_table, unsigned level, VirtAddr addr,
                                 VirtAddr end) {
  // copy_p4d_range / copy_pud_range / copy_pmd_range: descend where the parent has
  // tables, allocating the child's on the way.
  PageTablePage& dst_t = m_pm.table(dst_table);
  PageTablePage& src_t = m_pm.table(src_table);
  const uint64_t size = level_entry_size(level);
  while (addr < end) {
    const VirtAddr next = std::min(end, addr.align_down(size) + size);
    const unsigned idx = level_index(addr, level);
    m_ctx.count(KOp::kPteRead);
    uint64_t src_e = src_t[idx];
    if (PteCodec::none(src_e)) {
      addr = next;
      continue;
    }
    if (level <= 3 && m_codec.huge(src_e)) {
      if (level == 3) fork_not_supported("fork of PUD-mapped pages (copy_huge_pud)");
      const int err = copy_huge_pmd(dst_table, dst_t[idx], src_table, src_t[idx], addr);
      if (err == -ENOMEM) return err;
      if (err == 0) {
        addr = next;
        continue;
      }
      // −EAGAIN: the parent's PMD was split; copy its PTEs.
      src_e = src_t[idx];
      if (PteCodec::none(src_e)) {
        addr = next;
        continue;
      }
    }
    uint64_t& dst_e = dst_t[idx];
    if (PteCodec::none(dst_e) && !alloc_table(dst_e, level)) return -ENOMEM;
    const Pfn dst_child = m_codec.pfn(dst_e);
    const Pfn src_child = m_codec.pfn(src_e);
    const int err = level == 2 ? copy_pte_range(dst_child, src_child, addr, next)
                               : copy_range_level(dst_child, src_child, level - 1, addr, next);
    if (err) return err;
    addr = next;
  }
  return 0;
}

// --- PMD-mapped THP ----------------------------------------------------------------------

int ForkCopier::copy_huge_pmd(Pfn dst_pmd_table, uint64_t& dst_pmd, Pfn src_pmd_table,
                              uint64_t& src_pmd, VirtAddr addr) {
  // Mirrors mm/huge_memory.c:copy_huge_pmd() for a present PMD (a THP or the huge
  // zero folio, which is not refcounted per mapping here). Non-anonymous VMAs are
  // skipped: the child refaults them.
  if (!m_dst_vma->is_anonymous()) return 0;
  // pte_alloc_one(): the table deposited with the child's PMD mapping.
  auto pgtable = m_pm.alloc_page_table(m_ctx);
  if (!pgtable) return -ENOMEM;
  ScopedLock dst_ptl(m_ctx, m_pm.ptl(dst_pmd_table));  // pmd_lock(dst_mm, dst_pmd)
  ScopedLock src_ptl(m_ctx, m_pm.ptl(src_pmd_table));  // spin_lock_nested(src_ptl)
  m_ctx.count(KOp::kPteRead);
  const uint64_t pmd = src_pmd;
  const Pfn pfn = m_codec.pfn(pmd);
  Folio folio = Folio::of(m_pm, pfn);
  if (!folio.test_zero()) {
    if (!copy_huge_pmd_folio(folio, pfn, *pgtable, src_pmd_table, src_pmd, addr)) return -EAGAIN;
  }
  // out_zero_page: mm_inc_nr_ptes + pgtable_trans_huge_deposit — the deposited
  // table counts as one of the child's page tables, reserved for a later split of
  // the child's PMD. Both PMDs end up read-only, the child's old.
  m_dst_mm->add_pgtables(1);
  m_k.pgtable_trans_huge_deposit(dst_pmd_table, *pgtable);
  src_pmd = m_codec.wrprotect(pmd);  // pmdp_set_wrprotect, no flush
  m_ctx.count(KOp::kPteWrite);
  dst_pmd = m_codec.mkold(m_codec.wrprotect(pmd));
  m_ctx.count(KOp::kPteWrite);
  return 0;
}

bool ForkCopier::copy_huge_pmd_folio(Folio folio, Pfn pfn, Pfn pgtable, Pfn src_pmd_table,
                                     uint64_t& src_pmd, VirtAddr addr) {
  // The normal-THP part of copy_huge_pmd(): a reference and a PMD-level dup.
  folio.ref_add(1);  // folio_get
  m_ctx.count(KOp::kAtomic);
  if (m_rmap.folio_try_dup_anon_rmap_pmd(m_ctx, folio, pfn, *m_dst_vma, *m_src_vma)) {
    // Maybe pinned: split the parent's PMD and copy its PTEs instead (−EAGAIN).
    folio.ref_add(-1);
    m_ctx.count(KOp::kAtomic);
    m_pm.free_page_table(m_ctx, pgtable, "copy_huge_pmd(pte_free)");
    // __split_huge_pmd(src_vma, src_pmd, addr, false): the PTEs are copied next.
    m_k.split_huge_pmd_locked(m_ctx, *m_src_vma, src_pmd_table, &src_pmd,
                              addr.align_down(kPmdSize), false);
    return false;
  }
  m_dst_mm->add_rss(kMmAnonPages, int64_t{1} << kPmdOrder);
  return true;
}

// --- PTE tables -------------------------------------------------------------------------

void ForkCopier::copy_nonpresent_pte(uint64_t* dst_pte, uint64_t* src_pte, uint64_t pte) {
  // Mirrors mm/memory.c:copy_nonpresent_pte() for a swap entry (reference §4.7):
  // swap_duplicate; an exclusive entry loses its marker in the parent (both now
  // share the slot); the child gets the same, non-exclusive entry.
  if (!m_codec.is_swap_entry(pte)) {
    // Migration entries exist only inside a migration, which holds the mm's kernel
    // lock throughout; markers are not modelled.
    fork_not_supported("fork of migration entries or PTE markers");
  }
  m_k.m_swap.dup(m_codec.swp_offset(pte));
  m_ctx.count(KOp::kAtomic);
  if (m_codec.swp_exclusive(pte)) {
    pte = m_codec.swp_clear_exclusive(pte);
    *src_pte = pte;
    m_ctx.count(KOp::kPteWrite);
  }
  *dst_pte = pte;
  m_ctx.count(KOp::kPteWrite);
  m_dst_mm->add_rss(kMmSwapEnts, 1);
}

int ForkCopier::copy_pte_range(Pfn dst_table, Pfn src_table, VirtAddr addr, VirtAddr end) {
  // Mirrors mm/memory.c:copy_pte_range(): the child's PTL, then the parent's
  // (spin_lock_nested). The parent's VMA is write-locked and its mm locked for
  // write, so only reclaim could touch these PTEs meanwhile, under the PTL. The
  // need_resched() break every 32 units is not modelled: a pass ends at `end` or
  // at −EAGAIN; cond_resched() follows each table.
  PageTablePage& dst_t = m_pm.table(dst_table);
  PageTablePage& src_t = m_pm.table(src_table);
  int ret = 0;
  for (;;) {
    m_rss_anon = m_rss_file = 0;
    ScopedLock dst_ptl(m_ctx, m_pm.ptl(dst_table));  // pte_alloc_map_lock(dst)
    ScopedLock src_ptl(m_ctx, m_pm.ptl(src_table));  // nested src PTL
    uint64_t reads = 0;
    ret = 0;
    while (addr != end) {
      const unsigned idx = level_index(addr, 1);
      const uint64_t pte = m_arch.ptep_get(&src_t[idx]);
      ++reads;
      if (PteCodec::none(pte)) {
        addr += kPageSize;
        continue;
      }
      if (!m_codec.present(pte)) {
        copy_nonpresent_pte(&dst_t[idx], &src_t[idx], pte);
        addr += kPageSize;
        continue;
      }
      const unsigned max_nr = static_cast<unsigned>((end - addr) >> kPageShift);
      const int nr = copy_present_ptes(&dst_t[idx], &src_t[idx], pte, addr, max_nr);
      if (nr == -EAGAIN) {
        ret = nr;
        break;
      }
      if (m_prealloc) {
        // A preallocated folio is never reused for another address.
        m_k.folio_put_refs(m_ctx, *m_prealloc, 1, "copy_pte_range(prealloc)");
        m_prealloc.reset();
      }
      addr += static_cast<uint64_t>(nr) * kPageSize;
    }
    m_ctx.count(KOp::kPteRead, reads);
    m_dst_mm->add_rss(kMmAnonPages, m_rss_anon);  // add_mm_rss_vec(dst_mm)
    m_dst_mm->add_rss(kMmFilePages, m_rss_file);
    src_ptl.unlock();
    dst_ptl.unlock();
    m_ctx.progress();  // cond_resched()
    if (ret == -EAGAIN) {
      // Locks dropped: folio_prealloc() an order-0 folio, then retry this PTE.
      m_prealloc = m_pm.alloc_folio(m_ctx, 0);
      if (!m_prealloc) {
        ++m_k.m_vmstat.oom;
        return -ENOMEM;
      }
      ++m_k.m_vmstat.pgalloc;
    }
    if (addr == end) break;
  }
  if (m_prealloc) {
    m_k.folio_put_refs(m_ctx, *m_prealloc, 1, "copy_pte_range(prealloc)");
    m_prealloc.reset();
  }
  return 0;
}

uint64_t ForkCopier::batch_normalise(uint64_t e) const {
  // __pte_batch_clear_ignored(): accessed and soft-dirty (tracking is not modelled)
  // always ignored, write ignored (FPB_MERGE_WRITE collects it), dirty ignored only
  // for shared mappings.
  if (!m_respect_dirty) return m_codec.batch_normalise(e);
  if (m_codec.arch() == Arch::kX86_64)
    return e & ~(x86_bits::kAccessed | x86_bits::kSoftDirty | x86_bits::kRw);
  return m_codec.mkold(m_codec.wrprotect(e));  // keeps hardware dirtiness as PTE_DIRTY
}

unsigned ForkCopier::folio_pte_batch(Folio folio, Pfn pfn, const uint64_t* ptep, uint64_t* ptentp,
                                     unsigned max_nr) const {
  // Mirrors mm/internal.h:folio_pte_batch_flags(folio, vma, ptep, ptentp, max_nr,
  // FPB_MERGE_WRITE | FPB_RESPECT_DIRTY (private)): consecutive PFNs of the folio
  // whose entries are equal but for the ignored bits; the write bits of accepted
  // entries are ORed into *ptentp.
  const uint64_t left = folio.pfn().value() + folio.nr_pages() - pfn.value();
  max_nr = static_cast<unsigned>(std::min<uint64_t>(max_nr, left));
  const uint64_t pte = *ptentp;
  uint64_t expected = batch_normalise(m_codec.advance_pfn(pte, 1));
  bool any_writable = m_codec.write(pte);
  unsigned n = 1;
  while (n < max_nr) {
    const uint64_t e = m_arch.ptep_get(&ptep[n]);
    if (batch_normalise(e) != expected) break;
    any_writable |= m_codec.write(e);
    expected = m_codec.advance_pfn(expected, 1);
    ++n;
  }
  m_ctx.count(KOp::kPteRead, n - 1);
  if (any_writable) *ptentp = m_codec.mkwrite(pte);
  return n;
}

unsigned ForkCopier::dup_anon_ptes(Folio folio, Pfn page, unsigned nr) {
  // One folio_try_dup_anon_rmap_ptes() for the batch; without rmap batching one
  // call per page, stopping at the first page that must be copied (the caller then
  // copies the pages duplicated so far and handles that page on its own).
  if (m_rmap_batching)
    return m_rmap.folio_try_dup_anon_rmap_ptes(m_ctx, folio, page, nr, *m_dst_vma, *m_src_vma) ? 0
                                                                                               : nr;
  unsigned done = 0;
  while (done < nr &&
         !m_rmap.folio_try_dup_anon_rmap_pte(m_ctx, folio, page + done, *m_dst_vma, *m_src_vma))
    ++done;
  return done;
}

int ForkCopier::copy_present_ptes(uint64_t* dst_pte, uint64_t* src_pte, uint64_t pte, VirtAddr addr,
                                  unsigned max_nr) {
  // Mirrors mm/memory.c:copy_present_ptes(). Returns the number of PTEs copied, or
  // −EAGAIN when a folio must be preallocated first (pinned-page fallback).
  const Pfn pfn = m_codec.pfn(pte);
  if (pfn == m_zero_pfn) {
    // vm_normal_page() == NULL: copy the entry, no folio work.
    copy_ptes(dst_pte, src_pte, pte, addr, 1);
    return 1;
  }
  Folio folio = Folio::of(m_pm, pfn);
  // If the copy is likely (a folio is preallocated), skip batching.
  if (!m_prealloc && m_fork_batching && folio.test_large() && max_nr != 1) {
    unsigned nr = folio_pte_batch(folio, pfn, src_pte, &pte, max_nr);
    folio.ref_add(static_cast<int32_t>(nr));
    m_ctx.count(KOp::kAtomic);
    if (folio.test_anon()) {
      const unsigned done = dup_anon_ptes(folio, pfn, nr);
      if (done != nr) {
        folio.ref_add(-static_cast<int32_t>(nr - done));
        m_ctx.count(KOp::kAtomic);
        if (done == 0) return -EAGAIN;
        nr = done;
      }
      m_rss_anon += nr;
    } else {
      if (m_rmap_batching) {
        m_rmap.folio_dup_file_rmap_ptes(m_ctx, folio, pfn, nr, *m_dst_vma);
      } else {
        for (unsigned i = 0; i < nr; ++i)
          m_rmap.folio_dup_file_rmap_pte(m_ctx, folio, pfn + i, *m_dst_vma);
      }
      m_rss_file += nr;
    }
    copy_ptes(dst_pte, src_pte, pte, addr, nr);
    return static_cast<int>(nr);
  }
  folio.ref_add(1);  // folio_get
  m_ctx.count(KOp::kAtomic);
  if (folio.test_anon()) {
    if (m_rmap.folio_try_dup_anon_rmap_pte(m_ctx, folio, pfn, *m_dst_vma, *m_src_vma)) {
      // The page may be pinned: the child gets its own copy now.
      folio.ref_add(-1);  // folio_put, never the last reference
      m_ctx.count(KOp::kAtomic);
      const int err = copy_present_page(dst_pte, addr, pfn);
      return err ? err : 1;
    }
    ++m_rss_anon;
  } else {
    m_rmap.folio_dup_file_rmap_pte(m_ctx, folio, pfn, *m_dst_vma);
    ++m_rss_file;
  }
  copy_ptes(dst_pte, src_pte, pte, addr, 1);
  return 1;
}

void ForkCopier::copy_ptes(uint64_t* dst_pte, uint64_t* src_pte, uint64_t pte, VirtAddr addr,
                           unsigned nr) {
  // Mirrors mm/memory.c:__copy_present_ptes(). No TLB flush: dup_mmap flushes the
  // parent once at the end.
  if (m_cow && m_codec.write(pte)) {
    m_arch.wrprotect_ptes(m_ctx, *m_src_mm, addr, src_pte, nr);
    m_ctx.count(KOp::kPteXchg, nr);  // ptep_set_wrprotect: a locked bit clear per entry
    pte = m_codec.wrprotect(pte);
  }
  if (m_src_vma->test(kVmShared)) pte = m_codec.mkclean(pte);
  pte = m_codec.mkold(pte);
  m_arch.set_ptes(m_ctx, *m_dst_mm, addr, dst_pte, pte, nr);
  m_ctx.count(KOp::kPteWrite, nr);
}

int ForkCopier::copy_present_page(uint64_t* dst_pte, VirtAddr addr, Pfn src_page) {
  // Mirrors mm/memory.c:copy_present_page(): the child gets a private, exclusive,
  // dirty (and, if VM_WRITE, writable) copy; the parent's PTE and the pinned
  // folio are left untouched.
  if (!m_prealloc) return -EAGAIN;
  const Pfn pfn = *m_prealloc;
  m_prealloc.reset();
  m_ctx.copy_pages(pfn, src_page);
  Folio folio(m_pm, pfn);
  m_rmap.folio_add_new_anon_rmap(m_ctx, folio, *m_dst_vma, addr, kRmapExclusive);
  ++m_rss_anon;
  uint64_t pte = m_codec.mkdirty(m_codec.mk_pte(pfn, m_dst_vma->page_prot()));
  if (m_dst_vma->test(kVmWrite)) pte = m_codec.mkwrite(pte);
  m_arch.set_ptes(m_ctx, *m_dst_mm, addr, dst_pte, pte, 1);
  m_ctx.count(KOp::kPteWrite);
  return 0;
}

// --- deposited page tables --------------------------------------------------------------

void Kernel::pgtable_trans_huge_deposit(Pfn pmd_table, Pfn pgtable) {
  // Mirrors mm/pgtable-generic.c:pgtable_trans_huge_deposit(): a LIFO list headed
  // at the PMD table's page (pmd_huge_pte); links are pfn + 1 (0 = end).
  Page& head = m_pm.page(pmd_table);
  m_pm.page(pgtable).index = head.index;
  head.index = pgtable.value() + 1;
}

Pfn Kernel::pgtable_trans_huge_withdraw(Pfn pmd_table) {
  Page& head = m_pm.page(pmd_table);
  if (head.index == 0) throw std::logic_error("pgtable_trans_huge_withdraw: nothing deposited");
  const Pfn pgtable(head.index - 1);
  head.index = m_pm.page(pgtable).index;
  m_pm.page(pgtable).index = 0;
  return pgtable;
}

}  // namespace tlbsim::mm
