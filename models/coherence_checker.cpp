#include "models/coherence_checker.h"

#include <stdexcept>

#include "base/log.h"

namespace tlbsim {

void CoherenceChecker::report(unsigned cpu, VirtAddr va, const TlbEntry& e) {
  ++m_violations;
  const uint64_t pfn = e.pfn.value();
  StaleTlbViolation v{cpu, va.value(), pfn, m_freed_by[pfn] ? m_freed_by[pfn] : "?"};
  if (m_first.size() < 16) {
    log::get("coherence")->warn("stale TLB entry used: cpu {} va {:#x} frame {:#x} freed by {}",
                                cpu, v.va, pfn, v.freed_by);
    m_first.push_back(v);
  }
  if (m_fail_fast)
    throw std::runtime_error("stale-TLB violation: cpu " + std::to_string(cpu) + " used a "
                             "translation to frame " + std::to_string(pfn) + " freed by " +
                             v.freed_by);
}

}  // namespace tlbsim
