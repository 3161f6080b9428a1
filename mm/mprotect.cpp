// mprotect() (mm/mprotect.c): VMA flags, then change_protection() over the page
// tables inside one mmu_gather. PMD-mapped THPs wholly inside the range change in
// place (change_huge_pmd); partly covered ones are split first. A PTE whose change needs a TLB flush
// (pte_needs_flush) adds its address to the gather; x86 flushes once at
// tlb_finish_mmu (MMU_GATHER_MERGE_VMAS), arm64 at the end of every VMA.
#include <algorithm>
#include <cerrno>

#include "base/error.h"
#include "mm/folio.h"
#include "mm/kernel.h"
#include "mm/mmap_lock.h"
#include "mm/mmu_gather.h"
#include "mm/pagewalk.h"

namespace tlbsim::mm {

namespace {

/// pte_needs_flush(old, new): x86's own (arch/x86/include/asm/tlbflush.h: a changed
/// frame, a cleared DIRTY or PRESENT, any change of the bits a TLB caches). arm64
/// through Linux 6.18 takes the generic one of include/linux/pgtable.h, which always
/// answers true; from 6.19 (`arm64_own`, c320dbb7c80d) its own: a valid entry needs
/// a flush when any bit but the software ones (55-58, 63) changes.
bool pte_needs_flush(const PteCodec& c, uint64_t oldpte, uint64_t newpte, bool arm64_own) {
  if (c.arch() != Arch::kX86_64) {
    if (!arm64_own) return true;
    constexpr uint64_t kSwBits = (0xFull << 55) | (1ull << 63);  // PTE_SWBITS_MASK
    return (oldpte & arm64_bits::kValid) && ((oldpte ^ newpte) & ~kSwBits);
  }
  if (!c.valid(oldpte)) return false;
  if (c.pfn(oldpte) != c.pfn(newpte)) return true;
  using namespace x86_bits;
  const uint64_t diff = oldpte ^ newpte;
  // Cleared DIRTY or PRESENT needs a flush (ACCESSED is ignored for PTEs).
  if ((diff & oldpte) & (kDirty | kPresent)) return true;
  // Any change of RW, USER, PWT, PCD, PSE, GLOBAL, PAT, PKEY, NX.
  constexpr uint64_t kFlushOnChange =
      kRw | kUser | kPwt | kPcd | kPse | kGlobal | (1ull << 12) | (0xFull << 59) | kNx;
  return diff & kFlushOnChange;
}

}  // namespace

uint64_t Kernel::pte_modify(uint64_t oldpte, uint64_t newflags) const {
  // pte_modify(pte, vm_get_page_prot(newflags)) / pmd_modify(): PAGE_NONE when the
  // VMA allows no access (the hardware may no longer use the entry; pte_present()
  // stays true); otherwise a PROT_NONE entry becomes valid again (read-only: a
  // private mapping's vm_page_prot never has write) and write/exec follow the flags.
  if (!(newflags & (kVmRead | kVmWrite | kVmExec))) return m_codec.mkprotnone(oldpte);
  uint64_t e = m_codec.clear_protnone(oldpte, PgProt{.write = false, .exec = false});
  if (!(newflags & kVmWrite)) e = m_codec.wrprotect(e);
  return m_codec.set_exec(e, newflags & kVmExec);
}

uint64_t Kernel::change_pte_range(MmuGather& tlb, Vma& vma, uint64_t* pmd, VirtAddr start,
                                  VirtAddr end, uint64_t newflags) {
  // Mirrors mm/mprotect.c:change_pte_range(), under the table's PTL: the flushes it
  // needs are only recorded in the gather. Returns the pages whose PTE changed.
  ExecContext& ctx = tlb.ctx();
  Mm& mm = tlb.mm();
  Pfn table;
  KernelLock* ptl = pte_offset_map_lock(ctx, m_pm, m_codec, pmd, &table);
  if (!ptl) return 0;
  (void)vma;
  flush_tlb_batched_pending(ctx, mm);
  const bool write = newflags & kVmWrite;
  // MM_CP_TRY_CHANGE_WRITABLE: vma_wants_manual_pte_write_upgrade() for a private
  // writable mapping; exclusive anon pages become writable without a write fault.
  const bool try_writable = write && !(newflags & kVmShared);
  uint64_t* pte_table = m_pm.table(table).data();
  uint64_t pages = 0;
  for (VirtAddr addr = start; addr < end; addr += kPageSize) {
    uint64_t* ptep = &pte_table[level_index(addr, 1)];
    ctx.count(KOp::kPteRead);
    const uint64_t oldpte = m_arch.ptep_get(ptep);
    if (PteCodec::none(oldpte) || !m_codec.present(oldpte)) continue;  // swap entries keep theirs
    // pte_modify(): the new protection, keeping pfn, dirty, young, special bits.
    uint64_t newpte = pte_modify(oldpte, newflags);
    if (try_writable && !m_codec.write(newpte) && m_codec.pfn(newpte) != m_zero_pfn) {
      // can_change_pte_writable(): private mapping → only exclusive anon pages.
      const Pfn pfn = m_codec.pfn(newpte);
      Folio folio = Folio::of(m_pm, pfn);
      if (folio.test_anon() && folio.page_of(pfn).test(kPgAnonExclusive))
        newpte = m_codec.mkwrite(newpte);
    }
    // ptep_modify_prot_start() / ptep_modify_prot_commit() on every present PTE,
    // changed or not (change_pte_range(), Linux 6.7-6.18).
    m_arch.ptep_get_and_clear(ctx, mm, addr, ptep);
    m_arch.set_ptes(ctx, mm, addr, ptep, newpte, 1);
    ctx.count(KOp::kPteXchg);  // ptep_modify_prot_start: xchg
    ctx.count(KOp::kPteWrite);  // ptep_modify_prot_commit: set_pte
    if (pte_needs_flush(m_codec, oldpte, newpte, m_arm64_pte_needs_flush) &&
        !m_debug_mprotect_skip_flush)
      tlb.tlb_flush_pte_range(addr, kPageSize);  // BROKEN ON PURPOSE if the debug switch is set
    ++pages;
  }
  ctx.pte_lines(table, level_index(start, 1), static_cast<unsigned>((end - start) >> kPageShift),
                pages != 0);
  ctx.unlock(*ptl);  // pte_unmap_unlock
  ctx.progress();    // cond_resched() per PMD
  return pages;
}

uint64_t Kernel::change_huge_pmd(MmuGather& tlb, Vma& vma, Pfn pmd_table, uint64_t* pmd,
                                 VirtAddr addr, uint64_t newflags) {
  // Mirrors mm/huge_memory.c:change_huge_pmd() for a present THP PMD wholly inside
  // the range: pmdp_invalidate_ad + the new protection, flushed through the gather
  // (tlb_flush_pmd_range). Returns the pages changed (HPAGE_PMD_NR or 0).
  ExecContext& ctx = tlb.ctx();
  ScopedLock pmd_lock(ctx, m_pm.ptl(pmd_table));  // __pmd_trans_huge_lock
  ctx.count(KOp::kPteRead);
  if (!m_codec.huge(*pmd)) return 0;
  const uint64_t oldpmd = *pmd;
  const Pfn pfn = m_codec.pfn(oldpmd);
  Folio folio = Folio::of(m_pm, pfn);
  const bool write = newflags & kVmWrite;
  uint64_t newpmd = pte_modify(oldpmd, newflags);  // pmd_modify()
  // can_change_pmd_writable(): a private mapping of an exclusive anon THP.
  if (write && !(newflags & kVmShared) && !m_codec.write(newpmd) && !folio.test_zero() &&
      folio.test_anon() && folio.head().test(kPgAnonExclusive))
    newpmd = m_codec.mkwrite(newpmd);
  if (newpmd == oldpmd) return 0;
  *pmd = newpmd;
  ctx.count(KOp::kPteXchg);   // pmdp_invalidate_ad
  ctx.count(KOp::kPteWrite);  // set_pmd_at
  if (!m_debug_mprotect_skip_flush)  // BROKEN ON PURPOSE if set
    tlb.tlb_remove_pmd_tlb_entry(addr.align_down(kPmdSize));  // tlb_flush_pmd_range
  (void)vma;
  return uint64_t{1} << kPmdOrder;
}

uint64_t Kernel::change_protection_range(MmuGather& tlb, Vma& vma, VirtAddr start, VirtAddr end,
                                         uint64_t newflags) {
  // Mirrors mm/mprotect.c:change_protection_range() → change_p4d_range →
  // change_pud_range → change_pmd_range(): a THP only partly in the range is split
  // first; a whole one changes in place (change_huge_pmd). Returns pages changed.
  struct ChangeProt {
    Kernel& k;
    MmuGather& tlb;
    Vma& vma;
    uint64_t newflags;
    uint64_t pages = 0;
    bool pmd_entry(Pfn pmd_table, uint64_t* pmd, VirtAddr addr, VirtAddr next) {
      if (!k.m_codec.huge(*pmd)) return false;
      if (next - addr != kPmdSize) {
        k.split_huge_pmd_address(tlb.ctx(), vma, addr, false);
        return false;
      }
      pages += k.change_huge_pmd(tlb, vma, pmd_table, pmd, addr, newflags);
      return true;
    }
    void pte_range(uint64_t* pmd, VirtAddr addr, VirtAddr next) {
      pages += k.change_pte_range(tlb, vma, pmd, addr, next, newflags);
    }
  } cp{*this, tlb, vma, newflags};
  walk_page_range(m_pm, m_codec, tlb.mm().pgd(), m_pt.levels(), start, end, cp);
  return cp.pages;
}

int Kernel::sys_mprotect(ExecContext& ctx, Mm& mm, VirtAddr addr, uint64_t len, bool read,
                         bool write, bool exec) {
  // Mirrors mm/mprotect.c:do_mprotect_pkey() → mprotect_fixup() → change_protection(),
  // all under mmap_lock held for write, one mmu_gather (one flush) for the call.
  ctx.count(KOp::kSyscallEntry);
  CauseScope cause(ctx, FlushCause::kMprotect);
  if (!addr.is_aligned(kPageSize)) return -EINVAL;
  if (len == 0) return 0;
  const VirtAddr end = addr + ((len + kPageSize - 1) & kPageMask);
  if (end <= addr) return -ENOMEM;
  MmapLockGuard lock(ctx, mm, LockMode::kExclusive);
  // Every page of the range must be mapped (else ENOMEM, like Linux).
  for (VirtAddr a = addr; a < end;) {
    Vma* v = mm.find_vma(a);
    if (!v) return -ENOMEM;
    a = v->end();
  }
  if (Vma* v = mm.find_vma(addr); v && v->start() < addr) vma_split(ctx, mm, *v, addr);
  if (Vma* v = mm.find_vma(end - 1); v && v->end() > end) vma_split(ctx, mm, *v, end);
  // The VMAs of the range as they are now (after the edge splits); merging below
  // changes the tree, so walk a list of their ranges.
  struct Piece {
    VirtAddr start, end;
    uint64_t flags;
  };
  std::vector<Piece> pieces;
  for (auto it = mm.vmas().lower_bound(addr.value());
       it != mm.vmas().end() && it->second->start() < end; ++it)
    pieces.push_back({it->second->start(), it->second->end(), it->second->flags()});
  MmuGather tlb(*this, ctx, mm, /*fullmm=*/false);
  for (const Piece& piece : pieces) {
    uint64_t newflags = piece.flags & ~(kVmRead | kVmWrite | kVmExec);
    if (read) newflags |= kVmRead;
    if (write) newflags |= kVmWrite;
    if (exec) newflags |= kVmExec;
    if (write && !(piece.flags & kVmMayWrite)) {
      tlb.tlb_finish_mmu();
      return -EACCES;
    }
    if (newflags == piece.flags) continue;
    // mprotect_fixup(): vma_modify_flags() (the splits above, the merge below),
    // vm_flags_reset(), change_protection() over the piece.
    Vma* vma = mm.find_vma(piece.start);
    vma_start_write(ctx, *vma);
    vma->set_flags(newflags);
    ctx.count(KOp::kVmaModify);
    change_protection_range(tlb, *vma, piece.start, piece.end, newflags);
    tlb.tlb_end_vma(*vma);
    vma_merge_existing_range(ctx, mm, vma);
  }
  tlb.tlb_finish_mmu();
  return 0;
}

}  // namespace tlbsim::mm
