// arm64 stage-1 translation table descriptors, 4 KiB granule (Arm ARM D8.3), as
// named bitfields, and the 48-bit VA split. The kernel writes them through its own
// codec (mm/pte.h, Linux's pgtable-hwdef.h/pgtable-prot.h); the static_asserts prove
// both agree.
#pragma once

#include <bit>
#include <cstdint>

#include "mm/pte.h"

namespace tlbsim::arm64 {

/// A level-3 page descriptor or a level-1/2 block descriptor (bits[1:0] = 11 page
/// or table, 01 block).
struct Descriptor {
  uint64_t valid : 1;
  uint64_t table_or_page : 1;  // 1: table (levels 0-2) / page (level 3); 0: block
  uint64_t attr_indx : 3;      // MAIR index
  uint64_t ns : 1;
  uint64_t ap1 : 1;            // AP[1]: EL0 access
  uint64_t ap2_rdonly : 1;     // AP[2]: read-only
  uint64_t sh : 2;             // shareability
  uint64_t af : 1;             // access flag
  uint64_t ng : 1;             // not global (ASID-tagged)
  uint64_t oa : 36;            // output address bits 12..47
  uint64_t reserved : 3;       // bits 48..50
  uint64_t dbm : 1;            // dirty bit modifier (Linux PTE_WRITE)
  uint64_t contiguous : 1;     // contiguous hint (contpte)
  uint64_t pxn : 1;
  uint64_t uxn : 1;
  uint64_t software : 4;       // bits 55..58 (Linux: PTE_DIRTY, PTE_SPECIAL, ...)
  uint64_t ignored : 5;
};
static_assert(sizeof(Descriptor) == 8);

constexpr Descriptor decode(uint64_t raw) { return std::bit_cast<Descriptor>(raw); }

static_assert(decode(mm::arm64_bits::kValid).valid == 1);
static_assert(decode(mm::arm64_bits::kTable).table_or_page == 1);
static_assert(decode(mm::arm64_bits::kUser).ap1 == 1);
static_assert(decode(mm::arm64_bits::kRdonly).ap2_rdonly == 1);
static_assert(decode(mm::arm64_bits::kAf).af == 1);
static_assert(decode(mm::arm64_bits::kNg).ng == 1);
static_assert(decode(mm::arm64_bits::kDbm).dbm == 1);
static_assert(decode(mm::arm64_bits::kCont).contiguous == 1);
static_assert(decode(mm::arm64_bits::kPxn).pxn == 1);
static_assert(decode(mm::arm64_bits::kUxn).uxn == 1);
static_assert(decode(mm::arm64_bits::kOaMask).oa == (uint64_t{1} << 36) - 1);

/// A 48-bit VA under the 4 KiB granule: level 0..3 indices.
struct VirtualAddress {
  uint64_t offset : 12;
  uint64_t l3 : 9;
  uint64_t l2 : 9;
  uint64_t l1 : 9;
  uint64_t l0 : 9;
  uint64_t top : 16;  // TTBR select / sign
};
static_assert(sizeof(VirtualAddress) == 8);
static_assert(std::bit_cast<VirtualAddress>(uint64_t{1} << 39).l0 == 1);
static_assert(std::bit_cast<VirtualAddress>(uint64_t{1} << 21).l2 == 1);

}  // namespace tlbsim::arm64
