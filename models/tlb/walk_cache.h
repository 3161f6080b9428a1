// WalkCache: a paging-structure cache — x86's PML4E/PDPTE/PDE caches, arm64's walk
// cache of intermediate table descriptors. An entry says "for this ASID, the table that
// translates the next level below the @level entry covering this VA lives at frame P",
// so a walk that hits at level L reads only the entries of levels L-1 .. 1.
//
// Level numbering (x86 style, counted from the leaf):
//   level 1  PTE   (leaf; held by the TLB, never here)
//   level 2  PDE   one entry covers 2 MiB    (arm64 4 KiB granule: level 2 descriptor)
//   level 3  PDPTE one entry covers 1 GiB    (arm64: level 1)
//   level 4  PML4E one entry covers 512 GiB  (arm64: level 0)
//   level 5  PML5E one entry covers 256 TiB  (x86 LA57 only)
// i.e. ours = 4 - arm64's for 4-level tables. What one entry covers depends on the
// granule on arm64 (16 KiB: 32 MiB / 64 GiB / 128 TiB), so the coverage shift of each
// level is part of the geometry; a level whose shift is 0 is not cached here.
// Intel keeps one cache per level with its own size: build one WalkCache per level,
// each with a single non-zero shift. arm64 mixes levels in one structure.
//
// Contracts: as Tlb — one entry per (asid, level, prefix), every entry that leaves is
// reported to evicted_out / on_drop if asked, lookup does no allocation.
// Architectural note for the callers: x86 INVLPG drops *all* paging-structure-cache
// entries of the current PCID (SDM 4.10.4.1), which is invalidate_asid(); arm64 TLBI
// VAE1 drops the walk-cache entries of that VA (invalidate_va), TLBI VALE1 none.
#pragma once

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "base/addr.h"
#include "models/tlb/residency.h"
#include "models/tlb/tlb.h"

namespace tlbsim {

inline constexpr unsigned kMaxWalkLevel = 5;

/// Coverage shift per level, indexed by level (0 and 1 unused): x86-64 and arm64 with a
/// 4 KiB granule.
inline constexpr std::array<uint8_t, kMaxWalkLevel + 1> kWalkShifts4K = {0, 0, 21, 30, 39, 48};

/// Shape of one paging-structure cache. Validated by the WalkCache constructor.
struct WalkCacheGeometry {
  std::string name;       ///< For messages and stat paths, e.g. "pde_cache".
  uint32_t entries = 32;  ///< Total entries; a multiple of ways.
  uint32_t ways = 32;     ///< Associativity; ways == entries is fully associative.
  /// [level] = log2 of the bytes one entry of that level covers; 0 = level not cached.
  std::array<uint8_t, kMaxWalkLevel + 1> level_shift = kWalkShifts4K;
  uint32_t hit_latency_cycles = 1;  ///< Carried for the timed wrapper; unused here.
};

/// One cached non-leaf translation step.
struct WalkCacheEntry {
  uint64_t prefix = 0;  ///< VA >> level_shift[level]: which entry of that level.
  Pfn table;            ///< Frame of the next-level table this entry points to.
  uint16_t asid = 0;
  uint8_t level = 0;
  bool valid : 1 = false;
  bool tracked : 1 = false;  ///< Counted by the attached Residency (set by insert()).
  uint32_t fill_id = 0;  ///< Opaque, set by the owner; names the fill for a checker.

  /// First virtual address covered, given the cache's shift for this level.
  constexpr VirtAddr base(unsigned shift) const { return VirtAddr(prefix << shift); }
};

/// Event counts of one WalkCache, indexed by level.
struct WalkCacheStats {
  std::array<uint64_t, kMaxWalkLevel + 1> hits{};
  std::array<uint64_t, kMaxWalkLevel + 1> misses{};
  uint64_t inserts = 0;
  uint64_t refills = 0;        ///< Inserts that overwrote the entry with the same key.
  uint64_t evictions = 0;      ///< Valid entries displaced by LRU replacement.
  uint64_t invalidations = 0;  ///< Entries dropped by the invalidate_* calls.
};

class WalkCache {
 public:
  /// Builds an empty cache. Throws std::invalid_argument if @geometry is inconsistent
  /// (zero entries or ways, entries % ways != 0, no level cached, a shift at level 0/1,
  /// or shifts not increasing with the level).
  explicit WalkCache(WalkCacheGeometry geometry) : m_geometry(std::move(geometry)) {
    const WalkCacheGeometry& g = m_geometry;
    auto bad = [&](const std::string& why) {
      throw std::invalid_argument("walk cache '" + g.name + "': " + why);
    };
    if (g.entries == 0 || g.ways == 0 || g.entries % g.ways != 0) {
      bad("entries must be a positive multiple of ways");
    }
    if (g.level_shift[0] != 0 || g.level_shift[1] != 0) {
      bad("levels 0 and 1 cannot be cached");
    }
    unsigned prev = 0;
    for (unsigned l = 2; l <= kMaxWalkLevel; ++l) {
      if (g.level_shift[l] == 0) {
        continue;
      }
      if (g.level_shift[l] <= prev || g.level_shift[l] >= 64) {
        bad("level shifts must increase");
      }
      prev = g.level_shift[l];
    }
    if (prev == 0) {
      bad("caches no level");
    }
    m_ways = g.ways;
    m_sets = g.entries / g.ways;
    m_entries.assign(g.entries, WalkCacheEntry{});
    m_last_use.assign(g.entries, 0);
  }

  /// Whether entries of @level are held here.
  bool caches_level(unsigned level) const {
    return level <= kMaxWalkLevel && m_geometry.level_shift[level] != 0;
  }

  /**
   * lookup - find the @level entry covering @va for @asid.
   * Counts a hit or a miss at @level and makes a hit most recently used. A level this
   * cache does not hold is a miss that is not counted.
   * Return: the frame of the next-level table, or nullopt.
   */
  std::optional<Pfn> lookup(unsigned level, VirtAddr va, uint16_t asid) {
    const WalkCacheEntry* e = lookup_entry(level, va, asid);
    if (e == nullptr) {
      return std::nullopt;
    }
    return e->table;
  }

  /// As lookup(), returning the entry (valid until the next insert or invalidation).
  const WalkCacheEntry* lookup_entry(unsigned level, VirtAddr va, uint16_t asid) {
    if (!caches_level(level)) {
      return nullptr;
    }
    const uint64_t prefix = va.value() >> m_geometry.level_shift[level];
    const uint32_t base = set_of(prefix) * m_ways;
    for (uint32_t i = base; i < base + m_ways; ++i) {
      const WalkCacheEntry& e = m_entries[i];
      if (e.valid && e.prefix == prefix && e.level == level && e.asid == asid) {
        m_last_use[i] = ++m_tick;
        ++stats.hits[level];
        return &e;
      }
    }
    ++stats.misses[level];
    return nullptr;
  }

  /**
   * insert - cache that the @level entry covering @va, for @asid, points to @table.
   * @level must be cached here (else std::logic_error). Overwrites the entry with the
   * same key, else fills the lowest empty way, else evicts the LRU way.
   * @evicted_out: if non-null, receives the displaced entry, or one with valid clear.
   * @fill_id:     stored in the entry for a checker.
   */
  void insert(unsigned level, VirtAddr va, uint16_t asid, Pfn table,
              WalkCacheEntry* evicted_out = nullptr, uint32_t fill_id = 0) {
    if (!caches_level(level)) {
      throw std::logic_error("walk cache '" + m_geometry.name + "': level " +
                             std::to_string(level) + " is not cached");
    }
    const uint64_t prefix = va.value() >> m_geometry.level_shift[level];
    const uint32_t base = set_of(prefix) * m_ways;
    uint32_t same = kNone;
    uint32_t empty = kNone;
    uint32_t oldest = base;  // Meaningful only when the set is full.
    for (uint32_t i = base; i < base + m_ways; ++i) {
      const WalkCacheEntry& e = m_entries[i];
      if (!e.valid) {
        if (empty == kNone) {
          empty = i;
        }
      } else if (e.prefix == prefix && e.level == level && e.asid == asid) {
        same = i;
        break;
      } else if (m_last_use[i] < m_last_use[oldest]) {
        oldest = i;
      }
    }
    uint32_t slot = same;
    bool displaced = true;
    if (same != kNone) {
      ++stats.refills;
    } else if (empty != kNone) {
      slot = empty;
      displaced = false;
    } else {
      slot = oldest;
      ++stats.evictions;
    }
    if (evicted_out != nullptr) {
      *evicted_out = displaced ? m_entries[slot] : WalkCacheEntry{};
    }
    WalkCacheEntry& e = m_entries[slot];
    if (displaced && e.tracked) m_res->left(e);
    e.prefix = prefix;
    e.table = table;
    e.asid = asid;
    e.level = static_cast<uint8_t>(level);
    e.valid = true;
    e.fill_id = fill_id;
    e.tracked = m_res != nullptr && m_res->filled(m_res_cpu, e);
    m_last_use[slot] = ++m_tick;
    ++stats.inserts;
  }

  /// Drops the entry of every level covering @va for @asid (arm64 TLBI VAE1).
  /// Return: the number of entries dropped.
  template <class OnDrop = IgnoreDropped>
  size_t invalidate_va(VirtAddr va, uint16_t asid, OnDrop&& on_drop = {}) {
    size_t n = 0;
    for (unsigned level = 2; level <= kMaxWalkLevel; ++level) {
      if (!caches_level(level)) {
        continue;
      }
      const uint64_t prefix = va.value() >> m_geometry.level_shift[level];
      const uint32_t base = set_of(prefix) * m_ways;
      for (uint32_t i = base; i < base + m_ways; ++i) {
        const WalkCacheEntry& e = m_entries[i];
        if (e.valid && e.prefix == prefix && e.level == level && e.asid == asid) {
          drop(i, on_drop);
          ++n;
        }
      }
    }
    return n;
  }

  /// Drops the entries of @asid whose coverage overlaps [@start, @end) — what freeing
  /// the page tables of that range requires. Return: the number dropped.
  template <class OnDrop = IgnoreDropped>
  size_t invalidate_va_range(VirtAddr start, VirtAddr end, uint16_t asid, OnDrop&& on_drop = {}) {
    if (end <= start) {
      return 0;
    }
    const uint64_t first = start.value();
    const uint64_t last = end.value() - 1;
    return invalidate_if(
        [&](const WalkCacheEntry& e) {
          const unsigned shift = m_geometry.level_shift[e.level];
          return e.asid == asid && e.prefix >= (first >> shift) && e.prefix <= (last >> shift);
        },
        on_drop);
  }

  /// Drops every entry of @asid (x86 INVLPG / INVPCID single-context, TLBI ASIDE1).
  template <class OnDrop = IgnoreDropped>
  size_t invalidate_asid(uint16_t asid, OnDrop&& on_drop = {}) {
    return invalidate_if([asid](const WalkCacheEntry& e) { return e.asid == asid; }, on_drop);
  }

  /// Drops every entry (CR3 write without NOFLUSH and no PCID, TLBI VMALLE1).
  template <class OnDrop = IgnoreDropped>
  size_t invalidate_all(OnDrop&& on_drop = {}) {
    return invalidate_if([](const WalkCacheEntry&) { return true; }, on_drop);
  }

  /// Drops every valid entry e for which @pred(e) is true.
  template <class Pred, class OnDrop = IgnoreDropped>
  size_t invalidate_if(Pred&& pred, OnDrop&& on_drop = {}) {
    size_t n = 0;
    for (uint32_t i = 0; i < m_entries.size(); ++i) {
      if (m_entries[i].valid && pred(static_cast<const WalkCacheEntry&>(m_entries[i]))) {
        drop(i, on_drop);
        ++n;
      }
    }
    return n;
  }

  /// Calls @f(const WalkCacheEntry&) for each valid entry, in array order.
  template <class F>
  void for_each_valid(F&& f) const {
    for (const WalkCacheEntry& e : m_entries) {
      if (e.valid) {
        f(e);
      }
    }
  }

  /// Reports every entry stored, dropped or displaced to @r as the CPU @cpu's (see
  /// models/tlb/residency.h); nullptr detaches.
  void set_residency(Residency* r, unsigned cpu) {
    m_res = r;
    m_res_cpu = cpu;
  }
  /// Stops tracking every tracked entry e for which @pred(e) is true; the entries
  /// stay cached. Return: how many.
  template <class Pred>
  size_t untrack_if(Pred&& pred) {
    size_t n = 0;
    for (WalkCacheEntry& e : m_entries) {
      if (e.valid && e.tracked && pred(static_cast<const WalkCacheEntry&>(e))) {
        e.tracked = false;
        m_res->left(e);
        ++n;
      }
    }
    return n;
  }

  /// Number of valid entries.
  size_t occupancy() const {
    size_t n = 0;
    for (const WalkCacheEntry& e : m_entries) {
      n += e.valid;
    }
    return n;
  }
  const WalkCacheGeometry& geometry() const { return m_geometry; }

  WalkCacheStats stats;

 private:
  static constexpr uint32_t kNone = ~uint32_t{0};

  uint32_t set_of(uint64_t prefix) const {
    return static_cast<uint32_t>(std::has_single_bit(m_sets) ? (prefix & (m_sets - 1))
                                                             : (prefix % m_sets));
  }
  template <class OnDrop>
  void drop(uint32_t index, OnDrop& on_drop) {
    on_drop(static_cast<const WalkCacheEntry&>(m_entries[index]));
    if (m_entries[index].tracked) {
      m_entries[index].tracked = false;
      m_res->left(m_entries[index]);
    }
    m_entries[index].valid = false;
    ++stats.invalidations;
  }

  WalkCacheGeometry m_geometry;
  uint32_t m_sets = 0;
  uint32_t m_ways = 0;
  std::vector<WalkCacheEntry> m_entries;  // [set * ways + way]
  std::vector<uint64_t> m_last_use;       // m_tick at the last touch of each way.
  uint64_t m_tick = 0;
  Residency* m_res = nullptr;
  unsigned m_res_cpu = 0;
};

}  // namespace tlbsim
