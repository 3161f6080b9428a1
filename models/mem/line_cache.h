// A tag-only set-associative cache of 64-byte lines with LRU, used for the
// latency of page-walk reads (PTE lines in L1/L2/LLC). No data: entries live in
// the frames; this only decides where a read would hit.
#pragma once

#include <cstdint>
#include <vector>

namespace tlbsim {

class LineCache {
 public:
  /// `bytes` of capacity with `ways` ways (0 bytes = no cache: always misses).
  LineCache(uint64_t bytes, unsigned ways) : m_ways(ways) {
    const uint64_t lines = bytes / 64;
    m_sets = lines >= ways && ways ? static_cast<uint32_t>(lines / ways) : 0;
    m_tags.assign(static_cast<size_t>(m_sets) * ways, ~0ull);
    m_stamp.assign(m_tags.size(), 0);
  }

  /// Looks up the line of physical address `pa`; inserts it on a miss.
  bool access(uint64_t pa) {
    if (!m_sets) return false;
    const uint64_t line = pa >> 6;
    const size_t base = static_cast<size_t>(line % m_sets) * m_ways;
    size_t victim = base;
    for (size_t w = base; w < base + m_ways; ++w) {
      if (m_tags[w] == line) {
        m_stamp[w] = ++m_clock;
        return true;
      }
      if (m_stamp[w] < m_stamp[victim]) victim = w;
    }
    m_tags[victim] = line;
    m_stamp[victim] = ++m_clock;
    return false;
  }

 private:
  unsigned m_ways;
  uint32_t m_sets = 0;
  uint64_t m_clock = 0;
  std::vector<uint64_t> m_tags;
  std::vector<uint64_t> m_stamp;
};

}  // namespace tlbsim
