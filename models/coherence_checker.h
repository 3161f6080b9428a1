// TLB coherence checker (DESIGN §5). Every frame carries a generation that
// advances whenever the frame returns to the allocator; every TLB fill remembers the
// generation of its frame. A TLB hit whose remembered generation differs from the
// frame's current one used a translation to a freed (possibly reused) frame: a
// stale-TLB violation, reported with the CPU, the address, the frame and the kernel
// path that freed it. Walk-cache entries are checked the same way (a walk that
// continues from a cached pointer to a freed page table), and the arm64 model asks
// at every contpte break-before-make whether a TLB still holds the block.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/stats.h"
#include "mm/phys_mem.h"
#include "models/cpu/core_mmu.h"
#include "models/tlb/tlb.h"

namespace tlbsim {

struct StaleTlbViolation {
  unsigned cpu;
  uint64_t va;
  uint64_t pfn;
  std::string freed_by;
  StaleKind kind = StaleKind::kTlb;
};

class CoherenceChecker final : public mm::FrameObserver {
 public:
  CoherenceChecker(uint64_t nr_frames, bool fail_fast, StatGroup* stats_parent)
      : m_gen(nr_frames, 0), m_freed_by(nr_frames, nullptr), m_fail_fast(fail_fast),
        m_stats(stats_parent, "coherence") {}

  const uint32_t* generations() const { return m_gen.data(); }

  void on_frames_freed(Pfn pfn, uint64_t nr, const char* what) override {
    for (uint64_t i = 0; i < nr; ++i) {
      ++m_gen[pfn.value() + i];
      m_freed_by[pfn.value() + i] = what;
    }
    m_frames_freed += nr;
  }
  void on_frames_allocated(Pfn, uint64_t) override {}

  /// The core MMUs' stale hook (models/cpu/core_mmu.h StaleHook).
  static void on_stale(void* self, unsigned cpu, VirtAddr va, Pfn pfn, StaleKind kind) {
    static_cast<CoherenceChecker*>(self)->report(cpu, va, pfn, kind);
  }
  void report(unsigned cpu, VirtAddr va, Pfn pfn, StaleKind kind);

  uint64_t violations() const { return m_violations; }
  const std::vector<StaleTlbViolation>& first_violations() const { return m_first; }

 private:
  std::vector<uint32_t> m_gen;
  std::vector<const char*> m_freed_by;
  bool m_fail_fast;
  std::vector<StaleTlbViolation> m_first;
  uint64_t m_violations = 0;
  uint64_t m_walk_cache_violations = 0;
  uint64_t m_bbm_violations = 0;
  uint64_t m_freed_before_invalidate = 0;
  uint64_t m_frames_freed = 0;
  StatGroup m_stats;
  CounterRef m_violations_stat{&m_stats, "stale_tlb_violations", "count",
                               "Stale translations used (all kinds below).",
                               &m_violations};
  CounterRef m_walk_cache_stat{&m_stats, "walk_cache_violations", "count",
                               "Walks continued from a cached pointer to a freed page table.",
                               &m_walk_cache_violations};
  CounterRef m_bbm_stat{&m_stats, "break_before_make_violations", "count",
                        "contpte entries rewritten while a TLB still held the block.",
                        &m_bbm_violations};
  CounterRef m_fbi_stat{&m_stats, "freed_before_invalidate_violations", "count",
                        "By-VA invalidations that found an entry whose frame was already freed.",
                        &m_freed_before_invalidate};
  CounterRef m_freed_stat{&m_stats, "frames_freed", "frames", "Frames returned to the allocator.",
                          &m_frames_freed};
};

}  // namespace tlbsim
