// Page tables in simulated frames. Level numbering follows the walk from the
// leaf: 1 = PTE table, 2 = PMD, 3 = PUD, 4 = P4D/PGD (4-level), 5 = PGD (LA57).
// Each table is one 4 KiB frame of 512 entries in the architecture's format.
#pragma once

#include <cstdint>

#include "base/addr.h"
#include "mm/exec_context.h"
#include "mm/phys_mem.h"
#include "mm/pte.h"

namespace tlbsim::mm {

class Mm;

/// Shift of the VA bits that index a table at `level` (PTE: 12, PMD: 21, ...).
constexpr unsigned level_shift(unsigned level) { return 12 + 9 * (level - 1); }
/// Bytes mapped by one entry at `level` (PTE: 4 KiB, PMD: 2 MiB, PUD: 1 GiB).
constexpr uint64_t level_entry_size(unsigned level) { return uint64_t{1} << level_shift(level); }
/// Index of `va` in a table at `level`.
constexpr unsigned level_index(VirtAddr va, unsigned level) {
  return static_cast<unsigned>((va.value() >> level_shift(level)) & 511);
}
inline constexpr uint64_t kPmdSize = level_entry_size(2);
inline constexpr uint64_t kPudSize = level_entry_size(3);

class PageTables {
 public:
  PageTables(PhysMem& pm, const PteCodec& codec, unsigned levels)
      : m_pm(pm), m_codec(codec), m_levels(levels) {}

  unsigned levels() const { return m_levels; }

  /// pgd_alloc(): the top-level table of a new mm. False when out of memory.
  bool pgd_alloc(ExecContext& ctx, Mm& mm);
  /// pgd_free(): after every lower table is gone.
  void pgd_free(Mm& mm);

  /// The entry for `va` at `level`, walking from the pgd. With `alloc`, missing
  /// intermediate tables are allocated (pud_alloc/pmd_alloc/pte_alloc); without,
  /// nullptr when a table is missing. Stops (nullptr) at a huge leaf above `level`
  /// unless `level` is that leaf's level. *oom is set when allocation failed;
  /// *table (if given) is the table holding the returned entry. Missing tables are
  /// installed under the level's lock (mm->page_table_lock, or the PMD table's
  /// lock for a PTE table), re-checked after waiting for it.
  uint64_t* walk(ExecContext& ctx, Mm& mm, VirtAddr va, unsigned level, bool alloc,
                 bool* oom = nullptr, Pfn* table = nullptr);

  /// The table a non-leaf entry points at.
  PageTablePage& table_of(uint64_t entry) { return m_pm.table(m_codec.pfn(entry)); }
  PageTablePage& table(Pfn pfn) { return m_pm.table(pfn); }

 private:
  PhysMem& m_pm;
  const PteCodec& m_codec;
  unsigned m_levels;
};

/// pte_offset_map_lock(mm, pmd, addr, &ptl): takes the lock of the PTE table `*pmd`
/// points at and returns it with the table in *table; nullptr when `*pmd` holds no
/// PTE table any more (none or huge: a racing THP fault, split or table reclaim),
/// the caller then retries the fault. Re-checks after waiting, as pmd_same() does.
inline KernelLock* pte_offset_map_lock(ExecContext& ctx, PhysMem& pm, const PteCodec& c,
                                       const uint64_t* pmd, Pfn* table) {
  for (;;) {
    const uint64_t e = *pmd;
    if (PteCodec::none(e) || c.huge(e)) return nullptr;
    KernelLock& l = pm.ptl(c.pfn(e));
    ctx.lock(l);
    if (*pmd == e) {
      *table = c.pfn(e);
      return &l;
    }
    ctx.unlock(l);
  }
}

}  // namespace tlbsim::mm
