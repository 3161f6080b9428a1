// Tlb: the storage of one translation lookaside buffer — a set-associative array of
// leaf translations, holding one or several page sizes (an x86 STLB holding 4 KiB and
// 2 MiB pages, an arm64 L2 TLB holding every size). Plain C++; the timed SystemC
// wrapper, the walker and the invalidation messages live elsewhere and use this.
//
// Contracts kept by this file:
//  - One entry per translation. An insert overwrites the entry with the same identity
//    (page size, virtual page, and asid — or "global" for global entries) instead of
//    adding a second one, so a lookup never sees two entries for the same page and ASID.
//    Two entries of different sizes may both cover an address (a 4 KiB entry left over
//    after a THP collapse that the kernel has not flushed yet); lookup then returns the
//    way of the previous hit or fill if it is one of them, else the first found in the
//    order of TlbGeometry::sizes — deterministic, like every choice here. A global and a
//    non-global entry for the same page may also coexist (both architectures call that
//    a programming error and Linux never does it); lookup then returns either.
//  - Every entry that leaves the array is reported if the caller asks: an insert writes
//    the displaced entry to *evicted_out; an invalidation calls on_drop(entry) for each
//    entry it drops, before dropping it. A coherence checker therefore sees the end of
//    every fill, by TlbEntry::fill_id. on_drop must not call back into the Tlb.
//  - lookup() does no allocation, no virtual call and no string work; it is inline
//    because it runs once per simulated memory access.
#pragma once

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/addr.h"
#include "models/tlb/residency.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace tlbsim {

/// Page sizes a TLB entry can map. k64K is also the arm64 contpte block of a 4 KiB
/// granule (16 contiguous PTEs), k32M the contiguous block of 16 PMDs with a 16 KiB
/// granule, k16K the base page of a 16 KiB granule.
enum class PageSize : uint8_t { k4K, k16K, k64K, k2M, k32M, k1G };

inline constexpr size_t kNumPageSizes = 6;
inline constexpr std::array<PageSize, kNumPageSizes> kAllPageSizes = {
    PageSize::k4K, PageSize::k16K, PageSize::k64K, PageSize::k2M, PageSize::k32M, PageSize::k1G};

/// log2 of the bytes mapped by one page of @size.
constexpr unsigned page_shift(PageSize size) {
  constexpr std::array<uint8_t, kNumPageSizes> kShift = {12, 14, 16, 21, 25, 30};
  return kShift[static_cast<size_t>(size)];
}

/// Bytes mapped by one page of @size.
constexpr uint64_t page_bytes(PageSize size) { return uint64_t{1} << page_shift(size); }

/// Name of @size as used in configs and stats: "4KiB", "16KiB", "64KiB", "2MiB",
/// "32MiB", "1GiB".
constexpr std::string_view page_size_name(PageSize size) {
  constexpr std::array<std::string_view, kNumPageSizes> kName = {"4KiB", "16KiB", "64KiB",
                                                                 "2MiB", "32MiB", "1GiB"};
  return kName[static_cast<size_t>(size)];
}

/// Inverse of page_size_name(); nullopt for any other string.
constexpr std::optional<PageSize> parse_page_size(std::string_view name) {
  for (PageSize s : kAllPageSizes) {
    if (page_size_name(s) == name) {
      return s;
    }
  }
  return std::nullopt;
}

/// One cached leaf translation. The identity is (size, vtag, asid or global); the rest
/// is payload copied from the PTE at fill time.
struct TlbEntry {
  uint64_t vtag = 0;     ///< Virtual page number at this entry's size: VA >> page_shift(size).
  Pfn pfn;               ///< First 4 KiB frame of the mapping (size-aligned).
  uint32_t fill_id = 0;  ///< Opaque, set by the owner; names the fill for a checker.
  uint16_t asid = 0;     ///< x86 PCID or arm64 ASID; ignored for matching if global.
  PageSize size = PageSize::k4K;
  bool valid : 1 = false;
  bool global : 1 = false;  ///< Matches every ASID (x86 G bit, arm64 nG clear).
  bool writable : 1 = false;
  bool user : 1 = false;
  bool executable : 1 = false;
  bool dirty : 1 = false;  ///< Filled from a dirty PTE: a store needs no D-bit update walk.
  bool tracked : 1 = false;  ///< Counted by the attached Residency (set by insert()).

  /// A valid entry for the page of @size containing @va, mapping frame @pfn onwards,
  /// tagged with @asid; permission bits, global and fill_id are left clear.
  static constexpr TlbEntry for_page(VirtAddr va, PageSize size, Pfn pfn, uint16_t asid) {
    TlbEntry e;
    e.vtag = va.value() >> page_shift(size);
    e.pfn = pfn;
    e.asid = asid;
    e.size = size;
    e.valid = true;
    return e;
  }

  constexpr uint64_t bytes() const { return page_bytes(size); }
  /// First virtual address mapped.
  constexpr VirtAddr base() const { return VirtAddr(vtag << page_shift(size)); }
  /// Whether @va lies inside the page (ignores asid and valid).
  constexpr bool covers(VirtAddr va) const { return (va.value() >> page_shift(size)) == vtag; }
  /// The 4 KiB frame that @va (inside the page) translates to.
  constexpr Pfn pfn_for(VirtAddr va) const {
    return pfn + ((va.value() & (bytes() - 1)) >> kPageShift);
  }
  /// The physical address that @va (inside the page) translates to.
  constexpr PhysAddr translate(VirtAddr va) const {
    return PhysAddr((pfn.value() << kPageShift) + (va.value() & (bytes() - 1)));
  }
};
static_assert(sizeof(TlbEntry) <= 24, "TlbEntry must stay small: it is copied on every fill");

/// Replacement policy of a set.
enum class Replacement : uint8_t {
  kLru,       ///< True LRU (per-way last-use stamps).
  kTreePlru,  ///< Binary-tree pseudo-LRU; needs power-of-two ways <= 64, else falls back to LRU.
  kRandom,    ///< Deterministic xorshift64 seeded from TlbGeometry::seed.
};

/// "lru", "tree_plru", "random".
constexpr std::string_view replacement_name(Replacement r) {
  constexpr std::array<std::string_view, 3> kName = {"lru", "tree_plru", "random"};
  return kName[static_cast<size_t>(r)];
}

/// Inverse of replacement_name(); nullopt for any other string.
constexpr std::optional<Replacement> parse_replacement(std::string_view name) {
  for (Replacement r : {Replacement::kLru, Replacement::kTreePlru, Replacement::kRandom}) {
    if (replacement_name(r) == name) {
      return r;
    }
  }
  return std::nullopt;
}

/// Shape of one TLB structure. Validated by the Tlb constructor.
struct TlbGeometry {
  std::string name;       ///< For messages and stat paths, e.g. "dtlb", "stlb".
  uint32_t entries = 64;  ///< Total entries; a multiple of ways.
  uint32_t ways = 4;      ///< Associativity; ways == entries is fully associative.
  std::vector<PageSize> sizes = {PageSize::k4K};  ///< Page sizes held; lookup probes in this order.
  Replacement repl = Replacement::kLru;
  uint32_t hit_latency_cycles = 1;  ///< Carried for the timed wrapper; unused here.
  uint64_t seed = 1;                ///< Seed of the kRandom policy.
};

/// Event counts of one Tlb. Ratios are computed at dump time.
struct TlbStats {
  uint64_t lookups = 0;
  uint64_t hits = 0;
  uint64_t misses = 0;
  std::array<uint64_t, kNumPageSizes> hits_by_size{};  ///< Indexed by PageSize.
  uint64_t inserts = 0;
  uint64_t refills = 0;        ///< Inserts that overwrote the entry of the same translation.
  uint64_t evictions = 0;      ///< Valid entries displaced by the replacement policy.
  uint64_t invalidations = 0;  ///< Entries dropped by the invalidate_* calls.
};

/// The default on_drop callback: ignores the entry, costs nothing.
struct IgnoreDropped {
  template <class Entry>
  constexpr void operator()(const Entry&) const noexcept {}
};

class Tlb {
 public:
  /// Builds an empty TLB. Throws std::invalid_argument if @geometry is inconsistent
  /// (zero entries or ways, entries % ways != 0, no sizes or a repeated size).
  explicit Tlb(TlbGeometry geometry);

  /**
   * lookup - translate @va for address space @asid.
   * @va:   any address; each page size held is probed at its own granularity.
   * @asid: current PCID/ASID; global entries match any.
   *
   * Updates the replacement state and the counters on hit and miss.
   * Return: the matching entry, valid until the next insert or invalidation; or nullptr.
   */
  const TlbEntry* lookup(VirtAddr va, uint16_t asid);

  /// As lookup(), but touches neither replacement state nor counters (for checkers).
  const TlbEntry* peek(VirtAddr va, uint16_t asid) const;

  /**
   * insert - fill an entry.
   * @entry:       the translation; entry.size must be one of geometry().sizes (else
   *               std::logic_error). It is stored with valid set.
   * @evicted_out: if non-null, receives the entry displaced — the old entry of the same
   *               translation or the policy's victim — or an entry with valid clear if
   *               an empty way was used.
   *
   * The slot is, in order: the entry with the same identity, the lowest empty way, the
   * victim of the replacement policy. The new entry becomes most recently used.
   * Return: the stored entry. The caller may change its permission bits, dirty and
   * fill_id through it (a D-bit update), never vtag, size, asid, global or valid.
   */
  TlbEntry* insert(const TlbEntry& entry, TlbEntry* evicted_out = nullptr);

  /**
   * invalidate_va - drop the translations of one address (INVLPG, TLBI VAE1/VALE1).
   * @va:             any address; entries of every size that cover it are dropped.
   * @asid:           non-global entries must carry this ASID.
   * @include_global: also drop global entries covering @va, whatever their ASID — true
   *                  for INVLPG and TLBI VAE1, false for INVPCID individual-address.
   * @on_drop:        called with each entry before it is dropped.
   * Return: the number of entries dropped.
   */
  template <class OnDrop = IgnoreDropped>
  size_t invalidate_va(VirtAddr va, uint16_t asid, bool include_global, OnDrop&& on_drop = {});

  /**
   * invalidate_va_range - drop every entry overlapping [@start, @end) (range TLBI, or a
   * loop of per-page INVLPGs), matching as invalidate_va(). Empty if @end <= @start.
   * Return: the number of entries dropped.
   */
  template <class OnDrop = IgnoreDropped>
  size_t invalidate_va_range(VirtAddr start, VirtAddr end, uint16_t asid,
                             bool include_global = true, OnDrop&& on_drop = {});

  /// Drops the non-global entries of @asid (INVPCID single-context, TLBI ASIDE1).
  template <class OnDrop = IgnoreDropped>
  size_t invalidate_asid(uint16_t asid, OnDrop&& on_drop = {});

  /// Drops every non-global entry (MOV to CR3 without PCID, INVPCID all-non-global).
  template <class OnDrop = IgnoreDropped>
  size_t invalidate_all_non_global(OnDrop&& on_drop = {});

  /// Drops every entry (INVPCID all-including-global, TLBI VMALLE1).
  template <class OnDrop = IgnoreDropped>
  size_t invalidate_all(OnDrop&& on_drop = {});

  /// Drops every valid entry e for which @pred(e) is true; the general form of the
  /// above, for invalidation value objects with a matches(entry) predicate.
  template <class Pred, class OnDrop = IgnoreDropped>
  size_t invalidate_if(Pred&& pred, OnDrop&& on_drop = {});

  /// Calls @f(const TlbEntry&) for each valid entry, in array order.
  template <class F>
  void for_each_valid(F&& f) const;

  /// Reports every entry stored, dropped or displaced to @r as the CPU @cpu's (see
  /// models/tlb/residency.h); nullptr detaches. Entries already stored stay untracked.
  void set_residency(Residency* r, unsigned cpu) {
    m_res = r;
    m_res_cpu = cpu;
  }
  /// Stops tracking every tracked entry e for which @pred(e) is true (Residency::left
  /// is called for each); the entries stay cached. Return: how many.
  template <class Pred>
  size_t untrack_if(Pred&& pred);

  /// Number of valid entries.
  size_t occupancy() const { return m_occupancy; }
  const TlbGeometry& geometry() const { return m_geometry; }
  uint32_t sets() const { return m_sets; }
  uint32_t ways() const { return m_ways; }
  /// The policy in force: geometry().repl, or kLru where tree-PLRU cannot apply.
  Replacement replacement() const { return m_repl; }
  /// Whether this structure holds pages of @size.
  bool holds(PageSize size) const { return (m_size_mask >> static_cast<unsigned>(size)) & 1u; }

  TlbStats stats;

 private:
  // m_keys[i] = (vtag << kCodeBits) | (size + 1) for a valid entry, 0 for an empty way,
  // and m_tags[i] a one-byte hash of it: a lookup compares the tags of 16 ways per
  // instruction, then the 8-byte key and the 24-byte entry of the candidates only.
  // Kept in step with m_entries[i] by insert() and drop().
  static constexpr unsigned kCodeBits = 3;
  static constexpr uint64_t kCodeMask = (uint64_t{1} << kCodeBits) - 1;
  static constexpr uint32_t kNone = ~uint32_t{0};

  static constexpr uint64_t make_key(uint64_t vtag, PageSize size) {
    return (vtag << kCodeBits) | (static_cast<uint64_t>(size) + 1);
  }
  // For an entry whose key matched (so it is valid).
  static bool matches_asid(const TlbEntry& e, uint16_t asid) { return e.global || e.asid == asid; }
  static bool matches_invalidation(const TlbEntry& e, uint16_t asid, bool include_global) {
    return e.global ? include_global : e.asid == asid;
  }

  uint32_t set_of(uint64_t vtag) const {
    return static_cast<uint32_t>(m_sets_pow2 ? (vtag & m_set_mask) : (vtag % m_sets));
  }
  uint32_t find(uint64_t va, uint16_t asid) const;
  // The first way of the set at @base whose key is @want and whose entry satisfies
  // @match(entry), or kNone.
  template <class Match>
  uint32_t scan_set(uint32_t base, uint64_t want, Match&& match) const;
  // Bit i set iff tags[i] == tag, for i < 16.
  static uint32_t match16(const uint8_t* tags, uint8_t tag);
  // One byte summarising a key; equal keys have equal tags.
  static uint8_t micro_tag(uint64_t key) {
    return static_cast<uint8_t>((key * 0x9e3779b97f4a7c15ull) >> 56);
  }
  void touch(uint32_t index);
  uint32_t victim(uint32_t set);
  template <class OnDrop>
  void drop(uint32_t index, OnDrop& on_drop);
  template <class OnDrop>
  size_t drop_in_set_if_key(uint64_t vtag, PageSize size, uint16_t asid, bool include_global,
                            OnDrop& on_drop);

  TlbGeometry m_geometry;
  uint32_t m_sets = 0;
  uint32_t m_ways = 0;
  uint64_t m_set_mask = 0;  // m_sets - 1 when m_sets is a power of two.
  bool m_sets_pow2 = false;
  Replacement m_repl = Replacement::kLru;
  uint8_t m_size_mask = 0;  // Bit per PageSize held.
  uint8_t m_num_sizes = 0;
  std::array<PageSize, kNumPageSizes> m_sizes{};      // geometry.sizes, for the hot loop.
  std::array<uint8_t, kNumPageSizes> m_shifts{};      // page_shift(m_sizes[i]).
  std::array<uint8_t, kCodeMask + 1> m_code_shift{};  // Key code (size + 1) -> page shift.
  unsigned m_way_shift = 0;                           // log2(ways), tree-PLRU only.
  size_t m_occupancy = 0;
  std::array<uint32_t, kNumPageSizes> m_count_by_size{};  // Valid entries per PageSize.
  uint32_t m_hint = 0;  // Index of the last hit or fill, tried first.

  std::vector<uint64_t> m_keys;      // [set * ways + way]
  std::vector<uint8_t> m_tags;       // micro_tag(m_keys[i]); 16 bytes of tail padding.
  std::vector<TlbEntry> m_entries;   // [set * ways + way]
  std::vector<uint32_t> m_set_used;  // Valid entries per set.
  std::vector<uint64_t> m_last_use;  // LRU: m_tick at the last touch of each way.
  std::vector<uint64_t> m_plru;      // Tree-PLRU: ways-1 node bits per set, heap order.
  uint64_t m_tick = 0;
  uint64_t m_rng = 0;  // Random: xorshift64 state, never 0.
  Residency* m_res = nullptr;
  unsigned m_res_cpu = 0;
};

// ---- inline hot path --------------------------------------------------------------

inline uint32_t Tlb::find(uint64_t va, uint16_t asid) const {
  // The way of the last hit or fill first: consecutive accesses mostly share a page.
  // Any way is checked in full, so a stale hint only costs the check.
  const uint64_t* keys = m_keys.data();
  const uint64_t h = keys[m_hint];
  if (h != 0 && (h >> kCodeBits) == (va >> m_code_shift[h & kCodeMask]) &&
      matches_asid(m_entries[m_hint], asid)) {
    return m_hint;
  }
  for (unsigned s = 0; s < m_num_sizes; ++s) {
    if (m_count_by_size[static_cast<size_t>(m_sizes[s])] == 0) {
      continue;
    }
    const uint64_t vtag = va >> m_shifts[s];
    const uint64_t want = make_key(vtag, m_sizes[s]);
    const uint32_t found = scan_set(set_of(vtag) * m_ways, want,
                                    [asid](const TlbEntry& e) { return matches_asid(e, asid); });
    if (found != kNone) {
      return found;
    }
  }
  return kNone;
}

inline uint32_t Tlb::match16(const uint8_t* tags, uint8_t tag) {
#if defined(__SSE2__)
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(tags));
  return static_cast<uint32_t>(
      _mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(static_cast<char>(tag)))));
#else
  uint32_t m = 0;
  for (unsigned i = 0; i < 16; ++i) m |= static_cast<uint32_t>(tags[i] == tag) << i;
  return m;
#endif
}

template <class Match>
uint32_t Tlb::scan_set(uint32_t base, uint64_t want, Match&& match) const {
  // Compare the one-byte tags of 16 ways at once, then check the candidates' full keys:
  // no branch per way, so neither a 48-way fully associative scan nor a hit in a random
  // way costs a mispredicted loop exit.
  const uint8_t tag = micro_tag(want);
  for (uint32_t off = 0; off < m_ways; off += 16) {
    uint32_t m = match16(m_tags.data() + base + off, tag);
    if (m_ways - off < 16) {
      m &= (uint32_t{1} << (m_ways - off)) - 1;
    }
    while (m != 0) {
      const uint32_t i = base + off + static_cast<uint32_t>(std::countr_zero(m));
      if (m_keys[i] == want && match(m_entries[i])) {
        return i;
      }
      m &= m - 1;
    }
  }
  return kNone;
}

inline void Tlb::touch(uint32_t index) {
  if (m_repl == Replacement::kLru) {
    m_last_use[index] = ++m_tick;
  } else if (m_repl == Replacement::kTreePlru) {
    // Walk from the root to the leaf of @way, pointing each node at the other half.
    const uint32_t way = index & (m_ways - 1);
    uint64_t& bits = m_plru[index >> m_way_shift];
    uint32_t node = 0;
    uint32_t lo = 0;
    for (uint32_t half = m_ways / 2; half >= 1; half /= 2) {
      if (way >= lo + half) {
        bits &= ~(uint64_t{1} << node);  // Accessed right: next victim on the left.
        node = 2 * node + 2;
        lo += half;
      } else {
        bits |= uint64_t{1} << node;  // Accessed left: next victim on the right.
        node = 2 * node + 1;
      }
    }
  }
}

inline const TlbEntry* Tlb::lookup(VirtAddr va, uint16_t asid) {
  ++stats.lookups;
  const uint32_t i = find(va.value(), asid);
  if (i == kNone) {
    ++stats.misses;
    return nullptr;
  }
  touch(i);
  m_hint = i;
  const TlbEntry& e = m_entries[i];
  ++stats.hits;
  ++stats.hits_by_size[static_cast<size_t>(e.size)];
  return &e;
}

inline const TlbEntry* Tlb::peek(VirtAddr va, uint16_t asid) const {
  const uint32_t i = find(va.value(), asid);
  return i == kNone ? nullptr : &m_entries[i];
}

// ---- invalidation -----------------------------------------------------------------

template <class OnDrop>
void Tlb::drop(uint32_t index, OnDrop& on_drop) {
  on_drop(static_cast<const TlbEntry&>(m_entries[index]));
  if (m_entries[index].tracked) {
    m_entries[index].tracked = false;
    m_res->left(m_entries[index]);
  }
  --m_count_by_size[static_cast<size_t>(m_entries[index].size)];
  --m_set_used[index / m_ways];
  m_entries[index].valid = false;
  m_keys[index] = 0;
  m_tags[index] = 0;
  --m_occupancy;
  ++stats.invalidations;
}

template <class OnDrop>
size_t Tlb::drop_in_set_if_key(uint64_t vtag, PageSize size, uint16_t asid, bool include_global,
                               OnDrop& on_drop) {
  const uint64_t want = make_key(vtag, size);
  const uint32_t base = set_of(vtag) * m_ways;
  size_t n = 0;
  for (uint32_t i = base; i < base + m_ways; ++i) {
    if (m_keys[i] == want && matches_invalidation(m_entries[i], asid, include_global)) {
      drop(i, on_drop);
      ++n;
    }
  }
  return n;
}

template <class OnDrop>
size_t Tlb::invalidate_va(VirtAddr va, uint16_t asid, bool include_global, OnDrop&& on_drop) {
  size_t n = 0;
  for (unsigned s = 0; s < m_num_sizes; ++s) {
    if (m_count_by_size[static_cast<size_t>(m_sizes[s])] == 0) {
      continue;
    }
    n += drop_in_set_if_key(va.value() >> m_shifts[s], m_sizes[s], asid, include_global, on_drop);
  }
  return n;
}

template <class OnDrop>
size_t Tlb::invalidate_va_range(VirtAddr start, VirtAddr end, uint16_t asid, bool include_global,
                                OnDrop&& on_drop) {
  if (end <= start) {
    return 0;
  }
  const uint64_t first = start.value();
  const uint64_t last = end.value() - 1;  // Inclusive, so a range ending at 2^64 works.
  // Probing costs one set (m_ways entries) per page per size, a full scan m_sets sets:
  // probe while the range spans no more pages than there are sets.
  uint64_t probes = 0;
  for (unsigned s = 0; s < m_num_sizes && probes <= m_sets; ++s) {
    if (m_count_by_size[static_cast<size_t>(m_sizes[s])] == 0) {
      continue;
    }
    probes += (last >> m_shifts[s]) - (first >> m_shifts[s]) + 1;
  }
  if (probes <= m_sets) {
    size_t n = 0;
    for (unsigned s = 0; s < m_num_sizes; ++s) {
      if (m_count_by_size[static_cast<size_t>(m_sizes[s])] == 0) {
        continue;
      }
      for (uint64_t t = first >> m_shifts[s]; t <= last >> m_shifts[s]; ++t) {
        n += drop_in_set_if_key(t, m_sizes[s], asid, include_global, on_drop);
      }
    }
    return n;
  }
  return invalidate_if(
      [&](const TlbEntry& e) {
        const uint64_t base = e.base().value();
        return base <= last && base + (e.bytes() - 1) >= first &&
               matches_invalidation(e, asid, include_global);
      },
      on_drop);
}

template <class OnDrop>
size_t Tlb::invalidate_asid(uint16_t asid, OnDrop&& on_drop) {
  return invalidate_if([asid](const TlbEntry& e) { return !e.global && e.asid == asid; }, on_drop);
}

template <class OnDrop>
size_t Tlb::invalidate_all_non_global(OnDrop&& on_drop) {
  return invalidate_if([](const TlbEntry& e) { return !e.global; }, on_drop);
}

template <class OnDrop>
size_t Tlb::invalidate_all(OnDrop&& on_drop) {
  return invalidate_if([](const TlbEntry&) { return true; }, on_drop);
}

template <class Pred, class OnDrop>
size_t Tlb::invalidate_if(Pred&& pred, OnDrop&& on_drop) {
  if (m_occupancy == 0) {
    return 0;
  }
  size_t n = 0;
  const uint32_t total = static_cast<uint32_t>(m_entries.size());
  for (uint32_t i = 0; i < total; ++i) {
    if (m_keys[i] != 0 && pred(static_cast<const TlbEntry&>(m_entries[i]))) {
      drop(i, on_drop);
      ++n;
    }
  }
  return n;
}

template <class Pred>
size_t Tlb::untrack_if(Pred&& pred) {
  size_t n = 0;
  for (size_t i = 0; i < m_entries.size(); ++i) {
    TlbEntry& e = m_entries[i];
    if (m_keys[i] != 0 && e.tracked && pred(static_cast<const TlbEntry&>(e))) {
      e.tracked = false;
      m_res->left(e);
      ++n;
    }
  }
  return n;
}

template <class F>
void Tlb::for_each_valid(F&& f) const {
  for (size_t i = 0; i < m_entries.size(); ++i) {
    if (m_keys[i] != 0) {
      f(m_entries[i]);
    }
  }
}

}  // namespace tlbsim
