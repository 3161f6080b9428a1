// The buddy allocator's state as statistics: free blocks per order and the
// fragmentation index Linux exposes (/sys/kernel/debug/extfrag/unusable_index).
#pragma once

#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "base/stats.h"
#include "mm/phys_mem.h"

namespace tlbsim::mm {

class BuddyStats : public StatGroup {
 public:
  BuddyStats(StatGroup* parent, const PhysMem& pm) : StatGroup(parent, "buddy") {
    const BuddyAllocator& b = pm.buddy();
    m_stats.push_back(std::make_unique<Formula>(this, "free_pages", "pages", "Free 4 KiB frames.",
                                                [&b] { return static_cast<double>(b.nr_free_pages()); }));
    m_stats.push_back(std::make_unique<Formula>(
        this, "largest_free_order", "order", "Largest order with a free block (-1: none).",
        [&b] { return static_cast<double>(b.largest_free_order()); }));
    for (unsigned o = 0; o <= b.max_order(); ++o) {
      m_names.push_back("free_blocks_order" + std::to_string(o));
      m_stats.push_back(std::make_unique<Formula>(this, m_names.back().c_str(), "blocks",
                                                  "Free blocks of this order.",
                                                  [&b, o] { return static_cast<double>(b.nr_free(o)); }));
    }
    for (unsigned o : {4u, 9u}) {
      if (o > b.max_order()) continue;
      m_names.push_back("unusable_index_order" + std::to_string(o));
      m_stats.push_back(std::make_unique<Formula>(
          this, m_names.back().c_str(), "ratio",
          "Fraction of free memory unusable for an allocation of this order (extfrag unusable_index).",
          [&b, o] { return b.unusable_free_index(o); }));
    }
  }

 private:
  std::deque<std::string> m_names;  // stat names (StatBase keeps the pointer; deque keeps it valid)
  std::vector<std::unique_ptr<StatBase>> m_stats;
};

}  // namespace tlbsim::mm
