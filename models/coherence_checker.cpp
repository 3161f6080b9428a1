#include "models/coherence_checker.h"

#include <stdexcept>

#include "base/log.h"

namespace tlbsim {

void CoherenceChecker::report(unsigned cpu, VirtAddr va, Pfn frame, StaleKind kind) {
  ++m_violations;
  if (kind == StaleKind::kWalkCache) ++m_walk_cache_violations;
  if (kind == StaleKind::kBreakBeforeMake) ++m_bbm_violations;
  if (kind == StaleKind::kFreedBeforeInvalidate) ++m_freed_before_invalidate;
  const uint64_t pfn = frame.value();
  static const char* kWhat[] = {"stale TLB entry used", "stale walk-cache entry used",
                                "TLB entry alive across break-before-make",
                                "TLB entry outlived its frame until a by-VA invalidation"};
  const char* what = kWhat[static_cast<size_t>(kind)];
  const char* freed_by = kind == StaleKind::kBreakBeforeMake ? "contpte_convert (no flush)"
                         : m_freed_by[pfn]                   ? m_freed_by[pfn]
                                                             : "?";
  StaleTlbViolation v{cpu, va.value(), pfn, freed_by, kind};
  if (m_first.size() < 16) {
    log::get("coherence")->warn("{}: cpu {} va {:#x} frame {:#x} freed by {}", what, cpu, v.va,
                                pfn, v.freed_by);
    m_first.push_back(v);
  }
  if (m_fail_fast)
    throw std::runtime_error(std::string(what) + ": cpu " + std::to_string(cpu) +
                             " used a translation to frame " + std::to_string(pfn) + " (" +
                             v.freed_by + ")");
}

}  // namespace tlbsim
