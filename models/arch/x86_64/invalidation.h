// x86-64 TLB invalidations as value objects with a match predicate (Intel SDM Vol. 3A
// §4.10.4): what each instruction removes from the TLBs and from the
// paging-structure caches. X86CoreMmu::apply() executes them.
#pragma once

#include <cstdint>

#include "base/addr.h"
#include "models/tlb/tlb.h"

namespace tlbsim::x86 {

struct Invalidation {
  enum class Kind : uint8_t {
    kInvlpg,              // INVLPG va: entries for va of the current PCID, and global ones
    kInvpcidAddress,      // INVPCID type 0: va in one PCID, global entries kept
    kInvpcidContext,      // INVPCID type 1: every non-global entry of one PCID
    kInvpcidAll,          // INVPCID type 2: every entry, global ones too
    kInvpcidAllNonGlobal, // INVPCID type 3: every non-global entry of every PCID
    kCr3Write,            // MOV to CR3: the new PCID's non-global entries, unless NOFLUSH
  };
  Kind kind = Kind::kInvlpg;
  VirtAddr va;
  uint16_t pcid = 0;
  bool noflush = false;  // kCr3Write with bit 63 set: nothing is invalidated

  static Invalidation invlpg(VirtAddr va, uint16_t pcid) { return {Kind::kInvlpg, va, pcid, false}; }
  static Invalidation cr3(uint16_t pcid, bool noflush) {
    return {Kind::kCr3Write, VirtAddr(), pcid, noflush};
  }

  /// Does it remove this TLB entry?
  bool matches(const TlbEntry& e) const {
    switch (kind) {
      case Kind::kInvlpg:  // SDM: entries for va of the current PCID, and global ones
        return e.covers(va) && (e.global || e.asid == pcid);
      case Kind::kInvpcidAddress:
        return e.covers(va) && !e.global && e.asid == pcid;
      case Kind::kInvpcidContext:
        return !e.global && e.asid == pcid;
      case Kind::kInvpcidAll:
        return true;
      case Kind::kInvpcidAllNonGlobal:
        return !e.global;
      case Kind::kCr3Write:
        return !noflush && !e.global && e.asid == pcid;
    }
    return false;
  }
  /// Paging-structure-cache entries of `entry_pcid` it removes: INVLPG and INVPCID
  /// types 0/1 drop all of the PCID's (the SDM allows no finer guarantee for PWCs),
  /// types 2/3 all, a flushing CR3 write those of the new PCID.
  bool drops_walk_cache_of(uint16_t entry_pcid) const {
    switch (kind) {
      case Kind::kInvpcidAll:
      case Kind::kInvpcidAllNonGlobal:
        return true;
      case Kind::kCr3Write:
        return !noflush && entry_pcid == pcid;
      default:
        return entry_pcid == pcid;
    }
  }
};

}  // namespace tlbsim::x86
