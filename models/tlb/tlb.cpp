#include "models/tlb/tlb.h"

#include <bit>
#include <stdexcept>
#include <utility>

namespace tlbsim {

namespace {

[[noreturn]] void bad_geometry(const TlbGeometry& g, const std::string& why) {
  throw std::invalid_argument("tlb '" + g.name + "': " + why);
}

}  // namespace

Tlb::Tlb(TlbGeometry geometry) : m_geometry(std::move(geometry)) {
  const TlbGeometry& g = m_geometry;
  if (g.entries == 0 || g.ways == 0) {
    bad_geometry(g, "entries and ways must be positive");
  }
  if (g.entries % g.ways != 0) {
    bad_geometry(g, "entries (" + std::to_string(g.entries) + ") is not a multiple of ways (" +
                        std::to_string(g.ways) + ")");
  }
  if (g.sizes.empty()) {
    bad_geometry(g, "holds no page size");
  }
  for (PageSize s : g.sizes) {
    const uint8_t bit = uint8_t{1} << static_cast<unsigned>(s);
    if (m_size_mask & bit) {
      bad_geometry(g, "page size " + std::string(page_size_name(s)) + " listed twice");
    }
    m_size_mask |= bit;
    m_sizes[m_num_sizes] = s;
    m_shifts[m_num_sizes] = static_cast<uint8_t>(page_shift(s));
    m_code_shift[make_key(0, s)] = static_cast<uint8_t>(page_shift(s));
    ++m_num_sizes;
  }

  m_ways = g.ways;
  m_sets = g.entries / g.ways;
  m_sets_pow2 = std::has_single_bit(m_sets);
  m_set_mask = m_sets - 1;
  m_keys.assign(g.entries, 0);
  m_set_used.assign(m_sets, 0);
  m_tags.assign(g.entries + 16, 0);  // match16() may read past the last set.
  m_entries.assign(g.entries, TlbEntry{});

  // Tree-PLRU needs a complete binary tree over the ways, and keeps its ways-1 node
  // bits in one word; any other associativity (a 48-entry fully associative arm64 L1,
  // a 12-way STLB) uses true LRU instead — replacement() reports the policy in force.
  m_repl = g.repl;
  if (m_repl == Replacement::kTreePlru && (!std::has_single_bit(m_ways) || m_ways > 64)) {
    m_repl = Replacement::kLru;
  }
  switch (m_repl) {
    case Replacement::kLru:
      m_last_use.assign(g.entries, 0);
      break;
    case Replacement::kTreePlru:
      m_plru.assign(m_sets, 0);
      m_way_shift = static_cast<unsigned>(std::countr_zero(m_ways));
      break;
    case Replacement::kRandom:
      // xorshift64 must not start at 0; any other seed, 0 included, gives a fixed stream.
      m_rng = g.seed != 0 ? g.seed : 0x9e3779b97f4a7c15ull;
      break;
  }
}

TlbEntry* Tlb::insert(const TlbEntry& entry, TlbEntry* evicted_out) {
  if (!holds(entry.size)) {
    throw std::logic_error("tlb '" + m_geometry.name + "': insert of a " +
                           std::string(page_size_name(entry.size)) +
                           " entry, a size it does not hold");
  }
  const uint64_t want = make_key(entry.vtag, entry.size);
  const uint32_t set = set_of(entry.vtag);
  const uint32_t base = set * m_ways;

  const uint32_t same = scan_set(base, want, [&entry](const TlbEntry& e) {
    return e.global == entry.global && (e.global || e.asid == entry.asid);
  });
  uint32_t slot = same;
  bool displaced = true;
  if (same != kNone) {
    ++stats.refills;
  } else if (m_set_used[set] < m_ways) {
    slot = base;
    while (m_keys[slot] != 0) {
      ++slot;
    }
    displaced = false;
    ++m_set_used[set];
    ++m_occupancy;
  } else {
    slot = base + victim(set);
    ++stats.evictions;
  }
  if (evicted_out != nullptr) {
    *evicted_out = displaced ? m_entries[slot] : TlbEntry{};
  }
  if (displaced) {
    --m_count_by_size[static_cast<size_t>(m_entries[slot].size)];
    if (m_entries[slot].tracked) m_res->left(m_entries[slot]);
  }
  ++m_count_by_size[static_cast<size_t>(entry.size)];

  m_entries[slot] = entry;
  m_entries[slot].valid = true;
  m_entries[slot].tracked = m_res != nullptr && m_res->filled(m_res_cpu, m_entries[slot]);
  m_keys[slot] = want;
  m_tags[slot] = micro_tag(want);
  touch(slot);
  m_hint = slot;
  ++stats.inserts;
  return &m_entries[slot];
}

uint32_t Tlb::victim(uint32_t set) {
  const uint32_t base = set * m_ways;
  switch (m_repl) {
    case Replacement::kLru: {
      // Keep the minimum in a register: indexing by the running argmin would make every
      // iteration wait for the previous load.
      const uint64_t* last_use = m_last_use.data() + base;
      uint32_t oldest = 0;
      uint64_t oldest_use = last_use[0];
      for (uint32_t w = 1; w < m_ways; ++w) {
        if (last_use[w] < oldest_use) {
          oldest = w;
          oldest_use = last_use[w];
        }
      }
      return oldest;
    }
    case Replacement::kTreePlru: {
      const uint64_t bits = m_plru[set];
      uint32_t node = 0;
      uint32_t lo = 0;
      for (uint32_t half = m_ways / 2; half >= 1; half /= 2) {
        if ((bits >> node) & 1u) {
          node = 2 * node + 2;
          lo += half;
        } else {
          node = 2 * node + 1;
        }
      }
      return lo;
    }
    case Replacement::kRandom:
      m_rng ^= m_rng << 13;
      m_rng ^= m_rng >> 7;
      m_rng ^= m_rng << 17;
      return static_cast<uint32_t>(m_rng % m_ways);
  }
  return 0;
}

}  // namespace tlbsim
