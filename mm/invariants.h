// The invariant checker (DESIGN §2): recounts every mapping from the page tables
// and compares with what the kernel keeps. On in every test; optional in runs.
//   - per folio: folio mapcount (and per-page mapcounts with PAGE_MAPCOUNT, entire
//     mapcount) equal the PTE/PMD mappings found; refcount ≥ mapcount;
//   - MM-ID: a slot's count never exceeds its mm's mappings; a folio mapped by two
//     or more mms has "maybe mapped shared" set (no false negatives);
//   - per mm: rss counters equal the mapped anon/file pages;
//   - no mapped frame, and no page-table frame in use, is free in the allocator;
//   - NR_ANON_MAPPED equals the pages of anon folios with at least one mapping.
#pragma once

#include <string>

namespace tlbsim::mm {

class Kernel;

/// Returns "" when every invariant holds, else a description of the first failures.
std::string check_invariants(const Kernel& kernel);

}  // namespace tlbsim::mm
