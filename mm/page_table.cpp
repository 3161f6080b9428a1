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
                           bool* oom) {
  PageTablePage* t = &m_pm.table(mm.pgd());
  for (unsigned l = m_levels; l > level; --l) {
    uint64_t& e = (*t)[level_index(va, l)];
    ctx.count(KOp::kPteRead);
    if (PteCodec::none(e)) {
      if (!alloc) return nullptr;
      auto pfn = m_pm.alloc_page_table(ctx);
      if (!pfn) {
        if (oom) *oom = true;
        return nullptr;
      }
      ctx.count(KOp::kPteWrite);
      mm.add_pgtables(1);
      e = m_codec.mk_table(*pfn);
    } else if (l <= 3 && m_codec.huge(e)) {
      return nullptr;  // a huge leaf covers va above the requested level
    }
    t = &m_pm.table(m_codec.pfn(e));
  }
  return &(*t)[level_index(va, level)];
}

}  // namespace tlbsim::mm
