// The frame table: one Page record per 4 KiB physical frame (Linux struct page),
// kept to 32 bytes so tens of GiB of simulated memory fit on the host.
//
// A folio is a naturally aligned power-of-two run of frames; its head Page holds
// the refcount, order, mapping and index. Large folios keep their mapcount
// fields (Linux: first tail page) in a pooled LargeFolio record the head points at.
// Counts are natural (an unmapped page has mapcount 0), not Linux's −1 bias.
#pragma once

#include <cstdint>

#include "base/addr.h"

namespace tlbsim::mm {

class AnonVma;

/// Page flags (PG_*). Bits 24..31 hold the folio order on head pages.
enum PageFlag : uint32_t {
  kPgHead = 1u << 0,           // first frame of a folio (set for order-0 too)
  kPgTail = 1u << 1,           // non-first frame of a large folio
  kPgAnon = 1u << 2,           // folio->mapping is an anon_vma (FOLIO_MAPPING_ANON)
  kPgAnonExclusive = 1u << 3,  // PG_anon_exclusive, per page
  kPgSwapBacked = 1u << 4,
  kPgPageTable = 1u << 5,      // frame holds a page table (PageTable)
  kPgDirty = 1u << 6,
  kPgLru = 1u << 7,
  kPgZero = 1u << 8,           // the shared zero page
  kPgReserved = 1u << 9,       // never handed out (frame 0)
  kPgLocked = 1u << 10,
  kPgReferenced = 1u << 11,
  kPgFile = 1u << 12,          // page-cache folio
  kPgSwapCache = 1u << 13,     // anon folio in the swap cache (SwapDevice names its slot)
};
inline constexpr unsigned kOrderShift = 24;

struct Page {
  uint32_t flags = 0;
  int32_t mapcount = 0;     // small folio: folio mapcount; large: per-page PTE mapcount
  int32_t refcount = 0;     // head only
  uint32_t large = 0;       // head of a large folio: index of its LargeFolio record
  uint64_t mapping = 0;     // head: AnonVma* (anon) or file id (file); page table: pool slot
  uint64_t index = 0;       // head: page offset (linear_page_index); tail: head pfn

  bool test(PageFlag f) const { return flags & f; }
  void set(PageFlag f) { flags |= f; }
  void clear(PageFlag f) { flags &= ~static_cast<uint32_t>(f); }
  unsigned order() const { return flags >> kOrderShift; }
  void set_order(unsigned o) { flags = (flags & ((1u << kOrderShift) - 1)) | (o << kOrderShift); }
};
static_assert(sizeof(Page) == 32, "Page must stay 32 bytes per frame");

/// Mapcount fields of a large folio (Linux: first/second tail page of struct folio).
struct LargeFolio {
  int32_t large_mapcount = 0;   // _large_mapcount: PTEs + PMDs mapping any part
  int32_t entire_mapcount = 0;  // _entire_mapcount: PMD/PUD mappings
  int32_t nr_pages_mapped = 0;  // _nr_pages_mapped incl. ENTIRELY_MAPPED (PAGE_MAPCOUNT)
  int32_t pincount = 0;         // _pincount
  uint32_t mm_id[2] = {0, 0};   // MM-ID owner slots (MM_ID_DUMMY = 0)
  int32_t mm_id_mapcount[2] = {0, 0};  // natural per-slot mapcount
  bool maybe_mapped_shared = false;    // FOLIO_MM_IDS_SHARED_BIT
  bool partially_mapped = false;       // PG_partially_mapped
  bool on_deferred_list = false;       // linked on the deferred split queue
  uint32_t deferred_prev = 0, deferred_next = 0;  // queue links (LargeFolio indices)
  uint64_t head_pfn = 0;
};

/// ENTIRELY_MAPPED and FOLIO_PAGES_MAPPED (mm/internal.h).
inline constexpr int32_t kEntirelyMapped = 0x800000;
inline constexpr int32_t kFolioPagesMapped = kEntirelyMapped - 1;

}  // namespace tlbsim::mm
