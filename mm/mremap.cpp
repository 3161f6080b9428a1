// mremap(2) of private anonymous mappings (mm/mremap.c, Linux 6.12–6.18): shrink,
// grow in place, and move — move_vma() → move_page_tables(), which moves whole PUD
// and PMD tables where both ranges allow it (HAVE_MOVE_PUD / HAVE_MOVE_PMD: x86-64
// and arm64 select both), PMD-mapped THPs as a whole (move_huge_pmd) and the rest
// PTE by PTE (move_ptes), flushing each moved piece of the old range before its
// page-table lock is dropped. No page is copied and no rmap changes: the new VMA
// keeps the old one's page offset, so every anonymous folio's index still matches.
// Version differences are profile switches: mremap_pte_batch (6.17, PTE batching of
// large folios) and mremap_multi_vma (6.17, a same-size MREMAP_FIXED move of a range
// spanning several VMAs, not modelled yet: refused as "not supported yet").
#include <algorithm>
#include <cerrno>
#include <optional>

#include "base/error.h"
#include "mm/folio.h"
#include "mm/kernel.h"
#include "mm/mmap_lock.h"

namespace tlbsim::mm {

namespace {
constexpr uint64_t mremap_error(int e) { return static_cast<uint64_t>(-static_cast<int64_t>(e)); }

/// get_extent(): the bytes from `old_addr` to the next `size` boundary of either
/// range, at most `left`.
uint64_t get_extent(uint64_t size, VirtAddr old_addr, VirtAddr new_addr, uint64_t left) {
  const uint64_t to_old = size - (old_addr.value() & (size - 1));
  const uint64_t to_new = size - (new_addr.value() & (size - 1));
  return std::min({to_old, to_new, left});
}
}  // namespace

uint64_t Kernel::sys_mremap(ExecContext& ctx, Mm& mm, VirtAddr addr, uint64_t old_len,
                            uint64_t new_len, unsigned flags, VirtAddr new_addr) {
  // Mirrors mm/mremap.c:SYSCALL_DEFINE5(mremap) (the checks in check_mremap_params()
  // since 6.15, in the same order).
  ctx.count(KOp::kSyscallEntry);
  if (flags & ~(kMremapMaymove | kMremapFixed | kMremapDontunmap)) return mremap_error(EINVAL);
  if ((flags & kMremapFixed) && !(flags & kMremapMaymove)) return mremap_error(EINVAL);
  if ((flags & kMremapDontunmap) && (!(flags & kMremapMaymove) || old_len != new_len))
    return mremap_error(EINVAL);
  if (!addr.is_aligned(kPageSize)) return mremap_error(EINVAL);
  old_len = (old_len + kPageSize - 1) & kPageMask;  // PAGE_ALIGN: a huge length wraps to 0
  new_len = (new_len + kPageSize - 1) & kPageMask;
  if (new_len == 0) return mremap_error(EINVAL);
  if (flags & kMremapDontunmap)
    throw InputError("", "not supported yet: MREMAP_DONTUNMAP");
  CauseScope cause(ctx, FlushCause::kMremap);
  MmapLockGuard lock(ctx, mm, LockMode::kExclusive);
  Vma* vma = mm.find_vma(addr);  // vma_lookup()
  if (!vma) return mremap_error(EFAULT);
  if (flags & kMremapFixed) return mremap_to(ctx, mm, addr, old_len, new_len, new_addr);
  if (old_len >= new_len) {
    // Shrink: do_vmi_munmap() of the tail (plain munmap semantics), or nothing.
    if (old_len > new_len) {
      if (const int r = do_munmap(ctx, mm, addr + new_len, old_len - new_len, false))
        return mremap_error(-r);
      ++m_mremap_stats.shrunk;
    }
    ++m_mremap_stats.calls;
    return addr.value();
  }
  if (const int r = mremap_resize_is_valid(*vma, addr, old_len)) return mremap_error(-r);
  const uint64_t delta = new_len - old_len;
  if (old_len == vma->end() - addr && vma_expandable(mm, *vma, delta)) {
    // vma_merge_extend(): the VMA grows over the free range after it (and merges
    // with the next VMA if that is compatible); no page table changes.
    vma_start_write(ctx, *vma);
    ctx.count(KOp::kVmaModify);
    ctx.count(KOp::kMapleStore);
    vma->set_range(vma->start(), vma->end() + delta, vma->pgoff());
    vma_merge_existing_range(ctx, mm, vma);
    ++m_mremap_stats.grown_in_place;
    ++m_mremap_stats.calls;
    return addr.value();
  }
  if (!(flags & kMremapMaymove)) return mremap_error(ENOMEM);
  const auto to = get_unmapped_area_anon(mm, new_len, kPageSize);
  if (!to) return mremap_error(ENOMEM);
  return move_vma(ctx, mm, *vma, addr, old_len, new_len, *to);
}

int Kernel::mremap_resize_is_valid(const Vma& vma, VirtAddr addr, uint64_t old_len) const {
  // resize_is_valid() (vma_to_resize() before 6.12): the old range must lie inside
  // this one VMA; old_len 0 only duplicates shared mappings.
  if (old_len == 0 && !vma.test(kVmShared)) return -EINVAL;
  if (old_len > vma.end() - addr) return -EFAULT;
  return 0;
}

bool Kernel::vma_expandable(const Mm& mm, const Vma& vma, uint64_t delta) const {
  // vma_expandable(): nothing mapped in [vm_end, vm_end + delta), inside TASK_SIZE.
  const uint64_t end = vma.end().value();
  if (end + delta < end || end + delta > task_size()) return false;
  auto it = mm.vmas().lower_bound(end);
  return it == mm.vmas().end() || it->second->start().value() >= end + delta;
}

uint64_t Kernel::mremap_to(ExecContext& ctx, Mm& mm, VirtAddr addr, uint64_t old_len,
                           uint64_t new_len, VirtAddr new_addr) {
  // Mirrors mremap_to() (MREMAP_FIXED): whatever is mapped at the target goes first.
  if (!new_addr.is_aligned(kPageSize)) return mremap_error(EINVAL);
  if (new_len > task_size() || new_addr.value() > task_size() - new_len) return mremap_error(EINVAL);
  if (addr.value() + old_len > new_addr.value() && new_addr.value() + new_len > addr.value())
    return mremap_error(EINVAL);  // the ranges overlap
  if (const int r = do_munmap(ctx, mm, new_addr, new_len, false)) return mremap_error(-r);
  if (old_len > new_len) {
    if (const int r = do_munmap(ctx, mm, addr + new_len, old_len - new_len, false))
      return mremap_error(-r);
    old_len = new_len;
  }
  Vma* vma = mm.find_vma(addr);
  if (!vma) return mremap_error(EFAULT);
  if (old_len > vma->end() - addr && old_len == new_len && m_profile.mremap_multi_vma())
    throw InputError("", "not supported yet: mremap(MREMAP_FIXED) of a range spanning several "
                         "VMAs (Linux 6.17 moves each one, remap_move())");
  if (const int r = mremap_resize_is_valid(*vma, addr, old_len)) return mremap_error(-r);
  return move_vma(ctx, mm, *vma, addr, old_len, new_len, new_addr);
}

uint64_t Kernel::move_vma(ExecContext& ctx, Mm& mm, Vma& vma, VirtAddr old_addr, uint64_t old_len,
                          uint64_t new_len, VirtAddr new_addr) {
  // Mirrors mm/mremap.c:move_vma(): copy_vma() makes the new VMA — the old one's
  // flags, page offset and anon_vma (vm_area_dup + anon_vma_clone), merged with a
  // compatible neighbour — then move_page_tables(), then the old range is unmapped
  // (its PTEs are empty by then; its page tables are freed).
  vma_start_write(ctx, vma);
  const uint64_t pgoff = vma.anon_vma() || !vma.is_anonymous()
                             ? vma.linear_page_index(old_addr)
                             : new_addr.vpn();
  ctx.count(KOp::kVmaAlloc);
  ctx.count(KOp::kMapleStore);
  auto fresh = std::make_unique<Vma>(&mm, new_addr, new_addr + new_len, vma.flags(), pgoff);
  fresh->set_file(vma.file());
  fresh->vm_lock_seq = mm.mm_lock_seq;  // write-locked as it is created
  Vma* nv = fresh.get();
  if (AnonVma* av = vma.anon_vma()) {
    ctx.count(KOp::kAnonVmaLink);  // anon_vma_clone
    ScopedLock l(ctx, av->root()->rwsem);
    nv->set_anon_vma(av);
    av->vmas().push_back(nv);
  }
  mm.vmas().emplace(new_addr.value(), std::move(fresh));
  nv = vma_merge_existing_range(ctx, mm, nv);
  const uint64_t moved = move_page_tables(ctx, mm, vma, old_addr, *nv, new_addr, old_len);
  if (moved < old_len) {
    // Out of memory for a page table: move back what moved, drop the new range.
    move_page_tables(ctx, mm, *nv, new_addr, vma, old_addr, moved);
    do_munmap(ctx, mm, new_addr, new_len, false);
    return mremap_error(ENOMEM);
  }
  if (const int r = do_munmap(ctx, mm, old_addr, old_len, false)) return mremap_error(-r);
  ++m_mremap_stats.moved;
  ++m_mremap_stats.calls;
  return new_addr.value();
}

uint64_t Kernel::move_page_tables(ExecContext& ctx, Mm& mm, Vma& vma, VirtAddr old_addr,
                                  Vma& new_vma, VirtAddr new_addr, uint64_t len) {
  // Mirrors mm/mremap.c:move_page_tables() (6.7+ with try_realign_addr()): returns
  // the bytes moved (less than len when a page-table allocation failed).
  const VirtAddr old_start = old_addr;
  const uint64_t want = len;
  // try_realign_addr(): both ranges start at the same offset in a PMD, each VMA
  // starts there with nothing mapped below it in that PMD, and the range reaches
  // the next PMD boundary: move from the PMD boundaries, whole PMD tables.
  const uint64_t off = old_addr.value() & (kPmdSize - 1);
  auto can_align_down = [&](const Vma& v, VirtAddr a) {
    if (v.start() != a) return false;
    auto it = mm.vmas().find(v.start().value());
    return it == mm.vmas().begin() || std::prev(it)->second->end() <= a.align_down(kPmdSize);
  };
  if (off && off == (new_addr.value() & (kPmdSize - 1)) && len >= kPmdSize - off &&
      can_align_down(vma, old_addr) && can_align_down(new_vma, new_addr)) {
    old_addr = old_addr.align_down(kPmdSize);
    new_addr = new_addr.align_down(kPmdSize);
    len += off;
  }
  const VirtAddr old_end = old_addr + len;
  uint64_t extent = 0;
  for (; old_addr < old_end; old_addr += extent, new_addr += extent) {
    ctx.progress();  // cond_resched()
    extent = get_extent(kPudSize, old_addr, new_addr, old_end - old_addr);
    uint64_t* old_pud = m_pt.walk(ctx, mm, old_addr, 3, false);
    if (!old_pud || PteCodec::none(*old_pud)) continue;
    bool oom = false;
    uint64_t* new_pud = m_pt.walk(ctx, mm, new_addr, 3, true, &oom);  // alloc_new_pud
    if (!new_pud) break;
    if (extent == kPudSize && !m_codec.huge(*old_pud) && PteCodec::none(*new_pud)) {
      // move_normal_pud(): the whole PMD table changes hands under mm's lock.
      ScopedLock l(ctx, mm.page_table_lock);
      *new_pud = *old_pud;
      *old_pud = 0;
      ctx.count(KOp::kPteWrite, 2);
      flush_tlb_range(ctx, mm, old_addr, old_addr + kPudSize);
      ++m_mremap_stats.pud_tables_moved;
      continue;
    }
    extent = get_extent(kPmdSize, old_addr, new_addr, old_end - old_addr);
    Pfn old_pmd_table;
    uint64_t* old_pmd = m_pt.walk(ctx, mm, old_addr, 2, false, nullptr, &old_pmd_table);
    if (!old_pmd || PteCodec::none(*old_pmd)) continue;
    Pfn new_pmd_table;
    uint64_t* new_pmd = m_pt.walk(ctx, mm, new_addr, 2, true, &oom, &new_pmd_table);
    if (!new_pmd) break;
    if (m_codec.huge(*old_pmd)) {
      if (extent == kPmdSize &&
          move_huge_pmd(ctx, mm, old_addr, old_pmd_table, old_pmd, new_pmd_table, new_pmd))
        continue;
      split_huge_pmd_address(ctx, vma, old_addr, false);
      if (PteCodec::none(*old_pmd)) continue;
    } else if (extent == kPmdSize && PteCodec::none(*new_pmd)) {
      // move_normal_pmd(): pmd_lock(old) and the new one nested; the PTE table is
      // re-pointed, its entries untouched, and the old PMD's range flushed at once.
      ScopedLock ol(ctx, m_pm.ptl(old_pmd_table));
      std::optional<ScopedLock> nl;
      if (new_pmd_table != old_pmd_table) nl.emplace(ctx, m_pm.ptl(new_pmd_table));
      if (!PteCodec::none(*old_pmd) && !m_codec.huge(*old_pmd)) {
        *new_pmd = *old_pmd;
        *old_pmd = 0;
        ctx.count(KOp::kPteWrite, 2);
        flush_tlb_range(ctx, mm, old_addr, old_addr + kPmdSize);
        ++m_mremap_stats.pmd_tables_moved;
        continue;
      }
    }
    if (PteCodec::none(*old_pmd)) continue;
    if (!m_pt.walk(ctx, mm, new_addr, 1, true, &oom)) break;  // pte_alloc(new_pmd)
    move_ptes(ctx, mm, old_pmd, old_addr, old_addr + extent, new_pmd, new_addr);
  }
  if (old_addr >= old_end) return want;
  return old_addr > old_start ? old_addr - old_start : 0;
}

bool Kernel::move_huge_pmd(ExecContext& ctx, Mm& mm, VirtAddr old_addr, Pfn old_pmd_table,
                           uint64_t* old_pmd, Pfn new_pmd_table, uint64_t* new_pmd) {
  // Mirrors mm/huge_memory.c:move_huge_pmd(): both PMD locks; the deposited PTE
  // table follows the mapping when the locks differ (pmd_move_must_withdraw); the
  // old PMD's translation is flushed if it was present.
  if (!PteCodec::none(*new_pmd)) return false;
  ScopedLock ol(ctx, m_pm.ptl(old_pmd_table));
  std::optional<ScopedLock> nl;
  if (new_pmd_table != old_pmd_table) nl.emplace(ctx, m_pm.ptl(new_pmd_table));
  const uint64_t pmd = *old_pmd;  // pmdp_huge_get_and_clear
  *old_pmd = 0;
  ctx.count(KOp::kPteXchg);
  if (new_pmd_table != old_pmd_table)
    pgtable_trans_huge_deposit(new_pmd_table, pgtable_trans_huge_withdraw(old_pmd_table));
  *new_pmd = pmd;  // set_pmd_at
  ctx.count(KOp::kPteWrite);
  if (m_codec.present(pmd)) flush_pmd_tlb_range(ctx, mm, old_addr, old_addr + kPmdSize);
  ++m_mremap_stats.huge_pmds_moved;
  return true;
}

void Kernel::move_ptes(ExecContext& ctx, Mm& mm, uint64_t* old_pmd, VirtAddr old_addr,
                       VirtAddr old_end, uint64_t* new_pmd, VirtAddr new_addr) {
  // Mirrors mm/mremap.c:move_ptes(): the old table's PTL, the new one's nested;
  // each entry cleared and set at the new address; one flush_tlb_range() of the old
  // range if any entry was present, before the locks are dropped. Since 6.17
  // (mremap_pte_batch) a present entry starts a batch of its large folio where the
  // architecture hints one (pte_batch_hint(): arm64 contpte blocks; 1 on x86).
  Pfn old_table;
  KernelLock* old_ptl = pte_offset_map_lock(ctx, m_pm, m_codec, old_pmd, &old_table);
  if (!old_ptl) return;
  const Pfn new_table = m_codec.pfn(*new_pmd);
  KernelLock* new_ptl = new_table != old_table ? &m_pm.ptl(new_table) : nullptr;
  if (new_ptl) ctx.lock(*new_ptl);
  flush_tlb_batched_pending(ctx, mm);
  PageTablePage& ot = m_pm.table(old_table);
  PageTablePage& nt = m_pm.table(new_table);
  bool force_flush = false;
  uint64_t moved = 0;
  for (VirtAddr a = old_addr, n = new_addr; a < old_end;) {
    uint64_t* ptep = &ot[level_index(a, 1)];
    uint64_t* new_ptep = &nt[level_index(n, 1)];
    const uint64_t pte = m_arch.ptep_get(ptep);
    ctx.count(KOp::kPteRead);
    unsigned nr = 1;
    if (PteCodec::none(pte)) {
      a += kPageSize;
      n += kPageSize;
      continue;
    }
    if (m_codec.present(pte)) {
      force_flush = true;
      const Pfn pfn = m_codec.pfn(pte);
      const unsigned max_nr = static_cast<unsigned>((old_end - a) >> kPageShift);
      if (m_mremap_pte_batch && m_codec.cont(pte) && max_nr > 1 && pfn != m_zero_pfn &&
          Folio::of(m_pm, pfn).test_large())
        nr = folio_pte_batch(pfn, ptep, pte, max_nr);
      const uint64_t cleared = nr == 1 ? m_arch.ptep_get_and_clear(ctx, mm, a, ptep)
                                       : m_arch.get_and_clear_full_ptes(ctx, mm, a, ptep, nr, false);
      ctx.count(KOp::kPteRead, nr - 1);
      ctx.count(KOp::kPteXchg, nr);
      m_arch.set_ptes(ctx, mm, n, new_ptep, cleared, nr);  // set_ptes / set_pte_at
      ctx.count(KOp::kPteWrite, nr);
    } else {
      // A swap or migration entry moves as it is (no TLB ever held it).
      *ptep = 0;
      *new_ptep = pte;
      ctx.count(KOp::kPteWrite, 2);
    }
    moved += nr;
    a += uint64_t{nr} * kPageSize;
    n += uint64_t{nr} * kPageSize;
  }
  const unsigned span = static_cast<unsigned>((old_end - old_addr) >> kPageShift);
  ctx.pte_lines(old_table, level_index(old_addr, 1), span, true);
  ctx.pte_lines(new_table, level_index(new_addr, 1), span, true);
  m_mremap_stats.ptes_moved += moved;
  if (force_flush) flush_tlb_range(ctx, mm, old_addr, old_end);
  if (new_ptl) ctx.unlock(*new_ptl);
  ctx.unlock(*old_ptl);
}

}  // namespace tlbsim::mm
