// x86-64 paging formats as the hardware defines them (Intel SDM Vol. 3A §4.5,
// Tables 4-15 … 4-20), as named bitfields. The kernel writes entries through its own
// codec (mm/pte.h, Linux's pgtable_types.h); the static_asserts below prove both
// agree bit for bit, as a real kernel and a real CPU must.
#pragma once

#include <bit>
#include <cstdint>

#include "mm/pte.h"

namespace tlbsim::x86 {

/// A paging-structure entry (PML5E/PML4E/PDPTE/PDE/PTE): the common layout; `ps`
/// (bit 7) makes a PDPTE/PDE a leaf (1 GiB / 2 MiB page), and is PAT in a PTE.
struct PagingEntry {
  uint64_t p : 1;          // present
  uint64_t rw : 1;         // writable
  uint64_t us : 1;         // user
  uint64_t pwt : 1;        // write-through
  uint64_t pcd : 1;        // cache disable
  uint64_t a : 1;          // accessed (set by the walker)
  uint64_t d : 1;          // dirty (leaves; set by the walker on a store)
  uint64_t ps : 1;         // page size (PDPTE/PDE) / PAT (PTE)
  uint64_t g : 1;          // global (leaves, with CR4.PGE)
  uint64_t avl : 3;        // ignored by hardware (Linux: special, soft-dirty, ...)
  uint64_t pfn : 40;       // physical frame number (bits 12..51)
  uint64_t ignored : 7;    // bits 52..58
  uint64_t pkey : 4;       // protection key (bits 59..62)
  uint64_t xd : 1;         // execute disable (NX)
};
static_assert(sizeof(PagingEntry) == 8);

constexpr PagingEntry decode(uint64_t raw) { return std::bit_cast<PagingEntry>(raw); }
constexpr uint64_t encode(PagingEntry e) { return std::bit_cast<uint64_t>(e); }

// The kernel's codec and the hardware's layout agree.
static_assert(decode(mm::x86_bits::kPresent).p == 1);
static_assert(decode(mm::x86_bits::kRw).rw == 1);
static_assert(decode(mm::x86_bits::kUser).us == 1);
static_assert(decode(mm::x86_bits::kAccessed).a == 1);
static_assert(decode(mm::x86_bits::kDirty).d == 1);
static_assert(decode(mm::x86_bits::kPse).ps == 1);
static_assert(decode(mm::x86_bits::kGlobal).g == 1);
static_assert(decode(mm::x86_bits::kNx).xd == 1);
static_assert(decode(mm::x86_bits::kPfnMask).pfn == (uint64_t{1} << 40) - 1);

/// A linear address under 4-level (48-bit) or 5-level (57-bit, LA57) paging.
struct LinearAddress {
  uint64_t offset : 12;  // byte in a 4 KiB page
  uint64_t pt : 9;       // PTE index
  uint64_t pd : 9;       // PDE index
  uint64_t pdpt : 9;     // PDPTE index
  uint64_t pml4 : 9;     // PML4E index
  uint64_t pml5 : 9;     // PML5E index (LA57; must be the sign extension otherwise)
  uint64_t sign : 7;     // canonical sign extension
};
static_assert(sizeof(LinearAddress) == 8);

constexpr LinearAddress split(uint64_t va) { return std::bit_cast<LinearAddress>(va); }
static_assert(split(0x7f12345ff123ull).offset == 0x123);
static_assert(split(uint64_t{1} << 21).pd == 1);
static_assert(split(uint64_t{1} << 39).pml4 == 1);
static_assert(split(uint64_t{1} << 48).pml5 == 1);

/// CR3 with CR4.PCIDE = 1: the root table and the current PCID; bit 63 on a write
/// means "do not flush this PCID" (NOFLUSH).
struct Cr3 {
  uint64_t pcid : 12;
  uint64_t pfn : 40;
  uint64_t reserved : 11;
  uint64_t noflush : 1;
};
static_assert(sizeof(Cr3) == 8);

}  // namespace tlbsim::x86
