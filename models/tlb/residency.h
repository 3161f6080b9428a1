// Residency: who is told when a TLB or paging-structure-cache entry starts or stops
// caching a translation — the coherence checker's count of the translations each
// frame is cached under (models/coherence_checker.h), so a frame or page table freed
// while some CPU may still use a cached translation through it is caught at the free.
//
// Contract with Tlb and WalkCache (when a Residency is attached): filled() is called
// for every entry stored, and its answer is kept in the entry's `tracked` bit; left()
// is called exactly once for every tracked entry that stops being tracked — dropped by
// an invalidation, displaced by an insert, or untracked by untrack_if(). Neither may
// call back into the structure.
#pragma once

#include <cstdint>

namespace tlbsim {

struct TlbEntry;
struct WalkCacheEntry;
class Tlb;
class WalkCache;

class Residency {
 public:
  virtual ~Residency() = default;
  /// A TLB of `cpu` stored `e`: whether it counts as a live cached translation.
  virtual bool filled(unsigned cpu, const TlbEntry& e) = 0;
  virtual void left(const TlbEntry& e) = 0;
  /// A paging-structure cache of `cpu` stored `e` (a pointer to the table e.table).
  virtual bool filled(unsigned cpu, const WalkCacheEntry& e) = 0;
  virtual void left(const WalkCacheEntry& e) = 0;
  /// The structures of `cpu`, for scans (each one attaches itself at set-up).
  virtual void attach(unsigned cpu, Tlb& t) = 0;
  virtual void attach(unsigned cpu, WalkCache& w) = 0;
};

}  // namespace tlbsim
