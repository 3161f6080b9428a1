// The page-range descent every range operation shares — zap (unmap_page_range),
// change_protection, MADV_FREE, MADV_COLD/PAGEOUT and free_pgtables: the
// zap_p4d_range → zap_pud_range → zap_pmd_range → zap_pte_range shape of
// mm/memory.c, written once. Each user supplies a visitor for what it does at the
// PMD and PTE levels; the descent itself (range clamping per entry, skipping none
// entries, stepping into child tables) lives here, lockless as Linux's is (the
// upper tables of a VMA's range are never freed while its lock is held).
//
// A visitor V provides
//   bool pmd_entry(Pfn pmd_table, uint64_t* pmd, VirtAddr addr, VirtAddr next)
//       every PMD entry of the range, before any descent (none ones too). Returns
//       true when it dealt with the entry itself (a huge PMD, a split), false to
//       walk the PTE table the entry then points at (if any).
//   void pte_range(uint64_t* pmd, VirtAddr addr, VirtAddr next)
//       the PTEs of [addr, next), all inside the PTE table `*pmd` points at. The
//       visitor takes that table's lock with pte_offset_map_lock(), which re-checks
//       `*pmd` (another CPU may have changed it while this one waited).
// and optionally
//   void table_done(Pfn parent, unsigned level, uint64_t* entry, VirtAddr addr, VirtAddr next)
//       post-order: `entry` (at `level` ≥ 2 of table `parent`) pointed at a table
//       that was just walked for [addr, next) (free_pgtables frees it here).
//   void pud_leaf(uint64_t* pud, VirtAddr addr, VirtAddr next)
//       a huge entry above the PMD level (PUD-mapped pages); without it the walk
//       refuses with "not supported yet".
#pragma once

#include <algorithm>

#include "base/error.h"
#include "mm/page_table.h"
#include "mm/phys_mem.h"
#include "mm/pte.h"

namespace tlbsim::mm {

template <class V>
void walk_page_range(PhysMem& pm, const PteCodec& codec, Pfn table, unsigned level, VirtAddr start,
                     VirtAddr end, V& v) {
  const uint64_t size = level_entry_size(level);
  PageTablePage& t = pm.table(table);
  for (VirtAddr addr = start; addr < end;) {
    const VirtAddr next = std::min(end, addr.align_down(size) + size);
    uint64_t* ep = &t[level_index(addr, level)];
    if (level == 2 && v.pmd_entry(table, ep, addr, next)) {
      addr = next;
      continue;
    }
    const uint64_t e = *ep;
    if (PteCodec::none(e)) {
      addr = next;
      continue;
    }
    if (level >= 3 && codec.huge(e)) {
      if constexpr (requires { v.pud_leaf(ep, addr, next); }) {
        v.pud_leaf(ep, addr, next);
      } else {
        throw InputError("", "not supported yet: range operations on PUD-mapped pages");
      }
      addr = next;
      continue;
    }
    const Pfn child = codec.pfn(e);
    if (level == 2) {
      v.pte_range(ep, addr, next);
    } else {
      walk_page_range(pm, codec, child, level - 1, addr, next, v);
    }
    if constexpr (requires { v.table_done(table, level, ep, addr, next); })
      v.table_done(table, level, ep, addr, next);
    addr = next;
  }
}

}  // namespace tlbsim::mm
