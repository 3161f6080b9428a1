// Large anonymous folios for kernel tests before the mTHP fault path exists: maps
// a fresh folio exactly as do_anonymous_page() maps an mTHP (one
// folio_add_new_anon_rmap, nr writable+dirty+young PTEs in one set_ptes, rss +nr).
#pragma once

#include <gtest/gtest.h>

#include "mm/folio.h"
#include "mm/kernel.h"

namespace tlbsim::mm::testing {

/// True when the 2^order PTEs at `va` exist-or-can-be-allocated and are all none
/// (pte_range_none) and lie inside one VMA that has an anon_vma.
inline bool anon_folio_fits(Kernel& k, ExecContext& ctx, Mm& mm, VirtAddr va, unsigned order) {
  const uint64_t nr = uint64_t{1} << order;
  if (!va.is_aligned(nr * kPageSize)) return false;
  Vma* vma = mm.find_vma(va);
  if (!vma || !vma->anon_vma() || va + nr * kPageSize > vma->end()) return false;
  uint64_t* pte = k.page_tables().walk(ctx, mm, va, 1, false);
  if (!pte) {
    // No PTE table yet (allocated on mapping) unless a huge PMD covers va.
    const uint64_t* pmd = k.page_tables().walk(ctx, mm, va, 2, false);
    return !pmd || PteCodec::none(*pmd);
  }
  for (uint64_t i = 0; i < nr; ++i)
    if (!PteCodec::none(pte[i])) return false;
  return true;
}

/// Maps a new anon folio of `order` at `va` (see anon_folio_fits). Returns the folio,
/// or an empty Folio when memory ran out.
inline Folio map_anon_folio(Kernel& k, ExecContext& ctx, Mm& mm, VirtAddr va, unsigned order) {
  const uint64_t nr = uint64_t{1} << order;
  Vma* vma = mm.find_vma(va);
  EXPECT_NE(vma, nullptr);
  auto pfn = k.phys().alloc_folio(order);
  if (!pfn) return Folio();
  uint64_t* pte = k.page_tables().walk(ctx, mm, va, 1, true);
  if (!pte) {
    Folio(k.phys(), *pfn).put_refs(1);
    k.phys().free_folio(*pfn, "map_anon_folio");
    return Folio();
  }
  Folio folio(k.phys(), *pfn);
  folio.ref_add(static_cast<int32_t>(nr) - 1);
  const PteCodec& c = k.codec();
  uint64_t entry = c.mk_pte(*pfn, vma->page_prot());
  if (vma->test(kVmWrite)) entry = c.mkwrite(c.mkdirty(entry));
  k.rmap().folio_add_new_anon_rmap(ctx, folio, *vma, va, kRmapExclusive);
  mm.add_rss(kMmAnonPages, static_cast<int64_t>(nr));
  k.arch().set_ptes(ctx, mm, va, pte, entry, static_cast<unsigned>(nr));
  return folio;
}

}  // namespace tlbsim::mm::testing
