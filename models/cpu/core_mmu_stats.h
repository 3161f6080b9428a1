// Statistics both core MMUs register (x86::X86CoreMmu, arm64::Arm64CoreMmu): the
// counters of each TLB structure and of the page walker, named once here.
#pragma once

#include <memory>
#include <vector>

#include "base/stats.h"
#include "models/cpu/core_mmu.h"
#include "models/tlb/tlb.h"

namespace tlbsim {

using StatRefs = std::vector<std::unique_ptr<StatBase>>;

/// lookups, hits, misses, hits per page size held, inserts, evictions,
/// invalidations and miss_rate of TLB `t` under group `g`.
void register_tlb_stats(StatGroup& g, const Tlb& t, StatRefs& refs);

/// walks, faults, reads (in all, per page-table level and per cache level), cycles,
/// ad_updates and the latency histogram under group `w`. `level_names[l]` names
/// page-table level l (1 = leaf table) in the architecture's terms ("pte", "pmd", ...
/// on x86, "l3", "l2", ... on arm64); empty names are skipped. Returns the histogram.
Histogram* register_walker_stats(StatGroup& w, const CoreMmuCounters& c,
                                 const std::array<const char*, 6>& level_names, StatRefs& refs,
                                 std::vector<std::unique_ptr<StatGroup>>& groups);

}  // namespace tlbsim
