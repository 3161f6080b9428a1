// The kernel's page-table entry codec: what Linux keeps in
// arch/{x86,arm64}/include/asm/pgtable*.h. Entries are the architectures' real
// 64-bit formats (the hardware walker decodes the very same bits, with its own
// definitions in models/arch/, cross-checked by static_asserts there).
//
// One codec value per machine; the per-entry predicates are inline and branch on
// the architecture only where x86 and arm64 differ in meaning (arm64 encodes
// "dirty" as DBM && !RDONLY, plus a software dirty bit).
#pragma once

#include <cstdint>

#include "base/addr.h"

namespace tlbsim::mm {

enum class Arch : uint8_t { kX86_64, kArm64 };

/// x86-64 entry bits (Intel SDM Vol. 3A, Tables 4-19 and 4-15; Linux pgtable_types.h).
namespace x86_bits {
inline constexpr uint64_t kPresent = 1ull << 0;
inline constexpr uint64_t kRw = 1ull << 1;
inline constexpr uint64_t kUser = 1ull << 2;
inline constexpr uint64_t kPwt = 1ull << 3;
inline constexpr uint64_t kPcd = 1ull << 4;
inline constexpr uint64_t kAccessed = 1ull << 5;
inline constexpr uint64_t kDirty = 1ull << 6;
inline constexpr uint64_t kPse = 1ull << 7;  // leaf at PMD/PUD level
inline constexpr uint64_t kGlobal = 1ull << 8;
// _PAGE_PROTNONE = _PAGE_GLOBAL: only meaningful with _PAGE_PRESENT clear (a user
// PTE is never global), pgtable_types.h.
inline constexpr uint64_t kProtNone = kGlobal;
inline constexpr uint64_t kSoftDirty = 1ull << 11;  // _PAGE_SOFT_DIRTY (software)
inline constexpr uint64_t kSpecial = 1ull << 9;     // _PAGE_SPECIAL (software)
inline constexpr uint64_t kNx = 1ull << 63;
inline constexpr uint64_t kPfnMask = 0x000FFFFFFFFFF000ull;  // bits 12..51
}  // namespace x86_bits

/// arm64 stage-1 descriptor bits, 4 KiB granule (Arm ARM D8.3; Linux pgtable-hwdef.h,
/// pgtable-prot.h).
namespace arm64_bits {
inline constexpr uint64_t kValid = 1ull << 0;
inline constexpr uint64_t kTable = 1ull << 1;     // table (levels 0-2) / page (level 3)
inline constexpr uint64_t kAttrNormal = 0ull << 2;  // AttrIndx = MT_NORMAL (0)
inline constexpr uint64_t kUser = 1ull << 6;      // AP[1]
inline constexpr uint64_t kRdonly = 1ull << 7;    // AP[2]
inline constexpr uint64_t kShared = 3ull << 8;    // SH = inner shareable
inline constexpr uint64_t kAf = 1ull << 10;       // access flag
inline constexpr uint64_t kNg = 1ull << 11;       // not global
inline constexpr uint64_t kDbm = 1ull << 51;      // PTE_WRITE in Linux (hardware DBM)
inline constexpr uint64_t kCont = 1ull << 52;     // contiguous hint
inline constexpr uint64_t kPxn = 1ull << 53;
inline constexpr uint64_t kUxn = 1ull << 54;
inline constexpr uint64_t kSwDirty = 1ull << 55;  // PTE_DIRTY (software)
inline constexpr uint64_t kSpecial = 1ull << 56;  // PTE_SPECIAL (software)
// PTE_PRESENT_INVALID = PTE_NG (Linux 6.10+, Ryan Roberts "arm64/mm: Remove
// PTE_PROT_NONE bit"; before, PTE_PROT_NONE was software bit 58): a present entry
// that the hardware must not use — PROT_NONE and NUMA-hinting entries. Only
// meaningful with PTE_VALID clear; swap entries never set it (type 6-10, offset 12+).
inline constexpr uint64_t kPresentInvalid = kNg;
inline constexpr uint64_t kOaMask = 0x0000FFFFFFFFF000ull;  // bits 12..47
}  // namespace arm64_bits

/// Protection of a user mapping (the VMA's vm_page_prot, reduced to what matters).
struct PgProt {
  bool write = false;
  bool exec = false;
  bool user = true;
  /// PAGE_NONE (no VM_READ|VM_WRITE|VM_EXEC): a present entry no access may use.
  bool none = false;
};

class PteCodec {
 public:
  explicit PteCodec(Arch arch) : m_arch(arch) {}
  Arch arch() const { return m_arch; }

  // --- leaf PTE construction (mk_pte) ----------------------------------------
  uint64_t mk_pte(Pfn pfn, PgProt prot) const {
    if (prot.none) return mkprotnone(mk_pte(pfn, PgProt{.user = prot.user}));
    if (m_arch == Arch::kX86_64) {
      using namespace x86_bits;
      // Linux's user protections (__PP) include _PAGE_ACCESSED: new PTEs are young.
      uint64_t e = (pfn.value() << kPageShift) | kPresent | kAccessed | (prot.user ? kUser : 0);
      if (prot.write) e |= kRw;
      if (!prot.exec) e |= kNx;
      return e;
    }
    using namespace arm64_bits;
    uint64_t e = (pfn.value() << kPageShift) | kValid | kTable | kShared | kNg | kAf |
                 (prot.user ? kUser : 0) | kRdonly | kPxn;
    if (prot.write) e |= kDbm;  // writable-clean: DBM set, AP[2] read-only
    if (!prot.exec) e |= kUxn;
    return e;
  }
  /// Leaf entry at PMD/PUD level (huge page).
  uint64_t mk_huge(Pfn pfn, PgProt prot) const {
    uint64_t e = mk_pte(pfn, prot);
    if (m_arch == Arch::kX86_64) return e | x86_bits::kPse;
    return e & ~arm64_bits::kTable;  // block descriptor: bits[1:0] = 01
  }
  /// Non-leaf entry pointing at a next-level table.
  uint64_t mk_table(Pfn table) const {
    if (m_arch == Arch::kX86_64) {
      using namespace x86_bits;
      return (table.value() << kPageShift) | kPresent | kRw | kUser | kAccessed;
    }
    return (table.value() << kPageShift) | arm64_bits::kValid | arm64_bits::kTable;
  }

  // --- predicates -------------------------------------------------------------
  static bool none(uint64_t e) { return e == 0; }
  /// The hardware's view: x86 _PAGE_PRESENT, arm64 PTE_VALID (pte_valid()). The
  /// walkers and the TLBs use only this; the kernel asks present().
  bool valid(uint64_t e) const {
    return m_arch == Arch::kX86_64 ? (e & x86_bits::kPresent) : (e & arm64_bits::kValid);
  }
  /// pte_protnone(): present for the kernel, invalid for the hardware (PROT_NONE,
  /// NUMA hinting). x86: (flags & (PRESENT|PROTNONE)) == PROTNONE; arm64:
  /// pte_present_invalid().
  bool protnone(uint64_t e) const {
    if (m_arch == Arch::kX86_64)
      return (e & (x86_bits::kPresent | x86_bits::kProtNone)) == x86_bits::kProtNone;
    return (e & (arm64_bits::kValid | arm64_bits::kPresentInvalid)) == arm64_bits::kPresentInvalid;
  }
  /// pte_present(): the entry maps a page (valid or PROT_NONE); a swap or
  /// migration entry is not present.
  bool present(uint64_t e) const { return valid(e) || protnone(e); }
  /// At PMD/PUD level: the entry maps a huge page, not a table (pmd_trans_huge(),
  /// true for a PROT_NONE huge PMD as well).
  bool huge(uint64_t e) const {
    if (m_arch == Arch::kX86_64) return present(e) && (e & x86_bits::kPse);
    return present(e) && !(e & arm64_bits::kTable);
  }
  Pfn pfn(uint64_t e) const {
    uint64_t m = m_arch == Arch::kX86_64 ? x86_bits::kPfnMask : arm64_bits::kOaMask;
    return Pfn((e & m) >> kPageShift);
  }
  bool write(uint64_t e) const {
    return m_arch == Arch::kX86_64 ? (e & x86_bits::kRw) : (e & arm64_bits::kDbm);
  }
  bool young(uint64_t e) const {
    return m_arch == Arch::kX86_64 ? (e & x86_bits::kAccessed) : (e & arm64_bits::kAf);
  }
  bool dirty(uint64_t e) const {
    if (m_arch == Arch::kX86_64) return e & x86_bits::kDirty;
    using namespace arm64_bits;
    return (e & kSwDirty) || ((e & kDbm) && !(e & kRdonly));
  }
  bool cont(uint64_t e) const { return m_arch == Arch::kArm64 && (e & arm64_bits::kCont); }

  // --- modifiers (pte_mk*) ----------------------------------------------------
  uint64_t mkwrite(uint64_t e) const {
    if (m_arch == Arch::kX86_64) return e | x86_bits::kRw;
    using namespace arm64_bits;
    e |= kDbm;
    if (e & kSwDirty) e &= ~kRdonly;
    return e;
  }
  uint64_t wrprotect(uint64_t e) const {
    if (m_arch == Arch::kX86_64) return e & ~x86_bits::kRw;
    using namespace arm64_bits;
    if ((e & kDbm) && !(e & kRdonly)) e |= kSwDirty;  // keep hardware dirtiness
    return (e & ~kDbm) | kRdonly;
  }
  uint64_t mkdirty(uint64_t e) const {
    if (m_arch == Arch::kX86_64) return e | x86_bits::kDirty | x86_bits::kSoftDirty;
    using namespace arm64_bits;
    e |= kSwDirty;
    if (e & kDbm) e &= ~kRdonly;
    return e;
  }
  uint64_t mkclean(uint64_t e) const {
    if (m_arch == Arch::kX86_64) return e & ~x86_bits::kDirty;
    using namespace arm64_bits;
    return (e & ~kSwDirty) | kRdonly;
  }
  uint64_t mkyoung(uint64_t e) const {
    return m_arch == Arch::kX86_64 ? (e | x86_bits::kAccessed) : (e | arm64_bits::kAf);
  }
  uint64_t mkold(uint64_t e) const {
    return m_arch == Arch::kX86_64 ? (e & ~x86_bits::kAccessed) : (e & ~arm64_bits::kAf);
  }
  /// The entry executable or not (x86 NX, arm64 UXN) — pte_modify() for VM_EXEC.
  uint64_t set_exec(uint64_t e, bool exec) const {
    if (m_arch == Arch::kX86_64) return exec ? (e & ~x86_bits::kNx) : (e | x86_bits::kNx);
    return exec ? (e & ~arm64_bits::kUxn) : (e | arm64_bits::kUxn);
  }
  /// pte_modify(e, PAGE_NONE): the hardware may no longer use the entry; pfn,
  /// young, dirty and the huge/page type stay (x86 PAGE_NONE keeps no RW/NX; arm64
  /// PAGE_NONE is read-only, PXN/UXN and never contiguous).
  uint64_t mkprotnone(uint64_t e) const {
    if (m_arch == Arch::kX86_64) {
      using namespace x86_bits;
      return (e & ~(kPresent | kRw | kUser | kNx)) | kProtNone;
    }
    using namespace arm64_bits;
    e = wrprotect(e);  // keeps hardware dirtiness in PTE_DIRTY
    return (e & ~(kValid | kCont | kDbm | kUser)) | kPresentInvalid | kRdonly | kPxn | kUxn;
  }
  /// pte_modify(e, prot) of a PROT_NONE entry back to an accessible protection.
  uint64_t clear_protnone(uint64_t e, PgProt prot) const {
    if (!protnone(e)) return e;
    if (m_arch == Arch::kX86_64) {
      using namespace x86_bits;
      e = (e & ~kProtNone) | kPresent | (prot.user ? kUser : 0) | (prot.exec ? 0 : kNx);
      return prot.write ? (e | kRw) : e;
    }
    using namespace arm64_bits;
    // kPresentInvalid is nG, which every user entry carries anyway.
    e = (e | kValid | (prot.user ? kUser : 0)) & ~(prot.exec ? kUxn : 0);
    return prot.write ? mkwrite(e) : e;
  }
  uint64_t mkcont(uint64_t e) const { return e | arm64_bits::kCont; }
  uint64_t mknoncont(uint64_t e) const {
    return m_arch == Arch::kArm64 ? (e & ~arm64_bits::kCont) : e;
  }
  /// The same entry advanced by `n` frames (pte_advance_pfn).
  uint64_t advance_pfn(uint64_t e, uint64_t n) const { return e + (n << kPageShift); }

  // --- swap and migration entries (non-present PTEs) --------------------------
  // Linux keeps a swp_entry_t (5-bit type, offset) in a non-present PTE. For
  // migration entries the type says how the page was mapped (swapops.h:
  // SWP_MIGRATION_READ / _READ_EXCLUSIVE / _WRITE = MAX_SWAPFILES + 1..3 with
  // MAX_SWAPFILES = 23) and the offset holds the pfn, with the young/dirty state in
  // two offset bits above the pfn (SWP_MIG_YOUNG_BIT / SWP_MIG_DIRTY_BIT; here at
  // offset bits 40/41, as on x86 with 52-bit physical addresses).
  //   x86-64 (arch/x86/include/asm/pgtable_64.h): P = 0; bit 3 _PAGE_SWP_EXCLUSIVE;
  //     offset inverted in bits 9..58 (the L1TF mitigation); type in bits 59..63.
  //   arm64 (arch/arm64/include/asm/pgtable.h): bits 0-1 = 0 (invalid); bit 2
  //     PTE_SWP_EXCLUSIVE; type in bits 6..10; offset in bits 12..61.
  // present() (and valid()) is false for both, so the hardware walkers fault on them.
  static constexpr unsigned kSwpTypeMigrationRead = 24;
  static constexpr unsigned kSwpTypeMigrationReadExclusive = 25;
  static constexpr unsigned kSwpTypeMigrationWrite = 26;
  static constexpr uint64_t kSwpMigYoung = 1ull << 40;
  static constexpr uint64_t kSwpMigDirty = 1ull << 41;
  static constexpr uint64_t kSwpOffsetMask = (1ull << 50) - 1;

  /// swp_entry_to_pte(swp_entry(type, offset)), with the exclusive marker.
  uint64_t mk_swp_pte(unsigned type, uint64_t offset, bool exclusive = false) const {
    offset &= kSwpOffsetMask;
    if (m_arch == Arch::kX86_64)
      return (uint64_t{type} << 59) | ((~offset & kSwpOffsetMask) << 9) |
             (exclusive ? x86_bits::kPwt : 0);
    return (uint64_t{type & 31} << 6) | (offset << 12) | (exclusive ? (1ull << 2) : 0);
  }
  /// is_swap_pte(): neither none nor present.
  bool is_swap_pte(uint64_t e) const { return e != 0 && !present(e); }
  unsigned swp_type(uint64_t e) const {
    return m_arch == Arch::kX86_64 ? static_cast<unsigned>(e >> 59)
                                   : static_cast<unsigned>((e >> 6) & 31);
  }
  uint64_t swp_offset(uint64_t e) const {
    if (m_arch == Arch::kX86_64) return ~(e >> 9) & kSwpOffsetMask;
    return (e >> 12) & kSwpOffsetMask;
  }
  /// pte_swp_exclusive().
  bool swp_exclusive(uint64_t e) const {
    return m_arch == Arch::kX86_64 ? (e & x86_bits::kPwt) : (e & (1ull << 2));
  }
  /// pte_swp_clear_exclusive().
  uint64_t swp_clear_exclusive(uint64_t e) const {
    return m_arch == Arch::kX86_64 ? (e & ~x86_bits::kPwt) : (e & ~(1ull << 2));
  }
  /// is_migration_entry().
  bool is_migration_pte(uint64_t e) const {
    if (!is_swap_pte(e)) return false;
    const unsigned t = swp_type(e);
    return t >= kSwpTypeMigrationRead && t <= kSwpTypeMigrationWrite;
  }
  /// A genuine swap entry (a swap device type, below MAX_SWAPFILES).
  bool is_swap_entry(uint64_t e) const { return is_swap_pte(e) && swp_type(e) < 23; }
  /// make_{readable,readable_exclusive,writable}_migration_entry() +
  /// make_migration_entry_young/dirty() as a PTE.
  uint64_t mk_migration_pte(Pfn pfn, bool write, bool exclusive, bool young, bool dirty) const {
    const unsigned type = write       ? kSwpTypeMigrationWrite
                          : exclusive ? kSwpTypeMigrationReadExclusive
                                      : kSwpTypeMigrationRead;
    return mk_swp_pte(type, pfn.value() | (young ? kSwpMigYoung : 0) | (dirty ? kSwpMigDirty : 0));
  }
  /// pfn_swap_entry_to_page(): the frame a migration entry names.
  Pfn migration_pfn(uint64_t e) const { return Pfn(swp_offset(e) & (kSwpMigYoung - 1)); }
  bool migration_write(uint64_t e) const { return swp_type(e) == kSwpTypeMigrationWrite; }
  bool migration_exclusive(uint64_t e) const {
    return swp_type(e) == kSwpTypeMigrationReadExclusive;
  }
  bool migration_young(uint64_t e) const { return swp_offset(e) & kSwpMigYoung; }
  bool migration_dirty(uint64_t e) const { return swp_offset(e) & kSwpMigDirty; }

  /// Bits compared by folio_pte_batch: accessed, dirty, soft-dirty and write are
  /// ignored (mm/internal.h __pte_batch_clear_ignored with flags 0).
  uint64_t batch_normalise(uint64_t e) const {
    if (m_arch == Arch::kX86_64) {
      using namespace x86_bits;
      return e & ~(kAccessed | kDirty | kSoftDirty | kRw);
    }
    using namespace arm64_bits;
    return (e & ~(kAf | kSwDirty | kDbm)) | kRdonly;  // CONT is compared, as in Linux
  }

 private:
  Arch m_arch;
};

}  // namespace tlbsim::mm
