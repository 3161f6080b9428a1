// A tag-only set-associative cache of 64-byte lines: no data (entries live in the
// simulated frames), only where a reference would hit. One of these is each level
// of the memory hierarchy (models/mem/cache_hierarchy.h).
//
// Hot path (called per page-walk read, per user data access, per kernel metadata
// reference): no allocation, no division. Sets are a power of two and indexed by the
// low bits of the line number; each set keeps its ways in most-recently-used order
// (32-bit tags), so a hit near the front costs a few compares and LRU replacement is
// "drop the last way" — no per-way stamps to scan.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>

namespace tlbsim {

class TagCache {
 public:
  TagCache() = default;
  /// `bytes` of capacity in `ways` ways. bytes / 64 / ways must be a power of two
  /// (checked by the caller's parameter validation); 0 bytes = no cache.
  TagCache(uint64_t bytes, unsigned ways) { configure(bytes, ways); }

  void configure(uint64_t bytes, unsigned ways) {
    m_ways = ways ? ways : 1;
    const uint64_t sets = bytes / 64 / m_ways;
    m_sets = static_cast<uint32_t>(sets);
    m_set_bits = 0;
    while ((uint64_t{1} << m_set_bits) < sets) ++m_set_bits;
    m_mask = m_sets ? m_sets - 1 : 0;
    m_tags.reset(m_sets ? new uint32_t[static_cast<size_t>(m_sets) * m_ways] : nullptr);
    m_used.reset(m_sets ? new uint8_t[m_sets] : nullptr);
    clear();
  }
  bool present() const { return m_sets != 0; }
  uint64_t bytes() const { return uint64_t{m_sets} * m_ways * 64; }
  unsigned ways() const { return m_ways; }

  /// True when `bytes`/`ways` give a power-of-two number of sets (or no cache).
  static bool valid_geometry(uint64_t bytes, unsigned ways) {
    if (bytes == 0) return true;
    if (ways == 0 || bytes % (64ull * ways)) return false;
    const uint64_t sets = bytes / 64 / ways;
    return sets && (sets & (sets - 1)) == 0 && ways <= 255;
  }

  /// Looks up line `line` (physical address >> 6); on a miss inserts it (evicting
  /// the set's least recently used line). Returns whether it hit.
  [[gnu::always_inline]] bool access(uint64_t line) {
    if (!m_sets) return false;
    const uint32_t set = static_cast<uint32_t>(line) & m_mask;
    const uint32_t tag = static_cast<uint32_t>(line >> m_set_bits);
    uint32_t* t = &m_tags[static_cast<size_t>(set) * m_ways];
    const unsigned used = m_used[set];
    for (unsigned w = 0; w < used; ++w) {
      if (t[w] == tag) {
        if (w) {
          std::memmove(t + 1, t, w * sizeof(uint32_t));
          t[0] = tag;
        }
        return true;
      }
    }
    const unsigned keep = used < m_ways ? used : m_ways - 1;
    std::memmove(t + 1, t, keep * sizeof(uint32_t));
    t[0] = tag;
    if (used < m_ways) m_used[set] = static_cast<uint8_t>(used + 1);
    return false;
  }
  /// Inserts `line` as most recently used without asking whether it was there
  /// (prefetches and whole-page fills).
  void insert(uint64_t line) { access(line); }
  /// Whether `line` is cached (no replacement update).
  bool contains(uint64_t line) const {
    if (!m_sets) return false;
    const uint32_t set = static_cast<uint32_t>(line) & m_mask;
    const uint32_t tag = static_cast<uint32_t>(line >> m_set_bits);
    const uint32_t* t = &m_tags[static_cast<size_t>(set) * m_ways];
    return std::find(t, t + m_used[set], tag) != t + m_used[set];
  }
  void clear() {
    if (m_sets) std::memset(m_used.get(), 0, m_sets);
  }

 private:
  unsigned m_ways = 1;
  uint32_t m_sets = 0;
  uint32_t m_mask = 0;
  unsigned m_set_bits = 0;
  std::unique_ptr<uint32_t[]> m_tags;
  std::unique_ptr<uint8_t[]> m_used;
};

}  // namespace tlbsim
