#include "mm/page_table.h"

#include "mm/mm_struct.h"

namespace tlbsim::mm {

bool PageTables::pgd_alloc(ExecContext& ctx, Mm& mm) {
  auto pfn = m_pm.alloc_page_table(ctx);
  if (!pfn) return false;
  mm.set_pgd(*pfn);
  return true;
}

void PageTables::pgd_free(Mm& mm) { m_pm.free_page_table(mm.pgd(), "pgd_free"); }

uint64_t* PageTables::walk(ExecContext& ctx, Mm& mm, VirtAddr va, unsigned level, bool alloc,
                           bool* oom, Pfn* table_out) {
  Pfn table = mm.pgd();
  for (unsigned l = m_levels; l > level; --l) {
    uint64_t* e = &m_pm.table(table)[level_index(va, l)];
    ctx.count(KOp::kPteRead);
    if (PteCodec::none(*e)) {
      if (!alloc) return nullptr;
      // __p4d_alloc / __pud_alloc / __pmd_alloc / __pte_alloc: allocate unlocked,
      // install under the lock of the level (mm->page_table_lock above the PMD
      // level, the PMD table's lock for a PTE table: pmd_install), unless another
      // CPU installed one meanwhile.
      auto pfn = m_pm.alloc_page_table(ctx);
      if (!pfn) {
        if (oom) *oom = true;
        return nullptr;
      }
      if (l - 1 == 2) m_pm.ptl(*pfn).reset(LockClass::kPmdLock);
      KernelLock& lock = l == 2 ? m_pm.ptl(table) : mm.page_table_lock;
      ctx.lock(lock);
      e = &m_pm.table(table)[level_index(va, l)];
      const bool installed = PteCodec::none(*e);
      if (installed) {
        ctx.count(KOp::kPteWrite);
        mm.add_pgtables(1);
        *e = m_codec.mk_table(*pfn);
      }
      ctx.unlock(lock);
      if (!installed) m_pm.free_page_table(ctx, *pfn, "pte_free(raced)");
      if (m_codec.huge(*e)) return nullptr;  // a huge leaf was installed meanwhile
    } else if (l <= 3 && m_codec.huge(*e)) {
      return nullptr;  // a huge leaf covers va above the requested level
    }
    table = m_codec.pfn(*e);
  }
  if (table_out) *table_out = table;
  return &m_pm.table(table)[level_index(va, level)];
}

}  // namespace tlbsim::mm
