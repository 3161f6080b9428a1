// The swap device (mm/swapfile.c, mm/swap_state.c): one swap area of numbered
// slots, each with the swap_map count of swap PTEs naming it, plus the swap cache
// (which folio, if any, holds the slot's data in memory).
//
// A slot is allocated by add_to_swap (count 0, cached), gains one count per swap
// PTE (folio_dup_swap / swap_duplicate), loses one per swap-in or zap (swap_free,
// free_swap_and_cache) and is free again when neither a count nor the swap cache
// holds it (SWAP_HAS_CACHE). Slot 0 is the swap header and never handed out. The
// area grows on demand (no swap-full condition is modelled). Writes and reads are
// synchronous: pageout() has finished when it returns.
//
// The swap cache holds one reference on its folio (Linux: folio_nr_pages; only
// order-0 folios are ever swapped here) and marks it PG_swapcache.
#pragma once

#include <cstdint>
#include <unordered_map>
#include <vector>

#include "base/addr.h"
#include "base/stats.h"

namespace tlbsim::mm {

/// Swap counters (/proc/vmstat pswpin, pswpout and friends).
struct SwapStats : StatGroup {
  explicit SwapStats(StatGroup* parent) : StatGroup(parent, "swap") {}
  Scalar pswpout{this, "pswpout", "pages", "Pages written to the swap device (pageout)."};
  Scalar pswpin{this, "pswpin", "pages", "Pages read back from the swap device (swap-in faults)."};
  Scalar swap_cache_hits{this, "swap_cache_hits", "count", "Swap-in faults that found the folio in the swap cache."};
  Gauge slots_used{this, "slots_used", "slots", "Slots in use (referenced by swap PTEs or the swap cache)."};
};

class SwapDevice {
 public:
  /// The swap type of the one device (swp_entry_t type field).
  static constexpr unsigned kType = 0;

  explicit SwapDevice(StatGroup* stats_parent) : m_stats(stats_parent) {}

  /// get_swap_pages() for one page: a free slot, cached by `folio` (add_to_swap).
  uint64_t alloc_slot(Pfn folio);
  /// swap_duplicate(): one more swap PTE names `slot`.
  void dup(uint64_t slot) { ++m_slots[slot].count; }
  /// swap_free(): one swap PTE naming `slot` is gone. Returns the remaining count.
  uint32_t put(uint64_t slot);
  /// __swap_count(): swap PTEs naming `slot`.
  uint32_t count(uint64_t slot) const { return m_slots[slot].count; }
  /// swap_cache_get_folio(): the folio caching `slot`, or Pfn() (0).
  Pfn cached(uint64_t slot) const { return Pfn(m_slots[slot].cache); }
  /// add_to_swap_cache(): `folio` now caches `slot` (read back by a swap-in).
  void add_cache(uint64_t slot, Pfn folio);
  /// __delete_from_swap_cache(): the folio leaves the cache; the slot is freed when
  /// no swap PTE names it any more. Returns the slot it cached.
  uint64_t delete_cache(Pfn folio);
  /// The slot a swap-cache folio caches (folio->swap).
  uint64_t slot_of(Pfn folio) const { return m_folio_slot.at(folio.value()); }

  /// Slots ever allocated (the area's high-water mark + 1), for the invariant checker.
  uint64_t nr_slots() const { return m_slots.size(); }
  SwapStats& stats() { return m_stats; }
  const SwapStats& stats() const { return m_stats; }

 private:
  void maybe_free(uint64_t slot);
  struct Slot {
    uint32_t count = 0;  // swap_map: swap PTEs naming the slot
    uint64_t cache = 0;  // pfn of the swap-cache folio, 0 = none
    bool used = false;
  };
  std::vector<Slot> m_slots = std::vector<Slot>(1);  // slot 0: the swap header
  std::vector<uint64_t> m_free;
  std::unordered_map<uint64_t, uint64_t> m_folio_slot;  // swap-cache folio → slot
  SwapStats m_stats;
};

}  // namespace tlbsim::mm
