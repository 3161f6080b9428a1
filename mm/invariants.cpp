#include "mm/invariants.h"

#include <map>
#include <set>
#include <sstream>

#include "mm/folio.h"
#include "mm/kernel.h"

namespace tlbsim::mm {

namespace {

struct FolioCount {
  int64_t pte_maps = 0;
  int64_t pmd_maps = 0;
  std::map<uint64_t, int64_t> per_page;  // pfn → PTE mappings
  std::map<uint32_t, int64_t> per_mm;    // mm_id → mappings (PTE + PMD)
};

struct Recount {
  const Kernel& k;
  std::map<uint64_t, FolioCount> folios;  // head pfn → counts
  std::ostringstream err;
  int errors = 0;

  void fail(const std::string& s) {
    if (errors++ < 8) err << s << "\n";
  }

  void walk(const Mm& mm, const PageTablePage& t, unsigned level, uint64_t base,
            int64_t rss[kNrRss]) {
    const PteCodec& c = k.codec();
    const PhysMem& pm = k.phys();
    for (unsigned i = 0; i < kPtrsPerTable; ++i) {
      const uint64_t e = t[i];
      if (PteCodec::none(e)) continue;
      const uint64_t va = base + (uint64_t{i} << level_shift(level));
      if (!c.present(e)) continue;  // swap/migration entries: counted elsewhere later
      const Pfn pfn = c.pfn(e);
      if (!pm.valid(pfn)) {
        fail("entry at va " + std::to_string(va) + " points outside memory");
        continue;
      }
      const bool leaf = level == 1 || (level <= 3 && c.huge(e));
      if (!leaf) {
        if (!pm.is_page_table(pfn)) fail("table entry at level " + std::to_string(level) +
                                         " points at a frame that is not a page table");
        if (pm.buddy().is_free(pfn)) fail("page table frame " + std::to_string(pfn.value()) + " is free");
        walk(mm, pm.table(pfn), level - 1, va, rss);
        continue;
      }
      if (pfn == k.zero_pfn()) continue;
      if (pm.buddy().is_free(pfn)) {
        fail("frame " + std::to_string(pfn.value()) + " mapped at va " + std::to_string(va) +
             " is free in the buddy allocator");
        continue;
      }
      const Pfn head = pm.folio_head(pfn);
      const Page& hp = pm.page(head);
      FolioCount& fc = folios[head.value()];
      const bool anon = hp.test(kPgAnon);
      if (level == 1) {
        ++fc.pte_maps;
        ++fc.per_page[pfn.value()];
        ++fc.per_mm[mm.mm_id()];
        rss[anon ? kMmAnonPages : kMmFilePages] += 1;
      } else {
        ++fc.pmd_maps;
        ++fc.per_mm[mm.mm_id()];
        rss[anon ? kMmAnonPages : kMmFilePages] += int64_t{1} << (level_shift(level) - 12);
      }
    }
  }
};

}  // namespace

std::string check_invariants(const Kernel& kernel) {
  Recount r{kernel, {}, {}, 0};
  const PhysMem& pm = kernel.phys();
  for (const auto& mmp : kernel.mms()) {
    const Mm& mm = *mmp;
    if (mm.dead) continue;
    int64_t rss[kNrRss] = {0, 0, 0, 0};
    r.walk(mm, pm.table(mm.pgd()), kernel.page_tables_levels(), 0, rss);
    for (int c : {kMmAnonPages, kMmFilePages}) {
      if (rss[c] != mm.rss(static_cast<RssCounter>(c)))
        r.fail("mm " + std::to_string(mm.mm_id()) + ": rss counter " + std::to_string(c) + " = " +
               std::to_string(mm.rss(static_cast<RssCounter>(c))) + " but page tables map " +
               std::to_string(rss[c]));
    }
  }
  const bool per_page = !kernel.rmap().config().no_page_mapcount;
  const bool mm_id = kernel.rmap().config().mm_id;
  int64_t anon_mapped = 0;
  for (auto& [head, fc] : r.folios) {
    Folio f(const_cast<PhysMem&>(pm), Pfn(head));
    const std::string id = "folio " + std::to_string(head) + " (order " + std::to_string(f.order()) + ")";
    const int64_t maps = fc.pte_maps + fc.pmd_maps;
    if (f.mapcount() != maps)
      r.fail(id + ": folio_mapcount " + std::to_string(f.mapcount()) + " != " + std::to_string(maps) +
             " mappings in page tables");
    if (f.ref_count() < f.mapcount())
      r.fail(id + ": refcount " + std::to_string(f.ref_count()) + " < mapcount " +
             std::to_string(f.mapcount()));
    if (f.test_large()) {
      if (f.entire_mapcount() != fc.pmd_maps)
        r.fail(id + ": entire mapcount " + std::to_string(f.entire_mapcount()) + " != " +
               std::to_string(fc.pmd_maps) + " PMD mappings");
      if (per_page) {
        for (uint64_t i = 0; i < f.nr_pages(); ++i) {
          auto it = fc.per_page.find(head + i);
          const int64_t want = it == fc.per_page.end() ? 0 : it->second;
          if (f.page(i).mapcount != want)
            r.fail(id + ": page " + std::to_string(i) + " mapcount " +
                   std::to_string(f.page(i).mapcount) + " != " + std::to_string(want));
        }
      }
      if (mm_id && !f.head().test(kPgZero)) {
        const LargeFolio& lf = f.lf();
        for (int s = 0; s < 2; ++s) {
          if (!lf.mm_id[s]) continue;
          auto it = fc.per_mm.find(lf.mm_id[s]);
          const int64_t have = it == fc.per_mm.end() ? 0 : it->second;
          if (lf.mm_id_mapcount[s] > have)
            r.fail(id + ": MM-ID slot " + std::to_string(s) + " counts " +
                   std::to_string(lf.mm_id_mapcount[s]) + " mappings but mm maps " + std::to_string(have));
        }
        if (fc.per_mm.size() >= 2 && !f.maybe_mapped_shared(true))
          r.fail(id + ": mapped by " + std::to_string(fc.per_mm.size()) +
                 " mms but not maybe_mapped_shared");
      }
    }
    if (f.test_anon()) {
      anon_mapped += per_page && f.test_large() && fc.pmd_maps == 0
                         ? static_cast<int64_t>(fc.per_page.size())
                         : static_cast<int64_t>(f.test_large() ? f.nr_pages() : 1);
    }
  }
  if (per_page && anon_mapped != kernel.vmstat_const().nr_anon_mapped.value())
    r.fail("NR_ANON_MAPPED " + std::to_string(kernel.vmstat_const().nr_anon_mapped.value()) +
           " != " + std::to_string(anon_mapped) + " anon pages mapped");
  return r.err.str();
}

}  // namespace tlbsim::mm
