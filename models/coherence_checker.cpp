#include "models/coherence_checker.h"

#include <stdexcept>

#include "base/log.h"
#include "mm/page_table.h"

namespace tlbsim {

namespace {
const char* const kWhat[] = {"stale TLB entry used", "stale walk-cache entry used",
                             "TLB entry alive across break-before-make",
                             "TLB entry outlived its frame until a by-VA invalidation",
                             "TLB entry granted what the current PTE does not"};
}  // namespace

void CoherenceChecker::report(unsigned cpu, VirtAddr va, Pfn frame, StaleKind kind) {
  const uint64_t pfn = frame.value();
  const char* freed_by = kind == StaleKind::kBreakBeforeMake ? "contpte_convert (no flush)"
                         : m_freed_by[pfn]                   ? m_freed_by[pfn]
                                                             : "?";
  record(StaleTlbViolation{cpu, va.value(), pfn, freed_by, kind});
}

void CoherenceChecker::record(StaleTlbViolation v) {
  ++m_violations;
  if (v.kind == StaleKind::kWalkCache) ++m_walk_cache_violations;
  if (v.kind == StaleKind::kBreakBeforeMake) ++m_bbm_violations;
  if (v.kind == StaleKind::kFreedBeforeInvalidate) ++m_freed_before_invalidate;
  if (v.kind == StaleKind::kPermission) ++m_permission_violations;
  const char* what = kWhat[static_cast<size_t>(v.kind)];
  if (m_first.size() < 16) {
    log::get("coherence")->warn("{}: cpu {} va {:#x} frame {:#x}: {}", what, v.cpu, v.va, v.pfn,
                                v.freed_by);
    m_first.push_back(v);
  }
  if (m_fail_fast)
    throw std::runtime_error(std::string(what) + ": cpu " + std::to_string(v.cpu) + " va " +
                             std::to_string(v.va) + " frame " + std::to_string(v.pfn) + " (" +
                             v.freed_by + ")");
}

void CoherenceChecker::check_permission(unsigned cpu, VirtAddr va, Access kind,
                                        const TlbEntry& e, Pfn root) {
  // The walk the hardware would do now, from the same root, with the rights
  // combined over the levels as the walkers do (x86: R/W and U/S at every level, NX
  // at any; arm64 table descriptors carry no restrictions in Linux's tables). Each
  // CPU remembers the PMD entry of its last walk that reached a PTE table: while
  // that entry is unchanged and its table frame was not freed, the PTE table is the
  // same and only the PTE is read (a walk cache for the checker; hits are hot).
  if (cpu >= m_memo.size()) {
    m_memo.resize(cpu + 1);
    m_page_memo.resize(cpu + 1);
  }
  // Page tables only change inside kernel calls: the same page, frame and access
  // as the last check on this CPU, with no call begun or ended since, is fine.
  PageMemo& last = m_page_memo[cpu];
  const uint8_t bit = uint8_t(1u << static_cast<unsigned>(kind));
  const uint64_t vpage = va.value() >> kPageShift;
  if (last.vpage == vpage && last.epoch == m_epoch && last.root == root &&
      last.frame == e.pfn_for(va) && (last.allowed & bit))
    return;
  const bool x86 = m_codec.arch() == mm::Arch::kX86_64;
  PmdMemo& memo = m_memo[cpu];
  const uint64_t region = va.value() >> mm::level_shift(2);
  Pfn table = root;
  unsigned level = m_levels;
  uint64_t leaf = 0;
  bool rw = true, nx = false;
  if (memo.pmdp && memo.root == root && memo.region == region &&
      m_gen[memo.pmd_table.value()] == memo.pmd_gen && *memo.pmdp == memo.pmd) {
    table = m_codec.pfn(memo.pmd);
    level = 1;
    rw = memo.rw;
    nx = memo.nx;
  }
  for (;;) {
    if (!m_pm->is_page_table(table)) break;
    const uint64_t pa = (table.value() << kPageShift) + uint64_t{8} * mm::level_index(va, level);
    const uint64_t* dp = m_pm->entry_ptr(PhysAddr(pa));
    const uint64_t d = *dp;
    if (!m_codec.valid(d)) break;
    if (x86) {
      rw = rw && (d & mm::x86_bits::kRw);
      nx = nx || (d & mm::x86_bits::kNx);
    }
    if (level == 1 || m_codec.huge(d)) {
      leaf = d;
      break;
    }
    if (level == 2) memo = PmdMemo{root, region, table, m_gen[table.value()], dp, d, rw, nx};
    table = m_codec.pfn(d);
    --level;
  }
  const char* why = nullptr;
  if (!leaf) {
    why = "the PTE is not valid (not present, or PROT_NONE)";
  } else {
    const uint64_t off = (va.value() & (mm::level_entry_size(level) - 1)) >> kPageShift;
    const bool writable = x86 ? rw : m_codec.write(leaf);
    const bool exec = x86 ? !nx : !(leaf & mm::arm64_bits::kUxn);
    if (m_codec.pfn(leaf) + off != e.pfn_for(va)) {
      why = "the PTE maps another frame";
    } else if (kind == Access::kWrite && !writable) {
      why = "a store through a read-only PTE";
    } else if (kind == Access::kExec && !exec) {
      why = "a fetch through a no-exec PTE";
    }
  }
  if (!why) {
    if (last.vpage != vpage || last.epoch != m_epoch || last.root != root ||
        last.frame != e.pfn_for(va))
      last = PageMemo{root, vpage, m_epoch, e.pfn_for(va), 0};
    last.allowed |= bit;
    return;
  }
  if (m_activity->call_in_flight(cpu)) {
    ++m_permission_in_flight;
    return;
  }
  record(StaleTlbViolation{cpu, va.value(), e.pfn_for(va).value(),
                           std::string(why) + "; " + m_activity->describe(cpu),
                           StaleKind::kPermission});
}

}  // namespace tlbsim
