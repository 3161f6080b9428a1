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

/// Length of the list of PTE tables deposited with a PMD table (pmd_huge_pte:
/// Page::index of the PMD table, links pfn + 1, 0 = end; fork.cpp).
int64_t deposited_tables(const PhysMem& pm, Pfn pmd_table) {
  int64_t n = 0;
  for (uint64_t link = pm.page(pmd_table).index; link; link = pm.page(Pfn(link - 1)).index) {
    if (!pm.valid(Pfn(link - 1)) || !pm.is_page_table(Pfn(link - 1)) || ++n > 512) return -1;
  }
  return n;
}

struct Recount {
  const Kernel& k;
  std::map<uint64_t, FolioCount> folios;  // head pfn → counts
  std::map<uint64_t, int64_t> slot_refs;  // swap slot → swap PTEs naming it
  std::ostringstream err;
  int errors = 0;

  void fail(const std::string& s) {
    if (errors++ < 8) err << s << "\n";
  }

  /// Walks one table; returns the number of page tables below it (tables walked
  /// plus PTE tables deposited with PMD tables).
  int64_t walk(const Mm& mm, const PageTablePage& t, Pfn table_pfn, unsigned level, uint64_t base,
               int64_t rss[kNrRss]) {
    const PteCodec& c = k.codec();
    const PhysMem& pm = k.phys();
    int64_t tables = 0;
    int64_t deposit_wanted = 0;  // anon / huge-zero PMD leaves in this PMD table
    for (unsigned i = 0; i < kPtrsPerTable; ++i) {
      const uint64_t e = t[i];
      if (PteCodec::none(e)) continue;
      const uint64_t va = base + (uint64_t{i} << level_shift(level));
      if (!c.present(e)) {
        if (level != 1) {
          fail("non-present entry at level " + std::to_string(level) + ", va " + std::to_string(va));
        } else if (c.is_swap_entry(e)) {
          ++rss[kMmSwapEnts];
          ++slot_refs[c.swp_offset(e)];
          if (!mm.find_vma(VirtAddr(va))) fail("swap entry at va " + std::to_string(va) + " outside every VMA");
        } else if (c.is_migration_pte(e)) {
          fail("migration entry left at va " + std::to_string(va) + " outside a migration");
        } else {
          fail("unknown non-present PTE at va " + std::to_string(va));
        }
        continue;
      }
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
        tables += 1 + walk(mm, pm.table(pfn), pfn, level - 1, va, rss);
        continue;
      }
      if (pm.buddy().is_free(pfn)) {
        fail("frame " + std::to_string(pfn.value()) + " mapped at va " + std::to_string(va) +
             " is free in the buddy allocator");
        continue;
      }
      const Pfn head = pm.folio_head(pfn);
      const Page& hp = pm.page(head);
      if (hp.test(kPgZero)) {  // the zero page / huge zero folio: no counts at all
        if (level == 2) ++deposit_wanted;
        if (c.write(e)) fail("zero page mapped writable at va " + std::to_string(va));
        continue;
      }
      const bool anon = hp.test(kPgAnon);
      const bool hugetlb = hp.test(kPgHugetlb);
      check_vma(mm, va, e, pfn, head, level);
      FolioCount& fc = folios[head.value()];
      if (level == 1) {
        ++fc.pte_maps;
        ++fc.per_page[pfn.value()];
        ++fc.per_mm[mm.mm_id()];
        if (!hugetlb) rss[anon ? kMmAnonPages : kMmFilePages] += 1;
      } else {
        ++fc.pmd_maps;
        ++fc.per_mm[mm.mm_id()];
        if (level == 2 && anon && !hugetlb) ++deposit_wanted;
        if (!hugetlb)
          rss[anon ? kMmAnonPages : kMmFilePages] += int64_t{1} << (level_shift(level) - 12);
      }
    }
    if (level == 2) {
      const int64_t deposited = deposited_tables(pm, table_pfn);
      if (deposited != deposit_wanted)
        fail("PMD table " + std::to_string(table_pfn.value()) + " has " +
             std::to_string(deposited) + " deposited PTE tables for " +
             std::to_string(deposit_wanted) + " anon/huge-zero PMD mappings");
      if (deposited > 0) tables += deposited;
    }
    return tables;
  }

  /// A leaf lies in a VMA; its page sits at the VMA's linear index (anon and file
  /// alike); writable anon pages are PageAnonExclusive; private mappings never
  /// write file pages; shared file pages are writable only once dirtied.
  void check_vma(const Mm& mm, uint64_t va, uint64_t e, Pfn pfn, Pfn head, unsigned level) {
    const PhysMem& pm = k.phys();
    const Page& hp = pm.page(head);
    const std::string where = "va " + std::to_string(va) + " (mm " + std::to_string(mm.mm_id()) + ")";
    const Vma* vma = mm.find_vma(VirtAddr(va));
    if (!vma) {
      fail(where + ": mapped outside every VMA");
      return;
    }
    const uint64_t index = hp.index + (pfn - head);
    if (index != vma->linear_page_index(VirtAddr(va)))
      fail(where + ": page index " + std::to_string(index) + " != linear_page_index " +
           std::to_string(vma->linear_page_index(VirtAddr(va))));
    const bool anon = hp.test(kPgAnon);
    if (!anon && !hp.test(kPgHugetlb)) {
      if (vma->is_anonymous())
        fail(where + ": page-cache folio mapped in an anonymous VMA");
      else if (hp.mapping != static_cast<uint64_t>(vma->file()))
        fail(where + ": folio of file " + std::to_string(hp.mapping) + " mapped in a VMA of file " +
             std::to_string(vma->file()));
    }
    if (!k.codec().write(e)) return;
    if (anon) {
      const Page& p = level == 1 ? pm.page(pfn) : hp;
      if (!p.test(kPgAnonExclusive))
        fail(where + ": writable anon mapping of a page that is not PageAnonExclusive");
    } else if (!vma->test(kVmShared)) {
      fail(where + ": writable mapping of a file page in a private mapping");
    } else if (!hp.test(kPgDirty)) {
      fail(where + ": writable shared file page whose folio is not dirty");
    }
  }
};

}  // namespace

std::string check_invariants(const Kernel& kernel) {
  Recount r{kernel, {}, {}, {}, 0};
  const PhysMem& pm = kernel.phys();
  for (const auto& mmp : kernel.mms()) {
    const Mm& mm = *mmp;
    if (mm.dead) continue;
    int64_t rss[kNrRss] = {0, 0, 0, 0};
    const int64_t tables =
        r.walk(mm, pm.table(mm.pgd()), mm.pgd(), kernel.page_tables_levels(), 0, rss);
    for (int c : {kMmAnonPages, kMmFilePages, kMmSwapEnts}) {
      if (rss[c] != mm.rss(static_cast<RssCounter>(c)))
        r.fail("mm " + std::to_string(mm.mm_id()) + ": rss counter " + std::to_string(c) + " = " +
               std::to_string(mm.rss(static_cast<RssCounter>(c))) + " but page tables map " +
               std::to_string(rss[c]));
    }
    if (tables != mm.nr_pgtables())
      r.fail("mm " + std::to_string(mm.mm_id()) + ": nr_pgtables " +
             std::to_string(mm.nr_pgtables()) + " != " + std::to_string(tables) +
             " page tables in use (walked + deposited)");
  }
  const bool per_page = !kernel.rmap().config().no_page_mapcount;
  const bool mm_id = kernel.rmap().config().mm_id;
  int64_t anon_mapped = 0, anon_thps = 0, file_mapped = 0, file_pmdmapped = 0;
  for (auto& [head, fc] : r.folios) {
    Folio f(const_cast<PhysMem&>(pm), Pfn(head));
    const std::string id = "folio " + std::to_string(head) + " (order " + std::to_string(f.order()) + ")";
    const int64_t maps = fc.pte_maps + fc.pmd_maps;
    if (f.mapcount() != maps)
      r.fail(id + ": folio_mapcount " + std::to_string(f.mapcount()) + " != " + std::to_string(maps) +
             " mappings in page tables");
    // Page-cache folios also hold the cache's nr_pages references.
    const int64_t cache_refs = f.head().test(kPgFile)        ? static_cast<int64_t>(f.nr_pages())
                               : f.head().test(kPgSwapCache) ? 1
                                                             : 0;
    if (f.ref_count() < f.mapcount() + cache_refs)
      r.fail(id + ": refcount " + std::to_string(f.ref_count()) + " < mapcount " +
             std::to_string(f.mapcount()) + " + page-cache references " + std::to_string(cache_refs));
    const bool hugetlb = f.head().test(kPgHugetlb);
    if (f.test_large()) {
      if (f.entire_mapcount() != fc.pmd_maps)
        r.fail(id + ": entire mapcount " + std::to_string(f.entire_mapcount()) + " != " +
               std::to_string(fc.pmd_maps) + " PMD mappings");
      if (per_page && !hugetlb) {
        for (uint64_t i = 0; i < f.nr_pages(); ++i) {
          auto it = fc.per_page.find(head + i);
          const int64_t want = it == fc.per_page.end() ? 0 : it->second;
          if (f.page(i).mapcount != want)
            r.fail(id + ": page " + std::to_string(i) + " mapcount " +
                   std::to_string(f.page(i).mapcount) + " != " + std::to_string(want));
        }
      }
      if (mm_id && !hugetlb) {
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
    if (hugetlb) continue;  // hugetlb pages are not in NR_*_MAPPED
    // NR_*_MAPPED: pages with a mapping (per-page mapcounts), or the whole folio
    // while any part is mapped (NO_PAGE_MAPCOUNT).
    const int64_t nr = static_cast<int64_t>(f.nr_pages());
    const int64_t mapped_pages =
        !f.test_large() ? 1 : (per_page && fc.pmd_maps == 0 ? static_cast<int64_t>(fc.per_page.size()) : nr);
    const int64_t pmd_pages = fc.pmd_maps > 0 ? nr : 0;
    if (f.test_anon()) {
      anon_mapped += mapped_pages;
      anon_thps += pmd_pages;
    } else {
      file_mapped += mapped_pages;
      file_pmdmapped += pmd_pages;
    }
  }
  const VmStat& vs = kernel.vmstat_const();
  auto expect = [&](const char* name, int64_t have, int64_t want) {
    if (have != want)
      r.fail(std::string(name) + " " + std::to_string(have) + " != " + std::to_string(want) +
             " pages mapped");
  };
  expect("NR_ANON_MAPPED", vs.nr_anon_mapped.value(), anon_mapped);
  expect("NR_ANON_THPS", vs.nr_anon_thps.value(), anon_thps);
  expect("NR_FILE_MAPPED", vs.nr_file_mapped.value(), file_mapped);
  expect("NR_FILE_PMDMAPPED", vs.nr_file_pmdmapped.value(), file_pmdmapped);

  // The swap device: each slot's count is the swap PTEs naming it; each swap-cache
  // folio is live, anonymous, PG_swapcache and names its slot back.
  const SwapDevice& swap = kernel.swap();
  for (uint64_t slot = 1; slot < swap.nr_slots(); ++slot) {
    auto it = r.slot_refs.find(slot);
    const int64_t refs = it == r.slot_refs.end() ? 0 : it->second;
    if (static_cast<int64_t>(swap.count(slot)) != refs)
      r.fail("swap slot " + std::to_string(slot) + " count " + std::to_string(swap.count(slot)) +
             " != " + std::to_string(refs) + " swap PTEs");
    const Pfn cached = swap.cached(slot);
    if (!cached.value()) continue;
    const Page& hp = pm.page(cached);
    if (pm.buddy().is_free(cached) || !hp.test(kPgHead) || !hp.test(kPgAnon) ||
        !hp.test(kPgSwapCache) || swap.slot_of(cached) != slot || hp.refcount < 1)
      r.fail("swap slot " + std::to_string(slot) + ": cached folio " +
             std::to_string(cached.value()) + " is not a live swap-cache folio of it");
  }
  for (auto& [slot, refs] : r.slot_refs)
    if (slot == 0 || slot >= swap.nr_slots())
      r.fail("swap entry names slot " + std::to_string(slot) + " outside the device");

  // The page cache: every cached folio is a live page-cache folio of its file at
  // its index, holding the cache's references.
  const PageCache& cache = kernel.page_cache();
  cache.for_each_folio([&](int64_t file, Pfn head) {
    const Page& hp = pm.page(head);
    const std::string id = "page-cache folio " + std::to_string(head.value()) + " of file " +
                           std::to_string(file);
    if (pm.buddy().is_free(head)) {
      r.fail(id + " is free in the buddy allocator");
      return;
    }
    if (!hp.test(kPgHead) || !hp.test(kPgFile) || hp.test(kPgAnon) ||
        hp.mapping != static_cast<uint64_t>(file))
      r.fail(id + ": not a page-cache folio of this file");
    const uint64_t nr = uint64_t{1} << hp.order();
    for (uint64_t i = 0; i < nr; ++i) {
      const auto p = cache.lookup(file, hp.index + i);
      if (!p || *p != head + i) r.fail(id + ": page cache entry " + std::to_string(hp.index + i) +
                                       " does not name page " + std::to_string(i));
    }
    if (hp.refcount < static_cast<int32_t>(nr))
      r.fail(id + ": refcount " + std::to_string(hp.refcount) + " below the cache's " +
             std::to_string(nr) + " references");
  });
  return r.err.str();
}

}  // namespace tlbsim::mm
